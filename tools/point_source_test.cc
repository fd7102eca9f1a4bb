#include "tools/point_source.h"

#include <string>
#include <vector>

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

class PointSourceTest : public ::testing::Test {
 protected:
  // Opens a .jsonl source with `contents`.
  std::unique_ptr<PointSource> OpenJsonl(const std::string& contents) {
    options_.path = dir_.Write("points.jsonl", contents);
    auto source = OpenPointSource(options_);
    EXPECT_OK(source);
    return source.ok() ? *std::move(source) : nullptr;
  }

  // Reads every point, or returns the first error.
  absl::StatusOr<std::vector<v1::Point>> ReadAll(PointSource& source) {
    std::vector<v1::Point> points;
    v1::Point point;
    while (true) {
      absl::StatusOr<bool> more = source.Next(&point);
      if (!more.ok()) return more.status();
      if (!*more) return points;
      points.push_back(point);
    }
  }

  static std::vector<float> Vector(const v1::Point& point) {
    return {point.vector().begin(), point.vector().end()};
  }

  testing::TempDir dir_;
  SourceOptions options_;
};

TEST_F(PointSourceTest, JsonlReadsMetadataObject) {
  auto source = OpenJsonl(
      R"({"id": "a", "vector": [1, 2.5], "metadata": {"tag": "x", "n": 3}})"
      "\n");
  auto points = ReadAll(*source);
  ASSERT_OK(points);
  ASSERT_EQ(points->size(), 1u);
  EXPECT_EQ((*points)[0].id(), "a");
  EXPECT_THAT(Vector((*points)[0]), ElementsAre(1, 2.5));
  EXPECT_EQ((*points)[0].metadata().fields().at("tag").string_value(), "x");
  EXPECT_EQ((*points)[0].metadata().fields().at("n").number_value(), 3);
  EXPECT_EQ(source->dimension(), 2u);
}

TEST_F(PointSourceTest, JsonlTakesOtherFieldsAsMetadata) {
  auto source = OpenJsonl(
      R"({"id": "a", "vector": [1], "title": "T", "tags": ["p", "q"]})");
  auto points = ReadAll(*source);
  ASSERT_OK(points);
  const auto& fields = (*points)[0].metadata().fields();
  EXPECT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields.at("title").string_value(), "T");
  EXPECT_EQ(fields.at("tags").list_value().values_size(), 2);
}

TEST_F(PointSourceTest, JsonlRejectsMetadataBesideOtherFields) {
  auto source = OpenJsonl(
      "{\"id\": \"a\", \"vector\": [1]}\n"
      "{\"id\": \"b\", \"vector\": [1], \"metadata\": {}, \"title\": \"T\"}\n");
  EXPECT_THAT(ReadAll(*source),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("points.jsonl: line 2: the object has a "
                                 "'metadata' field and other fields "
                                 "(title)")));
}

TEST_F(PointSourceTest, JsonlIntegerIdBecomesText) {
  auto source = OpenJsonl(R"({"id": 42, "vector": [1]})");
  auto points = ReadAll(*source);
  ASSERT_OK(points);
  EXPECT_EQ((*points)[0].id(), "42");
}

TEST_F(PointSourceTest, JsonlGeneratesMissingIds) {
  options_.id_prefix = "doc-";
  options_.id_start = 100;
  auto source = OpenJsonl("{\"vector\": [1]}\n{\"vector\": [2]}\n");
  auto points = ReadAll(*source);
  ASSERT_OK(points);
  EXPECT_EQ((*points)[0].id(), "doc-100");
  EXPECT_EQ((*points)[1].id(), "doc-101");
}

TEST_F(PointSourceTest, JsonlCountsBlankLinesInLineNumbers) {
  auto source = OpenJsonl(
      "{\"id\": \"a\", \"vector\": [1]}\n\n  \n{\"id\": \"b\", \"vector\": "
      "[1,]}\n");
  EXPECT_THAT(ReadAll(*source),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("points.jsonl: line 4: invalid JSON")));
  EXPECT_EQ(source->Location(0), dir_.Path("points.jsonl") + ": line 1");
}

TEST_F(PointSourceTest, JsonlExplainsNaN) {
  auto source = OpenJsonl("{\"id\": \"a\", \"vector\": [NaN, 1]}\n");
  EXPECT_THAT(ReadAll(*source), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("line 1: invalid JSON")));
  source->Rewind();
  EXPECT_THAT(ReadAll(*source),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("NaN and Infinity are not JSON numbers")));
}

TEST_F(PointSourceTest, JsonlRejectsWrongDimension) {
  auto source = OpenJsonl(
      "{\"id\": \"a\", \"vector\": [1, 2]}\n"
      "{\"id\": \"b\", \"vector\": [1, 2, 3]}\n");
  EXPECT_THAT(ReadAll(*source),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 2: 'vector' has dimension 3, expected "
                                 "2 like the first point")));
}

TEST_F(PointSourceTest, JsonlRejectsMissingVector) {
  auto source = OpenJsonl("{\"id\": \"a\"}\n");
  EXPECT_THAT(ReadAll(*source),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1: the object has no 'vector' field")));
}

TEST_F(PointSourceTest, JsonlRejectsStringComponent) {
  auto source = OpenJsonl("{\"id\": \"a\", \"vector\": [1, \"2\"]}\n");
  EXPECT_THAT(ReadAll(*source),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1: 'vector': component 1 is a string, "
                                 "expected a number")));
}

TEST_F(PointSourceTest, JsonlRejectsNonObjectLine) {
  auto source = OpenJsonl("[1, 2]\n");
  EXPECT_THAT(ReadAll(*source),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1: expected a JSON object, found "
                                 "array")));
}

TEST_F(PointSourceTest, JsonlRejectsDeepMetadata) {
  std::string nested = "1";
  for (int i = 0; i < 40; ++i) nested = "{\"k\": " + nested + "}";
  auto source = OpenJsonl(
      "{\"id\": \"a\", \"vector\": [1], \"metadata\": " + nested + "}\n");
  EXPECT_THAT(ReadAll(*source),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1: metadata field 'k.k.k")));
}

TEST_F(PointSourceTest, JsonlRejectsIdsFile) {
  options_.path = dir_.Write("points.jsonl", "{\"vector\": [1]}\n");
  options_.ids_path = dir_.Write("ids.txt", "a\n");
  EXPECT_THAT(OpenPointSource(options_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--ids and --metadata go with a .npy or "
                                 ".fvecs file")));
}

TEST_F(PointSourceTest, MatrixTakesIdsAndMetadataByRow) {
  options_.path = dir_.Write("v.npy", Float32Npy(2, 2, {1, 2, 3, 4}));
  options_.ids_path = dir_.Write("ids.txt", "first\r\nsecond\n");
  options_.metadata_path = dir_.Write("meta.jsonl", "{\"n\": 1}\n{\"n\": 2}\n");
  auto source = OpenPointSource(options_);
  ASSERT_OK(source);
  auto points = ReadAll(**source);
  ASSERT_OK(points);
  ASSERT_EQ(points->size(), 2u);
  EXPECT_EQ((*points)[1].id(), "second");
  EXPECT_THAT(Vector((*points)[1]), ElementsAre(3, 4));
  EXPECT_EQ((*points)[1].metadata().fields().at("n").number_value(), 2);
  EXPECT_EQ((*source)->IdLocation(1), dir_.Path("ids.txt") + ": line 2");
}

TEST_F(PointSourceTest, MatrixGeneratesIdsFromRows) {
  options_.path = dir_.Write("v.npy", Float32Npy(2, 1, {1, 2}));
  options_.id_prefix = "p";
  auto source = OpenPointSource(options_);
  ASSERT_OK(source);
  auto points = ReadAll(**source);
  ASSERT_OK(points);
  EXPECT_EQ((*points)[0].id(), "p0");
  EXPECT_EQ((*points)[1].id(), "p1");
}

TEST_F(PointSourceTest, MatrixRejectsIdsFileOfOtherLength) {
  options_.path = dir_.Write("v.npy", Float32Npy(3, 1, {1, 2, 3}));
  options_.ids_path = dir_.Write("ids.txt", "a\nb\n");
  EXPECT_THAT(OpenPointSource(options_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ids.txt has 2 lines but")));
}

TEST_F(PointSourceTest, MatrixRejectsEmptyIdLine) {
  options_.path = dir_.Write("v.npy", Float32Npy(3, 1, {1, 2, 3}));
  options_.ids_path = dir_.Write("ids.txt", "a\n\nc\n");
  EXPECT_THAT(OpenPointSource(options_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ids.txt: line 2: the line is empty")));
}

TEST_F(PointSourceTest, MatrixRejectsMetadataLineThatIsNotObject) {
  options_.path = dir_.Write("v.npy", Float32Npy(2, 1, {1, 2}));
  options_.metadata_path = dir_.Write("meta.jsonl", "{}\n\"text\"\n");
  auto source = OpenPointSource(options_);
  ASSERT_OK(source);
  EXPECT_THAT(ReadAll(**source),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("meta.jsonl: line 2: expected a JSON object, "
                                 "found string")));
}

TEST_F(PointSourceTest, RewindStartsAgain) {
  auto source = OpenJsonl("{\"vector\": [1]}\n{\"vector\": [2]}\n");
  ASSERT_OK(ReadAll(*source));
  source->Rewind();
  auto points = ReadAll(*source);
  ASSERT_OK(points);
  EXPECT_EQ(points->size(), 2u);
}

TEST_F(PointSourceTest, RejectsUnknownExtension) {
  options_.path = dir_.Write("points.parquet", "PAR1");
  EXPECT_THAT(OpenPointSource(options_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Parquet is not supported")));
}

}  // namespace
}  // namespace vecdb::tools
