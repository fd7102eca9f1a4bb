#include "index/simd_flat_index.h"

#include <utility>

#include "faiss/impl/DistanceComputer.h"
#include "faiss/impl/IDSelector.h"
#include "faiss/utils/Heap.h"

namespace vecdb::index {
namespace {

DistanceKernel KernelFor(faiss::MetricType metric) {
  const DistanceKernels& kernels = ActiveKernels();
  return metric == faiss::METRIC_INNER_PRODUCT ? kernels.inner_product
                                               : kernels.l2_squared;
}

// The distance computer that HNSW construction calls for every distance.
class SimdDistanceComputer : public faiss::FlatCodesDistanceComputer {
 public:
  explicit SimdDistanceComputer(const SimdFlatIndex& index)
      : faiss::FlatCodesDistanceComputer(index.codes.data(), index.code_size),
        vectors_(index.get_xb()),
        dimension_(index.d),
        kernel_(index.kernel()) {}

  void set_query(const float* query) override { query_ = query; }

  float distance_to_code(const uint8_t* code) override {
    return kernel_(query_, reinterpret_cast<const float*>(code), dimension_);
  }

  float symmetric_dis(idx_t i, idx_t j) override {
    return kernel_(vectors_ + i * dimension_, vectors_ + j * dimension_,
                   dimension_);
  }

 private:
  const float* const vectors_;
  const size_t dimension_;
  const DistanceKernel kernel_;
  const float* query_ = nullptr;
};

// Keeps the k best of every vector for one query in a FAISS heap: a max-heap
// of L2 distances (CMax) or a min-heap of inner products (CMin).
template <typename Heap>
void ScanOne(const SimdFlatIndex& index, const float* query, int64_t k,
             const faiss::IDSelector* selector, float* distances,
             int64_t* labels) {
  faiss::heap_heapify<Heap>(k, distances, labels);
  const DistanceKernel kernel = index.kernel();
  const float* vectors = index.get_xb();
  const size_t dimension = index.d;
  for (int64_t i = 0; i < index.ntotal; ++i) {
    if (selector != nullptr && !selector->is_member(i)) continue;
    const float distance = kernel(query, vectors + i * dimension, dimension);
    if (Heap::cmp(distances[0], distance)) {
      faiss::heap_replace_top<Heap>(k, distances, labels, distance, i);
    }
  }
  faiss::heap_reorder<Heap>(k, distances, labels);
}

}  // namespace

SimdFlatIndex::SimdFlatIndex(int dimension, faiss::MetricType metric)
    : faiss::IndexFlat(dimension, metric), kernel_(KernelFor(metric)) {}

std::unique_ptr<SimdFlatIndex> SimdFlatIndex::FromFlat(faiss::IndexFlat& flat) {
  auto index = std::make_unique<SimdFlatIndex>(flat.d, flat.metric_type);
  index->codes = std::move(flat.codes);
  index->ntotal = flat.ntotal;
  flat.codes.clear();
  flat.ntotal = 0;
  return index;
}

void SimdFlatIndex::search(idx_t n, const float* x, idx_t k, float* distances,
                           idx_t* labels,
                           const faiss::SearchParameters* params) const {
  if (n >= kBlasQueryCount) {
    faiss::IndexFlat::search(n, x, k, distances, labels, params);
    return;
  }
  const faiss::IDSelector* selector = params == nullptr ? nullptr : params->sel;
  for (idx_t q = 0; q < n; ++q) {
    float* row_distances = distances + q * k;
    idx_t* row_labels = labels + q * k;
    if (metric_type == faiss::METRIC_INNER_PRODUCT) {
      ScanOne<faiss::CMin<float, idx_t>>(*this, x + q * d, k, selector,
                                         row_distances, row_labels);
    } else {
      ScanOne<faiss::CMax<float, idx_t>>(*this, x + q * d, k, selector,
                                         row_distances, row_labels);
    }
  }
}

faiss::FlatCodesDistanceComputer* SimdFlatIndex::get_FlatCodesDistanceComputer()
    const {
  return new SimdDistanceComputer(*this);
}

}  // namespace vecdb::index
