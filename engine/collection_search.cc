// The read path of a collection: Get, Search and SearchBatch.

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/collection.h"
#include "engine/limits.h"
#include "engine/validation.h"

namespace vecdb::engine {
namespace {

absl::Status ValidateSearch(const v1::SearchRequest& request,
                            const CollectionConfig& config) {
  if (request.top_k() < 1 || request.top_k() > kMaxTopK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "top_k is ", request.top_k(), ", it must be 1 to ", kMaxTopK));
  }
  if (request.params().ef_search() > kMaxEfSearch) {
    return absl::InvalidArgumentError(
        absl::StrCat("params.ef_search is ", request.params().ef_search(),
                     ", the limit is ", kMaxEfSearch));
  }
  if (request.params().nprobe() > kMaxNprobe) {
    return absl::InvalidArgumentError(
        absl::StrCat("params.nprobe is ", request.params().nprobe(),
                     ", the limit is ", kMaxNprobe));
  }
  if (request.params().oversampling() > kMaxOversampling) {
    return absl::InvalidArgumentError(
        absl::StrCat("params.oversampling is ", request.params().oversampling(),
                     ", the limit is ", kMaxOversampling));
  }
  if (request.has_score_threshold() && std::isnan(request.score_threshold())) {
    return absl::InvalidArgumentError("score_threshold is NaN");
  }
  absl::Status status =
      ValidateVector(request.vector(), config.dimension, config.metric);
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("query ", status.message()));
  }
  return absl::OkStatus();
}

// Parses metadata as storage keeps it; empty bytes are a point without
// metadata.
absl::Status ParseStoredMetadata(const std::string& bytes,
                                 absl::string_view point_id,
                                 absl::string_view collection,
                                 google::protobuf::Struct* metadata) {
  if (bytes.empty() || metadata->ParseFromString(bytes)) {
    return absl::OkStatus();
  }
  return absl::DataLossError(
      absl::StrCat("stored metadata of point \"", absl::CHexEscape(point_id),
                   "\" in collection '", collection, "' cannot be parsed"));
}

bool PassesThreshold(const v1::SearchRequest& request, v1::Metric metric,
                     float score) {
  if (!request.has_score_threshold()) return true;
  return metric == v1::L2 ? score <= request.score_threshold()
                          : score >= request.score_threshold();
}

}  // namespace

float Collection::ToScore(float distance) const {
  switch (config_.metric) {
    case v1::L2:
      // FAISS returns squared distances; rounding can make them slightly
      // negative.
      return std::sqrt(std::max(distance, 0.0f));
    case v1::COSINE:
      // Both sides are unit vectors; clamp the float rounding past +-1.
      return std::clamp(distance, -1.0f, 1.0f);
    default:
      return distance;
  }
}

absl::StatusOr<std::vector<v1::Point>> Collection::Get(
    const google::protobuf::RepeatedPtrField<std::string>& ids) {
  if (absl::Status status = ValidatePointIds(ids); !status.ok()) {
    return status;
  }
  storage::ReadView view;
  {
    absl::ReaderMutexLock lock(&index_mutex_);
    view = view_;
  }
  absl::StatusOr<std::vector<std::optional<storage::StoredPoint>>> stored =
      storage_->GetPoints(id_, std::vector<std::string>(ids.begin(), ids.end()),
                          view);
  if (!stored.ok()) return stored.status();

  std::vector<v1::Point> points;
  for (int i = 0; i < ids.size(); ++i) {
    std::optional<storage::StoredPoint>& found = (*stored)[i];
    if (!found.has_value()) continue;
    v1::Point& point = points.emplace_back();
    point.set_id(ids[i]);
    point.mutable_vector()->Assign(found->vector.begin(), found->vector.end());
    if (absl::Status status = ParseStoredMetadata(
            found->metadata, ids[i], config_.name, point.mutable_metadata());
        !status.ok()) {
      return status;
    }
  }
  return points;
}

absl::StatusOr<v1::SearchResponse> Collection::Search(
    const v1::SearchRequest& request) {
  if (absl::Status status = ValidateSearch(request, config_); !status.ok()) {
    return status;
  }
  absl::StatusOr<std::optional<PointFilter>> filter =
      CompileFilter(request.has_filter(), request.filter(), "filter");
  if (!filter.ok()) return filter.status();
  const v1::SearchRequest* searches[] = {&request};
  const PointFilter* filters[] = {filter->has_value() ? &**filter : nullptr};
  absl::StatusOr<std::vector<v1::SearchResponse>> responses =
      RunSearches(searches, filters);
  if (!responses.ok()) return responses.status();
  return std::move(responses->front());
}

uint32_t Collection::DefaultEfSearch() const {
  return index_config_.ef_search() != 0 ? index_config_.ef_search()
                                        : kDefaultHnswEfSearch;
}

uint32_t Collection::DefaultNprobe() const {
  return index_config_.nprobe() != 0 ? index_config_.nprobe() : kDefaultNprobe;
}

bool Collection::RerankApplies(const v1::SearchRequest& search) const {
  return search.params().rerank() && !index_->distances_exact();
}

int Collection::CandidateCount(const v1::SearchRequest& search) const {
  if (!RerankApplies(search)) return static_cast<int>(search.top_k());
  // The default follows the index in use, which during a rebuild to
  // another kind is the old one.
  const uint32_t default_oversampling =
      index_->spec().kind == index::IndexKind::kIvfPq
          ? kDefaultIvfPqOversampling
          : kDefaultOversampling;
  const uint32_t oversampling = search.params().oversampling() != 0
                                    ? search.params().oversampling()
                                    : default_oversampling;
  return static_cast<int>(
      std::min<uint64_t>(kMaxTopK, uint64_t{search.top_k()} * oversampling));
}

absl::StatusOr<std::vector<v1::SearchResponse>> Collection::RunSearches(
    absl::Span<const v1::SearchRequest* const> searches,
    absl::Span<const PointFilter* const> filters) {
  // The index, the id map and the read view change together under the
  // lock, so every search of the batch reads the same state, which contains
  // either all of a write or none of it.
  std::vector<std::vector<index::Neighbor>> neighbors(searches.size());
  std::vector<std::vector<std::string>> ids(searches.size());
  std::vector<bool> rerank(searches.size());
  storage::ReadView view;
  {
    absl::ReaderMutexLock lock(&index_mutex_);
    // Searches that share their index options go to FAISS together, which
    // spreads them over every core and, for exact search, uses BLAS.
    std::map<std::tuple<int, int, int, bool>, std::vector<size_t>> groups;
    for (size_t i = 0; i < searches.size(); ++i) {
      if (!filters.empty() && filters[i] != nullptr) continue;
      const v1::SearchParams& params = searches[i]->params();
      const uint32_t ef_search =
          params.ef_search() != 0 ? params.ef_search() : DefaultEfSearch();
      const uint32_t nprobe =
          params.nprobe() != 0 ? params.nprobe() : DefaultNprobe();
      groups[{CandidateCount(*searches[i]), static_cast<int>(ef_search),
              static_cast<int>(nprobe), params.exact()}]
          .push_back(i);
    }
    for (const auto& [key, members] : groups) {
      std::vector<float> queries(members.size() * config_.dimension);
      for (size_t j = 0; j < members.size(); ++j) {
        PrepareForIndex(searches[members[j]]->vector(), config_.metric,
                        queries.data() + j * config_.dimension);
      }
      index::SearchOptions options;
      std::tie(options.k, options.ef_search, options.nprobe, options.exact) =
          key;
      absl::StatusOr<std::vector<std::vector<index::Neighbor>>> rows =
          index_->SearchMany(static_cast<int64_t>(members.size()),
                             queries.data(), options);
      if (!rows.ok()) return rows.status();
      for (size_t j = 0; j < members.size(); ++j) {
        neighbors[members[j]] = std::move((*rows)[j]);
      }
    }
    if (absl::Status status =
            RunFilteredSearches(searches, filters, view_, &neighbors);
        !status.ok()) {
      return status;
    }
    for (size_t i = 0; i < searches.size(); ++i) {
      ids[i].reserve(neighbors[i].size());
      for (const index::Neighbor& neighbor : neighbors[i]) {
        ids[i].push_back(label_to_id_[neighbor.label]);
      }
      // Searches without rerank are cut to top_k at once; the others after
      // RerankCandidates below.
      rerank[i] = RerankApplies(*searches[i]);
      if (!rerank[i] && neighbors[i].size() > searches[i]->top_k()) {
        neighbors[i].resize(searches[i]->top_k());
        ids[i].resize(searches[i]->top_k());
      }
    }
    view = view_;
  }
  if (absl::Status status =
          RerankCandidates(searches, rerank, view, &neighbors, &ids);
      !status.ok()) {
    return status;
  }

  std::vector<v1::SearchResponse> responses;
  responses.reserve(searches.size());
  for (size_t i = 0; i < searches.size(); ++i) {
    absl::StatusOr<v1::SearchResponse> response =
        BuildHits(*searches[i], neighbors[i], ids[i], view);
    if (!response.ok()) return response.status();
    responses.push_back(*std::move(response));
  }
  return responses;
}

absl::Status Collection::RerankCandidates(
    absl::Span<const v1::SearchRequest* const> searches,
    const std::vector<bool>& rerank, const storage::ReadView& view,
    std::vector<std::vector<index::Neighbor>>* neighbors,
    std::vector<std::vector<std::string>>* ids) {
  const index::IndexMetric metric = config_.metric == v1::L2
                                        ? index::IndexMetric::kL2
                                        : index::IndexMetric::kInnerProduct;
  std::vector<float> query(config_.dimension);
  std::vector<float> stored_vector(config_.dimension);
  for (size_t i = 0; i < searches.size(); ++i) {
    if (!rerank[i]) continue;
    std::vector<std::string>& candidates = (*ids)[i];
    absl::StatusOr<std::vector<std::optional<storage::StoredPoint>>> stored =
        storage_->GetPoints(id_, candidates, view);
    if (!stored.ok()) return stored.status();
    PrepareForIndex(searches[i]->vector(), config_.metric, query.data());

    std::vector<std::pair<index::Neighbor, size_t>> scored;
    scored.reserve(candidates.size());
    for (size_t j = 0; j < candidates.size(); ++j) {
      const std::optional<storage::StoredPoint>& point = (*stored)[j];
      if (!point.has_value()) {
        return absl::InternalError(
            absl::StrCat("point \"", absl::CHexEscape(candidates[j]),
                         "\" is in the index of collection '", config_.name,
                         "' but not in storage"));
      }
      google::protobuf::RepeatedField<float> vector(point->vector.begin(),
                                                    point->vector.end());
      PrepareForIndex(vector, config_.metric, stored_vector.data());
      index::Neighbor exact = (*neighbors)[i][j];
      exact.distance =
          index::Distance(metric, query.data(), stored_vector.data(),
                          static_cast<int>(config_.dimension));
      scored.push_back({exact, j});
    }
    // Best first; ties go to the lower label, so the order is deterministic.
    const bool smaller_is_better = metric == index::IndexMetric::kL2;
    std::sort(scored.begin(), scored.end(),
              [smaller_is_better](const auto& a, const auto& b) {
                if (a.first.distance != b.first.distance) {
                  return smaller_is_better
                             ? a.first.distance < b.first.distance
                             : a.first.distance > b.first.distance;
                }
                return a.first.label < b.first.label;
              });
    const size_t kept = std::min<size_t>(scored.size(), searches[i]->top_k());
    std::vector<index::Neighbor> best;
    std::vector<std::string> best_ids;
    best.reserve(kept);
    best_ids.reserve(kept);
    for (size_t j = 0; j < kept; ++j) {
      best.push_back(scored[j].first);
      best_ids.push_back(std::move(candidates[scored[j].second]));
    }
    (*neighbors)[i] = std::move(best);
    candidates = std::move(best_ids);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SearchResponse> Collection::BuildHits(
    const v1::SearchRequest& request,
    const std::vector<index::Neighbor>& neighbors,
    const std::vector<std::string>& ids, const storage::ReadView& view) {
  v1::SearchResponse response;
  std::vector<std::string> kept_ids;
  for (size_t i = 0; i < neighbors.size(); ++i) {
    const float score = ToScore(neighbors[i].distance);
    if (!PassesThreshold(request, config_.metric, score)) continue;
    v1::ScoredPoint* hit = response.add_hits();
    hit->set_id(ids[i]);
    hit->set_score(score);
    kept_ids.push_back(ids[i]);
  }
  if (!request.include_vectors() && !request.include_metadata()) {
    return response;
  }

  absl::StatusOr<std::vector<std::optional<storage::StoredPoint>>> stored =
      storage_->GetPoints(id_, kept_ids, view);
  if (!stored.ok()) return stored.status();
  for (size_t i = 0; i < kept_ids.size(); ++i) {
    const std::optional<storage::StoredPoint>& found = (*stored)[i];
    if (!found.has_value()) {
      return absl::InternalError(
          absl::StrCat("point \"", absl::CHexEscape(kept_ids[i]),
                       "\" is in the index of collection '", config_.name,
                       "' but not in storage"));
    }
    v1::ScoredPoint* hit = response.mutable_hits(static_cast<int>(i));
    if (request.include_vectors()) {
      hit->mutable_vector()->Assign(found->vector.begin(), found->vector.end());
    }
    if (!request.include_metadata()) continue;
    if (absl::Status status =
            ParseStoredMetadata(found->metadata, kept_ids[i], config_.name,
                                hit->mutable_metadata());
        !status.ok()) {
      return status;
    }
  }
  return response;
}

absl::StatusOr<v1::SearchBatchResponse> Collection::SearchBatch(
    const v1::SearchBatchRequest& request) {
  std::vector<const v1::SearchRequest*> searches;
  std::vector<std::optional<PointFilter>> compiled;
  searches.reserve(request.searches_size());
  compiled.reserve(request.searches_size());
  for (int i = 0; i < request.searches_size(); ++i) {
    if (absl::Status status = ValidateSearch(request.searches(i), config_);
        !status.ok()) {
      return absl::Status(
          status.code(), absl::StrCat("searches[", i, "]: ", status.message()));
    }
    searches.push_back(&request.searches(i));
    absl::StatusOr<std::optional<PointFilter>> filter = CompileFilter(
        request.searches(i).has_filter(), request.searches(i).filter(),
        absl::StrCat("searches[", i, "].filter"));
    if (!filter.ok()) return filter.status();
    compiled.push_back(*std::move(filter));
  }
  std::vector<const PointFilter*> filters;
  for (const std::optional<PointFilter>& filter : compiled) {
    filters.push_back(filter.has_value() ? &*filter : nullptr);
  }
  absl::StatusOr<std::vector<v1::SearchResponse>> responses =
      RunSearches(searches, filters);
  if (!responses.ok()) return responses.status();

  v1::SearchBatchResponse batch;
  batch.mutable_results()->Reserve(static_cast<int>(responses->size()));
  for (v1::SearchResponse& response : *responses) {
    *batch.add_results() = std::move(response);
  }
  return batch;
}

}  // namespace vecdb::engine
