#include "engine/database.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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
  const v1::IndexConfig& index = request.index();
  switch (index.kind()) {
    case v1::FLAT:
      // HNSW parameters mean nothing here; the returned CollectionInfo shows
      // them as zero.
      config.index.set_kind(v1::FLAT);
      return config;
    case v1::INDEX_KIND_UNSPECIFIED:
    case v1::HNSW:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "index.kind ", index.kind(), " is unknown; use FLAT or HNSW"));
  }

  config.index.set_kind(v1::HNSW);
  config.index.set_m(index.m() != 0 ? index.m() : kDefaultHnswM);
  config.index.set_ef_construction(index.ef_construction() != 0
                                       ? index.ef_construction()
                                       : kDefaultHnswEfConstruction);
  config.index.set_ef_search(index.ef_search() != 0 ? index.ef_search()
                                                    : kDefaultHnswEfSearch);
  absl::Status status =
      CheckRange("index.m", config.index.m(), kMinHnswM, kMaxHnswM);
  if (status.ok()) {
    status = CheckRange("index.ef_construction", config.index.ef_construction(),
                        1, kMaxEfConstruction);
  }
  if (status.ok()) {
    status = CheckRange("index.ef_search", config.index.ef_search(), 1,
                        kMaxEfSearch);
  }
  if (!status.ok()) return status;
  return config;
}

Database::Database(std::unique_ptr<storage::Storage> storage)
    : storage_(std::move(storage)) {}

Database::~Database() {
  absl::MutexLock lock(&mutex_);
  collections_.clear();
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(
    const DatabaseOptions& options) {
  const absl::Time start = absl::Now();
  std::error_code error;
  std::filesystem::create_directories(options.data_dir, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data dir ", options.data_dir, ": ", error.message()));
  }

  storage::StorageOptions storage_options;
  storage_options.path =
      (std::filesystem::path(options.data_dir) / "rocksdb").string();
  storage_options.sync_writes = options.sync_writes;
  absl::StatusOr<std::unique_ptr<storage::Storage>> storage =
      storage::Storage::Open(storage_options);
  if (!storage.ok()) return storage.status();
  std::unique_ptr<Database> database(new Database(*std::move(storage)));

  absl::StatusOr<std::vector<storage::CollectionRecord>> records =
      database->storage_->ListCollections();
  if (!records.ok()) return records.status();
  absl::MutexLock lock(&database->mutex_);
  for (storage::CollectionRecord& record : *records) {
    absl::StatusOr<CollectionConfig> config = DecodeConfig(record);
    if (!config.ok()) return config.status();
    absl::StatusOr<std::unique_ptr<Collection>> collection = Collection::Open(
        database->storage_.get(), record.id, *std::move(config));
    if (!collection.ok()) return collection.status();
    database->collections_.emplace(record.name, *std::move(collection));
  }
  spdlog::info("opened {}: {} collections in {:.2f} s", options.data_dir,
               database->collections_.size(),
               absl::ToDoubleSeconds(absl::Now() - start));
  return database;
}

absl::StatusOr<v1::CollectionInfo> Database::CreateCollection(
    const v1::CreateCollectionRequest& request) {
  absl::StatusOr<CollectionConfig> config = MakeCollectionConfig(request);
  if (!config.ok()) return config.status();

  absl::MutexLock lock(&mutex_);
  if (collections_.find(config->name) != collections_.end()) {
    return absl::AlreadyExistsError(
        absl::StrCat("collection '", config->name, "' already exists"));
  }
  absl::StatusOr<uint64_t> id =
      storage_->CreateCollection(config->name, EncodeConfig(*config));
  if (!id.ok()) return id.status();
  absl::StatusOr<std::unique_ptr<Collection>> collection =
      Collection::Create(storage_.get(), *id, *config);
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
