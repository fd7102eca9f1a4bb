#include "engine/filter.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "engine/limits.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace vecdb::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::vecdb::testing::StatusIs;

v1::Filter ParseFilter(const std::string& text) {
  v1::Filter filter;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &filter))
      << text;
  return filter;
}

google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct metadata;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &metadata).ok())
      << json;
  return metadata;
}

absl::StatusOr<PointFilter> Compile(const std::string& text,
                                    const FieldIndexTypes& indexed = {}) {
  return PointFilter::Compile(ParseFilter(text), "filter", indexed);
}

// Compiles `filter` and tests it against a point with `json` metadata.
bool Matches(const std::string& filter, const std::string& json,
             const std::string& point_id = "p1") {
  absl::StatusOr<PointFilter> compiled = Compile(filter);
  EXPECT_OK(compiled);
  if (!compiled.ok()) return false;
  const google::protobuf::Struct metadata = ParseJson(json);
  return compiled->Matches(point_id, &metadata);
}

std::string MatchString(const std::string& key, const std::string& value) {
  return absl::StrCat("must { field { key: '", key, "' match { string_value: '",
                      value, "' } } }");
}

std::string MatchNumber(const std::string& key, double value) {
  return absl::StrCat("must { field { key: '", key,
                      "' match { number_value: ", value, " } } }");
}

// --- Checking ----------------------------------------------------------

TEST(FilterCheckTest, EmptyConditionNamesItsPath) {
  EXPECT_THAT(Compile("must { field { key: 'a' exists: true } } must { }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.must[1]: condition is empty")));
}

TEST(FilterCheckTest, FieldWithoutOperatorRejected) {
  EXPECT_THAT(Compile("should { field { key: 'a' } }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.should[0].field: no operator")));
}

TEST(FilterCheckTest, UnknownOperatorRejected) {
  // Field 99 is an operator that a newer client might send.
  v1::Filter filter = ParseFilter("must { field { key: 'a' } }");
  filter.mutable_must(0)
      ->mutable_field()
      ->GetReflection()
      ->MutableUnknownFields(filter.mutable_must(0)->mutable_field())
      ->AddVarint(99, 1);
  EXPECT_THAT(PointFilter::Compile(filter, "filter", {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.must[0].field: unknown operator")));
}

TEST(FilterCheckTest, EmptyKeyRejected) {
  EXPECT_THAT(Compile("must_not { field { key: '' exists: true } }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.must_not[0].field.key is empty")));
}

TEST(FilterCheckTest, EmptyKeySegmentRejected) {
  for (const char* key : {"a..b", ".a", "a."}) {
    EXPECT_THAT(Compile(absl::StrCat("must { field { key: '", key,
                                     "' exists: true } }")),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(StartsWith("filter.must[0].field.key"),
                               HasSubstr("empty segment"))))
        << key;
  }
}

TEST(FilterCheckTest, MatchWithNonScalarRejected) {
  EXPECT_THAT(
      Compile("must { field { key: 'a' match { list_value { } } } }"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(StartsWith("filter.must[0].field.match: value is a list"),
                     HasSubstr("use any"))));
  EXPECT_THAT(
      Compile("must { field { key: 'a' match { struct_value { } } } }"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               StartsWith("filter.must[0].field.match: value is an object")));
  EXPECT_THAT(Compile("must { field { key: 'a' match { null_value: "
                      "NULL_VALUE } } }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("filter.must[0].field.match"),
                             HasSubstr("is_null"))));
  EXPECT_THAT(Compile("must { field { key: 'a' match { } } }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.must[0].field.match: value is "
                                  "empty")));
}

TEST(FilterCheckTest, AnyWithMixedTypesRejected) {
  EXPECT_THAT(
      Compile("must { field { key: 'a' any { values { string_value: 'x' } "
              "values { string_value: 'y' } values { number_value: 3 } } } }"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(StartsWith("filter.must[0].field.any[2]: value is a "
                                "number"),
                     HasSubstr("one type"))));
}

TEST(FilterCheckTest, AnyWithListElementRejected) {
  EXPECT_THAT(
      Compile("must { field { key: 'a' any { values { number_value: 1 } "
              "values { list_value { } } } } }"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               StartsWith("filter.must[0].field.any[1]: value is a list")));
}

TEST(FilterCheckTest, RangeWithoutBoundRejected) {
  EXPECT_THAT(Compile("must { field { key: 'a' range { } } }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.must[0].field.range: no bound")));
}

TEST(FilterCheckTest, RangeWithTwoLowerBoundsRejected) {
  EXPECT_THAT(Compile("must { field { key: 'a' range { gt: 1 gte: 2 } } }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.must[0].field.range: both gt and "
                                  "gte")));
  EXPECT_THAT(Compile("must { field { key: 'a' range { lt: 1 lte: 2 } } }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.must[0].field.range: both lt and "
                                  "lte")));
}

TEST(FilterCheckTest, RangeWithNanBoundRejected) {
  EXPECT_THAT(Compile("must { field { key: 'a' range { lte: nan } } }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.must[0].field.range.lte: bound is "
                                  "NaN")));
}

TEST(FilterCheckTest, RangeOnKeywordIndexRejected) {
  EXPECT_THAT(Compile("must { filter { should { field { key: 'color' "
                      "range { gt: 1 } } } } }",
                      {{"color", v1::KEYWORD}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("filter.must[0].filter.should[0]."
                                        "field.range: key 'color' is indexed "
                                        "as KEYWORD"),
                             HasSubstr("range applies to numbers"))));
}

TEST(FilterCheckTest, MatchTypeMismatchWithIndexRejected) {
  EXPECT_THAT(
      Compile(MatchNumber("color", 3), {{"color", v1::KEYWORD}}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(StartsWith("filter.must[0].field.match: value is a "
                                "number but key 'color' is indexed as "
                                "KEYWORD"))));
  EXPECT_THAT(Compile(MatchString("year", "2020"), {{"year", v1::INTEGER}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.must[0].field.match: value is a "
                                  "string but key 'year' is indexed as "
                                  "INTEGER")));
  EXPECT_THAT(Compile(MatchNumber("year", 2020.5), {{"year", v1::INTEGER}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("filter.must[0].field.match"),
                             HasSubstr("not an integer"))));
  EXPECT_OK(Compile(MatchNumber("year", 2020), {{"year", v1::INTEGER}}));
}

TEST(FilterCheckTest, BadIdInHasIdRejected) {
  EXPECT_THAT(Compile("must { has_id { ids: 'a' ids: '' } }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("filter.must[0].has_id.ids[1]: id is "
                                  "empty")));
}

TEST(FilterCheckTest, NestingPastLimitRejected) {
  std::string text = "must { field { key: 'a' exists: true } }";
  for (int level = 1; level < kMaxFilterDepth; ++level) {
    text = absl::StrCat("must { filter { ", text, " } }");
  }
  EXPECT_OK(Compile(text));
  EXPECT_THAT(Compile(absl::StrCat("must { filter { ", text, " } }")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("filter.must[0].filter.must[0]"),
                             HasSubstr("nested deeper than 16 levels"))));
}

TEST(FilterCheckTest, TooManyConditionsRejected) {
  std::string text;
  for (int i = 0; i <= kMaxFilterConditions; ++i) {
    absl::StrAppend(&text, "should { has_id { ids: 'x' } } ");
  }
  EXPECT_THAT(Compile(text),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("filter.should[1024]"),
                             HasSubstr("more than 1024 conditions"))));
}

TEST(FilterCheckTest, ErrorNamesTheGivenField) {
  EXPECT_THAT(
      PointFilter::Compile(ParseFilter("must { }"), "searches[3].filter", {}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               StartsWith("searches[3].filter.must[0]: ")));
}

TEST(FilterCheckTest, FilterWithoutConditionsIsEmpty) {
  absl::StatusOr<PointFilter> filter = Compile("");
  ASSERT_OK(filter);
  EXPECT_TRUE(filter->empty());
  EXPECT_TRUE(filter->Matches("p", nullptr));
}

// --- Evaluation ---------------------------------------------------------

TEST(FilterMatchTest, MatchString) {
  EXPECT_TRUE(Matches(MatchString("color", "red"), R"({"color": "red"})"));
  EXPECT_FALSE(Matches(MatchString("color", "red"), R"({"color": "blue"})"));
  EXPECT_FALSE(Matches(MatchString("color", "red"), R"({"shade": "red"})"));
}

TEST(FilterMatchTest, NumbersCompareByValue) {
  EXPECT_TRUE(Matches(MatchNumber("n", 42), R"({"n": 42.0})"));
  EXPECT_TRUE(Matches(MatchNumber("n", 42.0), R"({"n": 42})"));
  EXPECT_TRUE(Matches(MatchNumber("n", 0), R"({"n": -0.0})"));
  EXPECT_FALSE(Matches(MatchNumber("n", 42), R"({"n": 42.5})"));
}

TEST(FilterMatchTest, StringNeverEqualsNumber) {
  EXPECT_FALSE(Matches(MatchString("n", "42"), R"({"n": 42})"));
  EXPECT_FALSE(Matches(MatchNumber("n", 42), R"({"n": "42"})"));
}

TEST(FilterMatchTest, MatchBool) {
  const std::string filter =
      "must { field { key: 'ok' match { bool_value: true } } }";
  EXPECT_TRUE(Matches(filter, R"({"ok": true})"));
  EXPECT_FALSE(Matches(filter, R"({"ok": false})"));
  EXPECT_FALSE(Matches(filter, R"({"ok": "true"})"));
}

TEST(FilterMatchTest, AnyMatchesOneOfItsValues) {
  const std::string filter =
      "must { field { key: 'c' any { values { string_value: 'red' } "
      "values { string_value: 'green' } } } }";
  EXPECT_TRUE(Matches(filter, R"({"c": "green"})"));
  EXPECT_FALSE(Matches(filter, R"({"c": "blue"})"));
}

TEST(FilterMatchTest, EmptyAnyMatchesNothing) {
  EXPECT_FALSE(
      Matches("must { field { key: 'c' any { } } }", R"({"c": "red"})"));
}

TEST(FilterMatchTest, RangeBounds) {
  const std::string filter =
      "must { field { key: 'n' range { gt: 1 lte: 3 } } }";
  EXPECT_FALSE(Matches(filter, R"({"n": 1})"));
  EXPECT_TRUE(Matches(filter, R"({"n": 1.5})"));
  EXPECT_TRUE(Matches(filter, R"({"n": 3})"));
  EXPECT_FALSE(Matches(filter, R"({"n": 3.01})"));
  EXPECT_FALSE(Matches(filter, R"({"n": "2"})"));
  EXPECT_TRUE(
      Matches("must { field { key: 'n' range { gte: 1 } } }", R"({"n": 1})"));
  EXPECT_FALSE(
      Matches("must { field { key: 'n' range { lt: 1 } } }", R"({"n": 1})"));
}

TEST(FilterMatchTest, NestedPath) {
  const std::string filter = MatchString("author.name", "Ada");
  EXPECT_TRUE(Matches(filter, R"({"author": {"name": "Ada"}})"));
  EXPECT_FALSE(Matches(filter, R"({"author": {"name": "Alan"}})"));
  EXPECT_FALSE(Matches(filter, R"({"author": "Ada"})"));
  EXPECT_FALSE(Matches(filter, R"({"author.name": "Ada"})"));
}

TEST(FilterMatchTest, ListMatchesWhenAnyElementDoes) {
  EXPECT_TRUE(
      Matches(MatchString("tags", "b"), R"({"tags": ["a", "b", "c"]})"));
  EXPECT_FALSE(Matches(MatchString("tags", "d"), R"({"tags": ["a", "b"]})"));
  EXPECT_TRUE(Matches("must { field { key: 'n' range { gt: 10 } } }",
                      R"({"n": [1, "x", 12]})"));
  EXPECT_TRUE(Matches(MatchNumber("n", 5), R"({"n": [[1], [5]]})"));
}

TEST(FilterMatchTest, PathEntersListsOfObjects) {
  const std::string filter = MatchString("items.color", "red");
  EXPECT_TRUE(
      Matches(filter, R"({"items": [{"color": "blue"}, {"color": "red"}]})"));
  EXPECT_FALSE(Matches(filter, R"({"items": [{"color": "blue"}, 3]})"));
}

TEST(FilterMatchTest, NullDiffersFromMissing) {
  const std::string is_null = "must { field { key: 'a' is_null: true } }";
  const std::string not_null = "must { field { key: 'a' is_null: false } }";
  const std::string exists = "must { field { key: 'a' exists: true } }";
  const std::string missing = "must { field { key: 'a' exists: false } }";

  EXPECT_TRUE(Matches(is_null, R"({"a": null})"));
  EXPECT_FALSE(Matches(is_null, R"({"b": 1})"));
  EXPECT_FALSE(Matches(is_null, R"({"a": 1})"));

  EXPECT_FALSE(Matches(not_null, R"({"a": null})"));
  EXPECT_TRUE(Matches(not_null, R"({"b": 1})"));
  EXPECT_TRUE(Matches(not_null, R"({"a": 1})"));

  EXPECT_TRUE(Matches(exists, R"({"a": null})"));
  EXPECT_TRUE(Matches(exists, R"({"a": []})"));
  EXPECT_FALSE(Matches(exists, R"({"b": 1})"));

  EXPECT_FALSE(Matches(missing, R"({"a": null})"));
  EXPECT_TRUE(Matches(missing, R"({"b": 1})"));
}

TEST(FilterMatchTest, PointWithoutMetadata) {
  absl::StatusOr<PointFilter> missing =
      Compile("must { field { key: 'a' exists: false } }");
  ASSERT_OK(missing);
  EXPECT_TRUE(missing->Matches("p", nullptr));
  absl::StatusOr<PointFilter> red = Compile(MatchString("a", "red"));
  ASSERT_OK(red);
  EXPECT_FALSE(red->Matches("p", nullptr));
  absl::StatusOr<PointFilter> not_red =
      Compile("must_not { field { key: 'a' match { string_value: 'red' } } }");
  ASSERT_OK(not_red);
  EXPECT_TRUE(not_red->Matches("p", nullptr));
}

TEST(FilterMatchTest, MustShouldMustNotCombine) {
  const std::string filter = R"(
      must { field { key: 'kind' match { string_value: 'doc' } } }
      should { field { key: 'lang' match { string_value: 'en' } } }
      should { field { key: 'lang' match { string_value: 'de' } } }
      must_not { field { key: 'draft' match { bool_value: true } } })";
  EXPECT_TRUE(Matches(filter, R"({"kind": "doc", "lang": "en"})"));
  EXPECT_TRUE(Matches(filter, R"({"kind": "doc", "lang": "de"})"));
  EXPECT_FALSE(Matches(filter, R"({"kind": "doc", "lang": "fr"})"));
  EXPECT_FALSE(Matches(filter, R"({"kind": "img", "lang": "en"})"));
  EXPECT_FALSE(
      Matches(filter, R"({"kind": "doc", "lang": "en", "draft": true})"));
}

TEST(FilterMatchTest, NestedFilters) {
  // (a = 1 and not b = 2) or c = 3
  const std::string filter = R"(
      should { filter {
        must { field { key: 'a' match { number_value: 1 } } }
        must_not { field { key: 'b' match { number_value: 2 } } } } }
      should { field { key: 'c' match { number_value: 3 } } })";
  EXPECT_TRUE(Matches(filter, R"({"a": 1})"));
  EXPECT_FALSE(Matches(filter, R"({"a": 1, "b": 2})"));
  EXPECT_TRUE(Matches(filter, R"({"a": 1, "b": 2, "c": 3})"));
  EXPECT_FALSE(Matches(filter, R"({"a": 2})"));
}

TEST(FilterMatchTest, HasId) {
  const std::string filter = "must { has_id { ids: 'p1' ids: 'p3' } }";
  EXPECT_TRUE(Matches(filter, "{}", "p1"));
  EXPECT_FALSE(Matches(filter, "{}", "p2"));
  EXPECT_TRUE(Matches(filter, "{}", "p3"));
  EXPECT_TRUE(Matches("must_not { has_id { ids: 'p1' } }", "{}", "p2"));
}

TEST(VisitPathValuesTest, VisitsListElementsOnlyWhenExpanding) {
  const google::protobuf::Struct metadata = ParseJson(R"({"t": [1, [2, 3]]})");
  const std::vector<std::string> path = {"t"};
  int visits = 0;
  VisitPathValues(metadata, path, /*expand_lists=*/true,
                  [&](const google::protobuf::Value&) {
                    ++visits;
                    return false;
                  });
  EXPECT_EQ(visits, 3);
  visits = 0;
  VisitPathValues(metadata, path, /*expand_lists=*/false,
                  [&](const google::protobuf::Value&) {
                    ++visits;
                    return false;
                  });
  EXPECT_EQ(visits, 1);
}

}  // namespace
}  // namespace vecdb::engine
