#include "index/vector_index.h"

#include <omp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/FaissException.h"
#include "faiss/impl/IDSelector.h"
#include "faiss/utils/distances.h"

namespace vecdb::index {
namespace {

constexpr int kMinM = 2;
constexpr int kMaxM = 256;
constexpr int kMaxEfConstruction = 4096;

faiss::MetricType ToFaiss(IndexMetric metric) {
  return metric == IndexMetric::kL2 ? faiss::METRIC_L2
                                    : faiss::METRIC_INNER_PRODUCT;
}

// Admits labels that exist and are not marked deleted.
class LiveLabelSelector : public faiss::IDSelector {
 public:
  explicit LiveLabelSelector(const std::vector<uint8_t>& deleted)
      : deleted_(deleted) {}

  bool is_member(faiss::Index::idx_t label) const override {
    return label >= 0 && static_cast<size_t>(label) < deleted_.size() &&
           deleted_[label] == 0;
  }

 private:
  const std::vector<uint8_t>& deleted_;
};

// Admits labels that are selected and not marked deleted. Both byte arrays
// have one entry per label.
class SelectedLiveLabelSelector : public faiss::IDSelector {
 public:
  SelectedLiveLabelSelector(const std::vector<uint8_t>& selected,
                            const std::vector<uint8_t>& deleted)
      : selected_(selected), deleted_(deleted) {}

  bool is_member(faiss::Index::idx_t label) const override {
    return label >= 0 && static_cast<size_t>(label) < deleted_.size() &&
           static_cast<size_t>(label) < selected_.size() &&
           selected_[label] != 0 && deleted_[label] == 0;
  }

 private:
  const std::vector<uint8_t>& selected_;
  const std::vector<uint8_t>& deleted_;
};

// Sets how many OpenMP threads FAISS uses inside a call. A single query
// gains nothing from more than one and would compete with the server's other
// request threads. Batches of queries and builds use every core. The setting
// is per thread, so it is applied before every call.
void UseOpenMpThreads(int threads) { omp_set_num_threads(threads); }

// Splits FAISS's `count` rows of `row_size` results into neighbour lists of
// at most k, skipping the -1 labels FAISS pads missing results with.
std::vector<std::vector<Neighbor>> CollectNeighbors(
    int64_t count, int row_size, const std::vector<float>& distances,
    const std::vector<faiss::Index::idx_t>& labels, int k) {
  std::vector<std::vector<Neighbor>> rows(count);
  for (int64_t row = 0; row < count; ++row) {
    std::vector<Neighbor>& neighbors = rows[row];
    neighbors.reserve(std::min(k, row_size));
    for (int i = 0; i < row_size && static_cast<int>(neighbors.size()) < k;
         ++i) {
      const size_t at = static_cast<size_t>(row) * row_size + i;
      if (labels[at] < 0) continue;
      neighbors.push_back({labels[at], distances[at]});
    }
  }
  return rows;
}

}  // namespace

VectorIndex::VectorIndex(const IndexSpec& spec) : spec_(spec) {}

VectorIndex::~VectorIndex() = default;

absl::StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Create(
    const IndexSpec& spec) {
  if (spec.dimension < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "index dimension must be at least 1, got ", spec.dimension));
  }
  std::unique_ptr<VectorIndex> index(new VectorIndex(spec));
  const faiss::MetricType metric = ToFaiss(spec.metric);

  if (spec.kind == IndexKind::kFlat) {
    auto flat = std::make_unique<faiss::IndexFlat>(spec.dimension, metric);
    index->flat_ = flat.get();
    index->index_ = std::move(flat);
    return index;
  }

  if (spec.m < kMinM || spec.m > kMaxM) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HNSW m must be between ", kMinM, " and ", kMaxM, ", got ", spec.m));
  }
  if (spec.ef_construction < 1 || spec.ef_construction > kMaxEfConstruction) {
    return absl::InvalidArgumentError(
        absl::StrCat("HNSW ef_construction must be between 1 and ",
                     kMaxEfConstruction, ", got ", spec.ef_construction));
  }
  auto hnsw =
      std::make_unique<faiss::IndexHNSWFlat>(spec.dimension, spec.m, metric);
  hnsw->hnsw.efConstruction = spec.ef_construction;
  // FAISS 1.7.3 sizes its candidate queue by max(hnsw.efSearch, k) but stops
  // by the efSearch of the search parameters, so a per-search efSearch only
  // works when the queue is sized by k. The index-wide value stays at 1 and
  // SearchGraph requests max(ef_search, k) results instead.
  hnsw->hnsw.efSearch = 1;
  index->flat_ = dynamic_cast<faiss::IndexFlat*>(hnsw->storage);
  index->hnsw_ = hnsw.get();
  index->index_ = std::move(hnsw);
  return index;
}

absl::Status VectorIndex::Add(int64_t count, const float* vectors) {
  if (count <= 0) return absl::OkStatus();
  UseOpenMpThreads(omp_get_num_procs());
  try {
    index_->add(count, vectors);
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("adding ", count, " vectors to FAISS failed: ", e.what()));
  }
  deleted_.resize(index_->ntotal, 0);
  return absl::OkStatus();
}

void VectorIndex::MarkDeleted(Label label) {
  if (label < 0 || static_cast<size_t>(label) >= deleted_.size()) return;
  if (deleted_[label] != 0) return;
  deleted_[label] = 1;
  ++deleted_count_;
}

int64_t VectorIndex::size() const { return index_->ntotal; }

absl::StatusOr<std::vector<Neighbor>> VectorIndex::Search(
    const float* query, const SearchOptions& options) const {
  absl::StatusOr<std::vector<std::vector<Neighbor>>> rows =
      SearchMany(1, query, options);
  if (!rows.ok()) return rows.status();
  return std::move(rows->front());
}

absl::StatusOr<std::vector<std::vector<Neighbor>>> VectorIndex::SearchMany(
    int64_t count, const float* queries, const SearchOptions& options) const {
  if (options.k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be at least 1, got ", options.k));
  }
  const int64_t live = live_count();
  if (live == 0 || count == 0) {
    return std::vector<std::vector<Neighbor>>(count);
  }
  const int k = static_cast<int>(std::min<int64_t>(options.k, live));
  UseOpenMpThreads(count > 1 ? omp_get_num_procs() : 1);

  // When k reaches the live count a graph walk gains nothing over a scan and
  // may miss points, so scan.
  if (hnsw_ == nullptr || options.exact || k >= live) {
    return SearchExact(count, queries, k);
  }
  absl::StatusOr<std::vector<std::vector<Neighbor>>> rows =
      SearchGraph(count, queries, k, std::max(options.ef_search, k));
  if (!rows.ok()) return rows.status();

  // Redo short results with an exact scan, so that none is returned.
  for (int64_t i = 0; i < count; ++i) {
    if (static_cast<int>((*rows)[i].size()) >= k) continue;
    absl::StatusOr<std::vector<std::vector<Neighbor>>> exact =
        SearchExact(1, queries + i * spec_.dimension, k);
    if (!exact.ok()) return exact.status();
    (*rows)[i] = std::move(exact->front());
  }
  return rows;
}

absl::StatusOr<std::vector<std::vector<Neighbor>>> VectorIndex::SearchExact(
    int64_t count, const float* queries, int k) const {
  LiveLabelSelector selector(deleted_);
  faiss::SearchParameters params;
  if (deleted_count_ > 0) params.sel = &selector;

  std::vector<float> distances(static_cast<size_t>(count) * k);
  std::vector<faiss::Index::idx_t> labels(distances.size());
  try {
    flat_->search(count, queries, k, distances.data(), labels.data(), &params);
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("FAISS exact search failed: ", e.what()));
  }
  return CollectNeighbors(count, k, distances, labels, k);
}

absl::StatusOr<std::vector<std::vector<Neighbor>>> VectorIndex::SearchGraph(
    int64_t count, const float* queries, int k, int ef_search) const {
  LiveLabelSelector selector(deleted_);
  faiss::SearchParametersHNSW params;
  params.efSearch = ef_search;
  if (deleted_count_ > 0) params.sel = &selector;

  // Requesting ef_search results sizes FAISS's candidate queue to ef_search
  // (see Create). The best k of them are the result.
  const int requested = static_cast<int>(std::min<int64_t>(ef_search, size()));
  std::vector<float> distances(static_cast<size_t>(count) * requested);
  std::vector<faiss::Index::idx_t> labels(distances.size());
  try {
    hnsw_->search(count, queries, requested, distances.data(), labels.data(),
                  &params);
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("FAISS HNSW search failed: ", e.what()));
  }
  return CollectNeighbors(count, requested, distances, labels, k);
}

uint64_t VectorIndex::MemoryBytes() const {
  uint64_t bytes =
      static_cast<uint64_t>(size()) * spec_.dimension * sizeof(float) +
      deleted_.capacity();
  if (hnsw_ != nullptr) {
    const faiss::HNSW& graph = hnsw_->hnsw;
    bytes += graph.neighbors.capacity() * sizeof(graph.neighbors[0]) +
             graph.offsets.capacity() * sizeof(graph.offsets[0]) +
             graph.levels.capacity() * sizeof(graph.levels[0]);
  }
  return bytes;
}

absl::StatusOr<std::vector<Neighbor>> VectorIndex::SearchSelected(
    const float* query, const SearchOptions& options,
    const std::vector<uint8_t>& selected) const {
  if (options.k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be at least 1, got ", options.k));
  }
  if (size() == 0) return std::vector<Neighbor>();
  const int k = static_cast<int>(std::min<int64_t>(options.k, size()));
  UseOpenMpThreads(1);
  SelectedLiveLabelSelector selector(selected, deleted_);

  // The HNSW candidate queue is sized by the results requested, as in
  // SearchGraph.
  const int requested = hnsw_ == nullptr
                            ? k
                            : static_cast<int>(std::min<int64_t>(
                                  std::max(options.ef_search, k), size()));
  std::vector<float> distances(requested);
  std::vector<faiss::Index::idx_t> labels(requested);
  try {
    if (hnsw_ == nullptr) {
      faiss::SearchParameters params;
      params.sel = &selector;
      flat_->search(1, query, requested, distances.data(), labels.data(),
                    &params);
    } else {
      faiss::SearchParametersHNSW params;
      params.efSearch = requested;
      params.sel = &selector;
      hnsw_->search(1, query, requested, distances.data(), labels.data(),
                    &params);
    }
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("FAISS filtered search failed: ", e.what()));
  }
  return std::move(
      CollectNeighbors(1, requested, distances, labels, k).front());
}

absl::StatusOr<std::vector<Neighbor>> VectorIndex::SearchAmong(
    const float* query, absl::Span<const Label> labels, int k) const {
  if (k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be at least 1, got ", k));
  }
  for (Label label : labels) {
    if (label < 0 || label >= size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label ", label, " is outside the index of ", size(), " vectors"));
    }
  }
  std::vector<float> distances(labels.size());
  if (spec_.metric == IndexMetric::kL2) {
    faiss::fvec_L2sqr_by_idx(distances.data(), query, flat_->get_xb(),
                             labels.data(), spec_.dimension, 1, labels.size());
  } else {
    faiss::fvec_inner_products_by_idx(distances.data(), query, flat_->get_xb(),
                                      labels.data(), spec_.dimension, 1,
                                      labels.size());
  }

  std::vector<Neighbor> neighbors(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    neighbors[i] = {labels[i], distances[i]};
  }
  // Best first: smallest L2 distance or largest inner product. Ties go to
  // the lower label, so that the order is deterministic.
  const bool smaller_is_better = spec_.metric == IndexMetric::kL2;
  auto better = [smaller_is_better](const Neighbor& a, const Neighbor& b) {
    if (a.distance != b.distance) {
      return smaller_is_better ? a.distance < b.distance
                               : a.distance > b.distance;
    }
    return a.label < b.label;
  };
  const size_t kept = std::min(labels.size(), static_cast<size_t>(k));
  std::partial_sort(neighbors.begin(), neighbors.begin() + kept,
                    neighbors.end(), better);
  neighbors.resize(kept);
  return neighbors;
}

}  // namespace vecdb::index
