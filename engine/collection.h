#ifndef VECDB_ENGINE_COLLECTION_H_
#define VECDB_ENGINE_COLLECTION_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/field_index.h"
#include "engine/filter.h"
#include "google/protobuf/struct.pb.h"
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

// The FAISS index spec for a collection with `config`.
index::IndexSpec ToIndexSpec(const CollectionConfig& config);

// True when an index built for `a` cannot serve `b`, so that it must be
// rebuilt: the kind or a build parameter differs.
bool BuildsDiffer(const index::IndexSpec& a, const index::IndexSpec& b);

// When a collection saves its index and compacts away deleted labels.
struct MaintenanceOptions {
  // Save an index checkpoint once this many points changed since the last
  // one, or once the oldest unsaved change is this old.
  uint64_t checkpoint_changes = 100000;
  absl::Duration checkpoint_interval = absl::Seconds(60);
  // Rebuild the index without deleted labels once they are at least this
  // fraction of its labels and at least this many.
  double compact_deleted_fraction = 0.2;
  int64_t compact_min_deleted = 1000;
};

// One collection: its points in storage and a FAISS index over them.
//
// Thread-safe. Writes to one collection are serialized; searches and gets run
// in parallel with each other and with the storage part of a write. A write
// becomes visible to searches all at once, after it is durable.
//
// The index is derived from storage. Checkpoints save it as files in
// `index_dir`, stamped with the sequence of the last write it reflects, so
// opening loads the newest valid one and replays only the later writes.
class Collection {
 public:
  // Opens a stored collection: loads its newest valid index checkpoint from
  // `index_dir` and replays the later writes, or rebuilds the index from
  // storage when no checkpoint can be used. `storage` must outlive the
  // collection.
  static absl::StatusOr<std::unique_ptr<Collection>> Open(
      storage::Storage* storage, uint64_t id, CollectionConfig config,
      std::string index_dir);

  // Returns an empty collection that was just stored under `id`.
  static absl::StatusOr<std::unique_ptr<Collection>> Create(
      storage::Storage* storage, uint64_t id, CollectionConfig config,
      std::string index_dir);

  // The config the collection was opened with. Its index part may be
  // outdated by ChangeIndex; Describe returns the current one.
  const CollectionConfig& config() const { return config_; }
  uint64_t id() const { return id_; }

  // Returns the config with the live point count and byte estimates.
  v1::CollectionInfo Describe();

  // Inserts or replaces `points` in one atomic write. When an id repeats,
  // the later point wins. Returns the number of distinct ids written, or
  // INVALID_ARGUMENT naming the first bad point's position and id (nothing
  // is written then), or NOT_FOUND when the collection was dropped. With
  // AddMode::kDeferGraph the vectors wait for the HNSW graph, which the
  // maintenance thread extends later.
  absl::StatusOr<uint64_t> Upsert(
      const google::protobuf::RepeatedPtrField<v1::Point>& points,
      index::AddMode mode = index::AddMode::kGraph);

  // Returns the stored points among `ids`, in request order.
  absl::StatusOr<std::vector<v1::Point>> Get(
      const google::protobuf::RepeatedPtrField<std::string>& ids);

  // Deletes the points among `ids` in one atomic write and returns how many
  // existed. With a `filter`, deletes only those of them that match it, or
  // every matching point when `ids` is empty.
  absl::StatusOr<uint64_t> Delete(
      const google::protobuf::RepeatedPtrField<std::string>& ids,
      const PointFilter* filter = nullptr);

  // Deletes by the request's ids, filter or both, as DeleteRequest
  // describes, and returns how many points were deleted. INVALID_ARGUMENT
  // for a bad id or filter, or a filter without conditions; nothing is
  // deleted then.
  absl::StatusOr<uint64_t> Delete(const v1::DeleteRequest& request);

  // Returns how many points match the request's filter, or the live point
  // count without one. INVALID_ARGUMENT for a bad filter.
  absl::StatusOr<uint64_t> Count(const v1::CountRequest& request);

  // Returns one page of the points that match the request's filter, in
  // byte order of their ids, and the cursor of the next page.
  // INVALID_ARGUMENT for a bad filter, a limit over kMaxScrollLimit or a
  // cursor that no Scroll returned.
  absl::StatusOr<v1::ScrollResponse> Scroll(const v1::ScrollRequest& request);

  // Creates an index of the request's key from the stored points and
  // returns the collection's info. Writes wait until it is built. Creating
  // an index that exists with the same type does nothing. INVALID_ARGUMENT
  // for a bad key or type, ALREADY_EXISTS when the key has an index of
  // another type, FAILED_PRECONDITION past kMaxFieldIndexes indexes.
  absl::StatusOr<v1::CollectionInfo> CreateFieldIndex(
      const v1::CreateFieldIndexRequest& request);

  // Returns min(top_k, live points) nearest neighbours of request.vector,
  // best first, minus any dropped by score_threshold. The request's
  // collection field is not read. INVALID_ARGUMENT for a bad vector, top_k,
  // ef_search, nprobe or oversampling.
  absl::StatusOr<v1::SearchResponse> Search(const v1::SearchRequest& request);

  // Runs the searches of `request` against one state of the collection and
  // returns their results in order. A bad search fails the whole batch with
  // INVALID_ARGUMENT naming its position.
  absl::StatusOr<v1::SearchBatchResponse> SearchBatch(
      const v1::SearchBatchRequest& request);

  // Marks the collection dropped and deletes it from storage and its index
  // files. Writes that start afterwards fail with NOT_FOUND.
  absl::Status Drop();

  // Makes `index` (defaults resolved, already stored by the caller) the
  // collection's index config. Searches use its ef_search and nprobe at
  // once. When BuildsDiffer, the next Maintain rebuilds the index in the
  // background, and searches use the old one until then. NOT_FOUND when the
  // collection was dropped.
  absl::Status ChangeIndex(const v1::IndexConfig& index);

  // Rebuilds the index when ChangeIndex asked for it or a kind that needs
  // training reached its training threshold, else compacts it when enough
  // labels are deleted, then saves a checkpoint when enough changes are
  // unsaved, per `options`. A rebuild stops early, changing nothing, once
  // `cancel` is set.
  absl::Status Maintain(const MaintenanceOptions& options,
                        const std::atomic<bool>& cancel);

  // Saves a checkpoint of the index unless the newest one is current.
  // Writers wait while the index is written out; searches do not.
  absl::Status WriteCheckpoint();

  // Rebuilds the index without its deleted labels and swaps it in. Searches
  // and writes go on meanwhile; writes made during the rebuild are carried
  // over before the swap. Returns CANCELLED, changing nothing, once `cancel`
  // is set.
  absl::Status Compact(const std::atomic<bool>& cancel);

  // Builds the index that the current config calls for (trained, when the
  // kind needs training and enough points are live) from the stored points
  // and swaps it in, as Compact does. Searches and writes go on meanwhile.
  absl::Status RebuildIndex(const std::atomic<bool>& cancel);

  // Path of the newest index checkpoint, empty when there is none.
  std::string CheckpointPath();

 private:
  Collection(storage::Storage* storage, uint64_t id, CollectionConfig config,
             std::string index_dir, std::unique_ptr<index::VectorIndex> index);

  // Loads the newest usable checkpoint and replays the writes after it.
  // Returns false when there is none, after logging why each file present
  // was not used.
  absl::StatusOr<bool> LoadCheckpoint();
  absl::Status LoadFromStorage();

  // Makes the index reflect the current stored state of `ids`: adds or
  // replaces the ones stored through `view`, retires the others. Added
  // vectors wait for the HNSW graph (see AddMode), so that the collection
  // serves at once.
  absl::Status ReplayChanges(absl::Span<const std::string> ids,
                             const storage::ReadView& view)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mutex_);

  // Deletes this collection's index files other than those at `keep`.
  void RemoveIndexFiles(absl::Span<const uint64_t> keep);
  // Reads the field index definitions from storage.
  absl::Status LoadFieldIndexes();

  // Compiles a request's filter against the current field indexes; nullopt
  // when the filter is unset or has no conditions.
  absl::StatusOr<std::optional<PointFilter>> CompileFilter(
      bool has_filter, const v1::Filter& filter, absl::string_view field);

  // Returns the labels of the live points that match `filter`, sorted,
  // narrowing them with field indexes read through `view` when it can.
  absl::StatusOr<std::vector<index::Label>> MatchingLabels(
      const PointFilter& filter, const storage::ReadView& view)
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);

  // Returns sorted ids that include every point matching `node`, from
  // field indexes and has_id conditions, or nullopt when they cannot narrow
  // the points down.
  absl::StatusOr<std::optional<std::vector<std::string>>> FindCandidates(
      const FilterNode& node, const storage::ReadView& view)
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);
  absl::StatusOr<std::optional<std::vector<std::string>>> FindClauseCandidates(
      const FilterClause& clause, const storage::ReadView& view)
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);

  // Runs the searches that have a filter (filters[i] not null) and stores
  // their neighbours in (*neighbors)[i].
  absl::Status RunFilteredSearches(
      absl::Span<const v1::SearchRequest* const> searches,
      absl::Span<const PointFilter* const> filters,
      const storage::ReadView& view,
      std::vector<std::vector<index::Neighbor>>* neighbors)
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);

  // Searches among `labels`, the sorted labels of the matching points, by
  // the plan their share of the live points calls for, for `candidates`
  // neighbours. `selected` caches their bitmap for the HNSW and IVF plan
  // across searches with the same filter.
  absl::StatusOr<std::vector<index::Neighbor>> SearchMatching(
      const v1::SearchRequest& search, int candidates,
      const std::vector<index::Label>& labels, std::vector<uint8_t>* selected)
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);

  // The collection's ef_search and nprobe, or the defaults when its kind
  // has none: while a rebuild to another kind runs, the old index may need
  // them.
  uint32_t DefaultEfSearch() const ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);
  uint32_t DefaultNprobe() const ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);

  // Neighbours to fetch from the index for `search`: top_k, or top_k times
  // the oversampling (at most kMaxTopK) when it requests rerank and the
  // index's distances are approximate.
  int CandidateCount(const v1::SearchRequest& search) const
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);
  // True when `search` requests rerank and the index's distances are
  // approximate.
  bool RerankApplies(const v1::SearchRequest& search) const
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);

  // Sets `ids` to the live points that match `filter`: among `requested`
  // when it is not empty, otherwise among all.
  absl::Status FindMatchingIds(
      const google::protobuf::RepeatedPtrField<std::string>& requested,
      const PointFilter& filter,
      google::protobuf::RepeatedPtrField<std::string>* ids)
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);

  // Adds to `batch` the field index writes for replacing the point `id`'s
  // cached metadata with `metadata` (null for a deleted point).
  void AddFieldIndexWrites(absl::string_view id,
                           const google::protobuf::Struct* metadata,
                           storage::PointBatch* batch)
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);

  // The cached metadata of a live point, or null when it has none.
  const google::protobuf::Struct* CachedMetadata(absl::string_view id) const
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);
  // Caches a copy of `metadata` for `id`; null or empty metadata removes
  // the entry.
  void CacheMetadata(absl::string_view id,
                     const google::protobuf::Struct* metadata)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mutex_);
  // Parses stored metadata bytes into the cache. DATA_LOSS when they do not
  // parse.
  absl::Status CacheStoredMetadata(absl::string_view id,
                                   const std::string& bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mutex_);
  // Adds the field indexes to `info`, sorted by key.
  void DescribeFieldIndexes(v1::CollectionInfo* info) const
      ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);

  // Adds `count` prepared vectors (count * dimension floats) for `ids` to
  // the index, retiring the labels those ids had before.
  absl::Status ApplyUpserts(absl::Span<const std::string* const> ids,
                            const std::vector<float>& vectors,
                            storage::ReadView view,
                            index::AddMode mode = index::AddMode::kGraph)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mutex_);

  // Runs validated searches against one consistent state of the index and
  // returns their responses in order.
  // filters[i], when given and not null, restricts searches[i].
  absl::StatusOr<std::vector<v1::SearchResponse>> RunSearches(
      absl::Span<const v1::SearchRequest* const> searches,
      absl::Span<const PointFilter* const> filters = {});

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

  // Writes `batch` to storage under the collection's next write sequence
  // and returns that sequence.
  absl::StatusOr<uint64_t> WriteToStorage(const storage::PointBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mutex_);

  // Records a write of `ids` under `sequence` that the index now reflects.
  void NoteApplied(uint64_t sequence, absl::Span<const std::string* const> ids)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mutex_, index_mutex_);

  // Moves vectors waiting for the HNSW graph into it, a few at a time so
  // that searches and writes get in between, until none wait, `budget`
  // passes or `cancel` is set.
  absl::Status BuildPendingGraph(absl::Duration budget,
                                 const std::atomic<bool>& cancel);

  // Frees the index's spare capacity when writes paused for a while and it
  // is a large share of the index, as after a bulk load.
  void ShrinkIfIdle();

  // Rebuilds the index from the stored points for Compact and RebuildIndex.
  // `building` marks the collection BUILDING meanwhile.
  absl::Status Rebuild(const std::atomic<bool>& cancel, bool building,
                       absl::string_view reason);

  // Reads the live points stored through `view`: their ids, and their
  // vectors prepared for the index (ids->size() * dimension floats).
  absl::Status ReadPreparedVectors(const storage::ReadView& view,
                                   std::vector<std::string>* ids,
                                   std::vector<float>* vectors);

  // Replaces the candidates of each search whose `rerank` entry is set by
  // the best top_k under exact distances to the vectors stored through
  // `view`, read from storage: compressed kinds keep no float vectors.
  absl::Status RerankCandidates(
      absl::Span<const v1::SearchRequest* const> searches,
      const std::vector<bool>& rerank, const storage::ReadView& view,
      std::vector<std::vector<index::Neighbor>>* neighbors,
      std::vector<std::vector<std::string>>* ids);

  // The state CollectionInfo.index_state reports.
  v1::IndexState IndexState() const ABSL_SHARED_LOCKS_REQUIRED(index_mutex_);

  // Saves a checkpoint unless the newest one is current and `force` is
  // false.
  absl::Status SaveIndex(bool force)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(maintenance_mutex_);

  storage::Storage* const storage_;
  const uint64_t id_;
  const CollectionConfig config_;
  const std::string index_dir_;

  // Serializes checkpoints and compactions.
  absl::Mutex maintenance_mutex_ ABSL_ACQUIRED_BEFORE(write_mutex_);
  // Sequences of the newest checkpoint and of the one before it, 0 when
  // missing. The change log is kept from the older one on, so that either
  // can be loaded.
  uint64_t checkpoint_sequence_ ABSL_GUARDED_BY(maintenance_mutex_) = 0;
  uint64_t previous_checkpoint_sequence_ ABSL_GUARDED_BY(maintenance_mutex_) =
      0;

  // Held across a whole write: the storage write, then the index update.
  absl::Mutex write_mutex_ ABSL_ACQUIRED_BEFORE(index_mutex_);
  bool dropped_ ABSL_GUARDED_BY(write_mutex_) = false;
  // Sequence of the last write to storage.
  uint64_t last_sequence_ ABSL_GUARDED_BY(write_mutex_) = 0;
  // While a compaction or rebuild builds a new index, the ids that writes
  // changed, to be carried over to the new index.
  bool compacting_ ABSL_GUARDED_BY(write_mutex_) = false;
  std::vector<std::string> changed_while_compacting_
      ABSL_GUARDED_BY(write_mutex_);
  // Points changed since the last checkpoint, and when the first of those
  // changes was made.
  uint64_t unsaved_changes_ ABSL_GUARDED_BY(write_mutex_) = 0;
  // When the index last changed, so that maintenance frees spare capacity
  // only once writes pause.
  absl::Time last_change_ ABSL_GUARDED_BY(write_mutex_) = absl::InfinitePast();
  absl::Time first_unsaved_change_ ABSL_GUARDED_BY(write_mutex_);

  // Set while Rebuild builds an index of another kind or a trained one.
  std::atomic<bool> building_{false};

  // Readers search; a writer swaps in a finished write.
  mutable absl::Mutex index_mutex_;
  // Set by ChangeIndex when index_ no longer matches index_config_, until a
  // rebuild swaps in one that does. No checkpoint is saved meanwhile,
  // because it could not be loaded under the new config.
  bool rebuild_needed_ ABSL_GUARDED_BY(index_mutex_) = false;
  std::unique_ptr<index::VectorIndex> index_ ABSL_GUARDED_BY(index_mutex_);
  // The current index config: config_.index until ChangeIndex.
  v1::IndexConfig index_config_ ABSL_GUARDED_BY(index_mutex_);
  absl::flat_hash_map<std::string, index::Label> id_to_label_
      ABSL_GUARDED_BY(index_mutex_);
  // Point id of every label. A retired label's id is emptied, and the index
  // never returns that label.
  std::vector<std::string> label_to_id_ ABSL_GUARDED_BY(index_mutex_);
  // Bytes of the ids of live points, for the memory estimate.
  uint64_t live_id_bytes_ ABSL_GUARDED_BY(index_mutex_) = 0;
  // The storage state the index reflects, for reading hit payloads.
  storage::ReadView view_ ABSL_GUARDED_BY(index_mutex_);
  // Sequence of the last write the index reflects.
  uint64_t applied_sequence_ ABSL_GUARDED_BY(index_mutex_) = 0;
  // Set when an index update failed after its write reached storage; the
  // index then misses points, so it is never saved.
  bool index_incomplete_ ABSL_GUARDED_BY(index_mutex_) = false;
  // Rebuilds from storage, trainings, compactions and setting changes that
  // finished since the collection was opened.
  std::atomic<uint64_t> index_builds_{0};
  // Parsed metadata of each live point that has any, by point id, so that
  // filters test points without reading or parsing them.
  // TODO(memory): a parsed Struct takes several times its serialized size;
  // large collections with rich metadata may want a compact form.
  absl::flat_hash_map<std::string,
                      std::unique_ptr<const google::protobuf::Struct>>
      metadata_ ABSL_GUARDED_BY(index_mutex_);
  uint64_t metadata_bytes_ ABSL_GUARDED_BY(index_mutex_) = 0;
  // Field indexes by key. Changed with both mutexes held.
  std::map<std::string, FieldIndexSpec> field_indexes_
      ABSL_GUARDED_BY(index_mutex_);
};

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_COLLECTION_H_
