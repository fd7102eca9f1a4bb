#ifndef VECDB_STORAGE_POINT_CODEC_H_
#define VECDB_STORAGE_POINT_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vecdb::storage {

// A point as stored in RocksDB. The metadata is opaque to storage: the engine
// stores a serialized google.protobuf.Struct there (empty when absent).
struct StoredPoint {
  std::vector<float> vector;
  std::string metadata;
};

// Value layout, version 1 (see docs/format.md): one version byte, the
// dimension as a little-endian uint32, the vector as dimension little-endian
// IEEE-754 floats, then the metadata bytes up to the end of the value.
inline constexpr uint8_t kPointFormatVersion = 1;

std::string EncodePoint(const StoredPoint& point);

// Decodes a value written by EncodePoint. Returns DATA_LOSS when the value is
// truncated or carries an unknown format version.
absl::StatusOr<StoredPoint> DecodePoint(absl::string_view value);

// Returns the metadata bytes of a value written by EncodePoint without
// decoding its vector. DATA_LOSS as for DecodePoint.
absl::StatusOr<absl::string_view> PointMetadata(absl::string_view value);

// Point keys are the collection id as 8 big-endian bytes followed by the
// point id, so that one collection's points form one contiguous key range.
std::string EncodePointKey(uint64_t collection_id, absl::string_view point_id);
std::string EncodeCollectionPrefix(uint64_t collection_id);

// Change log keys are the collection id and the write's sequence number, each
// as 8 big-endian bytes, so that a collection's changes sort by sequence.
std::string EncodeChangeKey(uint64_t collection_id, uint64_t sequence);

// A change log value lists the ids one write put or deleted: for each, its
// length as a little-endian uint32, then its bytes.
std::string EncodeChangedIds(absl::Span<const std::string> point_ids);

// Returns `ids` with each id kept at its last position only, so that ids
// collected from several changes come out in the order of their last one.
std::vector<std::string> KeepLastOfEach(std::vector<std::string> ids);

// Appends the ids of a value written by EncodeChangedIds to `point_ids`.
// Returns DATA_LOSS when the value is truncated.
absl::Status DecodeChangedIds(absl::string_view value,
                              std::vector<std::string>* point_ids);

}  // namespace vecdb::storage

#endif  // VECDB_STORAGE_POINT_CODEC_H_
