// Filters in a collection: matching points, filtered search plans, Count,
// Scroll, delete by filter, field indexes and the metadata cache they read.

#include <algorithm>
#include <cmath>
#include <iterator>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/collection.h"
#include "engine/limits.h"
#include "engine/validation.h"
#include "spdlog/spdlog.h"
#include "storage/field_index_codec.h"

namespace vecdb::engine {
namespace {

// Scroll cursors are "s1:" and the last id of the page, in URL-safe base64,
// so that clients treat them as opaque.
constexpr char kCursorPrefix[] = "s1:";

std::string EncodeCursor(absl::string_view last_id) {
  return absl::WebSafeBase64Escape(absl::StrCat(kCursorPrefix, last_id));
}

absl::StatusOr<std::string> DecodeCursor(absl::string_view cursor) {
  std::string decoded;
  if (!absl::WebSafeBase64Unescape(cursor, &decoded) ||
      !absl::StartsWith(decoded, kCursorPrefix) ||
      !ValidatePointId(decoded.substr(strlen(kCursorPrefix))).ok()) {
    return absl::InvalidArgumentError(
        "cursor is invalid; pass the next_cursor of the previous Scroll "
        "response unchanged, or an empty cursor for the first page");
  }
  return decoded.substr(strlen(kCursorPrefix));
}

// Both inputs and the result are sorted and without duplicates.
std::vector<std::string> Intersect(const std::vector<std::string>& a,
                                   const std::vector<std::string>& b) {
  std::vector<std::string> result;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(),
                        std::back_inserter(result));
  return result;
}

std::vector<std::string> Unite(const std::vector<std::string>& a,
                               const std::vector<std::string>& b) {
  std::vector<std::string> result;
  std::set_union(a.begin(), a.end(), b.begin(), b.end(),
                 std::back_inserter(result));
  return result;
}

absl::Status DroppedError(const CollectionConfig& config) {
  return absl::NotFoundError(
      absl::StrCat("collection '", config.name, "' was dropped"));
}

}  // namespace

absl::StatusOr<std::optional<PointFilter>> Collection::CompileFilter(
    bool has_filter, const v1::Filter& filter, absl::string_view field) {
  if (!has_filter) return std::nullopt;
  FieldIndexTypes indexed;
  {
    absl::ReaderMutexLock lock(&index_mutex_);
    for (const auto& [key, spec] : field_indexes_) indexed[key] = spec.type;
  }
  absl::StatusOr<PointFilter> compiled =
      PointFilter::Compile(filter, field, indexed);
  if (!compiled.ok()) return compiled.status();
  if (compiled->empty()) return std::nullopt;
  return std::optional<PointFilter>(*std::move(compiled));
}

absl::StatusOr<std::optional<std::vector<std::string>>>
Collection::FindClauseCandidates(const FilterClause& clause,
                                 const storage::ReadView& view) {
  if (const auto* test = std::get_if<FieldTest>(&clause)) {
    // Past an eighth of the live points, reading index entries costs about
    // as much as testing every point's cached metadata.
    const size_t max_ids =
        std::max<size_t>(kFilterExactMaxPoints, id_to_label_.size() / 8);
    return LookupFieldIndex(*storage_, id_, *test, view, max_ids);
  }
  if (const auto* node = std::get_if<std::unique_ptr<FilterNode>>(&clause)) {
    return FindCandidates(**node, view);
  }
  const auto& ids = std::get<absl::flat_hash_set<std::string>>(clause);
  std::vector<std::string> sorted(ids.begin(), ids.end());
  std::sort(sorted.begin(), sorted.end());
  return std::optional<std::vector<std::string>>(std::move(sorted));
}

absl::StatusOr<std::optional<std::vector<std::string>>>
Collection::FindCandidates(const FilterNode& node,
                           const storage::ReadView& view) {
  // Every must condition holds, so each one that narrows the points
  // narrows the whole node.
  std::optional<std::vector<std::string>> result;
  for (const FilterClause& clause : node.must) {
    absl::StatusOr<std::optional<std::vector<std::string>>> candidates =
        FindClauseCandidates(clause, view);
    if (!candidates.ok()) return candidates.status();
    if (!candidates->has_value()) continue;
    result = result.has_value() ? Intersect(*result, **candidates)
                                : **std::move(candidates);
    if (result->empty()) return result;
  }

  // The should conditions narrow only when each of them does.
  if (node.should.empty()) return result;
  std::vector<std::string> any_should;
  for (const FilterClause& clause : node.should) {
    absl::StatusOr<std::optional<std::vector<std::string>>> candidates =
        FindClauseCandidates(clause, view);
    if (!candidates.ok()) return candidates.status();
    if (!candidates->has_value()) return result;
    any_should = Unite(any_should, **candidates);
  }
  return result.has_value() ? Intersect(*result, any_should) : any_should;
}

absl::StatusOr<std::vector<index::Label>> Collection::MatchingLabels(
    const PointFilter& filter, const storage::ReadView& view) {
  absl::StatusOr<std::optional<std::vector<std::string>>> candidates =
      FindCandidates(filter.root(), view);
  if (!candidates.ok()) return candidates.status();

  std::vector<index::Label> labels;
  if (candidates->has_value()) {
    for (const std::string& id : **candidates) {
      auto it = id_to_label_.find(id);
      if (it == id_to_label_.end()) continue;
      if (filter.Matches(id, CachedMetadata(id))) labels.push_back(it->second);
    }
  } else {
    for (const auto& [id, label] : id_to_label_) {
      if (filter.Matches(id, CachedMetadata(id))) labels.push_back(label);
    }
  }
  std::sort(labels.begin(), labels.end());
  return labels;
}

absl::Status Collection::FindMatchingIds(
    const google::protobuf::RepeatedPtrField<std::string>& requested,
    const PointFilter& filter,
    google::protobuf::RepeatedPtrField<std::string>* ids) {
  if (!requested.empty()) {
    for (const std::string& id : requested) {
      if (id_to_label_.contains(id) && filter.Matches(id, CachedMetadata(id))) {
        ids->Add(std::string(id));
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<index::Label>> labels =
      MatchingLabels(filter, view_);
  if (!labels.ok()) return labels.status();
  ids->Reserve(static_cast<int>(labels->size()));
  for (index::Label label : *labels) ids->Add(std::string(label_to_id_[label]));
  return absl::OkStatus();
}

absl::Status Collection::RunFilteredSearches(
    absl::Span<const v1::SearchRequest* const> searches,
    absl::Span<const PointFilter* const> filters, const storage::ReadView& view,
    std::vector<std::vector<index::Neighbor>>* neighbors) {
  // Searches of one request with the same filter share its matching points.
  struct Matching {
    std::vector<index::Label> labels;
    std::vector<uint8_t> selected;
  };
  absl::flat_hash_map<std::string, Matching> by_filter;
  for (size_t i = 0; i < filters.size(); ++i) {
    if (filters[i] == nullptr) continue;
    auto [it, inserted] =
        by_filter.try_emplace(searches[i]->filter().SerializeAsString());
    if (inserted) {
      absl::StatusOr<std::vector<index::Label>> labels =
          MatchingLabels(*filters[i], view);
      if (!labels.ok()) return labels.status();
      it->second.labels = *std::move(labels);
    }
    absl::StatusOr<std::vector<index::Neighbor>> found =
        SearchMatching(*searches[i], CandidateCount(*searches[i]),
                       it->second.labels, &it->second.selected);
    if (!found.ok()) return found.status();
    (*neighbors)[i] = *std::move(found);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<index::Neighbor>> Collection::SearchMatching(
    const v1::SearchRequest& search, int candidates,
    const std::vector<index::Label>& labels, std::vector<uint8_t>* selected) {
  if (labels.empty()) return std::vector<index::Neighbor>();
  std::vector<float> query(config_.dimension);
  PrepareForIndex(search.vector(), config_.metric, query.data());
  const int k = static_cast<int>(std::min<size_t>(candidates, labels.size()));

  // A few matching points are cheaper to compare one by one than to find
  // in the graph or the lists, and exact. FLAT, SQ8, untrained indexes and
  // exact searches always do so.
  const double selectivity =
      static_cast<double>(labels.size()) / id_to_label_.size();
  const index::IndexKind kind = index_->spec().kind;
  const bool scans = kind == index::IndexKind::kFlat ||
                     kind == index::IndexKind::kSq8 || !index_->trained();
  if (scans || search.params().exact() ||
      labels.size() <= kFilterExactMaxPoints ||
      selectivity < kFilterGraphMinSelectivity) {
    return index_->SearchAmong(query.data(), labels, k);
  }

  // Only a `selectivity` share of the points the walk or the probed lists
  // meet are hits, so the candidate list and the probed lists grow by
  // 1/selectivity to find as many hits.
  if (selected->empty()) {
    selected->assign(index_->size(), 0);
    for (index::Label label : labels) (*selected)[label] = 1;
  }
  const uint32_t ef_search = search.params().ef_search() != 0
                                 ? search.params().ef_search()
                                 : DefaultEfSearch();
  const uint32_t nprobe = search.params().nprobe() != 0
                              ? search.params().nprobe()
                              : DefaultNprobe();
  index::SearchOptions options;
  options.k = k;
  options.ef_search = static_cast<int>(std::min<double>(
      kMaxEfSearch, std::ceil(std::max<uint32_t>(ef_search, k) / selectivity)));
  options.nprobe = static_cast<int>(
      std::min<double>(kMaxNprobe, std::ceil(nprobe / selectivity)));
  absl::StatusOr<std::vector<index::Neighbor>> found =
      index_->SearchSelected(query.data(), options, *selected);
  if (!found.ok()) return found.status();
  // The graph walk can miss matching points that sit apart from the rest,
  // and the probed lists can hold too few. A short result is redone
  // exactly, so that k hits come back.
  if (static_cast<int>(found->size()) < k) {
    return index_->SearchAmong(query.data(), labels, k);
  }
  return found;
}

absl::StatusOr<uint64_t> Collection::Delete(const v1::DeleteRequest& request) {
  if (absl::Status status = ValidatePointIds(request.ids()); !status.ok()) {
    return status;
  }
  if (!request.has_filter()) return Delete(request.ids());
  absl::StatusOr<std::optional<PointFilter>> filter =
      CompileFilter(true, request.filter(), "filter");
  if (!filter.ok()) return filter.status();
  if (!filter->has_value()) {
    return absl::InvalidArgumentError(
        "filter has no conditions, so it would delete every point; to "
        "empty the collection, drop and create it again");
  }
  return Delete(request.ids(), &**filter);
}

absl::StatusOr<uint64_t> Collection::Count(const v1::CountRequest& request) {
  absl::StatusOr<std::optional<PointFilter>> filter =
      CompileFilter(request.has_filter(), request.filter(), "filter");
  if (!filter.ok()) return filter.status();
  absl::ReaderMutexLock lock(&index_mutex_);
  if (!filter->has_value()) return id_to_label_.size();
  absl::StatusOr<std::vector<index::Label>> labels =
      MatchingLabels(**filter, view_);
  if (!labels.ok()) return labels.status();
  return labels->size();
}

absl::StatusOr<v1::ScrollResponse> Collection::Scroll(
    const v1::ScrollRequest& request) {
  if (request.limit() > kMaxScrollLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit is ", request.limit(), ", it must be 0 (for ",
                     kDefaultScrollLimit, ") to ", kMaxScrollLimit));
  }
  const int limit = static_cast<int>(
      request.limit() != 0 ? request.limit() : kDefaultScrollLimit);
  std::string after_id;
  if (!request.cursor().empty()) {
    absl::StatusOr<std::string> decoded = DecodeCursor(request.cursor());
    if (!decoded.ok()) return decoded.status();
    after_id = *std::move(decoded);
  }
  absl::StatusOr<std::optional<PointFilter>> filter =
      CompileFilter(request.has_filter(), request.filter(), "filter");
  if (!filter.ok()) return filter.status();
  storage::ReadView view;
  {
    absl::ReaderMutexLock lock(&index_mutex_);
    view = view_;
  }

  // Reads points in id order from the cursor until the page is full and one
  // more match shows that another page follows.
  // TODO(perf): a narrow filter reads every point after the cursor.
  // Reading its field index candidates, sorted by id, would be faster.
  v1::ScrollResponse response;
  bool more = false;
  absl::Status status = storage_->ScanPointsAfter(
      id_, after_id, view,
      [&](absl::string_view point_id,
          storage::StoredPoint stored) -> absl::StatusOr<bool> {
        google::protobuf::Struct metadata;
        if ((filter->has_value() || request.include_metadata()) &&
            !stored.metadata.empty() &&
            !metadata.ParseFromString(stored.metadata)) {
          return absl::DataLossError(absl::StrCat(
              "stored metadata of point \"", absl::CHexEscape(point_id),
              "\" in collection '", config_.name, "' cannot be parsed"));
        }
        if (filter->has_value() &&
            !(*filter)->Matches(
                point_id, stored.metadata.empty() ? nullptr : &metadata)) {
          return true;
        }
        if (response.points_size() == limit) {
          more = true;
          return false;
        }
        v1::Point* point = response.add_points();
        point->set_id(std::string(point_id));
        if (request.include_vectors()) {
          point->mutable_vector()->Assign(stored.vector.begin(),
                                          stored.vector.end());
        }
        if (request.include_metadata()) {
          *point->mutable_metadata() = std::move(metadata);
        }
        return true;
      });
  if (!status.ok()) return status;
  if (more) {
    response.set_next_cursor(
        EncodeCursor(response.points(response.points_size() - 1).id()));
  }
  return response;
}

absl::StatusOr<v1::CollectionInfo> Collection::CreateFieldIndex(
    const v1::CreateFieldIndexRequest& request) {
  absl::StatusOr<FieldIndexSpec> spec =
      MakeFieldIndexSpec(request.key(), request.type());
  if (!spec.ok()) return spec.status();
  const absl::Time start = absl::Now();
  {
    absl::MutexLock write_lock(&write_mutex_);
    if (dropped_) return DroppedError(config_);

    // The definition and the entries of every point go into one batch, so
    // a crash leaves either the whole index or none of it.
    storage::PointBatch batch;
    size_t entries = 0;
    bool exists = false;
    {
      absl::ReaderMutexLock index_lock(&index_mutex_);
      auto it = field_indexes_.find(spec->key);
      exists = it != field_indexes_.end() && it->second.type == spec->type;
      if (it != field_indexes_.end() && !exists) {
        return absl::AlreadyExistsError(absl::StrCat(
            "key '", absl::CHexEscape(spec->key), "' is already indexed as ",
            v1::FieldIndexType_Name(it->second.type)));
      }
      if (!exists && field_indexes_.size() >= kMaxFieldIndexes) {
        return absl::FailedPreconditionError(
            absl::StrCat("collection '", config_.name, "' already has ",
                         kMaxFieldIndexes, " field indexes, the limit"));
      }
      if (!exists) {
        batch.PutFieldIndexKey(
            storage::EncodeFieldIndexDefinitionKey(id_, spec->key),
            EncodeFieldIndexDefinition(spec->type));
        for (const auto& [id, metadata] : metadata_) {
          entries += engine::AddFieldIndexWrites(id_, *spec, id, nullptr,
                                                 metadata.get(), &batch);
        }
      }
    }
    if (exists) return Describe();
    // TODO(perf): one batch contains every entry. Collections of many
    // millions of points would want the build split into several batches.
    absl::StatusOr<uint64_t> sequence = WriteToStorage(batch);
    if (!sequence.ok()) return sequence.status();
    storage::ReadView view = storage_->TakeReadView();

    absl::MutexLock index_lock(&index_mutex_);
    field_indexes_[spec->key] = *spec;
    view_ = std::move(view);
    NoteApplied(*sequence, {});
    spdlog::info("[{}] field index on '{}' ({}) built: {} entries in {:.2f} s",
                 config_.name, spec->key, v1::FieldIndexType_Name(spec->type),
                 entries, absl::ToDoubleSeconds(absl::Now() - start));
  }
  return Describe();
}

absl::Status Collection::LoadFieldIndexes() {
  absl::MutexLock lock(&index_mutex_);
  return storage_->ScanFieldIndex(
      storage::EncodeFieldIndexDefinitionsBegin(id_),
      storage::EncodeFieldIndexDefinitionsEnd(id_), view_,
      [&](absl::string_view stored_key, absl::string_view definition)
          ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mutex_) -> absl::StatusOr<bool> {
            absl::StatusOr<FieldIndexSpec> spec = DecodeFieldIndexDefinition(
                storage::DecodeFieldIndexDefinitionKey(stored_key), definition);
            if (!spec.ok()) return spec.status();
            std::string key = spec->key;
            field_indexes_[key] = *std::move(spec);
            return true;
          });
}

void Collection::DescribeFieldIndexes(v1::CollectionInfo* info) const {
  for (const auto& [key, spec] : field_indexes_) {
    v1::FieldIndexInfo* index = info->add_field_indexes();
    index->set_key(key);
    index->set_type(spec.type);
  }
}

void Collection::AddFieldIndexWrites(absl::string_view id,
                                     const google::protobuf::Struct* metadata,
                                     storage::PointBatch* batch) {
  if (field_indexes_.empty()) return;
  const google::protobuf::Struct* old_metadata = CachedMetadata(id);
  for (const auto& [key, spec] : field_indexes_) {
    engine::AddFieldIndexWrites(id_, spec, id, old_metadata, metadata, batch);
  }
}

const google::protobuf::Struct* Collection::CachedMetadata(
    absl::string_view id) const {
  auto it = metadata_.find(id);
  return it == metadata_.end() ? nullptr : it->second.get();
}

void Collection::CacheMetadata(absl::string_view id,
                               const google::protobuf::Struct* metadata) {
  auto it = metadata_.find(id);
  if (it != metadata_.end()) {
    metadata_bytes_ -= it->second->SpaceUsedLong() + id.size();
    metadata_.erase(it);
  }
  if (metadata == nullptr || metadata->fields().empty()) return;
  auto copy = std::make_unique<google::protobuf::Struct>(*metadata);
  metadata_bytes_ += copy->SpaceUsedLong() + id.size();
  metadata_.emplace(id, std::move(copy));
}

absl::Status Collection::CacheStoredMetadata(absl::string_view id,
                                             const std::string& bytes) {
  if (bytes.empty()) {
    CacheMetadata(id, nullptr);
    return absl::OkStatus();
  }
  google::protobuf::Struct metadata;
  if (!metadata.ParseFromString(bytes)) {
    return absl::DataLossError(
        absl::StrCat("stored metadata of point \"", absl::CHexEscape(id),
                     "\" in collection '", config_.name, "' cannot be parsed"));
  }
  CacheMetadata(id, &metadata);
  return absl::OkStatus();
}

}  // namespace vecdb::engine
