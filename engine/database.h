#ifndef VECDB_ENGINE_DATABASE_H_
#define VECDB_ENGINE_DATABASE_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/collection.h"
#include "engine/limits.h"
#include "storage/storage.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::engine {

struct DatabaseOptions {
  // Directory for all data, created when missing: RocksDB lives in its
  // "rocksdb" subdirectory, index checkpoints in "indexes" and snapshots in
  // "snapshots".
  std::string data_dir = "./data";
  // Sync the write-ahead log before acknowledging a write (default true).
  bool sync_writes = true;
  // When collections save and compact their indexes.
  MaintenanceOptions maintenance;
  // How often the background thread checks whether a collection needs
  // maintenance; zero disables the thread (tests call Maintain directly).
  absl::Duration maintenance_period = absl::Seconds(1);
  // Request limits. CreateCollection applies the name, dimension and
  // collection count limits; the other limits are for the caller to apply
  // with CheckUpsertLimits and CheckSearchLimits (engine/validation.h).
  Limits limits;
};

// The set of collections over one storage.
//
// Thread-safe. Collections returned by GetCollection stay usable while a
// concurrent DropCollection runs; writes to a dropped one fail with
// NOT_FOUND. Every collection must be released before the Database is
// destroyed, because it reads through the Database's storage.
//
// A background thread saves index checkpoints and compacts indexes per
// DatabaseOptions::maintenance.
class Database {
 public:
  // Opens the data dir and loads every collection's index from its newest
  // valid checkpoint, or rebuilds it from storage.
  static absl::StatusOr<std::unique_ptr<Database>> Open(
      const DatabaseOptions& options);

  // Calls Close.
  ~Database();

  // Stops the background thread and saves a checkpoint of every index that
  // has unsaved changes, so that the next open replays nothing. Later calls
  // do nothing.
  void Close();

  // Creates a collection. INVALID_ARGUMENT for a bad name, dimension, metric
  // or index parameter, or a name or dimension over options.limits;
  // ALREADY_EXISTS when the name is taken; RESOURCE_EXHAUSTED when
  // options.limits.max_collections exist already.
  absl::StatusOr<v1::CollectionInfo> CreateCollection(
      const v1::CreateCollectionRequest& request);

  // Returns the named collection, NOT_FOUND when there is none, or
  // INVALID_ARGUMENT when the name breaks the naming rule.
  absl::StatusOr<std::shared_ptr<Collection>> GetCollection(
      absl::string_view name);

  // Returns every collection's info, sorted by name.
  std::vector<v1::CollectionInfo> ListCollections();

  // Changes a collection's index config to request.index (defaults
  // resolved), stores it and returns the collection's info. A new kind or
  // build parameter takes effect through a background rebuild (see
  // Collection::ChangeIndex). INVALID_ARGUMENT for a bad name or index
  // parameter, NOT_FOUND when the collection does not exist.
  absl::StatusOr<v1::CollectionInfo> UpdateCollection(
      const v1::UpdateCollectionRequest& request);

  // Deletes a collection and all its points. NOT_FOUND when missing,
  // INVALID_ARGUMENT for a name that breaks the naming rule.
  absl::Status DropCollection(absl::string_view name);

  // Writes a consistent copy of the whole database to a new directory under
  // the data dir's "snapshots" and returns its absolute path. The copy is a
  // data dir itself: a server opened on it (or on a copy of it) serves the
  // state at the time of the call.
  absl::StatusOr<std::string> CreateSnapshot();

  const Limits& limits() const { return options_.limits; }

  // Runs one round of maintenance over every collection now, as the
  // background thread does. For tests.
  absl::Status MaintainNow();

 private:
  Database(const DatabaseOptions& options,
           std::unique_ptr<storage::Storage> storage);

  std::vector<std::shared_ptr<Collection>> AllCollections();
  void RunMaintenance();
  // Removes index files of collections that no longer exist and unfinished
  // temporary files.
  void RemoveStrayIndexFiles();

  const DatabaseOptions options_;
  const std::string index_dir_;
  // Collections hold a pointer to storage_, so they are destroyed first.
  std::unique_ptr<storage::Storage> storage_;
  absl::Mutex mutex_;
  std::map<std::string, std::shared_ptr<Collection>, std::less<>> collections_
      ABSL_GUARDED_BY(mutex_);

  // Held by each maintenance round and by a snapshot, so that no index file
  // is replaced and no change log trimmed while a snapshot is taken.
  absl::Mutex maintenance_mutex_;
  // Tells a running compaction to stop, at Close.
  std::atomic<bool> stopping_{false};
  absl::Mutex stop_mutex_;
  bool closed_ ABSL_GUARDED_BY(stop_mutex_) = false;
  std::thread maintenance_thread_;
};

// Resolves defaults and checks the request's dimension, metric and index.
// Exposed for tests.
absl::StatusOr<CollectionConfig> MakeCollectionConfig(
    const v1::CreateCollectionRequest& request);

// Resolves the defaults of `index` for a collection of `dimension` and
// checks its kind and parameters. INVALID_ARGUMENT names the bad field.
absl::StatusOr<v1::IndexConfig> MakeIndexConfig(const v1::IndexConfig& index,
                                                uint32_t dimension);

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_DATABASE_H_
