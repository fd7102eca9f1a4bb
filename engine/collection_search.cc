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

absl::StatusOr<std::vector<v1::SearchResponse>> Collection::RunSearches(
    absl::Span<const v1::SearchRequest* const> searches,
    absl::Span<const PointFilter* const> filters) {
  // Searches that share their index options go to FAISS together, which
  // spreads them over every core and, for exact search, uses BLAS.
  std::map<std::tuple<int, int, bool>, std::vector<size_t>> groups;
  for (size_t i = 0; i < searches.size(); ++i) {
    if (!filters.empty() && filters[i] != nullptr) continue;
    const v1::SearchRequest& search = *searches[i];
    const uint32_t ef_search = search.params().ef_search() != 0
                                   ? search.params().ef_search()
                                   : config_.index.ef_search();
    groups[{static_cast<int>(search.top_k()), static_cast<int>(ef_search),
            search.params().exact()}]
        .push_back(i);
  }

  // The index, the id map and the read view change together under the
  // lock, so every search of the batch reads the same state, which contains
  // either all of a write or none of it.
  std::vector<std::vector<index::Neighbor>> neighbors(searches.size());
  std::vector<std::vector<std::string>> ids(searches.size());
  storage::ReadView view;
  {
    absl::ReaderMutexLock lock(&index_mutex_);
    for (const auto& [key, members] : groups) {
      std::vector<float> queries(members.size() * config_.dimension);
      for (size_t j = 0; j < members.size(); ++j) {
        PrepareForIndex(searches[members[j]]->vector(), config_.metric,
                        queries.data() + j * config_.dimension);
      }
      index::SearchOptions options;
      std::tie(options.k, options.ef_search, options.exact) = key;
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
    }
    view = view_;
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
