#include "index/vector_index.h"

#include <omp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/FaissException.h"
#include "faiss/impl/IDSelector.h"

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

// FAISS parallelises inside a call with OpenMP. A single query gains nothing
// from that and would compete with the server's other request threads, so
// searches run on the calling thread alone; builds use every core. The
// setting is per thread, so it is applied before every call.
void UseOpenMpThreads(int threads) { omp_set_num_threads(threads); }

std::vector<Neighbor> CollectNeighbors(
    const std::vector<float>& distances,
    const std::vector<faiss::Index::idx_t>& labels, int k) {
  std::vector<Neighbor> neighbors;
  neighbors.reserve(std::min<size_t>(k, labels.size()));
  for (size_t i = 0; i < labels.size() && neighbors.size() < size_t(k); ++i) {
    // FAISS pads missing results with label -1.
    if (labels[i] < 0) continue;
    neighbors.push_back({labels[i], distances[i]});
  }
  return neighbors;
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
  // SearchGraph asks for max(ef_search, k) results instead.
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
  if (options.k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be at least 1, got ", options.k));
  }
  const int64_t live = live_count();
  if (live == 0) return std::vector<Neighbor>();
  const int k = static_cast<int>(std::min<int64_t>(options.k, live));

  // When k reaches the live count a graph walk gains nothing over a scan and
  // may miss points, so scan.
  if (hnsw_ == nullptr || options.exact || k >= live) {
    return SearchExact(query, k);
  }
  absl::StatusOr<std::vector<Neighbor>> neighbors =
      SearchGraph(query, k, std::max(options.ef_search, k));
  if (!neighbors.ok()) return neighbors.status();
  // Deleted labels can cut the graph off from live ones; a short answer is
  // never returned.
  if (static_cast<int>(neighbors->size()) < k) return SearchExact(query, k);
  return neighbors;
}

absl::StatusOr<std::vector<Neighbor>> VectorIndex::SearchExact(
    const float* query, int k) const {
  LiveLabelSelector selector(deleted_);
  faiss::SearchParameters params;
  if (deleted_count_ > 0) params.sel = &selector;

  std::vector<float> distances(k);
  std::vector<faiss::Index::idx_t> labels(k);
  UseOpenMpThreads(1);
  try {
    flat_->search(1, query, k, distances.data(), labels.data(), &params);
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("FAISS exact search failed: ", e.what()));
  }
  return CollectNeighbors(distances, labels, k);
}

absl::StatusOr<std::vector<Neighbor>> VectorIndex::SearchGraph(
    const float* query, int k, int ef_search) const {
  LiveLabelSelector selector(deleted_);
  faiss::SearchParametersHNSW params;
  params.efSearch = ef_search;
  if (deleted_count_ > 0) params.sel = &selector;

  // Asking for ef_search results sizes FAISS's candidate queue to ef_search
  // (see Create); the best k of them are the answer.
  const int wanted = static_cast<int>(std::min<int64_t>(ef_search, size()));
  std::vector<float> distances(wanted);
  std::vector<faiss::Index::idx_t> labels(wanted);
  UseOpenMpThreads(1);
  try {
    hnsw_->search(1, query, wanted, distances.data(), labels.data(), &params);
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("FAISS HNSW search failed: ", e.what()));
  }
  return CollectNeighbors(distances, labels, k);
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

}  // namespace vecdb::index
