#ifndef VECDB_INDEX_SIMD_FLAT_INDEX_H_
#define VECDB_INDEX_SIMD_FLAT_INDEX_H_

#include <cstdint>
#include <memory>

#include "faiss/IndexFlat.h"
#include "index/simd_distance.h"

namespace vecdb::index {

// A FAISS flat index whose distances come from the run-time chosen kernels
// of simd_distance.h instead of Debian's generic FAISS loops.
//
// FAISS keeps using it as an IndexFlat: an IndexHNSWFlat whose storage is a
// SimdFlatIndex builds its graph with these kernels, because HNSW takes its
// distance computer from the storage. faiss::write_index saves it as a plain
// IndexFlat, so files stay readable by any FAISS; FromFlat turns what
// faiss::read_index returns back into a SimdFlatIndex.
//
// Thread safety as for IndexFlat: concurrent searches, exclusive adds.
class SimdFlatIndex : public faiss::IndexFlat {
 public:
  SimdFlatIndex(int dimension, faiss::MetricType metric);

  // Moves the vectors of `flat` into a new SimdFlatIndex and leaves `flat`
  // empty.
  static std::unique_ptr<SimdFlatIndex> FromFlat(faiss::IndexFlat& flat);

  // Distance between `query` (d floats) and the vector at `position`:
  // squared L2, or the inner product, as FAISS reports it.
  float DistanceTo(const float* query, int64_t position) const {
    return kernel_(query, get_xb() + position * d, d);
  }

  // The kernel DistanceTo uses, for loops that call it directly.
  DistanceKernel kernel() const { return kernel_; }

  // Scans every vector with the SIMD kernels for fewer than
  // kBlasQueryCount queries; larger batches go to FAISS, which then
  // multiplies matrices with BLAS. Honours params->sel like IndexFlat.
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;

  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer()
      const override;

  // FAISS itself switches to BLAS from 20 queries on.
  static constexpr idx_t kBlasQueryCount = 20;

 private:
  DistanceKernel kernel_;
};

}  // namespace vecdb::index

#endif  // VECDB_INDEX_SIMD_FLAT_INDEX_H_
