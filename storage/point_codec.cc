#include "storage/point_codec.h"

#include <algorithm>
#include <cstring>

#include "absl/base/internal/endian.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vecdb::storage {

static_assert(sizeof(float) == 4, "points are stored as 32-bit floats");

std::string EncodePoint(const StoredPoint& point) {
  const uint32_t dimension = static_cast<uint32_t>(point.vector.size());
  std::string value;
  value.resize(1 + 4 + dimension * sizeof(float) + point.metadata.size());
  char* out = value.data();

  *out++ = static_cast<char>(kPointFormatVersion);
  absl::little_endian::Store32(out, dimension);
  out += 4;
  for (float component : point.vector) {
    uint32_t bits;
    std::memcpy(&bits, &component, sizeof(bits));
    absl::little_endian::Store32(out, bits);
    out += 4;
  }
  std::memcpy(out, point.metadata.data(), point.metadata.size());
  return value;
}

namespace {

// Checks the header of a point value and returns where its metadata starts.
absl::StatusOr<size_t> MetadataOffset(absl::string_view value) {
  if (value.size() < 5) {
    return absl::DataLossError(
        absl::StrCat("stored point is truncated: ", value.size(), " bytes"));
  }
  const uint8_t version = static_cast<uint8_t>(value[0]);
  if (version != kPointFormatVersion) {
    return absl::DataLossError(
        absl::StrCat("stored point has format version ", version,
                     ", this build reads version ", kPointFormatVersion));
  }
  const uint32_t dimension = absl::little_endian::Load32(value.data() + 1);
  const size_t vector_end = 5 + static_cast<size_t>(dimension) * 4;
  if (value.size() < vector_end) {
    return absl::DataLossError(absl::StrCat(
        "stored point is truncated: dimension ", dimension, " needs ",
        vector_end, " bytes, the value has ", value.size()));
  }
  return vector_end;
}

}  // namespace

absl::StatusOr<StoredPoint> DecodePoint(absl::string_view value) {
  absl::StatusOr<size_t> vector_end = MetadataOffset(value);
  if (!vector_end.ok()) return vector_end.status();
  const size_t dimension = (*vector_end - 5) / 4;

  StoredPoint point;
  point.vector.resize(dimension);
  const char* in = value.data() + 5;
  for (size_t i = 0; i < dimension; ++i, in += 4) {
    const uint32_t bits = absl::little_endian::Load32(in);
    std::memcpy(&point.vector[i], &bits, sizeof(bits));
  }
  point.metadata.assign(value.data() + *vector_end, value.size() - *vector_end);
  return point;
}

absl::StatusOr<absl::string_view> PointMetadata(absl::string_view value) {
  absl::StatusOr<size_t> vector_end = MetadataOffset(value);
  if (!vector_end.ok()) return vector_end.status();
  return value.substr(*vector_end);
}

std::string EncodeCollectionPrefix(uint64_t collection_id) {
  std::string prefix(8, '\0');
  absl::big_endian::Store64(prefix.data(), collection_id);
  return prefix;
}

std::string EncodePointKey(uint64_t collection_id, absl::string_view point_id) {
  std::string key = EncodeCollectionPrefix(collection_id);
  key.append(point_id.data(), point_id.size());
  return key;
}

std::string EncodeChangeKey(uint64_t collection_id, uint64_t sequence) {
  std::string key = EncodeCollectionPrefix(collection_id);
  key.resize(16);
  absl::big_endian::Store64(key.data() + 8, sequence);
  return key;
}

std::string EncodeChangedIds(absl::Span<const std::string> point_ids) {
  size_t size = 0;
  for (const std::string& id : point_ids) size += 4 + id.size();
  std::string value;
  value.reserve(size);
  for (const std::string& id : point_ids) {
    char length[4];
    absl::little_endian::Store32(length, static_cast<uint32_t>(id.size()));
    value.append(length, 4);
    value.append(id);
  }
  return value;
}

std::vector<std::string> KeepLastOfEach(std::vector<std::string> ids) {
  absl::flat_hash_set<std::string> seen;
  std::vector<std::string> kept;
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    if (seen.insert(*it).second) kept.push_back(std::move(*it));
  }
  std::reverse(kept.begin(), kept.end());
  return kept;
}

absl::Status DecodeChangedIds(absl::string_view value,
                              std::vector<std::string>* point_ids) {
  while (!value.empty()) {
    if (value.size() < 4) {
      return absl::DataLossError("change log entry is truncated");
    }
    const uint32_t length = absl::little_endian::Load32(value.data());
    value.remove_prefix(4);
    if (value.size() < length) {
      return absl::DataLossError(
          absl::StrCat("change log entry is truncated: an id of ", length,
                       " bytes has only ", value.size(), " left"));
    }
    point_ids->emplace_back(value.substr(0, length));
    value.remove_prefix(length);
  }
  return absl::OkStatus();
}

}  // namespace vecdb::storage
