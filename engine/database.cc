#include "engine/database.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/index_file.h"
#include "engine/limits.h"
#include "engine/validation.h"
#include "spdlog/spdlog.h"

namespace vecdb::engine {
namespace {

constexpr uint32_t kMinHnswM = 2;
constexpr uint32_t kMaxHnswM = 256;
constexpr uint32_t kMaxEfConstruction = 4096;

absl::Status CheckRange(absl::string_view field, uint32_t value, uint32_t low,
                        uint32_t high) {
  if (value >= low && value <= high) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " is ", value, ", it must be ", low, " to ", high));
}

// The largest divisor of `dimension` up to dimension / 8, so that each PQ
// sub-quantizer codes about 8 components in one byte.
uint32_t DefaultPqM(uint32_t dimension) {
  const uint32_t limit =
      std::max<uint32_t>(1, dimension / kDefaultPqDimensionsPerCode);
  for (uint32_t m = limit; m > 1; --m) {
    if (dimension % m == 0) return m;
  }
  return 1;
}

std::string EncodeConfig(const CollectionConfig& config) {
  v1::CollectionInfo info;
  info.set_name(config.name);
  info.set_dimension(config.dimension);
  info.set_metric(config.metric);
  *info.mutable_index() = config.index;
  return info.SerializeAsString();
}

absl::StatusOr<CollectionConfig> DecodeConfig(
    const storage::CollectionRecord& record) {
  v1::CollectionInfo info;
  if (!info.ParseFromString(record.config)) {
    return absl::DataLossError(absl::StrCat("stored config of collection '",
                                            record.name, "' cannot be parsed"));
  }
  CollectionConfig config;
  config.name = record.name;
  config.dimension = info.dimension();
  config.metric = info.metric();
  config.index = info.index();
  return config;
}

}  // namespace

absl::StatusOr<CollectionConfig> MakeCollectionConfig(
    const v1::CreateCollectionRequest& request) {
  if (absl::Status status = ValidateCollectionName(request.name());
      !status.ok()) {
    return status;
  }
  if (absl::Status status =
          CheckRange("dimension", request.dimension(), 1, kMaxDimension);
      !status.ok()) {
    return status;
  }
  if (request.metric() != v1::COSINE && request.metric() != v1::DOT_PRODUCT &&
      request.metric() != v1::L2) {
    return absl::InvalidArgumentError(
        "metric is missing or unknown; use COSINE, DOT_PRODUCT or L2");
  }

  CollectionConfig config;
  config.name = request.name();
  config.dimension = request.dimension();
  config.metric = request.metric();
  absl::StatusOr<v1::IndexConfig> index =
      MakeIndexConfig(request.index(), request.dimension());
  if (!index.ok()) return index.status();
  config.index = *std::move(index);
  return config;
}

absl::StatusOr<v1::IndexConfig> MakeIndexConfig(const v1::IndexConfig& index,
                                                uint32_t dimension) {
  // Parameters that mean nothing to a kind stay zero in the returned
  // config.
  v1::IndexConfig config;
  const v1::IndexKind kind =
      index.kind() == v1::INDEX_KIND_UNSPECIFIED ? v1::HNSW : index.kind();
  if (!v1::IndexKind_IsValid(kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat("index.kind ", index.kind(),
                     " is unknown; use FLAT, HNSW, IVF_FLAT, IVF_PQ, SQ8 or "
                     "HNSW_SQ8"));
  }
  config.set_kind(kind);
  absl::Status status;
  if (kind == v1::HNSW || kind == v1::HNSW_SQ8) {
    config.set_m(index.m() != 0 ? index.m() : kDefaultHnswM);
    config.set_ef_construction(index.ef_construction() != 0
                                   ? index.ef_construction()
                                   : kDefaultHnswEfConstruction);
    config.set_ef_search(index.ef_search() != 0 ? index.ef_search()
                                                : kDefaultHnswEfSearch);
    status.Update(CheckRange("index.m", config.m(), kMinHnswM, kMaxHnswM));
    status.Update(CheckRange("index.ef_construction", config.ef_construction(),
                             1, kMaxEfConstruction));
    status.Update(
        CheckRange("index.ef_search", config.ef_search(), 1, kMaxEfSearch));
  }
  if (kind == v1::IVF_FLAT || kind == v1::IVF_PQ) {
    config.set_nlist(index.nlist() != 0 ? index.nlist() : kDefaultNlist);
    config.set_nprobe(index.nprobe() != 0 ? index.nprobe() : kDefaultNprobe);
    status.Update(CheckRange("index.nlist", config.nlist(), 1, kMaxNlist));
    status.Update(CheckRange("index.nprobe", config.nprobe(), 1, kMaxNprobe));
  }
  if (kind == v1::IVF_PQ) {
    config.set_pq_m(index.pq_m() != 0 ? index.pq_m() : DefaultPqM(dimension));
    config.set_pq_bits(index.pq_bits() != 0 ? index.pq_bits() : kDefaultPqBits);
    if (status.ok() && dimension % config.pq_m() != 0) {
      status = absl::InvalidArgumentError(
          absl::StrCat("index.pq_m is ", config.pq_m(),
                       ", it must divide the dimension ", dimension));
    }
    status.Update(
        CheckRange("index.pq_bits", config.pq_bits(), kMinPqBits, kMaxPqBits));
  }
  if (!status.ok()) return status;
  return config;
}

Database::Database(const DatabaseOptions& options,
                   std::unique_ptr<storage::Storage> storage)
    : options_(options),
      index_dir_(
          (std::filesystem::path(options.data_dir) / "indexes").string()),
      storage_(std::move(storage)) {}

Database::~Database() {
  Close();
  absl::MutexLock lock(&mutex_);
  collections_.clear();
}

void Database::Close() {
  {
    absl::MutexLock lock(&stop_mutex_);
    if (closed_) return;
    closed_ = true;
  }
  stopping_ = true;
  if (maintenance_thread_.joinable()) maintenance_thread_.join();

  const absl::Time start = absl::Now();
  absl::MutexLock lock(&maintenance_mutex_);
  for (const std::shared_ptr<Collection>& collection : AllCollections()) {
    if (absl::Status status = collection->WriteCheckpoint(); !status.ok()) {
      spdlog::error(
          "[{}] index not saved at close, the next start replays "
          "or rebuilds it: {}",
          collection->config().name, std::string(status.message()));
    }
  }
  spdlog::info("indexes saved at close in {:.2f} s",
               absl::ToDoubleSeconds(absl::Now() - start));
}

std::vector<std::shared_ptr<Collection>> Database::AllCollections() {
  std::vector<std::shared_ptr<Collection>> collections;
  absl::MutexLock lock(&mutex_);
  collections.reserve(collections_.size());
  for (const auto& [name, collection] : collections_) {
    collections.push_back(collection);
  }
  return collections;
}

void Database::RunMaintenance() {
  while (true) {
    {
      absl::MutexLock lock(&stop_mutex_);
      if (stop_mutex_.AwaitWithTimeout(absl::Condition(&closed_),
                                       options_.maintenance_period)) {
        return;
      }
    }
    // MaintainNow logs each failure; the next round tries again.
    MaintainNow().IgnoreError();
  }
}

absl::Status Database::MaintainNow() {
  absl::MutexLock lock(&maintenance_mutex_);
  absl::Status result;
  for (const std::shared_ptr<Collection>& collection : AllCollections()) {
    absl::Status status = collection->Maintain(options_.maintenance, stopping_);
    if (!status.ok()) {
      spdlog::warn("[{}] index maintenance failed, will retry: {}",
                   collection->config().name, std::string(status.message()));
      result.Update(status);
    }
  }
  return result;
}

void Database::RemoveStrayIndexFiles() {
  std::vector<std::string> others;
  absl::StatusOr<std::vector<IndexFileEntry>> files =
      ListIndexFiles(index_dir_, &others);
  if (!files.ok()) return;
  absl::flat_hash_set<uint64_t> live_ids;
  for (const std::shared_ptr<Collection>& collection : AllCollections()) {
    live_ids.insert(collection->id());
  }
  std::vector<std::string> stray = std::move(others);
  stray.erase(std::remove_if(stray.begin(), stray.end(),
                             [](const std::string& path) {
                               return !absl::EndsWith(path, ".tmp");
                             }),
              stray.end());
  for (const IndexFileEntry& file : *files) {
    if (!live_ids.contains(file.collection_id)) stray.push_back(file.path);
  }
  for (const std::string& path : stray) {
    std::error_code error;
    std::filesystem::remove(path, error);
    spdlog::info("removed stray index file {}", path);
  }
}

absl::StatusOr<std::string> Database::CreateSnapshot() {
  const absl::Time start = absl::Now();
  absl::MutexLock lock(&maintenance_mutex_);
  const std::vector<std::shared_ptr<Collection>> collections = AllCollections();
  // Fresh checkpoints make the snapshot quick to open.
  for (const std::shared_ptr<Collection>& collection : collections) {
    if (absl::Status status = collection->WriteCheckpoint(); !status.ok()) {
      return status;
    }
  }

  const std::filesystem::path snapshots =
      std::filesystem::path(options_.data_dir) / "snapshots";
  const std::string stem = absl::StrCat(
      "snapshot-",
      absl::FormatTime("%Y%m%dT%H%M%E3SZ", start, absl::UTCTimeZone()));
  std::filesystem::path dir = snapshots / stem;
  std::error_code error;
  for (int suffix = 2; std::filesystem::exists(dir, error); ++suffix) {
    dir = snapshots / absl::StrCat(stem, "-", suffix);
  }
  std::filesystem::create_directories(dir / "indexes", error);
  if (error) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create ", (dir / "indexes").string(), ": ", error.message()));
  }
  auto discard = [&dir] {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  };

  // Index files first, then RocksDB: every change after an index file's
  // sequence is then in the RocksDB copy, because change logs are trimmed
  // only under maintenance_mutex_.
  for (const std::shared_ptr<Collection>& collection : collections) {
    const std::string path = collection->CheckpointPath();
    if (path.empty()) continue;
    const std::filesystem::path target =
        dir / "indexes" / std::filesystem::path(path).filename();
    std::filesystem::create_hard_link(path, target, error);
    if (error) std::filesystem::copy_file(path, target, error);
    // A collection dropped meanwhile has no file left; it is not in the
    // RocksDB copy either.
    if (error && std::filesystem::exists(path)) {
      discard();
      return absl::UnavailableError(absl::StrCat(
          "cannot copy ", path, " into the snapshot: ", error.message()));
    }
  }
  if (absl::Status status =
          storage_->CreateCheckpoint((dir / "rocksdb").string());
      !status.ok()) {
    discard();
    return status;
  }
  const std::string absolute = std::filesystem::absolute(dir).string();
  spdlog::info("snapshot written to {} in {:.2f} s", absolute,
               absl::ToDoubleSeconds(absl::Now() - start));
  return absolute;
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(
    const DatabaseOptions& options) {
  if (absl::Status status = ValidateLimits(options.limits); !status.ok()) {
    return status;
  }
  const absl::Time start = absl::Now();
  std::error_code error;
  const std::filesystem::path index_dir =
      std::filesystem::path(options.data_dir) / "indexes";
  std::filesystem::create_directories(index_dir, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create ", index_dir.string(), ": ", error.message()));
  }

  storage::StorageOptions storage_options;
  storage_options.path =
      (std::filesystem::path(options.data_dir) / "rocksdb").string();
  storage_options.sync_writes = options.sync_writes;
  absl::StatusOr<std::unique_ptr<storage::Storage>> storage =
      storage::Storage::Open(storage_options);
  if (!storage.ok()) return storage.status();
  std::unique_ptr<Database> database(
      new Database(options, *std::move(storage)));

  absl::StatusOr<std::vector<storage::CollectionRecord>> records =
      database->storage_->ListCollections();
  if (!records.ok()) return records.status();
  for (storage::CollectionRecord& record : *records) {
    absl::StatusOr<CollectionConfig> config = DecodeConfig(record);
    if (!config.ok()) return config.status();
    absl::StatusOr<std::unique_ptr<Collection>> collection =
        Collection::Open(database->storage_.get(), record.id,
                         *std::move(config), database->index_dir_);
    if (!collection.ok()) return collection.status();
    absl::MutexLock lock(&database->mutex_);
    database->collections_.emplace(record.name, *std::move(collection));
  }
  database->RemoveStrayIndexFiles();
  if (options.maintenance_period > absl::ZeroDuration()) {
    Database* raw = database.get();
    database->maintenance_thread_ =
        std::thread([raw] { raw->RunMaintenance(); });
  }
  spdlog::info("opened {}: {} collections in {:.2f} s", options.data_dir,
               records->size(), absl::ToDoubleSeconds(absl::Now() - start));
  return database;
}

absl::StatusOr<v1::CollectionInfo> Database::CreateCollection(
    const v1::CreateCollectionRequest& request) {
  absl::StatusOr<CollectionConfig> config = MakeCollectionConfig(request);
  if (!config.ok()) return config.status();
  const Limits& limits = options_.limits;
  if (config->name.size() > limits.max_collection_name_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "collection name is ", config->name.size(), " bytes, the limit is ",
        limits.max_collection_name_bytes));
  }
  if (config->dimension > limits.max_dimension) {
    return absl::InvalidArgumentError(
        absl::StrCat("dimension is ", config->dimension, ", it must be 1 to ",
                     limits.max_dimension));
  }

  absl::MutexLock lock(&mutex_);
  if (collections_.find(config->name) != collections_.end()) {
    return absl::AlreadyExistsError(
        absl::StrCat("collection '", config->name, "' already exists"));
  }
  if (collections_.size() >= limits.max_collections) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the database has ", collections_.size(),
                     " collections, the limit; drop one before creating '",
                     config->name, "'"));
  }
  absl::StatusOr<uint64_t> id =
      storage_->CreateCollection(config->name, EncodeConfig(*config));
  if (!id.ok()) return id.status();
  absl::StatusOr<std::unique_ptr<Collection>> collection =
      Collection::Create(storage_.get(), *id, *config, index_dir_);
  if (!collection.ok()) return collection.status();
  std::shared_ptr<Collection> shared = *std::move(collection);
  collections_.emplace(config->name, shared);
  spdlog::info("[{}] created: dimension {}, metric {}, index {}", config->name,
               config->dimension, v1::Metric_Name(config->metric),
               v1::IndexKind_Name(config->index.kind()));
  return shared->Describe();
}

absl::StatusOr<std::shared_ptr<Collection>> Database::GetCollection(
    absl::string_view name) {
  if (absl::Status status = ValidateCollectionName(name); !status.ok()) {
    return status;
  }
  absl::MutexLock lock(&mutex_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    return absl::NotFoundError(
        absl::StrCat("collection '", absl::CHexEscape(name), "' not found"));
  }
  return it->second;
}

std::vector<v1::CollectionInfo> Database::ListCollections() {
  std::vector<std::shared_ptr<Collection>> collections;
  {
    absl::MutexLock lock(&mutex_);
    for (const auto& [name, collection] : collections_) {
      collections.push_back(collection);
    }
  }
  std::vector<v1::CollectionInfo> infos;
  infos.reserve(collections.size());
  for (const auto& collection : collections) {
    infos.push_back(collection->Describe());
  }
  return infos;
}

absl::StatusOr<v1::CollectionInfo> Database::UpdateCollection(
    const v1::UpdateCollectionRequest& request) {
  if (absl::Status status = ValidateCollectionName(request.name());
      !status.ok()) {
    return status;
  }
  std::shared_ptr<Collection> collection;
  {
    // Held across the storage write, so that a concurrent update or drop
    // of the same collection cannot interleave with it.
    absl::MutexLock lock(&mutex_);
    auto it = collections_.find(request.name());
    if (it == collections_.end()) {
      return absl::NotFoundError(absl::StrCat(
          "collection '", absl::CHexEscape(request.name()), "' not found"));
    }
    collection = it->second;
    CollectionConfig config = collection->config();
    absl::StatusOr<v1::IndexConfig> index =
        MakeIndexConfig(request.index(), config.dimension);
    if (!index.ok()) return index.status();
    config.index = *index;
    storage::CollectionRecord record;
    record.id = collection->id();
    record.name = config.name;
    record.config = EncodeConfig(config);
    if (absl::Status status = storage_->UpdateCollection(record);
        !status.ok()) {
      return status;
    }
    if (absl::Status status = collection->ChangeIndex(*index); !status.ok()) {
      return status;
    }
  }
  return collection->Describe();
}

absl::Status Database::DropCollection(absl::string_view name) {
  if (absl::Status status = ValidateCollectionName(name); !status.ok()) {
    return status;
  }
  absl::MutexLock lock(&mutex_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    return absl::NotFoundError(
        absl::StrCat("collection '", absl::CHexEscape(name), "' not found"));
  }
  if (absl::Status status = it->second->Drop(); !status.ok()) return status;
  collections_.erase(it);
  spdlog::info("[{}] dropped", std::string(name));
  return absl::OkStatus();
}

}  // namespace vecdb::engine
