#include "tools/vector_file.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tools/test_files.h"

namespace vecdb::tools {
namespace {

using testing::Bytes;
using ::testing::ElementsAre;
using testing::Float32Npy;
using testing::FvecsFile;
using ::testing::HasSubstr;
using testing::NpyFile;
using ::vecdb::testing::StatusIs;

class VectorFileTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<VectorFile>> OpenWith(
      const std::string& name, const std::string& contents) {
    return VectorFile::Open(dir_.Write(name, contents));
  }

  std::vector<float> Row(const VectorFile& file, size_t row) {
    std::vector<float> values(file.dimension());
    EXPECT_OK(file.ReadRow(row, values.data()));
    return values;
  }

  testing::TempDir dir_;
};

TEST_F(VectorFileTest, ReadsFloat32Npy) {
  auto file = OpenWith("v.npy", Float32Npy(2, 3, {1, 2, 3, 4, 5, 6}));
  ASSERT_OK(file);
  EXPECT_EQ((*file)->rows(), 2u);
  EXPECT_EQ((*file)->dimension(), 3u);
  EXPECT_THAT(Row(**file, 1), ElementsAre(4, 5, 6));
}

TEST_F(VectorFileTest, RoundsFloat64NpyToFloat32) {
  auto file = OpenWith(
      "v.npy", NpyFile("<f8", false, "(1, 2)", Bytes<double>({0.1, -2.5})));
  ASSERT_OK(file);
  EXPECT_THAT(Row(**file, 0), ElementsAre(0.1f, -2.5f));
}

TEST_F(VectorFileTest, RejectsFortranOrder) {
  auto file = OpenWith(
      "v.npy", NpyFile("<f4", true, "(2, 2)", Bytes<float>({1, 2, 3, 4})));
  EXPECT_THAT(file,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("v.npy: the array is in Fortran order")));
}

TEST_F(VectorFileTest, RejectsIntegerDtype) {
  auto file =
      OpenWith("v.npy", NpyFile("<i4", false, "(1, 2)", Bytes<int>({1, 2})));
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("unsupported dtype '<i4'")));
}

TEST_F(VectorFileTest, RejectsBigEndianFloats) {
  auto file =
      OpenWith("v.npy", NpyFile(">f4", false, "(1, 1)", Bytes<float>({1})));
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("unsupported dtype '>f4'")));
}

TEST_F(VectorFileTest, RejectsOneDimensionalArray) {
  auto file =
      OpenWith("v.npy", NpyFile("<f4", false, "(3,)", Bytes<float>({1, 2, 3})));
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("the array has shape (3,); expected "
                                       "two dimensions")));
}

TEST_F(VectorFileTest, RejectsTruncatedNpy) {
  auto file = OpenWith("v.npy", Float32Npy(3, 2, {1, 2, 3, 4}));
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("it may be truncated")));
}

TEST_F(VectorFileTest, RejectsFileWithoutMagic) {
  auto file = OpenWith("v.npy", "just some text, not an array");
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("not a .npy file")));
}

TEST_F(VectorFileTest, ReportsNanWithRowAndComponent) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto file = OpenWith("v.npy", Float32Npy(3, 2, {1, 2, 3, 4, 5, nan}));
  ASSERT_OK(file);
  std::vector<float> values(2);
  EXPECT_OK((*file)->ReadRow(1, values.data()));
  EXPECT_THAT((*file)->ReadRow(2, values.data()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("v.npy: row 2: component 1 is nan")));
}

TEST_F(VectorFileTest, ReportsInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  auto file = OpenWith("v.npy", Float32Npy(1, 2, {-inf, 0}));
  ASSERT_OK(file);
  std::vector<float> values(2);
  EXPECT_THAT((*file)->ReadRow(0, values.data()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("row 0: component 0 is -inf")));
}

TEST_F(VectorFileTest, RejectsFloat64OutsideFloat32Range) {
  auto file = OpenWith(
      "v.npy", NpyFile("<f8", false, "(1, 2)", Bytes<double>({1, 1e300})));
  ASSERT_OK(file);
  std::vector<float> values(2);
  EXPECT_THAT((*file)->ReadRow(0, values.data()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("component 1 is 1e+300, out of float32's "
                                 "range")));
}

TEST_F(VectorFileTest, ReadsFvecs) {
  auto file = OpenWith("v.fvecs", FvecsFile({{1, 2}, {3, 4}, {5, 6}}));
  ASSERT_OK(file);
  EXPECT_EQ((*file)->rows(), 3u);
  EXPECT_EQ((*file)->dimension(), 2u);
  EXPECT_THAT(Row(**file, 2), ElementsAre(5, 6));
}

TEST_F(VectorFileTest, RejectsFvecsRowOfOtherDimension) {
  auto file = OpenWith("v.fvecs", FvecsFile({{1, 2}, {3, 4, 5}}));
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("v.fvecs: row 1 has dimension 3, "
                                       "expected 2 as in row 0")));
}

TEST_F(VectorFileTest, RejectsTruncatedFvecs) {
  std::string contents = FvecsFile({{1, 2}, {3, 4}});
  contents.resize(contents.size() - 2);
  auto file = OpenWith("v.fvecs", contents);
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("v.fvecs: row 1 is cut off")));
}

TEST_F(VectorFileTest, RejectsUnknownExtension) {
  auto file = OpenWith("v.parquet", "PAR1");
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("expected a name ending in .npy or "
                                       ".fvecs")));
}

TEST_F(VectorFileTest, ReportsMissingFile) {
  EXPECT_THAT(VectorFile::Open(dir_.Path("absent.npy")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent.npy")));
}

}  // namespace
}  // namespace vecdb::tools
