// Metadata filters: checking a vecdb.v1.Filter, compiling it, and testing
// points against it.
//
// A filter is checked and compiled once per request. Testing a point then
// walks the compiled tree over the point's parsed metadata, without
// allocating.

#ifndef VECDB_ENGINE_FILTER_H_
#define VECDB_ENGINE_FILTER_H_

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "google/protobuf/struct.pb.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::engine {

// The field index type of each indexed key, by key.
using FieldIndexTypes = absl::flat_hash_map<std::string, v1::FieldIndexType>;

// Splits a dotted key such as "author.name" into its segments. Returns
// INVALID_ARGUMENT naming `field` when the key is empty or has an empty
// segment.
absl::StatusOr<std::vector<std::string>> SplitKeyPath(absl::string_view key,
                                                      absl::string_view field);

// Calls `visit` for each value at `path` in `metadata` until it returns
// true, and returns whether it did. Lists met before the last segment are
// entered element by element. With `expand_lists`, a list at the end of the
// path is visited as its elements (nested lists too) instead of as itself.
bool VisitPathValues(
    const google::protobuf::Struct& metadata,
    absl::Span<const std::string> path, bool expand_lists,
    absl::FunctionRef<bool(const google::protobuf::Value&)> visit);

// Strings, numbers and booleans that a match or any condition accepts.
struct ScalarSet {
  absl::flat_hash_set<std::string> strings;
  // Stored with -0.0 turned into 0.0, so that both find each other.
  absl::flat_hash_set<double> numbers;
  bool accepts_true = false;
  bool accepts_false = false;

  bool Contains(const google::protobuf::Value& value) const;
};

// Number bounds; an unset bound does not limit.
struct NumberRange {
  std::optional<double> lower;
  bool lower_inclusive = false;
  std::optional<double> upper;
  bool upper_inclusive = false;

  bool Contains(double number) const;
};

// A compiled FieldCondition.
struct FieldTest {
  enum class Kind { kValues, kRange, kExists, kIsNull };

  std::string key;
  std::vector<std::string> path;
  Kind kind = Kind::kValues;
  ScalarSet values;      // kValues: match and any
  NumberRange range;     // kRange
  bool expected = true;  // kExists and kIsNull
  // The type of the key's field index, when it has one.
  std::optional<v1::FieldIndexType> index_type;
};

struct FilterNode;

// A compiled Condition: a field test, a nested filter or a set of ids.
using FilterClause = std::variant<FieldTest, std::unique_ptr<FilterNode>,
                                  absl::flat_hash_set<std::string>>;

struct FilterNode {
  std::vector<FilterClause> must;
  std::vector<FilterClause> should;
  std::vector<FilterClause> must_not;
};

// A checked and compiled vecdb.v1.Filter. Immutable, so safe to share
// across threads.
class PointFilter {
 public:
  // Checks `filter` and compiles it. `field` names the filter in error
  // messages, such as "filter" or "searches[2].filter"; each error names
  // the path to the bad part, such as "filter.must[2].field.range".
  // `indexed` gives the keys with a field index: a condition whose value
  // type cannot occur in its key's index is a type mismatch.
  //
  // Returns INVALID_ARGUMENT for an empty or unknown condition or operator,
  // an empty key or key segment, a match with a null, list or object, mixed
  // types in any, a range without bounds or with a NaN bound, a type
  // mismatch, an invalid id in has_id, nesting deeper than kMaxFilterDepth
  // or more than kMaxFilterConditions conditions.
  static absl::StatusOr<PointFilter> Compile(const v1::Filter& filter,
                                             absl::string_view field,
                                             const FieldIndexTypes& indexed);

  // Returns whether the point matches. `metadata` is null for a point
  // without metadata.
  bool Matches(absl::string_view point_id,
               const google::protobuf::Struct* metadata) const;

  // True when the filter has no condition at all, so every point matches.
  bool empty() const;

  const FilterNode& root() const { return *root_; }

 private:
  explicit PointFilter(std::unique_ptr<FilterNode> root)
      : root_(std::move(root)) {}

  std::unique_ptr<FilterNode> root_;
};

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_FILTER_H_
