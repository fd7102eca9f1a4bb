#ifndef VECDB_STORAGE_STORAGE_H_
#define VECDB_STORAGE_STORAGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/point_codec.h"

namespace vecdb::storage {

struct StorageOptions {
  // Directory of the RocksDB database; created when missing.
  std::string path;
  // Sync the write-ahead log before a write returns (default true), so an
  // acknowledged write survives a power loss, not only a process crash.
  bool sync_writes = true;
};

// A collection as stored: its numeric id, which prefixes its point keys, and
// its configuration, which is opaque to storage.
struct CollectionRecord {
  uint64_t id = 0;
  std::string name;
  std::string config;
};

// A consistent read view of the whole database. Reads through it see every
// write that finished before it was taken and none after.
using ReadView = std::shared_ptr<const rocksdb::Snapshot>;

// The writes of one request to one collection, applied atomically.
class PointBatch {
 public:
  void Put(absl::string_view point_id, const StoredPoint& point);
  void Delete(absl::string_view point_id);

  bool empty() const { return writes_.empty(); }

  // Writes of the "field_index" column family, applied after the point
  // writes; keys come from field_index_codec.h. A delete followed by a put
  // of the same key leaves the put.
  void PutFieldIndexKey(std::string key, std::string value = "");
  void DeleteFieldIndexKey(std::string key);

 private:
  friend class Storage;
  struct Write {
    std::string point_id;
    std::optional<std::string> value;  // nullopt deletes the point
  };
  std::vector<Write> writes_;
  // Field index keys and values; nullopt deletes the key.
  std::vector<std::pair<std::string, std::optional<std::string>>>
      field_index_writes_;
};

// Durable storage of collections and points in RocksDB. Collections live in
// the "collections" column family keyed by name; points in the "points"
// column family keyed by collection id and point id (see point_codec.h);
// field indexes in the "field_index" column family (see
// field_index_codec.h). Every write to a collection carries a sequence
// number, stored with the ids it changed in the "changes" column family, so
// that an index saved at one sequence can be brought up to date by
// replaying the later changes.
//
// Thread-safe: every method may be called concurrently.
class Storage {
 public:
  // Opens or creates the database at options.path.
  static absl::StatusOr<std::unique_ptr<Storage>> Open(
      const StorageOptions& options);

  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // Returns every stored collection, sorted by name.
  absl::StatusOr<std::vector<CollectionRecord>> ListCollections();

  // Stores a new collection under a fresh id and returns that id. Ids are
  // never reused, even after a drop. The caller ensures the name is unused.
  absl::StatusOr<uint64_t> CreateCollection(absl::string_view name,
                                            absl::string_view config);

  // Replaces the stored config of an existing collection.
  absl::Status UpdateCollection(const CollectionRecord& collection);

  // Deletes the collection record, its points and its change log in one
  // write.
  absl::Status DropCollection(const CollectionRecord& collection);

  // Applies every write of `batch` to the collection's points atomically and
  // durably (per StorageOptions::sync_writes), logging the changed ids under
  // `sequence`, which must be greater than every earlier sequence of the
  // collection.
  absl::Status Write(uint64_t collection_id, uint64_t sequence,
                     const PointBatch& batch);

  // Returns the sequence of the collection's last write seen by `view` (the
  // latest state when null), 0 when it has none.
  absl::StatusOr<uint64_t> LastSequence(uint64_t collection_id,
                                        const ReadView& view);

  // Returns the distinct ids that writes with a sequence above `after`
  // changed, as seen by `view`, each once, ordered by its last change.
  // DATA_LOSS when the log no longer reaches back to `after`.
  absl::StatusOr<std::vector<std::string>> ChangedIdsAfter(
      uint64_t collection_id, uint64_t after, const ReadView& view);

  // Forgets the change log up to and including sequence `through`.
  absl::Status TrimChanges(uint64_t collection_id, uint64_t through);

  // Writes a consistent copy of the whole database to `dir`, which must not
  // exist, hard-linking files where it can (see rocksdb::Checkpoint).
  absl::Status CreateCheckpoint(const std::string& dir);

  // Takes a read view of the current state; it is released when the last
  // copy is destroyed, which must happen before the Storage is destroyed.
  ReadView TakeReadView();

  // Reads points by id through `view` (the latest state when null). The
  // result has one entry per id, nullopt where the point does not exist.
  absl::StatusOr<std::vector<std::optional<StoredPoint>>> GetPoints(
      uint64_t collection_id, absl::Span<const std::string> point_ids,
      const ReadView& view);

  // Calls `visit` for every point of the collection in key order, reading
  // through `view`. Stops at and returns the first error, from RocksDB, from
  // decoding or from `visit`.
  absl::Status ScanPoints(
      uint64_t collection_id, const ReadView& view,
      const std::function<absl::Status(absl::string_view point_id,
                                       StoredPoint point)>& visit);

  // Estimated bytes of the collection's points on disk and in memtables.
  uint64_t ApproximateBytes(uint64_t collection_id);

  // Calls `visit` for the collection's points whose ids sort after
  // `after_id` byte by byte (every point when it is empty), in id order,
  // through `view`, until `visit` returns false. Stops at and returns the
  // first error, from RocksDB, from decoding or from `visit`.
  // Calls `visit` with the metadata bytes of every point of the collection
  // that has metadata, in key order, reading through `view` without decoding
  // vectors. Stops at and returns the first error.
  absl::Status ScanPointMetadata(
      uint64_t collection_id, const ReadView& view,
      const std::function<absl::Status(absl::string_view point_id,
                                       absl::string_view metadata)>& visit);

  absl::Status ScanPointsAfter(
      uint64_t collection_id, absl::string_view after_id, const ReadView& view,
      const std::function<absl::StatusOr<bool>(absl::string_view point_id,
                                               StoredPoint point)>& visit);

  // Calls `visit` for each key of the "field_index" column family from
  // `begin` up to, but not including, `end`, in key order, through `view`,
  // until `visit` returns false. Stops at and returns the first error.
  absl::Status ScanFieldIndex(
      absl::string_view begin, absl::string_view end, const ReadView& view,
      const std::function<absl::StatusOr<bool>(
          absl::string_view key, absl::string_view value)>& visit);

 private:
  Storage(std::unique_ptr<rocksdb::DB> db,
          std::vector<rocksdb::ColumnFamilyHandle*> handles, bool sync_writes);

  absl::Status Commit(rocksdb::WriteBatch* batch);
  // Reads an 8-byte sequence number from the default family; 0 when absent.
  absl::StatusOr<uint64_t> ReadSequence(const std::string& key,
                                        const ReadView& view);

  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;         // default family
  rocksdb::ColumnFamilyHandle* collections_ = nullptr;  // name -> record
  rocksdb::ColumnFamilyHandle* points_ = nullptr;       // key -> point
  rocksdb::ColumnFamilyHandle* changes_ = nullptr;      // sequence -> ids
  rocksdb::ColumnFamilyHandle* field_index_ =
      nullptr;  // see field_index_codec.h
  const bool sync_writes_;
  // Serializes CreateCollection so that two creates never share an id.
  absl::Mutex create_mutex_;
};

}  // namespace vecdb::storage

#endif  // VECDB_STORAGE_STORAGE_H_
