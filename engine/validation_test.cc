#include "engine/validation.h"

#include <cmath>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace vecdb::engine {
namespace {

using ::testing::HasSubstr;
using ::vecdb::testing::StatusIs;

google::protobuf::RepeatedField<float> Vector(std::initializer_list<float> v) {
  return google::protobuf::RepeatedField<float>(v.begin(), v.end());
}

TEST(CollectionNameTest, AcceptsLettersDigitsUnderscoreHyphen) {
  EXPECT_OK(ValidateCollectionName("docs_v2-en"));
  EXPECT_OK(ValidateCollectionName("_private"));
  EXPECT_OK(ValidateCollectionName("con"));
  EXPECT_OK(ValidateCollectionName(std::string(128, 'x')));
}

TEST(CollectionNameTest, RejectsPathsSpacesAndNonAscii) {
  for (const char* name : {"a/b", "..", ".", "", "a b", "trailing.",
                           "\xe5\x90\x8d\xe5\x89\x8d", "-lead", "a\\b"}) {
    EXPECT_THAT(ValidateCollectionName(name),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("")))
        << name;
  }
  EXPECT_THAT(ValidateCollectionName(std::string(129, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("129 bytes, the limit is 128")));
}

TEST(PointIdTest, LimitIsInUtf8Bytes) {
  std::string two_byte_id;
  for (int i = 0; i < 128; ++i) two_byte_id += "\xc3\xa9";  // 'é'
  EXPECT_OK(ValidatePointId(two_byte_id));
  EXPECT_THAT(ValidatePointId(two_byte_id + "a"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("id is 257 bytes, the limit is 256")));
}

TEST(PointIdTest, RejectsEmptyAndInvalidUtf8) {
  EXPECT_THAT(ValidatePointId(""),
              StatusIs(absl::StatusCode::kInvalidArgument, "id is empty"));
  for (const char* id :
       {"\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
    EXPECT_THAT(ValidatePointId(id),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("not valid UTF-8")))
        << id;
  }
  EXPECT_OK(ValidatePointId("e\xcc\x81"));  // e + combining acute
  EXPECT_OK(ValidatePointId("\xf0\x9f\x98\x80"));
}

TEST(VectorTest, RejectsWrongDimensionNamingBoth) {
  EXPECT_THAT(ValidateVector(Vector({0.1f, 0.2f, 0.3f}), 4, v1::L2),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("3 components, the collection's dimension "
                                 "is 4")));
}

TEST(VectorTest, RejectsNonFiniteComponentsByPosition) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_THAT(ValidateVector(Vector({1, nan}), 2, v1::DOT_PRODUCT),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("component 1 is nan")));
  EXPECT_THAT(ValidateVector(Vector({-inf, 1}), 2, v1::L2),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("component 0 is -inf")));
}

TEST(VectorTest, ZeroVectorRejectedOnlyUnderCosine) {
  EXPECT_THAT(
      ValidateVector(Vector({0, 0}), 2, v1::COSINE),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("all zeros")));
  EXPECT_OK(ValidateVector(Vector({0, 0}), 2, v1::L2));
  EXPECT_OK(ValidateVector(Vector({0, 0}), 2, v1::DOT_PRODUCT));
}

TEST(VectorTest, HugeVectorNormalisedUnderCosineRejectedElsewhere) {
  auto huge = Vector({1e30f, 1e30f, 1e30f, 1e30f});
  EXPECT_OK(ValidateVector(huge, 4, v1::COSINE));
  float unit[4];
  PrepareForIndex(huge, v1::COSINE, unit);
  for (float component : unit) EXPECT_FLOAT_EQ(component, 0.5f);
  EXPECT_THAT(
      ValidateVector(huge, 4, v1::L2),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("squared norm")));
}

TEST(MetadataTest, RejectsNonFiniteNumbersWithPath) {
  google::protobuf::Struct metadata;
  (*(*metadata.mutable_fields())["outer"]
        .mutable_struct_value()
        ->mutable_fields())["inner"]
      .set_number_value(std::nan(""));
  EXPECT_THAT(
      ValidateMetadata(metadata),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'outer.inner'")));
}

TEST(MetadataTest, RejectsDeepNesting) {
  google::protobuf::Struct metadata;
  google::protobuf::Struct* level = &metadata;
  for (int i = 0; i < 40; ++i) {
    level = (*level->mutable_fields())["k"].mutable_struct_value();
  }
  EXPECT_THAT(ValidateMetadata(metadata),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("nested deeper than 32")));
}

TEST(LimitsTest, DefaultsAreValid) { EXPECT_OK(ValidateLimits(Limits())); }

TEST(LimitsTest, RejectsZeroAndAboveBuiltInMaximum) {
  Limits zero_batch;
  zero_batch.max_batch_points = 0;
  EXPECT_THAT(ValidateLimits(zero_batch),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max_batch_points is 0")));
  Limits wide_ids;
  wide_ids.max_point_id_bytes = kMaxPointIdBytes + 1;
  EXPECT_THAT(ValidateLimits(wide_ids),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max_point_id_bytes is 257; it must be 1 "
                                 "to 256")));
  Limits deep_metadata;
  deep_metadata.max_metadata_depth = kMaxMetadataDepth + 1;
  EXPECT_THAT(ValidateLimits(deep_metadata),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max_metadata_depth is 33")));
}

TEST(UpsertLimitsTest, NamesFirstPointOverLimit) {
  Limits limits;
  limits.max_point_id_bytes = 4;
  limits.max_batch_points = 2;
  v1::UpsertRequest request;
  request.add_points()->set_id("abc");
  request.add_points()->set_id("abcde");
  EXPECT_THAT(CheckUpsertLimits(request, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("points[1] (id \"abcde\"): id is 5 bytes, "
                                 "the limit is 4")));

  request.add_points()->set_id("a");
  EXPECT_THAT(CheckUpsertLimits(request, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("3 points, the limit is 2")));
}

TEST(UpsertLimitsTest, AppliesMetadataDepth) {
  Limits limits;
  limits.max_metadata_depth = 1;
  v1::UpsertRequest request;
  v1::Point* point = request.add_points();
  point->set_id("p");
  google::protobuf::Struct inner;
  (*inner.mutable_fields())["leaf"].set_number_value(1);
  *(*point->mutable_metadata()->mutable_fields())["outer"]
       .mutable_struct_value() = inner;
  EXPECT_THAT(CheckUpsertLimits(request, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("nested deeper than 1 levels")));
  EXPECT_OK(CheckUpsertLimits(request, Limits()));
}

TEST(SearchLimitsTest, RejectsTopKOverLimit) {
  Limits limits;
  limits.max_top_k = 5;
  v1::SearchRequest request;
  request.set_top_k(5);
  EXPECT_OK(CheckSearchLimits(request, limits));
  request.set_top_k(6);
  EXPECT_THAT(CheckSearchLimits(request, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("top_k is 6, it must be 1 to 5")));
}

}  // namespace
}  // namespace vecdb::engine
