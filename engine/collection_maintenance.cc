// Index checkpoints and compaction: saving a collection's index to files,
// loading it back with the writes that came after, and rebuilding it without
// deleted labels.

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/collection.h"
#include "engine/index_file.h"
#include "engine/validation.h"
#include "spdlog/spdlog.h"

namespace vecdb::engine {
namespace {

// Vectors added to a new index per FAISS call during a compaction; between
// calls the compaction checks whether it should stop.
constexpr size_t kCompactionChunk = 16384;

// Waiting vectors moved into the HNSW graph per exclusive hold of the
// index. Small, because searches wait meanwhile.
constexpr int64_t kGraphChunk = 256;

// Spare capacity of an index is freed once writes paused this long and it
// is at least this share of the index's bytes. Vectors grow by doubling, so
// a collection loaded in small batches can reserve up to as much again.
constexpr absl::Duration kShrinkAfterIdle = absl::Seconds(5);
constexpr double kShrinkMinSpareFraction = 0.2;

// Maximum time a maintenance round spends moving waiting vectors into the
// graph before it turns to compaction and checkpoints.
constexpr absl::Duration kGraphBudget = absl::Seconds(5);

double Megabytes(const std::string& path) {
  std::error_code error;
  const uintmax_t bytes = std::filesystem::file_size(path, error);
  return error ? 0.0 : static_cast<double>(bytes) / (1 << 20);
}

// Moves a file that failed to load aside, so that it is never tried again
// but stays for inspection.
void SetAside(const std::string& path) {
  std::error_code error;
  std::filesystem::rename(path, path + ".rejected", error);
}

}  // namespace

absl::StatusOr<bool> Collection::LoadCheckpoint() {
  absl::StatusOr<std::vector<IndexFileEntry>> files =
      ListIndexFiles(index_dir_);
  if (!files.ok()) return files.status();
  std::vector<IndexFileEntry> mine;
  for (IndexFileEntry& file : *files) {
    if (file.collection_id == id_) mine.push_back(std::move(file));
  }
  if (mine.empty()) return false;

  absl::MutexLock maintenance_lock(&maintenance_mutex_);
  absl::MutexLock write_lock(&write_mutex_);
  absl::MutexLock index_lock(&index_mutex_);
  view_ = storage_->TakeReadView();
  absl::StatusOr<uint64_t> last = storage_->LastSequence(id_, view_);
  if (!last.ok()) return last.status();
  const index::IndexSpec spec = ToIndexSpec(config_);

  for (size_t i = 0; i < mine.size(); ++i) {
    const IndexFileEntry& file = mine[i];
    const absl::Time start = absl::Now();
    if (file.sequence > *last) {
      spdlog::warn(
          "[{}] index file {} is not used: it is stamped with write {}, but "
          "storage ends at write {}; moved aside as .rejected",
          config_.name, file.path, file.sequence, *last);
      SetAside(file.path);
      continue;
    }
    absl::StatusOr<IndexCheckpoint> checkpoint =
        ReadIndexFile(file.path, id_, spec);
    if (!checkpoint.ok()) {
      spdlog::warn("[{}] index file is not used: {}; moved aside as .rejected",
                   config_.name, std::string(checkpoint.status().message()));
      SetAside(file.path);
      continue;
    }
    absl::StatusOr<std::vector<std::string>> changed =
        storage_->ChangedIdsAfter(id_, file.sequence, view_);
    if (!changed.ok()) {
      spdlog::warn("[{}] index file {} is not used: {}", config_.name,
                   file.path, std::string(changed.status().message()));
      continue;
    }

    index_ = std::move(checkpoint->index);
    label_to_id_ = std::move(checkpoint->label_to_id);
    id_to_label_.clear();
    id_to_label_.reserve(index_->live_count());
    live_id_bytes_ = 0;
    for (size_t label = 0; label < label_to_id_.size(); ++label) {
      const std::string& id = label_to_id_[label];
      if (id.empty()) continue;
      id_to_label_.emplace(id, static_cast<index::Label>(label));
      live_id_bytes_ += id.size();
    }
    if (static_cast<int64_t>(id_to_label_.size()) != index_->live_count()) {
      return absl::DataLossError(absl::StrCat(
          file.path, " names ", id_to_label_.size(),
          " distinct live points, but its index has ", index_->live_count()));
    }
    if (absl::Status status = ReplayChanges(*changed, view_); !status.ok()) {
      return status;
    }
    // Filters read parsed metadata from memory, which the index file does
    // not hold.
    if (absl::Status status = storage_->ScanPointMetadata(
            id_, view_,
            [this](absl::string_view id, absl::string_view metadata)
                ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mutex_) {
                  return CacheStoredMetadata(id, std::string(metadata));
                });
        !status.ok()) {
      return status;
    }
    last_sequence_ = *last;
    applied_sequence_ = *last;
    checkpoint_sequence_ = file.sequence;
    previous_checkpoint_sequence_ =
        i + 1 < mine.size() ? mine[i + 1].sequence : 0;
    unsaved_changes_ = changed->size();
    first_unsaved_change_ = absl::Now();
    spdlog::info(
        "[{}] index loaded from {} ({:.1f} MB, write {}), {} points changed "
        "since replayed; {} points in {:.2f} s, {} of them waiting for the "
        "graph",
        config_.name, file.path, Megabytes(file.path), file.sequence,
        changed->size(), id_to_label_.size(),
        absl::ToDoubleSeconds(absl::Now() - start), index_->pending_count());
    return true;
  }
  spdlog::warn("[{}] no usable index file; rebuilding the index from storage",
               config_.name);
  return false;
}

absl::Status Collection::ReplayChanges(absl::Span<const std::string> ids,
                                       const storage::ReadView& view) {
  absl::StatusOr<std::vector<std::optional<storage::StoredPoint>>> stored =
      storage_->GetPoints(id_, ids, view);
  if (!stored.ok()) return stored.status();
  std::vector<const std::string*> present;
  std::vector<float> vectors;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::optional<storage::StoredPoint>& point = (*stored)[i];
    if (!point.has_value()) {
      auto it = id_to_label_.find(ids[i]);
      if (it == id_to_label_.end()) continue;
      RetireLabel(it->second);
      id_to_label_.erase(it);
      continue;
    }
    if (point->vector.size() != config_.dimension) {
      return absl::DataLossError(
          absl::StrCat("stored point '", ids[i], "' of collection '",
                       config_.name, "' has ", point->vector.size(),
                       " components, the dimension is ", config_.dimension));
    }
    google::protobuf::RepeatedField<float> vector(point->vector.begin(),
                                                  point->vector.end());
    vectors.resize(vectors.size() + config_.dimension);
    PrepareForIndex(vector, config_.metric,
                    vectors.data() + vectors.size() - config_.dimension);
    present.push_back(&ids[i]);
  }
  return ApplyUpserts(present, vectors, view, index::AddMode::kDeferGraph);
}

absl::Status Collection::BuildPendingGraph(absl::Duration budget,
                                           const std::atomic<bool>& cancel) {
  const absl::Time deadline = absl::Now() + budget;
  while (!cancel.load() && absl::Now() < deadline) {
    absl::MutexLock lock(&index_mutex_);
    if (index_->pending_count() == 0) break;
    if (absl::Status status = index_->IndexPending(kGraphChunk); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status Collection::WriteCheckpoint() {
  absl::MutexLock lock(&maintenance_mutex_);
  return SaveIndex(/*force=*/false);
}

absl::Status Collection::SaveIndex(bool force) {
  const absl::Time start = absl::Now();
  uint64_t sequence = 0;
  uint64_t saved_changes = 0;
  int64_t labels = 0;
  std::string temporary;
  {
    // Holding the write lock keeps writers out without making searches wait
    // behind a writer queued for the index lock.
    absl::MutexLock write_lock(&write_mutex_);
    if (dropped_) return absl::OkStatus();
    absl::ReaderMutexLock index_lock(&index_mutex_);
    if (index_incomplete_ || rebuild_needed_) return absl::OkStatus();
    sequence = applied_sequence_;
    if (sequence == checkpoint_sequence_ && !force) return absl::OkStatus();
    labels = index_->size();
    saved_changes = unsaved_changes_;
    temporary = (std::filesystem::path(index_dir_) /
                 (IndexFileName(id_, sequence) + ".tmp"))
                    .string();
    absl::Status status =
        WriteIndexFile(temporary, id_, sequence, *index_, label_to_id_);
    if (!status.ok()) {
      std::error_code error;
      std::filesystem::remove(temporary, error);
      return status;
    }
  }

  const std::string path =
      (std::filesystem::path(index_dir_) / IndexFileName(id_, sequence))
          .string();
  if (absl::Status status = SyncAndRename(temporary, path); !status.ok()) {
    std::error_code error;
    std::filesystem::remove(temporary, error);
    return status;
  }
  if (sequence != checkpoint_sequence_) {
    previous_checkpoint_sequence_ = checkpoint_sequence_;
    checkpoint_sequence_ = sequence;
  }
  {
    absl::MutexLock write_lock(&write_mutex_);
    unsaved_changes_ -= std::min(unsaved_changes_, saved_changes);
    // Changes made while the file was written count from then on.
    if (unsaved_changes_ > 0) first_unsaved_change_ = start;
    if (dropped_) {
      RemoveIndexFiles({});
      return absl::OkStatus();
    }
  }
  RemoveIndexFiles({checkpoint_sequence_, previous_checkpoint_sequence_});
  if (previous_checkpoint_sequence_ > 0) {
    if (absl::Status status =
            storage_->TrimChanges(id_, previous_checkpoint_sequence_);
        !status.ok()) {
      spdlog::warn("[{}] change log not trimmed: {}", config_.name,
                   std::string(status.message()));
    }
  }
  spdlog::info(
      "[{}] index saved to {}: {} labels, write {}, {:.1f} MB in "
      "{:.2f} s",
      config_.name, path, labels, sequence, Megabytes(path),
      absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

void Collection::RemoveIndexFiles(absl::Span<const uint64_t> keep) {
  absl::StatusOr<std::vector<IndexFileEntry>> files =
      ListIndexFiles(index_dir_);
  if (!files.ok()) return;
  for (const IndexFileEntry& file : *files) {
    if (file.collection_id != id_ ||
        std::find(keep.begin(), keep.end(), file.sequence) != keep.end()) {
      continue;
    }
    std::error_code error;
    std::filesystem::remove(file.path, error);
    if (error) {
      spdlog::warn("[{}] cannot remove old index file {}: {}", config_.name,
                   file.path, error.message());
    }
  }
}

std::string Collection::CheckpointPath() {
  absl::MutexLock lock(&maintenance_mutex_);
  if (checkpoint_sequence_ == 0) return "";
  return (std::filesystem::path(index_dir_) /
          IndexFileName(id_, checkpoint_sequence_))
      .string();
}

absl::Status Collection::Maintain(const MaintenanceOptions& options,
                                  const std::atomic<bool>& cancel) {
  if (absl::Status status = BuildPendingGraph(kGraphBudget, cancel);
      !status.ok()) {
    return status;
  }
  bool rebuild = false;
  bool compact = false;
  bool save = false;
  {
    absl::MutexLock write_lock(&write_mutex_);
    if (dropped_) return absl::OkStatus();
    absl::ReaderMutexLock index_lock(&index_mutex_);
    const index::IndexSpec& spec = index_->spec();
    rebuild =
        rebuild_needed_ ||
        (index::NeedsTraining(spec.kind) && !index_->trained() &&
         index_->live_count() >= index::VectorIndex::TrainingThreshold(spec));
    const int64_t deleted = index_->deleted_count();
    compact =
        deleted >= options.compact_min_deleted &&
        static_cast<double>(deleted) >= options.compact_deleted_fraction *
                                            static_cast<double>(index_->size());
    save = unsaved_changes_ >= options.checkpoint_changes ||
           (unsaved_changes_ > 0 &&
            absl::Now() - first_unsaved_change_ >= options.checkpoint_interval);
  }
  if (rebuild || compact) {
    absl::Status status = rebuild ? RebuildIndex(cancel) : Compact(cancel);
    return absl::IsCancelled(status) ? absl::OkStatus() : status;
  }
  ShrinkIfIdle();
  return save ? WriteCheckpoint() : absl::OkStatus();
}

void Collection::ShrinkIfIdle() {
  absl::MutexLock write_lock(&write_mutex_);
  if (dropped_ || absl::Now() - last_change_ < kShrinkAfterIdle) return;
  {
    absl::ReaderMutexLock index_lock(&index_mutex_);
    const uint64_t spare = index_->SpareBytes();
    if (spare == 0 || static_cast<double>(spare) <
                          kShrinkMinSpareFraction *
                              static_cast<double>(index_->MemoryBytes())) {
      return;
    }
  }
  // Searches wait while the vectors are copied to fitting buffers.
  absl::MutexLock index_lock(&index_mutex_);
  const uint64_t before = index_->MemoryBytes();
  index_->ShrinkToFit();
  spdlog::info("[{}] index spare capacity freed: {:.1f} MB to {:.1f} MB",
               config_.name, static_cast<double>(before) / (1 << 20),
               static_cast<double>(index_->MemoryBytes()) / (1 << 20));
}

absl::Status Collection::Compact(const std::atomic<bool>& cancel) {
  return Rebuild(cancel, /*building=*/false, "compacted");
}

absl::Status Collection::RebuildIndex(const std::atomic<bool>& cancel) {
  return Rebuild(cancel, /*building=*/true, "rebuilt");
}

absl::Status Collection::ReadPreparedVectors(const storage::ReadView& view,
                                             std::vector<std::string>* ids,
                                             std::vector<float>* vectors) {
  return storage_->ScanPoints(
      id_, view,
      [&](absl::string_view point_id,
          storage::StoredPoint point) -> absl::Status {
        if (point.vector.size() != config_.dimension) {
          return absl::DataLossError(absl::StrCat(
              "stored point '", point_id, "' has ", point.vector.size(),
              " components, the collection's dimension is ",
              config_.dimension));
        }
        google::protobuf::RepeatedField<float> vector(point.vector.begin(),
                                                      point.vector.end());
        vectors->resize(vectors->size() + config_.dimension);
        PrepareForIndex(vector, config_.metric,
                        vectors->data() + vectors->size() - config_.dimension);
        ids->emplace_back(point_id);
        return absl::OkStatus();
      });
}

absl::Status Collection::Rebuild(const std::atomic<bool>& cancel, bool building,
                                 absl::string_view reason) {
  absl::MutexLock maintenance_lock(&maintenance_mutex_);
  const absl::Time start = absl::Now();

  // Note the config and the storage state the index reflects; from here on
  // writes record the ids they change.
  CollectionConfig target = config_;
  storage::ReadView view;
  int64_t old_labels = 0;
  {
    absl::MutexLock write_lock(&write_mutex_);
    if (dropped_) return absl::OkStatus();
    absl::ReaderMutexLock index_lock(&index_mutex_);
    if (index_incomplete_) return absl::OkStatus();
    target.index = index_config_;
    view = view_;
    old_labels = index_->size();
    compacting_ = true;
    changed_while_compacting_.clear();
  }
  building_ = building;
  auto stop_compacting = [this] {
    building_ = false;
    absl::MutexLock write_lock(&write_mutex_);
    compacting_ = false;
    std::vector<std::string>().swap(changed_while_compacting_);
  };
  auto fail = [&](absl::Status status) {
    stop_compacting();
    return status;
  };

  // Read the live points from storage, because compressed kinds keep no
  // float vectors to copy.
  std::vector<std::string> ids;
  std::vector<float> vectors;
  if (absl::Status status = ReadPreparedVectors(view, &ids, &vectors);
      !status.ok()) {
    return fail(status);
  }

  // Build the new index with no lock held, trained when the kind needs it
  // and enough points are live.
  const index::IndexSpec spec = ToIndexSpec(target);
  absl::StatusOr<std::unique_ptr<index::VectorIndex>> rebuilt =
      index::VectorIndex::Create(spec);
  if (!rebuilt.ok()) return fail(rebuilt.status());
  std::unique_ptr<index::VectorIndex> fresh = *std::move(rebuilt);
  const int64_t threshold = index::VectorIndex::TrainingThreshold(spec);
  if (index::NeedsTraining(spec.kind) &&
      static_cast<int64_t>(ids.size()) >= threshold) {
    const absl::Time training_start = absl::Now();
    if (absl::Status status =
            fresh->Train(static_cast<int64_t>(ids.size()), vectors.data());
        !status.ok()) {
      return fail(status);
    }
    spdlog::info("[{}] {} index trained on {} points in {:.2f} s", config_.name,
                 v1::IndexKind_Name(target.index.kind()), ids.size(),
                 absl::ToDoubleSeconds(absl::Now() - training_start));
  }
  for (size_t first = 0; first < ids.size(); first += kCompactionChunk) {
    if (cancel.load()) {
      return fail(absl::CancelledError("index rebuild stopped"));
    }
    const size_t count = std::min(kCompactionChunk, ids.size() - first);
    if (absl::Status status = fresh->Add(
            static_cast<int64_t>(count),
            vectors.data() + first * static_cast<size_t>(config_.dimension));
        !status.ok()) {
      return fail(status);
    }
  }
  std::vector<float>().swap(vectors);
  fresh->ShrinkToFit();
  std::vector<std::string> fresh_label_to_id = std::move(ids);
  absl::flat_hash_map<std::string, index::Label> fresh_id_to_label;
  fresh_id_to_label.reserve(fresh_label_to_id.size());
  for (size_t label = 0; label < fresh_label_to_id.size(); ++label) {
    fresh_id_to_label.emplace(fresh_label_to_id[label],
                              static_cast<index::Label>(label));
  }

  // Carries the state of `changed` ids stored through `current_view` over
  // to the new index.
  auto carry_over = [&](std::vector<std::string> changed,
                        const storage::ReadView& current_view) {
    std::vector<std::string> distinct =
        storage::KeepLastOfEach(std::move(changed));
    absl::StatusOr<std::vector<std::optional<storage::StoredPoint>>> stored =
        storage_->GetPoints(id_, distinct, current_view);
    if (!stored.ok()) return stored.status();
    std::vector<std::string> present;
    std::vector<float> present_vectors;
    for (size_t i = 0; i < distinct.size(); ++i) {
      auto old = fresh_id_to_label.find(distinct[i]);
      if (old != fresh_id_to_label.end()) {
        fresh->MarkDeleted(old->second);
        std::string().swap(fresh_label_to_id[old->second]);
        fresh_id_to_label.erase(old);
      }
      const std::optional<storage::StoredPoint>& point = (*stored)[i];
      if (!point.has_value()) continue;
      google::protobuf::RepeatedField<float> vector(point->vector.begin(),
                                                    point->vector.end());
      present_vectors.resize(present_vectors.size() + config_.dimension);
      PrepareForIndex(
          vector, config_.metric,
          present_vectors.data() + present_vectors.size() - config_.dimension);
      present.push_back(std::move(distinct[i]));
    }
    const index::Label first = fresh->size();
    absl::Status status = fresh->Add(static_cast<int64_t>(present.size()),
                                     present_vectors.data());
    if (!status.ok()) return status;
    for (size_t i = 0; i < present.size(); ++i) {
      fresh_id_to_label.emplace(present[i],
                                first + static_cast<index::Label>(i));
      fresh_label_to_id.push_back(std::move(present[i]));
    }
    return absl::OkStatus();
  };
  auto take_changed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mutex_) {
    std::vector<std::string> changed;
    changed.swap(changed_while_compacting_);
    return changed;
  };
  auto current_view = [this]() ABSL_LOCKS_EXCLUDED(index_mutex_) {
    absl::ReaderMutexLock index_lock(&index_mutex_);
    return view_;
  };

  // First carry over without stopping writers: a write that the view
  // taken after the ids includes is carried now, and again below if its ids
  // were recorded later. Then stop writers for the last few changes and the
  // swap.
  std::vector<std::string> changed;
  {
    absl::MutexLock write_lock(&write_mutex_);
    changed = take_changed();
  }
  if (absl::Status status = carry_over(std::move(changed), current_view());
      !status.ok()) {
    return fail(status);
  }
  std::unique_ptr<index::VectorIndex> old_index;
  int64_t new_labels = 0;
  const bool trained = fresh->trained();
  {
    absl::MutexLock write_lock(&write_mutex_);
    if (dropped_) {
      compacting_ = false;
      building_ = false;
      return absl::OkStatus();
    }
    if (absl::Status status = carry_over(take_changed(), current_view());
        !status.ok()) {
      compacting_ = false;
      building_ = false;
      return status;
    }
    uint64_t id_bytes = 0;
    for (const auto& [id, label] : fresh_id_to_label) id_bytes += id.size();
    new_labels = fresh->size();
    absl::MutexLock index_lock(&index_mutex_);
    old_index = std::exchange(index_, std::move(fresh));
    label_to_id_.swap(fresh_label_to_id);
    id_to_label_.swap(fresh_id_to_label);
    live_id_bytes_ = id_bytes;
    // ChangeIndex may have asked for yet another config meanwhile.
    CollectionConfig current = config_;
    current.index = index_config_;
    rebuild_needed_ = BuildsDiffer(ToIndexSpec(current), index_->spec());
    compacting_ = false;
    building_ = false;
  }
  spdlog::info("[{}] index {} as {}{} from {} to {} labels in {:.2f} s",
               config_.name, std::string(reason),
               v1::IndexKind_Name(target.index.kind()),
               trained ? "" : " (untrained, searched exactly)", old_labels,
               new_labels, absl::ToDoubleSeconds(absl::Now() - start));
  old_index.reset();
  ++index_builds_;
  return SaveIndex(/*force=*/true);
}

}  // namespace vecdb::engine
