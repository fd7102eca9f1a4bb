#include "storage/field_index_codec.h"

#include <cstring>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "storage/point_codec.h"

namespace vecdb::storage {
namespace {

constexpr char kDefinitionTag = 'D';
constexpr char kEntryTag = 'E';

// Maps a double onto 8 bytes whose byte order is the numeric order: the sign
// bit is flipped for positive numbers and every bit for negative ones.
void AppendOrderedDouble(double value, std::string* out) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  bits = (bits >> 63) != 0 ? ~bits : bits | (uint64_t{1} << 63);
  char bytes[8];
  absl::big_endian::Store64(bytes, bits);
  out->append(bytes, sizeof(bytes));
}

double DecodeOrderedDouble(const char* bytes) {
  uint64_t bits = absl::big_endian::Load64(bytes);
  bits = (bits >> 63) != 0 ? bits & ~(uint64_t{1} << 63) : ~bits;
  double value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

void AppendValue(const IndexedValue& value, std::string* out) {
  out->push_back(static_cast<char>(value.kind));
  switch (value.kind) {
    case IndexedValue::Kind::kBool:
      out->push_back(value.boolean ? 1 : 0);
      break;
    case IndexedValue::Kind::kNumber:
      AppendOrderedDouble(value.number, out);
      break;
    case IndexedValue::Kind::kString: {
      char length[4];
      absl::big_endian::Store32(length,
                                static_cast<uint32_t>(value.text.size()));
      out->append(length, sizeof(length));
      out->append(value.text);
      break;
    }
  }
}

std::string CollectionTagPrefix(uint64_t collection_id, char tag) {
  std::string prefix = EncodeCollectionPrefix(collection_id);
  prefix.push_back(tag);
  return prefix;
}

absl::Status TruncatedEntry() {
  return absl::DataLossError("field index entry is truncated");
}

}  // namespace

IndexedValue IndexedValue::Bool(bool value) {
  IndexedValue result;
  result.kind = Kind::kBool;
  result.boolean = value;
  return result;
}

IndexedValue IndexedValue::Number(double value) {
  IndexedValue result;
  result.kind = Kind::kNumber;
  result.number = value == 0 ? 0.0 : value;
  return result;
}

IndexedValue IndexedValue::String(std::string value) {
  IndexedValue result;
  result.kind = Kind::kString;
  result.text = std::move(value);
  return result;
}

std::string EncodeFieldIndexDefinitionKey(uint64_t collection_id,
                                          absl::string_view key) {
  std::string stored = CollectionTagPrefix(collection_id, kDefinitionTag);
  stored.append(key.data(), key.size());
  return stored;
}

std::string EncodeFieldIndexDefinitionsBegin(uint64_t collection_id) {
  return CollectionTagPrefix(collection_id, kDefinitionTag);
}

std::string EncodeFieldIndexDefinitionsEnd(uint64_t collection_id) {
  return CollectionTagPrefix(collection_id, kDefinitionTag + 1);
}

absl::string_view DecodeFieldIndexDefinitionKey(absl::string_view stored_key) {
  return stored_key.substr(9);
}

std::string EncodeFieldIndexKeyPrefix(uint64_t collection_id,
                                      absl::string_view key) {
  std::string prefix = CollectionTagPrefix(collection_id, kEntryTag);
  char length[2];
  absl::big_endian::Store16(length, static_cast<uint16_t>(key.size()));
  prefix.append(length, sizeof(length));
  prefix.append(key.data(), key.size());
  return prefix;
}

std::string EncodeFieldIndexKindPrefix(uint64_t collection_id,
                                       absl::string_view key,
                                       IndexedValue::Kind kind) {
  std::string prefix = EncodeFieldIndexKeyPrefix(collection_id, key);
  prefix.push_back(static_cast<char>(kind));
  return prefix;
}

std::string EncodeFieldIndexValuePrefix(uint64_t collection_id,
                                        absl::string_view key,
                                        const IndexedValue& value) {
  std::string prefix = EncodeFieldIndexKeyPrefix(collection_id, key);
  AppendValue(value, &prefix);
  return prefix;
}

std::string EncodeFieldIndexEntryKey(uint64_t collection_id,
                                     absl::string_view key,
                                     const IndexedValue& value,
                                     absl::string_view point_id) {
  std::string entry = EncodeFieldIndexValuePrefix(collection_id, key, value);
  entry.append(point_id.data(), point_id.size());
  return entry;
}

absl::Status DecodeFieldIndexEntry(absl::string_view entry,
                                   size_t key_prefix_size, IndexedValue* value,
                                   absl::string_view* point_id) {
  if (entry.size() < key_prefix_size + 1) return TruncatedEntry();
  absl::string_view rest = entry.substr(key_prefix_size + 1);
  switch (static_cast<IndexedValue::Kind>(entry[key_prefix_size])) {
    case IndexedValue::Kind::kBool:
      if (rest.empty()) return TruncatedEntry();
      *value = IndexedValue::Bool(rest[0] != 0);
      rest.remove_prefix(1);
      break;
    case IndexedValue::Kind::kNumber:
      if (rest.size() < 8) return TruncatedEntry();
      *value = IndexedValue::Number(DecodeOrderedDouble(rest.data()));
      rest.remove_prefix(8);
      break;
    case IndexedValue::Kind::kString: {
      if (rest.size() < 4) return TruncatedEntry();
      const uint32_t length = absl::big_endian::Load32(rest.data());
      if (rest.size() - 4 < length) return TruncatedEntry();
      *value = IndexedValue::String(std::string(rest.substr(4, length)));
      rest.remove_prefix(4 + length);
      break;
    }
    default:
      return absl::DataLossError(absl::StrCat(
          "field index entry has unknown value kind ",
          static_cast<int>(
              static_cast<unsigned char>(entry[key_prefix_size]))));
  }
  *point_id = rest;
  return absl::OkStatus();
}

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xFF) {
    end.pop_back();
  }
  if (!end.empty()) end.back() = static_cast<char>(end.back() + 1);
  return end;
}

}  // namespace vecdb::storage
