#ifndef VECDB_ENGINE_COLLECTION_H_
#define VECDB_ENGINE_COLLECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "index/vector_index.h"
#include "storage/storage.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::engine {

// The settings of a collection, with every default resolved. Stored as a
// serialized vecdb.v1.CollectionInfo that contains only these fields.
struct CollectionConfig {
  std::string name;
  uint32_t dimension = 0;
  v1::Metric metric = v1::METRIC_UNSPECIFIED;
  v1::IndexConfig index;
};

// One collection: its points in storage and a FAISS index over them.
//
// Thread-safe. Writes to one collection are serialized; searches and gets run
// in parallel with each other and with the storage part of a write. A write
// becomes visible to searches all at once, after it is durable.
class Collection {
 public:
  // Opens a stored collection and rebuilds its index from storage.
  // `storage` must outlive the collection.
  static absl::StatusOr<std::unique_ptr<Collection>> Open(
      storage::Storage* storage, uint64_t id, CollectionConfig config);

  // Returns an empty collection that was just stored under `id`.
  static absl::StatusOr<std::unique_ptr<Collection>> Create(
      storage::Storage* storage, uint64_t id, CollectionConfig config);

  const CollectionConfig& config() const { return config_; }
  uint64_t id() const { return id_; }

  // Returns the config with the live point count and byte estimates.
  v1::CollectionInfo Describe();

  // Inserts or replaces `points` in one atomic write. When an id repeats,
  // the later point wins. Returns the number of distinct ids written, or
  // INVALID_ARGUMENT naming the first bad point's position and id (nothing
  // is written then), or NOT_FOUND when the collection was dropped.
  absl::StatusOr<uint64_t> Upsert(
      const google::protobuf::RepeatedPtrField<v1::Point>& points);

  // Returns the stored points among `ids`, in request order.
  absl::StatusOr<std::vector<v1::Point>> Get(
      const google::protobuf::RepeatedPtrField<std::string>& ids);

  // Deletes the points among `ids` in one atomic write and returns how many
  // existed.
  absl::StatusOr<uint64_t> Delete(
      const google::protobuf::RepeatedPtrField<std::string>& ids);

  // Returns min(top_k, live points) nearest neighbours of request.vector,
  // best first, minus any dropped by score_threshold. The request's
  // collection field is not read. INVALID_ARGUMENT for a bad vector, top_k
  // or ef_search.
  absl::StatusOr<v1::SearchResponse> Search(const v1::SearchRequest& request);

  // Runs the searches of `request` against one state of the collection and
  // returns their results in order. A bad search fails the whole batch with
  // INVALID_ARGUMENT naming its position.
  absl::StatusOr<v1::SearchBatchResponse> SearchBatch(
      const v1::SearchBatchRequest& request);

  // Marks the collection dropped and deletes it from storage. Writes that
  // start afterwards fail with NOT_FOUND.
  absl::Status Drop();

 private:
  Collection(storage::Storage* storage, uint64_t id, CollectionConfig config,
             std::unique_ptr<index::VectorIndex> index);

  absl::Status LoadFromStorage();

  // Adds `count` prepared vectors (count * dimension floats) for `ids` to
  // the index, retiring the labels those ids had before.
  absl::Status ApplyUpserts(absl::Span<const std::string* const> ids,
                            const std::vector<float>& vectors,
                            storage::ReadView view)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mutex_);

  // Runs validated searches against one consistent state of the index and
  // returns their responses in order.
  absl::StatusOr<std::vector<v1::SearchResponse>> RunSearches(
      absl::Span<const v1::SearchRequest* const> searches);

  // Excludes `label` from searches and frees its id, after the point was
  // replaced or deleted.
  void RetireLabel(index::Label label)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mutex_);

  // Converts FAISS neighbours to hits, reading vectors and metadata through
  // `view` when the request includes them.
  absl::StatusOr<v1::SearchResponse> BuildHits(
      const v1::SearchRequest& request,
      const std::vector<index::Neighbor>& neighbors,
      const std::vector<std::string>& ids, const storage::ReadView& view);

  float ToScore(float distance) const;

  storage::Storage* const storage_;
  const uint64_t id_;
  const CollectionConfig config_;

  // Held across a whole write: the storage write, then the index update.
  absl::Mutex write_mutex_ ABSL_ACQUIRED_BEFORE(index_mutex_);
  bool dropped_ ABSL_GUARDED_BY(write_mutex_) = false;

  // Readers search; a writer swaps in a finished write.
  mutable absl::Mutex index_mutex_;
  std::unique_ptr<index::VectorIndex> index_ ABSL_GUARDED_BY(index_mutex_);
  absl::flat_hash_map<std::string, index::Label> id_to_label_
      ABSL_GUARDED_BY(index_mutex_);
  // Point id of every label. A retired label's id is emptied, and the index
  // never returns that label.
  std::vector<std::string> label_to_id_ ABSL_GUARDED_BY(index_mutex_);
  // Bytes of the ids of live points, for the memory estimate.
  uint64_t live_id_bytes_ ABSL_GUARDED_BY(index_mutex_) = 0;
  // The storage state the index reflects, for reading hit payloads.
  storage::ReadView view_ ABSL_GUARDED_BY(index_mutex_);
};

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_COLLECTION_H_
