#include "engine/collection.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/validation.h"
#include "spdlog/spdlog.h"

namespace vecdb::engine {
namespace {

// Points read from storage per index addition while rebuilding.
constexpr size_t kRebuildChunk = 4096;

}  // namespace

index::IndexSpec ToIndexSpec(const CollectionConfig& config) {
  index::IndexSpec spec;
  switch (config.index.kind()) {
    case v1::FLAT:
      spec.kind = index::IndexKind::kFlat;
      break;
    case v1::IVF_FLAT:
      spec.kind = index::IndexKind::kIvfFlat;
      break;
    case v1::IVF_PQ:
      spec.kind = index::IndexKind::kIvfPq;
      break;
    case v1::SQ8:
      spec.kind = index::IndexKind::kSq8;
      break;
    case v1::HNSW_SQ8:
      spec.kind = index::IndexKind::kHnswSq8;
      break;
    default:
      spec.kind = index::IndexKind::kHnsw;
      break;
  }
  spec.dimension = static_cast<int>(config.dimension);
  spec.metric = config.metric == v1::L2 ? index::IndexMetric::kL2
                                        : index::IndexMetric::kInnerProduct;
  spec.m = static_cast<int>(config.index.m());
  spec.ef_construction = static_cast<int>(config.index.ef_construction());
  spec.nlist = static_cast<int>(config.index.nlist());
  spec.pq_m = static_cast<int>(config.index.pq_m());
  spec.pq_bits = static_cast<int>(config.index.pq_bits());
  return spec;
}

bool BuildsDiffer(const index::IndexSpec& a, const index::IndexSpec& b) {
  return a.kind != b.kind || a.m != b.m ||
         a.ef_construction != b.ef_construction || a.nlist != b.nlist ||
         a.pq_m != b.pq_m || a.pq_bits != b.pq_bits;
}

Collection::Collection(storage::Storage* storage, uint64_t id,
                       CollectionConfig config, std::string index_dir,
                       std::unique_ptr<index::VectorIndex> index)
    : storage_(storage),
      id_(id),
      config_(std::move(config)),
      index_dir_(std::move(index_dir)),
      index_(std::move(index)),
      index_config_(config_.index) {}

absl::StatusOr<std::unique_ptr<Collection>> Collection::Create(
    storage::Storage* storage, uint64_t id, CollectionConfig config,
    std::string index_dir) {
  absl::StatusOr<std::unique_ptr<index::VectorIndex>> index =
      index::VectorIndex::Create(ToIndexSpec(config));
  if (!index.ok()) return index.status();
  std::unique_ptr<Collection> collection(new Collection(
      storage, id, std::move(config), std::move(index_dir), *std::move(index)));
  absl::MutexLock lock(&collection->index_mutex_);
  collection->view_ = storage->TakeReadView();
  return collection;
}

absl::StatusOr<std::unique_ptr<Collection>> Collection::Open(
    storage::Storage* storage, uint64_t id, CollectionConfig config,
    std::string index_dir) {
  absl::StatusOr<std::unique_ptr<Collection>> collection =
      Create(storage, id, std::move(config), std::move(index_dir));
  if (!collection.ok()) return collection.status();
  absl::StatusOr<bool> loaded = (*collection)->LoadCheckpoint();
  if (!loaded.ok()) return loaded.status();
  if (!*loaded) {
    if (absl::Status status = (*collection)->LoadFromStorage(); !status.ok()) {
      return status;
    }
  }
  if (absl::Status status = (*collection)->LoadFieldIndexes(); !status.ok()) {
    return status;
  }
  return collection;
}

absl::Status Collection::LoadFromStorage() {
  const absl::Time start = absl::Now();
  absl::MutexLock write_lock(&write_mutex_);
  absl::MutexLock index_lock(&index_mutex_);
  view_ = storage_->TakeReadView();
  absl::StatusOr<uint64_t> sequence = storage_->LastSequence(id_, view_);
  if (!sequence.ok()) return sequence.status();

  // Read in chunks so that FAISS adds many vectors per call, which is what
  // lets it build the HNSW graph on every core.
  std::vector<std::string> chunk_ids;
  std::vector<float> chunk_vectors;
  auto flush = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mutex_) {
    std::vector<const std::string*> id_pointers;
    id_pointers.reserve(chunk_ids.size());
    for (const std::string& id : chunk_ids) id_pointers.push_back(&id);
    absl::Status status = ApplyUpserts(id_pointers, chunk_vectors, view_);
    chunk_ids.clear();
    chunk_vectors.clear();
    return status;
  };

  absl::Status status = storage_->ScanPoints(
      id_, view_,
      [&](absl::string_view point_id, storage::StoredPoint point)
          ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mutex_) -> absl::Status {
            if (point.vector.size() != config_.dimension) {
              return absl::DataLossError(absl::StrCat(
                  "stored point '", point_id, "' has ", point.vector.size(),
                  " components, the collection's dimension is ",
                  config_.dimension));
            }
            google::protobuf::RepeatedField<float> vector(point.vector.begin(),
                                                          point.vector.end());
            chunk_vectors.resize(chunk_vectors.size() + config_.dimension);
            PrepareForIndex(vector, config_.metric,
                            chunk_vectors.data() + chunk_vectors.size() -
                                config_.dimension);
            chunk_ids.emplace_back(point_id);
            if (absl::Status cached =
                    CacheStoredMetadata(point_id, point.metadata);
                !cached.ok()) {
              return cached;
            }
            if (chunk_ids.size() < kRebuildChunk) return absl::OkStatus();
            return flush();
          });
  if (status.ok()) status = flush();
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("loading collection '", config_.name,
                                     "': ", status.message()));
  }
  last_sequence_ = *sequence;
  applied_sequence_ = *sequence;
  ++index_builds_;
  // A rebuild is slow, so save its result soon.
  unsaved_changes_ = id_to_label_.size();
  first_unsaved_change_ = absl::InfinitePast();
  spdlog::info("[{}] index rebuilt from storage: {} points in {:.2f} s",
               config_.name, id_to_label_.size(),
               absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

v1::CollectionInfo Collection::Describe() {
  v1::CollectionInfo info;
  info.set_name(config_.name);
  info.set_dimension(config_.dimension);
  info.set_metric(config_.metric);
  {
    absl::ReaderMutexLock lock(&index_mutex_);
    *info.mutable_index() = index_config_;
    info.set_point_count(id_to_label_.size());
    info.set_unindexed_points(index_->pending_count());
    info.set_index_builds(index_builds_.load());
    info.set_index_state(IndexState());
    CollectionConfig current = config_;
    current.index = index_config_;
    info.set_training_threshold(static_cast<uint64_t>(
        index::VectorIndex::TrainingThreshold(ToIndexSpec(current))));
    const uint64_t index_bytes = index_->MemoryBytes();
    info.set_index_memory_bytes(index_bytes);
    // An estimate: each live id is stored twice, once in each map.
    info.set_memory_bytes(index_bytes + 2 * live_id_bytes_ +
                          label_to_id_.capacity() * sizeof(std::string) +
                          id_to_label_.capacity() *
                              sizeof(std::pair<std::string, index::Label>) +
                          metadata_bytes_);
    DescribeFieldIndexes(&info);
  }
  info.set_disk_bytes(storage_->ApproximateBytes(id_));
  return info;
}

v1::IndexState Collection::IndexState() const {
  if (building_.load() || rebuild_needed_) return v1::BUILDING;
  if (index::NeedsTraining(index_->spec().kind) && !index_->trained()) {
    return v1::EXACT;
  }
  return v1::READY;
}

absl::Status Collection::ChangeIndex(const v1::IndexConfig& index) {
  absl::MutexLock write_lock(&write_mutex_);
  if (dropped_) {
    return absl::NotFoundError(
        absl::StrCat("collection '", config_.name, "' was dropped"));
  }
  absl::MutexLock index_lock(&index_mutex_);
  index_config_ = index;
  // Only ef_search and nprobe can change without a rebuild; a change back
  // to the config of the current index needs none either.
  CollectionConfig current = config_;
  current.index = index;
  rebuild_needed_ = BuildsDiffer(ToIndexSpec(current), index_->spec());
  spdlog::info(
      "[{}] index config changed to {}{}", config_.name,
      v1::IndexKind_Name(index.kind()),
      rebuild_needed_ ? "; the index is rebuilt in the background" : "");
  return absl::OkStatus();
}

absl::Status Collection::Drop() {
  absl::MutexLock lock(&write_mutex_);
  if (dropped_) {
    return absl::NotFoundError(
        absl::StrCat("collection '", config_.name, "' was dropped"));
  }
  storage::CollectionRecord record;
  record.id = id_;
  record.name = config_.name;
  if (absl::Status status = storage_->DropCollection(record); !status.ok()) {
    return status;
  }
  dropped_ = true;
  RemoveIndexFiles({});
  return absl::OkStatus();
}

absl::Status Collection::ApplyUpserts(absl::Span<const std::string* const> ids,
                                      const std::vector<float>& vectors,
                                      storage::ReadView view,
                                      index::AddMode mode) {
  const index::Label first_label = index_->size();
  if (absl::Status status =
          index_->Add(static_cast<int64_t>(ids.size()), vectors.data(), mode);
      !status.ok()) {
    return status;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    const index::Label label = first_label + static_cast<index::Label>(i);
    auto [it, inserted] = id_to_label_.try_emplace(*ids[i], label);
    if (!inserted) {
      RetireLabel(it->second);
      it->second = label;
    }
    label_to_id_.push_back(*ids[i]);
    live_id_bytes_ += ids[i]->size();
  }
  view_ = std::move(view);
  return absl::OkStatus();
}

void Collection::NoteApplied(uint64_t sequence,
                             absl::Span<const std::string* const> ids) {
  applied_sequence_ = sequence;
  last_change_ = absl::Now();
  if (unsaved_changes_ == 0) first_unsaved_change_ = last_change_;
  unsaved_changes_ += ids.size();
  if (compacting_) {
    for (const std::string* id : ids) changed_while_compacting_.push_back(*id);
  }
}

void Collection::RetireLabel(index::Label label) {
  index_->MarkDeleted(label);
  std::string& id = label_to_id_[label];
  live_id_bytes_ -= id.size();
  // Swapping with an empty string frees the memory; clear() would keep it.
  std::string().swap(id);
}

}  // namespace vecdb::engine
