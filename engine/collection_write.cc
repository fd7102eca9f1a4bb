// The write path of a collection: validate everything, write storage, then
// publish to the index.

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/collection.h"
#include "engine/validation.h"
#include "spdlog/spdlog.h"

namespace vecdb::engine {
namespace {

absl::Status AtPoint(const absl::Status& status, int position,
                     absl::string_view id) {
  return absl::Status(
      status.code(),
      absl::StrCat("points[", position, "] (id \"", absl::CHexEscape(id),
                   "\"): ", status.message()));
}

absl::Status ValidatePoint(const v1::Point& point, int position,
                           const CollectionConfig& config) {
  absl::Status status = ValidatePointId(point.id());
  if (status.ok()) {
    status = ValidateVector(point.vector(), config.dimension, config.metric);
  }
  if (status.ok() && point.has_metadata()) {
    status = ValidateMetadata(point.metadata());
  }
  return status.ok() ? status : AtPoint(status, position, point.id());
}

absl::Status DroppedError(const CollectionConfig& config) {
  return absl::NotFoundError(
      absl::StrCat("collection '", config.name, "' was dropped"));
}

}  // namespace

absl::StatusOr<uint64_t> Collection::WriteToStorage(
    const storage::PointBatch& batch) {
  // A failed write may still have reached the log, so its sequence is never
  // given to another write.
  const uint64_t sequence = ++last_sequence_;
  if (absl::Status status = storage_->Write(id_, sequence, batch);
      !status.ok()) {
    return status;
  }
  return sequence;
}

absl::StatusOr<uint64_t> Collection::Upsert(
    const google::protobuf::RepeatedPtrField<v1::Point>& points,
    index::AddMode mode) {
  // Validate the whole batch before anything is written, and keep only the
  // last point of each id.
  absl::flat_hash_map<absl::string_view, int> last_position;
  last_position.reserve(points.size());
  for (int i = 0; i < points.size(); ++i) {
    if (absl::Status status = ValidatePoint(points[i], i, config_);
        !status.ok()) {
      return status;
    }
    last_position[points[i].id()] = i;
  }

  // Build the storage batch and the index vectors in request order.
  storage::PointBatch batch;
  std::vector<const std::string*> ids;
  std::vector<const google::protobuf::Struct*> metadata;
  std::vector<float> vectors;
  ids.reserve(last_position.size());
  vectors.resize(last_position.size() * config_.dimension);
  for (int i = 0; i < points.size(); ++i) {
    const v1::Point& point = points[i];
    if (last_position[point.id()] != i) continue;
    storage::StoredPoint stored;
    stored.vector.assign(point.vector().begin(), point.vector().end());
    if (point.has_metadata()) {
      point.metadata().SerializeToString(&stored.metadata);
    }
    batch.Put(point.id(), stored);
    PrepareForIndex(point.vector(), config_.metric,
                    vectors.data() + ids.size() * config_.dimension);
    ids.push_back(&point.id());
    metadata.push_back(point.has_metadata() ? &point.metadata() : nullptr);
  }
  if (ids.empty()) return 0;

  absl::MutexLock write_lock(&write_mutex_);
  if (dropped_) return DroppedError(config_);
  {
    absl::ReaderMutexLock index_lock(&index_mutex_);
    for (size_t i = 0; i < ids.size(); ++i) {
      AddFieldIndexWrites(*ids[i], metadata[i], &batch);
    }
  }
  absl::StatusOr<uint64_t> sequence = WriteToStorage(batch);
  if (!sequence.ok()) return sequence.status();
  storage::ReadView view = storage_->TakeReadView();

  absl::MutexLock index_lock(&index_mutex_);
  if (absl::Status status = ApplyUpserts(ids, vectors, std::move(view), mode);
      !status.ok()) {
    // Storage has the write but the index does not: searches miss these
    // points until the next restart rebuilds the index.
    spdlog::error("[{}] index update failed after a durable write: {}",
                  config_.name, status.ToString());
    index_incomplete_ = true;
    return status;
  }
  NoteApplied(*sequence, ids);
  for (size_t i = 0; i < ids.size(); ++i) CacheMetadata(*ids[i], metadata[i]);
  return ids.size();
}

absl::StatusOr<uint64_t> Collection::Delete(
    const google::protobuf::RepeatedPtrField<std::string>& ids,
    const PointFilter* filter) {
  if (absl::Status status = ValidatePointIds(ids); !status.ok()) {
    return status;
  }

  absl::MutexLock write_lock(&write_mutex_);
  if (dropped_) return DroppedError(config_);

  // Only this writer changes the id map, so reading it under the shared lock
  // and then writing under the exclusive lock finds it unchanged.
  absl::flat_hash_set<absl::string_view> existing;
  std::vector<const std::string*> deleted;
  storage::PointBatch batch;
  google::protobuf::RepeatedPtrField<std::string> matching;
  {
    absl::ReaderMutexLock index_lock(&index_mutex_);
    if (filter != nullptr) {
      absl::Status status = FindMatchingIds(ids, *filter, &matching);
      if (!status.ok()) return status;
    }
    for (const std::string& id : filter != nullptr ? matching : ids) {
      if (id_to_label_.contains(id) && existing.insert(id).second) {
        batch.Delete(id);
        deleted.push_back(&id);
        AddFieldIndexWrites(id, nullptr, &batch);
      }
    }
  }
  if (deleted.empty()) return 0;
  absl::StatusOr<uint64_t> sequence = WriteToStorage(batch);
  if (!sequence.ok()) return sequence.status();
  storage::ReadView view = storage_->TakeReadView();

  absl::MutexLock index_lock(&index_mutex_);
  for (const std::string* id : deleted) {
    auto it = id_to_label_.find(*id);
    RetireLabel(it->second);
    id_to_label_.erase(it);
    CacheMetadata(*id, nullptr);
  }
  view_ = std::move(view);
  NoteApplied(*sequence, deleted);
  return deleted.size();
}

}  // namespace vecdb::engine
