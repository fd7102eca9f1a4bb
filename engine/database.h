#ifndef VECDB_ENGINE_DATABASE_H_
#define VECDB_ENGINE_DATABASE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "engine/collection.h"
#include "storage/storage.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::engine {

struct DatabaseOptions {
  // Directory for all data; RocksDB lives in its "rocksdb" subdirectory.
  // Created when missing.
  std::string data_dir = "./data";
  // Sync the write-ahead log before acknowledging a write (default true).
  bool sync_writes = true;
};

// The set of collections over one storage.
//
// Thread-safe. Collections returned by GetCollection stay usable while a
// concurrent DropCollection runs; writes to a dropped one fail with
// NOT_FOUND. Every collection must be released before the Database is
// destroyed, because it reads through the Database's storage.
class Database {
 public:
  // Opens the data dir and rebuilds every collection's index from storage.
  static absl::StatusOr<std::unique_ptr<Database>> Open(
      const DatabaseOptions& options);

  ~Database();

  // Creates a collection. INVALID_ARGUMENT for a bad name, dimension, metric
  // or index parameter; ALREADY_EXISTS when the name is taken.
  absl::StatusOr<v1::CollectionInfo> CreateCollection(
      const v1::CreateCollectionRequest& request);

  // Returns the named collection, NOT_FOUND when there is none, or
  // INVALID_ARGUMENT when the name breaks the naming rule.
  absl::StatusOr<std::shared_ptr<Collection>> GetCollection(
      absl::string_view name);

  // Returns every collection's info, sorted by name.
  std::vector<v1::CollectionInfo> ListCollections();

  // Deletes a collection and all its points. NOT_FOUND when missing,
  // INVALID_ARGUMENT for a name that breaks the naming rule.
  absl::Status DropCollection(absl::string_view name);

 private:
  explicit Database(std::unique_ptr<storage::Storage> storage);

  // Collections hold a pointer to storage_, so they are destroyed first.
  std::unique_ptr<storage::Storage> storage_;
  absl::Mutex mutex_;
  std::map<std::string, std::shared_ptr<Collection>, std::less<>> collections_
      ABSL_GUARDED_BY(mutex_);
};

// Resolves defaults and checks the request's dimension, metric and index.
// Exposed for tests.
absl::StatusOr<CollectionConfig> MakeCollectionConfig(
    const v1::CreateCollectionRequest& request);

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_DATABASE_H_
