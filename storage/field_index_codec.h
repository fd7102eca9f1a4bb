#ifndef VECDB_STORAGE_FIELD_INDEX_CODEC_H_
#define VECDB_STORAGE_FIELD_INDEX_CODEC_H_

// Keys of the "field_index" column family, version 1 (see docs/format.md).
//
//   definition: collection id (8 bytes big-endian) | 'D' | metadata key
//   entry:      collection id (8 bytes big-endian) | 'E' |
//               key length (2 bytes big-endian) | metadata key |
//               encoded value | point id
//
// An encoded value is 'b' and one byte 0 or 1 for a bool, 'n' and 8
// order-preserving bytes for a number, or 's', a 4-byte big-endian length
// and the bytes for a string. Entries of one key sort by value kind, then
// value (numbers in numeric order), then point id, so an equality lookup is
// one prefix and a number range is one key range. Entry values are empty.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vecdb::storage {

// A metadata value as a field index stores it.
struct IndexedValue {
  enum class Kind : char { kBool = 'b', kNumber = 'n', kString = 's' };

  static IndexedValue Bool(bool value);
  // -0.0 is stored as 0.0, since the two compare equal.
  static IndexedValue Number(double value);
  static IndexedValue String(std::string value);

  Kind kind = Kind::kBool;
  bool boolean = false;
  double number = 0;
  std::string text;
};

std::string EncodeFieldIndexDefinitionKey(uint64_t collection_id,
                                          absl::string_view key);
// The definition keys of a collection are [begin, end).
std::string EncodeFieldIndexDefinitionsBegin(uint64_t collection_id);
std::string EncodeFieldIndexDefinitionsEnd(uint64_t collection_id);
// Returns the metadata key of a definition key.
absl::string_view DecodeFieldIndexDefinitionKey(absl::string_view stored_key);

// The prefix of every entry of one metadata key.
std::string EncodeFieldIndexKeyPrefix(uint64_t collection_id,
                                      absl::string_view key);
// The prefix of the entries of one metadata key with value kind `kind`.
std::string EncodeFieldIndexKindPrefix(uint64_t collection_id,
                                       absl::string_view key,
                                       IndexedValue::Kind kind);
// The prefix of the entries of one metadata key that hold `value`.
std::string EncodeFieldIndexValuePrefix(uint64_t collection_id,
                                        absl::string_view key,
                                        const IndexedValue& value);
std::string EncodeFieldIndexEntryKey(uint64_t collection_id,
                                     absl::string_view key,
                                     const IndexedValue& value,
                                     absl::string_view point_id);

// Decodes the value and point id of an entry key whose key prefix (see
// EncodeFieldIndexKeyPrefix) is `key_prefix_size` bytes. `point_id` points
// into `entry`. Returns DATA_LOSS for a truncated entry or an unknown value
// kind.
absl::Status DecodeFieldIndexEntry(absl::string_view entry,
                                   size_t key_prefix_size, IndexedValue* value,
                                   absl::string_view* point_id);

// Returns the smallest key greater than every key that starts with
// `prefix`, for use as the end of a prefix scan. `prefix` must contain a
// byte other than 0xFF.
std::string PrefixEnd(absl::string_view prefix);

}  // namespace vecdb::storage

#endif  // VECDB_STORAGE_FIELD_INDEX_CODEC_H_
