#include "engine/filter.h"

#include <cmath>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/limits.h"
#include "engine/validation.h"
#include "google/protobuf/message.h"

namespace vecdb::engine {
namespace {

using google::protobuf::Value;

double NormalizeZero(double number) { return number == 0 ? 0.0 : number; }

bool VisitValue(const Value& value, absl::Span<const std::string> path,
                bool expand_lists, absl::FunctionRef<bool(const Value&)> visit);

bool VisitStructField(const google::protobuf::Struct& object,
                      absl::Span<const std::string> path, bool expand_lists,
                      absl::FunctionRef<bool(const Value&)> visit) {
  auto it = object.fields().find(path.front());
  if (it == object.fields().end()) return false;
  return VisitValue(it->second, path.subspan(1), expand_lists, visit);
}

bool VisitValue(const Value& value, absl::Span<const std::string> path,
                bool expand_lists,
                absl::FunctionRef<bool(const Value&)> visit) {
  if (value.has_list_value() && (!path.empty() || expand_lists)) {
    for (const Value& element : value.list_value().values()) {
      if (VisitValue(element, path, expand_lists, visit)) return true;
    }
    return false;
  }
  if (path.empty()) return visit(value);
  if (!value.has_struct_value()) return false;
  return VisitStructField(value.struct_value(), path, expand_lists, visit);
}

const char* TypeName(const Value& value) {
  switch (value.kind_case()) {
    case Value::kStringValue:
      return "a string";
    case Value::kNumberValue:
      return "a number";
    case Value::kBoolValue:
      return "a bool";
    case Value::kNullValue:
      return "null";
    case Value::kListValue:
      return "a list";
    case Value::kStructValue:
      return "an object";
    default:
      return "empty";
  }
}

const char* IndexTypeName(v1::FieldIndexType type) {
  switch (type) {
    case v1::KEYWORD:
      return "KEYWORD (strings)";
    case v1::INTEGER:
      return "INTEGER (numbers)";
    case v1::FLOAT:
      return "FLOAT (numbers)";
    case v1::BOOL:
      return "BOOL (booleans)";
    default:
      return "unknown";
  }
}

// Whether a value of this kind can be in an index of `type`.
bool IndexHoldsKind(v1::FieldIndexType type, Value::KindCase kind) {
  switch (type) {
    case v1::KEYWORD:
      return kind == Value::kStringValue;
    case v1::INTEGER:
    case v1::FLOAT:
      return kind == Value::kNumberValue;
    case v1::BOOL:
      return kind == Value::kBoolValue;
    default:
      return false;
  }
}

bool HasUnknownFields(const google::protobuf::Message& message) {
  return !message.GetReflection()->GetUnknownFields(message).empty();
}

// Compiles one request filter, tracking the path of each part for errors.
class FilterCompiler {
 public:
  explicit FilterCompiler(const FieldIndexTypes& indexed) : indexed_(indexed) {}

  absl::Status CompileFilter(const v1::Filter& filter, const std::string& path,
                             int depth, FilterNode* node) {
    if (depth > kMaxFilterDepth) {
      return Invalid(path, absl::StrCat("filters are nested deeper than ",
                                        kMaxFilterDepth, " levels"));
    }
    if (HasUnknownFields(filter)) {
      return Invalid(path,
                     "unknown field; a filter has must, should and must_not");
    }
    absl::Status status =
        CompileList(filter.must(), path + ".must", depth, &node->must);
    if (status.ok()) {
      status =
          CompileList(filter.should(), path + ".should", depth, &node->should);
    }
    if (status.ok()) {
      status = CompileList(filter.must_not(), path + ".must_not", depth,
                           &node->must_not);
    }
    return status;
  }

 private:
  static absl::Status Invalid(absl::string_view path,
                              absl::string_view problem) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", problem));
  }

  absl::Status CompileList(
      const google::protobuf::RepeatedPtrField<v1::Condition>& conditions,
      const std::string& path, int depth, std::vector<FilterClause>* clauses) {
    for (int i = 0; i < conditions.size(); ++i) {
      const std::string item = absl::StrCat(path, "[", i, "]");
      if (++condition_count_ > kMaxFilterConditions) {
        return Invalid(item, absl::StrCat("the filter has more than ",
                                          kMaxFilterConditions, " conditions"));
      }
      absl::Status status = CompileCondition(conditions[i], item, depth,
                                             &clauses->emplace_back());
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  absl::Status CompileCondition(const v1::Condition& condition,
                                const std::string& path, int depth,
                                FilterClause* clause) {
    switch (condition.condition_case()) {
      case v1::Condition::kField:
        return CompileField(condition.field(), path + ".field",
                            &clause->emplace<FieldTest>());
      case v1::Condition::kFilter: {
        auto& node = clause->emplace<std::unique_ptr<FilterNode>>(
            std::make_unique<FilterNode>());
        return CompileFilter(condition.filter(), path + ".filter", depth + 1,
                             node.get());
      }
      case v1::Condition::kHasId:
        return CompileHasId(
            condition.has_id(), path + ".has_id",
            &clause->emplace<absl::flat_hash_set<std::string>>());
      default:
        if (HasUnknownFields(condition)) {
          return Invalid(path,
                         "unknown condition kind; use field, filter or has_id");
        }
        return Invalid(path, "condition is empty; set field, filter or has_id");
    }
  }

  absl::Status CompileHasId(const v1::HasId& has_id, const std::string& path,
                            absl::flat_hash_set<std::string>* ids) {
    for (int i = 0; i < has_id.ids_size(); ++i) {
      if (absl::Status status = ValidatePointId(has_id.ids(i)); !status.ok()) {
        return Invalid(absl::StrCat(path, ".ids[", i, "]"), status.message());
      }
      ids->insert(has_id.ids(i));
    }
    return absl::OkStatus();
  }

  absl::Status CompileField(const v1::FieldCondition& condition,
                            const std::string& path, FieldTest* test) {
    absl::StatusOr<std::vector<std::string>> key_path =
        SplitKeyPath(condition.key(), path + ".key");
    if (!key_path.ok()) return key_path.status();
    test->key = condition.key();
    test->path = *std::move(key_path);
    if (auto it = indexed_.find(test->key); it != indexed_.end()) {
      test->index_type = it->second;
    }

    switch (condition.condition_case()) {
      case v1::FieldCondition::kMatch:
        test->kind = FieldTest::Kind::kValues;
        return AddScalar(condition.match(), path + ".match", *test,
                         &test->values);
      case v1::FieldCondition::kAny:
        test->kind = FieldTest::Kind::kValues;
        return CompileAny(condition.any(), path + ".any", test);
      case v1::FieldCondition::kRange:
        test->kind = FieldTest::Kind::kRange;
        return CompileRange(condition.range(), path + ".range", test);
      case v1::FieldCondition::kExists:
        test->kind = FieldTest::Kind::kExists;
        test->expected = condition.exists();
        return absl::OkStatus();
      case v1::FieldCondition::kIsNull:
        test->kind = FieldTest::Kind::kIsNull;
        test->expected = condition.is_null();
        return absl::OkStatus();
      default:
        if (HasUnknownFields(condition)) {
          return Invalid(path,
                         "unknown operator; use match, any, range, exists or "
                         "is_null");
        }
        return Invalid(path,
                       "no operator; set match, any, range, exists or "
                       "is_null");
    }
  }

  absl::Status CompileAny(const google::protobuf::ListValue& list,
                          const std::string& path, FieldTest* test) {
    for (int i = 0; i < list.values_size(); ++i) {
      const Value& value = list.values(i);
      const std::string item = absl::StrCat(path, "[", i, "]");
      const Value& first = list.values(0);
      if (i > 0 && IsScalar(value) && IsScalar(first) &&
          value.kind_case() != first.kind_case()) {
        return Invalid(item, absl::StrCat("value is ", TypeName(value), " but ",
                                          path, "[0] is ", TypeName(first),
                                          "; all values must have one type"));
      }
      if (absl::Status status = AddScalar(value, item, *test, &test->values);
          !status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  }

  static bool IsScalar(const Value& value) {
    return value.has_string_value() || value.has_number_value() ||
           value.has_bool_value();
  }

  // Adds a match or any value to `values` after checking it is a scalar of
  // a type the key's field index can hold.
  absl::Status AddScalar(const Value& value, const std::string& path,
                         const FieldTest& test, ScalarSet* values) {
    if (!IsScalar(value)) {
      std::string advice = "use a string, number or bool";
      if (value.has_null_value()) advice = "use is_null to find null values";
      if (value.has_list_value()) advice = "use any to match one of a list";
      return Invalid(path,
                     absl::StrCat("value is ", TypeName(value), "; ", advice));
    }
    if (test.index_type.has_value() &&
        !IndexHoldsKind(*test.index_type, value.kind_case())) {
      return Invalid(
          path,
          absl::StrCat("value is ", TypeName(value), " but key '", test.key,
                       "' is indexed as ", IndexTypeName(*test.index_type),
                       "; use a value of that type"));
    }
    switch (value.kind_case()) {
      case Value::kStringValue:
        values->strings.insert(value.string_value());
        break;
      case Value::kNumberValue:
        if (!std::isfinite(value.number_value())) {
          return Invalid(path, absl::StrCat("value is ", value.number_value(),
                                            "; numbers must be finite"));
        }
        if (test.index_type == v1::INTEGER &&
            value.number_value() != std::floor(value.number_value())) {
          return Invalid(path,
                         absl::StrCat("value ", value.number_value(),
                                      " is not an integer but key '", test.key,
                                      "' is indexed as INTEGER"));
        }
        values->numbers.insert(NormalizeZero(value.number_value()));
        break;
      default:
        (value.bool_value() ? values->accepts_true : values->accepts_false) =
            true;
        break;
    }
    return absl::OkStatus();
  }

  absl::Status CompileRange(const v1::Range& range, const std::string& path,
                            FieldTest* test) {
    if (HasUnknownFields(range)) {
      return Invalid(path, "unknown bound; use gt, gte, lt or lte");
    }
    if (test->index_type.has_value() && *test->index_type != v1::INTEGER &&
        *test->index_type != v1::FLOAT) {
      return Invalid(path, absl::StrCat("key '", test->key, "' is indexed as ",
                                        IndexTypeName(*test->index_type),
                                        "; range applies to numbers"));
    }
    if (!range.has_gt() && !range.has_gte() && !range.has_lt() &&
        !range.has_lte()) {
      return Invalid(path, "no bound; set gt, gte, lt or lte");
    }
    if (range.has_gt() && range.has_gte()) {
      return Invalid(path, "both gt and gte are set; set at most one");
    }
    if (range.has_lt() && range.has_lte()) {
      return Invalid(path, "both lt and lte are set; set at most one");
    }
    const std::pair<const char*, std::optional<double>> bounds[] = {
        {"gt",
         range.has_gt() ? std::optional<double>(range.gt()) : std::nullopt},
        {"gte",
         range.has_gte() ? std::optional<double>(range.gte()) : std::nullopt},
        {"lt",
         range.has_lt() ? std::optional<double>(range.lt()) : std::nullopt},
        {"lte",
         range.has_lte() ? std::optional<double>(range.lte()) : std::nullopt},
    };
    for (const auto& [name, bound] : bounds) {
      if (bound.has_value() && std::isnan(*bound)) {
        return Invalid(absl::StrCat(path, ".", name), "bound is NaN");
      }
    }
    NumberRange& compiled = test->range;
    if (range.has_gt() || range.has_gte()) {
      compiled.lower = range.has_gt() ? range.gt() : range.gte();
      compiled.lower_inclusive = range.has_gte();
    }
    if (range.has_lt() || range.has_lte()) {
      compiled.upper = range.has_lt() ? range.lt() : range.lte();
      compiled.upper_inclusive = range.has_lte();
    }
    return absl::OkStatus();
  }

  const FieldIndexTypes& indexed_;
  int condition_count_ = 0;
};

bool TestField(const FieldTest& test,
               const google::protobuf::Struct* metadata) {
  if (metadata == nullptr) {
    // Without metadata nothing exists and nothing is null.
    return (test.kind == FieldTest::Kind::kExists ||
            test.kind == FieldTest::Kind::kIsNull) &&
           !test.expected;
  }
  switch (test.kind) {
    case FieldTest::Kind::kValues:
      return VisitPathValues(
          *metadata, test.path, /*expand_lists=*/true,
          [&](const Value& value) { return test.values.Contains(value); });
    case FieldTest::Kind::kRange:
      return VisitPathValues(*metadata, test.path, /*expand_lists=*/true,
                             [&](const Value& value) {
                               return value.has_number_value() &&
                                      test.range.Contains(value.number_value());
                             });
    case FieldTest::Kind::kExists:
      return VisitPathValues(*metadata, test.path, /*expand_lists=*/false,
                             [](const Value&) { return true; }) ==
             test.expected;
    case FieldTest::Kind::kIsNull:
      return VisitPathValues(*metadata, test.path, /*expand_lists=*/false,
                             [](const Value& value) {
                               return value.has_null_value();
                             }) == test.expected;
  }
  return false;
}

bool MatchesNode(const FilterNode& node, absl::string_view point_id,
                 const google::protobuf::Struct* metadata);

bool MatchesClause(const FilterClause& clause, absl::string_view point_id,
                   const google::protobuf::Struct* metadata) {
  if (const auto* test = std::get_if<FieldTest>(&clause)) {
    return TestField(*test, metadata);
  }
  if (const auto* node = std::get_if<std::unique_ptr<FilterNode>>(&clause)) {
    return MatchesNode(**node, point_id, metadata);
  }
  return std::get<absl::flat_hash_set<std::string>>(clause).contains(point_id);
}

bool MatchesNode(const FilterNode& node, absl::string_view point_id,
                 const google::protobuf::Struct* metadata) {
  for (const FilterClause& clause : node.must) {
    if (!MatchesClause(clause, point_id, metadata)) return false;
  }
  for (const FilterClause& clause : node.must_not) {
    if (MatchesClause(clause, point_id, metadata)) return false;
  }
  if (node.should.empty()) return true;
  for (const FilterClause& clause : node.should) {
    if (MatchesClause(clause, point_id, metadata)) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitKeyPath(absl::string_view key,
                                                      absl::string_view field) {
  if (key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  }
  std::vector<std::string> path = absl::StrSplit(key, '.');
  for (const std::string& segment : path) {
    if (segment.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " '", absl::CHexEscape(key),
          "' has an empty segment; write nested keys as \"outer.inner\""));
    }
  }
  return path;
}

bool VisitPathValues(const google::protobuf::Struct& metadata,
                     absl::Span<const std::string> path, bool expand_lists,
                     absl::FunctionRef<bool(const Value&)> visit) {
  if (path.empty()) return false;
  return VisitStructField(metadata, path, expand_lists, visit);
}

bool ScalarSet::Contains(const Value& value) const {
  switch (value.kind_case()) {
    case Value::kStringValue:
      return strings.contains(value.string_value());
    case Value::kNumberValue:
      return numbers.contains(NormalizeZero(value.number_value()));
    case Value::kBoolValue:
      return value.bool_value() ? accepts_true : accepts_false;
    default:
      return false;
  }
}

bool NumberRange::Contains(double number) const {
  if (lower.has_value() &&
      (lower_inclusive ? number < *lower : number <= *lower)) {
    return false;
  }
  if (upper.has_value() &&
      (upper_inclusive ? number > *upper : number >= *upper)) {
    return false;
  }
  return true;
}

absl::StatusOr<PointFilter> PointFilter::Compile(
    const v1::Filter& filter, absl::string_view field,
    const FieldIndexTypes& indexed) {
  auto root = std::make_unique<FilterNode>();
  FilterCompiler compiler(indexed);
  if (absl::Status status =
          compiler.CompileFilter(filter, std::string(field), 1, root.get());
      !status.ok()) {
    return status;
  }
  return PointFilter(std::move(root));
}

bool PointFilter::Matches(absl::string_view point_id,
                          const google::protobuf::Struct* metadata) const {
  return MatchesNode(*root_, point_id, metadata);
}

bool PointFilter::empty() const {
  return root_->must.empty() && root_->should.empty() &&
         root_->must_not.empty();
}

}  // namespace vecdb::engine
