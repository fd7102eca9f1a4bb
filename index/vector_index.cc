#include "index/vector_index.h"

#include <omp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/FaissException.h"
#include "faiss/impl/IDSelector.h"
#include "faiss/index_io.h"
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

// Admits labels that exist, are not marked deleted and, when `selected` is
// given, are selected in it. FAISS passes positions in one index, which are
// the labels minus `offset`.
class LiveLabelSelector : public faiss::IDSelector {
 public:
  LiveLabelSelector(const std::vector<uint8_t>& deleted, Label offset,
                    const std::vector<uint8_t>* selected = nullptr)
      : deleted_(deleted), offset_(offset), selected_(selected) {}

  bool is_member(faiss::Index::idx_t position) const override {
    const Label label = position + offset_;
    if (label < 0 || static_cast<size_t>(label) >= deleted_.size() ||
        deleted_[label] != 0) {
      return false;
    }
    return selected_ == nullptr ||
           (static_cast<size_t>(label) < selected_->size() &&
            (*selected_)[label] != 0);
  }

 private:
  const std::vector<uint8_t>& deleted_;
  const Label offset_;
  const std::vector<uint8_t>* const selected_;
};

// Sets how many OpenMP threads FAISS uses inside a call. A single query
// gains nothing from more than one and would compete with the server's other
// request threads. Batches of queries and builds use every core. The setting
// is per thread, so it is applied before every call.
void UseOpenMpThreads(int threads) { omp_set_num_threads(threads); }

// Splits FAISS's `count` rows of `row_size` results into neighbour lists of
// at most k, skipping the -1 labels FAISS pads missing results with.
// FAISS positions are shifted by `offset` to become labels.
std::vector<std::vector<Neighbor>> CollectNeighbors(
    int64_t count, int row_size, const std::vector<float>& distances,
    const std::vector<faiss::Index::idx_t>& labels, int k, Label offset = 0) {
  std::vector<std::vector<Neighbor>> rows(count);
  for (int64_t row = 0; row < count; ++row) {
    std::vector<Neighbor>& neighbors = rows[row];
    neighbors.reserve(std::min(k, row_size));
    for (int i = 0; i < row_size && static_cast<int>(neighbors.size()) < k;
         ++i) {
      const size_t at = static_cast<size_t>(row) * row_size + i;
      if (labels[at] < 0) continue;
      neighbors.push_back({labels[at] + offset, distances[at]});
    }
  }
  return rows;
}

// Merges `extra` into `rows`, row by row, keeping the best k of each.
void MergeRows(std::vector<std::vector<Neighbor>>* rows,
               const std::vector<std::vector<Neighbor>>& extra, int k,
               IndexMetric metric) {
  auto better = [metric](const Neighbor& a, const Neighbor& b) {
    return metric == IndexMetric::kL2 ? a.distance < b.distance
                                      : a.distance > b.distance;
  };
  for (size_t row = 0; row < rows->size(); ++row) {
    std::vector<Neighbor>& merged = (*rows)[row];
    if (extra[row].empty()) continue;
    merged.insert(merged.end(), extra[row].begin(), extra[row].end());
    std::stable_sort(merged.begin(), merged.end(), better);
    if (static_cast<int>(merged.size()) > k) merged.resize(k);
  }
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
    if (absl::Status status = index->Adopt(
            std::make_unique<faiss::IndexFlat>(spec.dimension, metric));
        !status.ok()) {
      return status;
    }
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
  if (absl::Status status = index->Adopt(std::move(hnsw)); !status.ok()) {
    return status;
  }
  index->pending_ = std::make_unique<faiss::IndexFlat>(spec.dimension, metric);
  return index;
}

absl::StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Load(
    const IndexSpec& spec, faiss::IOReader* reader,
    std::vector<uint8_t> deleted) {
  std::unique_ptr<faiss::Index> loaded;
  try {
    loaded.reset(faiss::read_index(reader));
  } catch (const faiss::FaissException& e) {
    return absl::DataLossError(
        absl::StrCat("FAISS cannot read the index: ", e.what()));
  }
  std::unique_ptr<VectorIndex> index(new VectorIndex(spec));
  if (absl::Status status = index->Adopt(std::move(loaded)); !status.ok()) {
    return status;
  }
  if (index->hnsw_ != nullptr) {
    // The vectors not yet in the graph follow as a flat index.
    std::unique_ptr<faiss::Index> pending;
    try {
      pending.reset(faiss::read_index(reader));
    } catch (const faiss::FaissException& e) {
      return absl::DataLossError(absl::StrCat(
          "FAISS cannot read the vectors waiting for the graph: ", e.what()));
    }
    auto* flat = dynamic_cast<faiss::IndexFlat*>(pending.get());
    if (flat == nullptr || flat->d != spec.dimension ||
        flat->metric_type != ToFaiss(spec.metric)) {
      return absl::DataLossError(
          "the vectors waiting for the graph do not form a matching flat "
          "index");
    }
    pending.release();
    index->pending_.reset(flat);
  }
  if (static_cast<int64_t>(deleted.size()) != index->size()) {
    return absl::DataLossError(absl::StrCat("the index contains ", index->size(),
                                            " vectors but ", deleted.size(),
                                            " deletion marks came with it"));
  }
  index->deleted_ = std::move(deleted);
  index->deleted_count_ = static_cast<int64_t>(
      std::count_if(index->deleted_.begin(), index->deleted_.end(),
                    [](uint8_t mark) { return mark != 0; }));
  return index;
}

absl::Status VectorIndex::Adopt(std::unique_ptr<faiss::Index> index) {
  if (index->d != spec_.dimension ||
      index->metric_type != ToFaiss(spec_.metric)) {
    return absl::DataLossError(absl::StrCat(
        "the index has dimension ", index->d, " and FAISS metric ",
        static_cast<int>(index->metric_type), ", expected ", spec_.dimension,
        " and ", static_cast<int>(ToFaiss(spec_.metric))));
  }
  if (spec_.kind == IndexKind::kFlat) {
    auto* flat = dynamic_cast<faiss::IndexFlat*>(index.get());
    if (flat == nullptr) {
      return absl::DataLossError("the index is not a flat FAISS index");
    }
    flat_ = flat;
    index_ = std::move(index);
    deleted_.resize(index_->ntotal, 0);
    return absl::OkStatus();
  }
  auto* hnsw = dynamic_cast<faiss::IndexHNSWFlat*>(index.get());
  if (hnsw == nullptr ||
      dynamic_cast<faiss::IndexFlat*>(hnsw->storage) == nullptr) {
    return absl::DataLossError("the index is not a FAISS HNSW flat index");
  }
  if (hnsw->hnsw.nb_neighbors(1) != spec_.m) {
    return absl::DataLossError(absl::StrCat("the HNSW index has m ",
                                            hnsw->hnsw.nb_neighbors(1),
                                            ", expected ", spec_.m));
  }
  // FAISS 1.7.3 sizes its candidate queue by max(hnsw.efSearch, k) but stops
  // by the efSearch of the search parameters, so a per-search efSearch only
  // works when the queue is sized by k. The index-wide value stays at 1 and
  // SearchGraph requests max(ef_search, k) results instead.
  hnsw->hnsw.efSearch = 1;
  hnsw->hnsw.efConstruction = spec_.ef_construction;
  flat_ = dynamic_cast<faiss::IndexFlat*>(hnsw->storage);
  hnsw_ = hnsw;
  index_ = std::move(index);
  deleted_.resize(index_->ntotal, 0);
  return absl::OkStatus();
}

absl::Status VectorIndex::Save(faiss::IOWriter* writer) const {
  try {
    faiss::write_index(index_.get(), writer);
    if (pending_ != nullptr) faiss::write_index(pending_.get(), writer);
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("FAISS cannot write the index: ", e.what()));
  }
  return absl::OkStatus();
}

const float* VectorIndex::StoredVector(Label label) const {
  const Label in_graph = index_->ntotal;
  if (label < in_graph) {
    return flat_->get_xb() + static_cast<size_t>(label) * spec_.dimension;
  }
  return pending_->get_xb() +
         static_cast<size_t>(label - in_graph) * spec_.dimension;
}

absl::Status VectorIndex::Add(int64_t count, const float* vectors,
                              AddMode mode) {
  if (count <= 0) return absl::OkStatus();
  UseOpenMpThreads(omp_get_num_procs());
  // Labels follow the order of addition, so once vectors wait for the
  // graph, later ones wait behind them.
  const bool defer = pending_ != nullptr &&
                     (mode == AddMode::kDeferGraph || pending_->ntotal > 0);
  try {
    if (defer) {
      pending_->add(count, vectors);
    } else {
      index_->add(count, vectors);
    }
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("adding ", count, " vectors to FAISS failed: ", e.what()));
  }
  deleted_.resize(size(), 0);
  return absl::OkStatus();
}

absl::Status VectorIndex::IndexPending(int64_t max_count) {
  const int64_t count = std::min(max_count, pending_count());
  if (count <= 0) return absl::OkStatus();
  UseOpenMpThreads(omp_get_num_procs());
  try {
    index_->add(count, pending_->get_xb());
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat(
        "adding ", count, " waiting vectors to the graph failed: ", e.what()));
  }
  std::vector<uint8_t>& codes = pending_->codes;
  codes.erase(codes.begin(),
              codes.begin() + static_cast<size_t>(count) * pending_->code_size);
  pending_->ntotal -= count;
  return absl::OkStatus();
}

int64_t VectorIndex::pending_count() const {
  return pending_ == nullptr ? 0 : pending_->ntotal;
}

void VectorIndex::MarkDeleted(Label label) {
  if (label < 0 || static_cast<size_t>(label) >= deleted_.size()) return;
  if (deleted_[label] != 0) return;
  deleted_[label] = 1;
  ++deleted_count_;
}

int64_t VectorIndex::size() const { return index_->ntotal + pending_count(); }

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
  if (pending_count() > 0) {
    absl::StatusOr<std::vector<std::vector<Neighbor>>> waiting =
        SearchFlat(*pending_, index_->ntotal, count, queries, k);
    if (!waiting.ok()) return waiting.status();
    MergeRows(&*rows, *waiting, k, spec_.metric);
  }

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
  absl::StatusOr<std::vector<std::vector<Neighbor>>> rows =
      SearchFlat(*flat_, 0, count, queries, k);
  if (!rows.ok() || pending_count() == 0) return rows;
  absl::StatusOr<std::vector<std::vector<Neighbor>>> waiting =
      SearchFlat(*pending_, index_->ntotal, count, queries, k);
  if (!waiting.ok()) return waiting.status();
  MergeRows(&*rows, *waiting, k, spec_.metric);
  return rows;
}

absl::StatusOr<std::vector<std::vector<Neighbor>>> VectorIndex::SearchFlat(
    const faiss::IndexFlat& flat, Label offset, int64_t count,
    const float* queries, int k, const std::vector<uint8_t>* selected) const {
  LiveLabelSelector selector(deleted_, offset, selected);
  faiss::SearchParameters params;
  if (deleted_count_ > 0 || selected != nullptr) params.sel = &selector;

  std::vector<float> distances(static_cast<size_t>(count) * k);
  std::vector<faiss::Index::idx_t> labels(distances.size());
  try {
    flat.search(count, queries, k, distances.data(), labels.data(), &params);
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("FAISS exact search failed: ", e.what()));
  }
  return CollectNeighbors(count, k, distances, labels, k, offset);
}

absl::StatusOr<std::vector<std::vector<Neighbor>>> VectorIndex::SearchGraph(
    int64_t count, const float* queries, int k, int ef_search) const {
  LiveLabelSelector selector(deleted_, 0);
  faiss::SearchParametersHNSW params;
  params.efSearch = ef_search;
  if (deleted_count_ > 0) params.sel = &selector;

  // Requesting ef_search results sizes FAISS's candidate queue to ef_search
  // (see Create). The best k of them are the result.
  const int requested =
      static_cast<int>(std::min<int64_t>(ef_search, index_->ntotal));
  if (requested == 0) return std::vector<std::vector<Neighbor>>(count);
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
  uint64_t bytes = flat_->codes.capacity() + deleted_.capacity();
  if (pending_ != nullptr) bytes += pending_->codes.capacity();
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
  if (hnsw_ == nullptr) {
    absl::StatusOr<std::vector<std::vector<Neighbor>>> rows =
        SearchFlat(*flat_, 0, 1, query, k, &selected);
    if (!rows.ok()) return rows.status();
    return std::move(rows->front());
  }

  // The HNSW candidate queue is sized by the results requested, as in
  // SearchGraph.
  std::vector<std::vector<Neighbor>> rows(1);
  const int requested = static_cast<int>(
      std::min<int64_t>(std::max(options.ef_search, k), index_->ntotal));
  if (requested > 0) {
    LiveLabelSelector selector(deleted_, 0, &selected);
    std::vector<float> distances(requested);
    std::vector<faiss::Index::idx_t> labels(requested);
    faiss::SearchParametersHNSW params;
    params.efSearch = requested;
    params.sel = &selector;
    try {
      hnsw_->search(1, query, requested, distances.data(), labels.data(),
                    &params);
    } catch (const faiss::FaissException& e) {
      return absl::InternalError(
          absl::StrCat("FAISS filtered search failed: ", e.what()));
    }
    rows = CollectNeighbors(1, requested, distances, labels, k);
  }
  if (pending_count() > 0) {
    absl::StatusOr<std::vector<std::vector<Neighbor>>> waiting =
        SearchFlat(*pending_, index_->ntotal, 1, query, k, &selected);
    if (!waiting.ok()) return waiting.status();
    MergeRows(&rows, *waiting, k, spec_.metric);
  }
  return std::move(rows.front());
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
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* stored = StoredVector(labels[i]);
    distances[i] =
        spec_.metric == IndexMetric::kL2
            ? faiss::fvec_L2sqr(query, stored, spec_.dimension)
            : faiss::fvec_inner_product(query, stored, spec_.dimension);
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
