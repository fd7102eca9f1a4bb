// Field indexes: for one metadata key, an entry per point and value in
// RocksDB (see storage/field_index_codec.h), written in the same batch as
// the point, so that a filter on the key reads only the points that match.

#ifndef VECDB_ENGINE_FIELD_INDEX_H_
#define VECDB_ENGINE_FIELD_INDEX_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/filter.h"
#include "google/protobuf/struct.pb.h"
#include "storage/storage.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::engine {

struct FieldIndexSpec {
  std::string key;
  std::vector<std::string> path;  // key split at its dots
  v1::FieldIndexType type = v1::FIELD_INDEX_TYPE_UNSPECIFIED;
};

// Checks a CreateFieldIndex key and type and returns the index they
// describe. INVALID_ARGUMENT for an empty key or key segment, a key over
// kMaxFieldIndexKeyBytes or a missing or unknown type.
absl::StatusOr<FieldIndexSpec> MakeFieldIndexSpec(absl::string_view key,
                                                  v1::FieldIndexType type);

// The stored definition of a field index: a version byte, 1, and the type.
std::string EncodeFieldIndexDefinition(v1::FieldIndexType type);
// Returns DATA_LOSS for a definition of another version or an unknown type.
absl::StatusOr<FieldIndexSpec> DecodeFieldIndexDefinition(
    absl::string_view key, absl::string_view definition);

// Adds to `batch` the entry writes that turn the index entries of
// `old_metadata` into those of `new_metadata` for one point. Either may be
// null, for a new or a deleted point. Entries that both share are left
// alone. Returns the number of entries put.
size_t AddFieldIndexWrites(uint64_t collection_id, const FieldIndexSpec& spec,
                           absl::string_view point_id,
                           const google::protobuf::Struct* old_metadata,
                           const google::protobuf::Struct* new_metadata,
                           storage::PointBatch* batch);

// Reads the ids of the points whose value at test.key passes `test`, from
// the key's index of type *test.index_type, sorted and without duplicates.
// Returns nullopt when the index cannot evaluate the test (exists, is_null, a
// string too long to be indexed) or when more than `max_ids` entries match,
// so that testing every point is about as cheap.
absl::StatusOr<std::optional<std::vector<std::string>>> LookupFieldIndex(
    storage::Storage& storage, uint64_t collection_id, const FieldTest& test,
    const storage::ReadView& view, size_t max_ids);

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_FIELD_INDEX_H_
