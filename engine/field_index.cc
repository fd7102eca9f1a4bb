#include "engine/field_index.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/limits.h"
#include "storage/field_index_codec.h"

namespace vecdb::engine {
namespace {

using storage::IndexedValue;

constexpr char kDefinitionVersion = 1;

bool IsKnownType(int type) {
  return type == v1::KEYWORD || type == v1::INTEGER || type == v1::FLOAT ||
         type == v1::BOOL;
}

// Returns the storage keys of the entries `metadata` has in the index,
// sorted and without duplicates.
std::vector<std::string> EntryKeys(uint64_t collection_id,
                                   const FieldIndexSpec& spec,
                                   absl::string_view point_id,
                                   const google::protobuf::Struct* metadata) {
  std::vector<std::string> keys;
  if (metadata == nullptr) return keys;
  VisitPathValues(
      *metadata, spec.path, /*expand_lists=*/true,
      [&](const google::protobuf::Value& value) {
        std::optional<IndexedValue> indexed;
        if (spec.type == v1::KEYWORD && value.has_string_value() &&
            value.string_value().size() <= kMaxIndexedKeywordBytes) {
          indexed = IndexedValue::String(value.string_value());
        } else if ((spec.type == v1::INTEGER || spec.type == v1::FLOAT) &&
                   value.has_number_value()) {
          // Both numeric types hold every number, so that the index finds
          // exactly the points that testing each point would.
          indexed = IndexedValue::Number(value.number_value());
        } else if (spec.type == v1::BOOL && value.has_bool_value()) {
          indexed = IndexedValue::Bool(value.bool_value());
        }
        if (indexed.has_value()) {
          keys.push_back(storage::EncodeFieldIndexEntryKey(
              collection_id, spec.key, *indexed, point_id));
        }
        return false;
      });
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

// Values of `test` to look up one by one, or nullopt when one of them
// cannot be in the index.
std::optional<std::vector<IndexedValue>> LookupValues(const FieldTest& test) {
  std::vector<IndexedValue> values;
  for (const std::string& text : test.values.strings) {
    if (text.size() > kMaxIndexedKeywordBytes) return std::nullopt;
    values.push_back(IndexedValue::String(text));
  }
  for (double number : test.values.numbers) {
    values.push_back(IndexedValue::Number(number));
  }
  if (test.values.accepts_true) values.push_back(IndexedValue::Bool(true));
  if (test.values.accepts_false) values.push_back(IndexedValue::Bool(false));
  return values;
}

}  // namespace

absl::StatusOr<FieldIndexSpec> MakeFieldIndexSpec(absl::string_view key,
                                                  v1::FieldIndexType type) {
  absl::StatusOr<std::vector<std::string>> path = SplitKeyPath(key, "key");
  if (!path.ok()) return path.status();
  if (key.size() > kMaxFieldIndexKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("key is ", key.size(),
                                                   " bytes, the limit is ",
                                                   kMaxFieldIndexKeyBytes));
  }
  if (!IsKnownType(type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("type ", static_cast<int>(type),
                     " is missing or unknown; use KEYWORD, INTEGER, FLOAT or "
                     "BOOL"));
  }
  FieldIndexSpec spec;
  spec.key = std::string(key);
  spec.path = *std::move(path);
  spec.type = type;
  return spec;
}

std::string EncodeFieldIndexDefinition(v1::FieldIndexType type) {
  return std::string{kDefinitionVersion, static_cast<char>(type)};
}

absl::StatusOr<FieldIndexSpec> DecodeFieldIndexDefinition(
    absl::string_view key, absl::string_view definition) {
  if (definition.size() != 2 || definition[0] != kDefinitionVersion ||
      !IsKnownType(definition[1])) {
    return absl::DataLossError(
        absl::StrCat("field index definition of key '", absl::CHexEscape(key),
                     "' has an unknown format version or type"));
  }
  absl::StatusOr<FieldIndexSpec> spec =
      MakeFieldIndexSpec(key, static_cast<v1::FieldIndexType>(definition[1]));
  if (!spec.ok()) {
    return absl::DataLossError(
        absl::StrCat("stored field index: ", spec.status().message()));
  }
  return spec;
}

size_t AddFieldIndexWrites(uint64_t collection_id, const FieldIndexSpec& spec,
                           absl::string_view point_id,
                           const google::protobuf::Struct* old_metadata,
                           const google::protobuf::Struct* new_metadata,
                           storage::PointBatch* batch) {
  const std::vector<std::string> old_keys =
      EntryKeys(collection_id, spec, point_id, old_metadata);
  const std::vector<std::string> new_keys =
      EntryKeys(collection_id, spec, point_id, new_metadata);
  for (const std::string& key : old_keys) {
    if (!std::binary_search(new_keys.begin(), new_keys.end(), key)) {
      batch->DeleteFieldIndexKey(key);
    }
  }
  size_t puts = 0;
  for (const std::string& key : new_keys) {
    if (!std::binary_search(old_keys.begin(), old_keys.end(), key)) {
      batch->PutFieldIndexKey(key);
      ++puts;
    }
  }
  return puts;
}

absl::StatusOr<std::optional<std::vector<std::string>>> LookupFieldIndex(
    storage::Storage& storage, uint64_t collection_id, const FieldTest& test,
    const storage::ReadView& view, size_t max_ids) {
  if (!test.index_type.has_value()) return std::nullopt;
  const size_t key_prefix_size =
      storage::EncodeFieldIndexKeyPrefix(collection_id, test.key).size();
  std::vector<std::string> ids;
  bool too_many = false;
  // Collects the point id of each entry that `accept` admits. `accept`
  // returns nullopt to end the scan at an entry past the wanted values.
  auto scan = [&](const std::string& begin, const std::string& end,
                  auto accept) -> absl::Status {
    return storage.ScanFieldIndex(
        begin, end, view,
        [&](absl::string_view entry,
            absl::string_view) -> absl::StatusOr<bool> {
          IndexedValue value;
          absl::string_view point_id;
          if (absl::Status status = storage::DecodeFieldIndexEntry(
                  entry, key_prefix_size, &value, &point_id);
              !status.ok()) {
            return status;
          }
          std::optional<bool> admitted = accept(value);
          if (!admitted.has_value()) return false;
          if (!*admitted) return true;
          if (ids.size() >= max_ids) {
            too_many = true;
            return false;
          }
          ids.emplace_back(point_id);
          return true;
        });
  };

  if (test.kind == FieldTest::Kind::kValues) {
    std::optional<std::vector<IndexedValue>> values = LookupValues(test);
    if (!values.has_value()) return std::nullopt;
    for (const IndexedValue& value : *values) {
      const std::string prefix =
          storage::EncodeFieldIndexValuePrefix(collection_id, test.key, value);
      absl::Status status =
          scan(prefix, storage::PrefixEnd(prefix),
               [](const IndexedValue&) { return std::optional<bool>(true); });
      if (!status.ok()) return status;
      if (too_many) return std::nullopt;
    }
  } else if (test.kind == FieldTest::Kind::kRange) {
    const std::string numbers = storage::EncodeFieldIndexKindPrefix(
        collection_id, test.key, IndexedValue::Kind::kNumber);
    const std::string begin = test.range.lower.has_value()
                                  ? storage::EncodeFieldIndexValuePrefix(
                                        collection_id, test.key,
                                        IndexedValue::Number(*test.range.lower))
                                  : numbers;
    absl::Status status =
        scan(begin, storage::PrefixEnd(numbers),
             [&](const IndexedValue& value) -> std::optional<bool> {
               const NumberRange& range = test.range;
               if (range.upper.has_value() && value.number > *range.upper) {
                 return std::nullopt;
               }
               return range.Contains(value.number);
             });
    if (!status.ok()) return status;
    if (too_many) return std::nullopt;
  } else {
    return std::nullopt;
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace vecdb::engine
