#ifndef VECDB_INDEX_HNSW_SEARCH_H_
#define VECDB_INDEX_HNSW_SEARCH_H_

#include <cstdint>
#include <vector>

#include "faiss/impl/HNSW.h"
#include "index/simd_flat_index.h"
#include "index/vector_index.h"

namespace vecdb::index {

// The labels a graph search may return: not deleted and, when `selected`
// is given, selected. Both have one byte per label; nonzero means deleted
// or selected. Unadmitted nodes still route the walk.
struct AdmittedLabels {
  const std::vector<uint8_t>* deleted = nullptr;
  const std::vector<uint8_t>* selected = nullptr;

  bool Admits(int64_t label) const {
    return (deleted == nullptr || (*deleted)[label] == 0) &&
           (selected == nullptr || (*selected)[label] != 0);
  }
};

// Walks the HNSW graph that FAISS built over `storage` and returns up to k
// admitted nodes nearest to `query` (storage.d floats), best first, with
// FAISS's raw distances (squared L2 or inner product). The level-0 walk
// keeps the `ef` best admitted nodes, ef >= k.
//
// FAISS's own IndexHNSW::search in version 1.7.3 allocates a visited table
// of ntotal bytes per call and starts an OpenMP team even for one query. It
// also ignores a per-search efSearch unless its result queue is sized by k.
// This walk keeps one visited table per thread, runs on the calling thread
// and takes ef as given. Safe to call from many threads while no thread
// adds to the graph.
std::vector<Neighbor> SearchHnswGraph(const faiss::HNSW& graph,
                                      const SimdFlatIndex& storage,
                                      const float* query, int k, int ef,
                                      const AdmittedLabels& admitted);

}  // namespace vecdb::index

#endif  // VECDB_INDEX_HNSW_SEARCH_H_
