#include "tools/importer.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tools/test_files.h"

namespace vecdb::tools {
namespace {

using ::testing::ElementsAre;
using testing::Float32Npy;
using ::testing::HasSubstr;
using ::vecdb::testing::StatusIs;

constexpr size_t kMessageBytes = 64 << 20;

class CheckInputTest : public ::testing::Test {
 protected:
  absl::StatusOr<CheckedInput> CheckJsonl(const std::string& contents,
                                          uint32_t dimension = 0,
                                          v1::Metric metric = v1::L2) {
    options_.path = dir_.Write("points.jsonl", contents);
    return Check(dimension, metric);
  }

  absl::StatusOr<CheckedInput> Check(uint32_t dimension, v1::Metric metric) {
    auto source = OpenPointSource(options_);
    if (!source.ok()) return source.status();
    return CheckInput(**source, dimension, metric, kMessageBytes);
  }

  testing::TempDir dir_;
  SourceOptions options_;
};

TEST_F(CheckInputTest, CollectsIdsAndDimension) {
  auto input = CheckJsonl(
      "{\"id\": \"a\", \"vector\": [1, 2]}\n{\"id\": \"b\", \"vector\": [3, "
      "4]}\n");
  ASSERT_OK(input);
  EXPECT_THAT(input->ids, ElementsAre("a", "b"));
  EXPECT_EQ(input->dimension, 2u);
}

TEST_F(CheckInputTest, RejectsDuplicateIdNamingBothLines) {
  auto input = CheckJsonl(
      "{\"id\": \"a\", \"vector\": [1]}\n{\"id\": \"b\", \"vector\": [1]}\n"
      "{\"id\": \"a\", \"vector\": [2]}\n");
  EXPECT_THAT(input, StatusIs(absl::StatusCode::kInvalidArgument,
                              HasSubstr("points.jsonl: line 3: duplicate id "
                                        "\"a\", first seen at ")));
  EXPECT_THAT(input, StatusIs(absl::StatusCode::kInvalidArgument,
                              HasSubstr("points.jsonl: line 1")));
}

TEST_F(CheckInputTest, RejectsDuplicateIdInIdsFile) {
  options_.path = dir_.Write("v.npy", Float32Npy(3, 1, {1, 2, 3}));
  options_.ids_path = dir_.Write("ids.txt", "x\ny\nx\n");
  EXPECT_THAT(Check(0, v1::L2),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ids.txt: line 3: duplicate id \"x\"")));
}

TEST_F(CheckInputTest, RejectsDimensionOfCollection) {
  EXPECT_THAT(CheckJsonl("{\"id\": \"a\", \"vector\": [1, 2, 3]}\n", 4),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1: the vector has dimension 3, the "
                                 "collection 4")));
}

TEST_F(CheckInputTest, RejectsZeroVectorUnderCosine) {
  const std::string contents = "{\"id\": \"a\", \"vector\": [0, 0]}\n";
  EXPECT_OK(CheckJsonl(contents, 0, v1::L2));
  EXPECT_THAT(CheckJsonl(contents, 0, v1::COSINE),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1: the vector is all zeros")));
}

TEST_F(CheckInputTest, RejectsOverlongId) {
  const std::string id(257, 'x');
  EXPECT_THAT(CheckJsonl("{\"id\": \"" + id + "\", \"vector\": [1]}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1: the id is 257 bytes long")));
}

TEST_F(CheckInputTest, RejectsEmptyId) {
  EXPECT_THAT(CheckJsonl("{\"id\": \"\", \"vector\": [1]}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1: the id is empty")));
}

TEST_F(CheckInputTest, RejectsEmptyInput) {
  EXPECT_THAT(CheckJsonl("\n"), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("contains no points")));
}

TEST_F(CheckInputTest, ReportsNanRowOfNpy) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  options_.path = dir_.Write("v.npy", Float32Npy(3, 1, {1, 2, nan}));
  EXPECT_THAT(Check(0, v1::L2),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("v.npy: row 2: component 0 is nan")));
}

v1::Point MakePoint(const std::string& id, int dimension) {
  v1::Point point;
  point.set_id(id);
  point.mutable_vector()->Resize(dimension, 0.5f);
  return point;
}

TEST(RequestBuilderTest, CutsAtBatchSize) {
  RequestBuilder builder("docs", 2, kMessageBytes);
  for (int i = 0; i < 2; ++i) {
    v1::Point point = MakePoint("p", 4);
    ASSERT_TRUE(builder.Fits(point.ByteSizeLong()));
    builder.Add(std::move(point), MakePoint("p", 4).ByteSizeLong());
  }
  EXPECT_FALSE(builder.Fits(MakePoint("p", 4).ByteSizeLong()));
  v1::UpsertRequest request = builder.Take();
  EXPECT_EQ(request.collection(), "docs");
  EXPECT_EQ(request.points_size(), 2);
  EXPECT_TRUE(builder.empty());
}

TEST(RequestBuilderTest, StaysBelowMessageLimit) {
  constexpr size_t kLimit = 100000;
  RequestBuilder builder("docs", 1000000, kLimit);
  int added = 0;
  while (true) {
    v1::Point point = MakePoint("point-" + std::to_string(added), 300);
    const size_t bytes = point.ByteSizeLong();
    if (!builder.Fits(bytes)) break;
    builder.Add(std::move(point), bytes);
    ++added;
  }
  const v1::UpsertRequest request = builder.Take();
  EXPECT_GT(added, 50);
  EXPECT_LE(request.ByteSizeLong(), kLimit);
  EXPECT_GT(request.ByteSizeLong() + 2 * 1220, kLimit - 1024);
}

TEST(RequestBuilderTest, RejectsPointLargerThanMessage) {
  RequestBuilder builder("docs", 10, 70000);
  EXPECT_FALSE(builder.FitsAlone(MakePoint("big", 20000).ByteSizeLong()));
  EXPECT_TRUE(builder.FitsAlone(MakePoint("small", 1000).ByteSizeLong()));
}

}  // namespace
}  // namespace vecdb::tools
