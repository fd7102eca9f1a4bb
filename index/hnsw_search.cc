#include "index/hnsw_search.h"

#include <xmmintrin.h>

#include <algorithm>
#include <functional>
#include <utility>

namespace vecdb::index {
namespace {

// Marks the nodes one search has reached. A node is visited when its mark
// equals the current generation, so starting a search only increments a
// counter, except once every 65,535 searches, when the marks are cleared.
class VisitedMarks {
 public:
  void Start(size_t node_count) {
    if (marks_.size() < node_count) marks_.resize(node_count, 0);
    if (++generation_ == 0) {
      std::fill(marks_.begin(), marks_.end(), 0);
      generation_ = 1;
    }
  }

  // Returns true the first time `node` is seen in this search.
  bool Visit(int64_t node) {
    if (marks_[node] == generation_) return false;
    marks_[node] = generation_;
    return true;
  }

 private:
  std::vector<uint16_t> marks_;
  uint16_t generation_ = 0;
};

// A node and its score, the distance the walk minimises: squared L2, or
// the negated inner product.
struct Scored {
  float score;
  int64_t node;
};

bool NearerFirst(const Scored& a, const Scored& b) { return a.score > b.score; }
bool FartherFirst(const Scored& a, const Scored& b) {
  return a.score < b.score;
}

// Per-thread buffers, reused so that a search allocates nothing once the
// thread has run one of the same size.
struct WalkBuffers {
  VisitedMarks visited;
  std::vector<Scored> candidates;  // heap, nearest on top
  std::vector<Scored> results;     // heap, farthest on top
  std::vector<int64_t> fresh;      // unvisited neighbours of one node
};

thread_local WalkBuffers buffers;

// Loads the start of a vector into the cache ahead of its distance.
void PrefetchVector(const float* vector, size_t dimension) {
  constexpr size_t kFloatsPerLine = 16;
  constexpr size_t kMaxLines = 8;
  const size_t lines = std::min(kMaxLines, (dimension + 15) / kFloatsPerLine);
  for (size_t line = 0; line < lines; ++line) {
    _mm_prefetch(reinterpret_cast<const char*>(vector + line * kFloatsPerLine),
                 _MM_HINT_T0);
  }
}

class GraphWalk {
 public:
  GraphWalk(const faiss::HNSW& graph, const SimdFlatIndex& storage,
            const float* query)
      : graph_(graph),
        storage_(storage),
        query_(query),
        vectors_(storage.get_xb()),
        dimension_(storage.d),
        kernel_(storage.kernel()),
        negate_(storage.metric_type == faiss::METRIC_INNER_PRODUCT) {}

  float Score(int64_t node) const {
    const float distance = kernel_(query_, VectorOf(node), dimension_);
    return negate_ ? -distance : distance;
  }

  // Moves greedily from `entry` towards the query on every level above 0.
  Scored Descend(Scored entry) const {
    for (int level = graph_.max_level; level >= 1; --level) {
      bool moved = true;
      while (moved) {
        moved = false;
        const auto [begin, end] = Range(entry.node, level);
        for (size_t i = begin; i < end; ++i) {
          const int64_t neighbor = graph_.neighbors[i];
          if (neighbor < 0) break;
          const float score = Score(neighbor);
          if (score < entry.score) {
            entry = {score, neighbor};
            moved = true;
          }
        }
      }
    }
    return entry;
  }

  // Searches level 0 best first from `entry` and keeps the `ef` best
  // admitted nodes in buffers.results.
  void SearchBottom(Scored entry, int ef, const AdmittedLabels& admitted) {
    std::vector<Scored>& candidates = buffers.candidates;
    std::vector<Scored>& results = buffers.results;
    candidates.clear();
    results.clear();
    buffers.visited.Start(storage_.ntotal);
    buffers.visited.Visit(entry.node);
    Push(candidates, entry, NearerFirst);
    if (admitted.Admits(entry.node)) Push(results, entry, FartherFirst);

    while (!candidates.empty()) {
      const Scored nearest = candidates.front();
      if (static_cast<int>(results.size()) >= ef &&
          nearest.score > results.front().score) {
        break;
      }
      std::pop_heap(candidates.begin(), candidates.end(), NearerFirst);
      candidates.pop_back();

      // Collect the unvisited neighbours first, so that each one's vector
      // can be fetched while the previous one's distance is computed.
      std::vector<int64_t>& fresh = buffers.fresh;
      fresh.clear();
      const auto [begin, end] = Range(nearest.node, 0);
      for (size_t i = begin; i < end; ++i) {
        const int64_t neighbor = graph_.neighbors[i];
        if (neighbor < 0) break;
        if (buffers.visited.Visit(neighbor)) fresh.push_back(neighbor);
      }
      if (!fresh.empty()) PrefetchVector(VectorOf(fresh[0]), dimension_);
      for (size_t i = 0; i < fresh.size(); ++i) {
        if (i + 1 < fresh.size()) {
          PrefetchVector(VectorOf(fresh[i + 1]), dimension_);
        }
        const Scored next{Score(fresh[i]), fresh[i]};
        if (static_cast<int>(results.size()) >= ef &&
            next.score >= results.front().score) {
          continue;
        }
        Push(candidates, next, NearerFirst);
        if (!admitted.Admits(next.node)) continue;
        Push(results, next, FartherFirst);
        if (static_cast<int>(results.size()) > ef) {
          std::pop_heap(results.begin(), results.end(), FartherFirst);
          results.pop_back();
        }
      }
    }
  }

 private:
  const float* VectorOf(int64_t node) const {
    return vectors_ + node * dimension_;
  }

  // Returns the slice of graph_.neighbors that contains `node`'s links on
  // `level`.
  std::pair<size_t, size_t> Range(int64_t node, int level) const {
    const size_t base = graph_.offsets[node];
    return {base + graph_.cum_nneighbor_per_level[level],
            base + graph_.cum_nneighbor_per_level[level + 1]};
  }

  template <typename Order>
  static void Push(std::vector<Scored>& heap, Scored item, Order order) {
    heap.push_back(item);
    std::push_heap(heap.begin(), heap.end(), order);
  }

  const faiss::HNSW& graph_;
  const SimdFlatIndex& storage_;
  const float* const query_;
  const float* const vectors_;
  const size_t dimension_;
  const DistanceKernel kernel_;
  const bool negate_;
};

}  // namespace

std::vector<Neighbor> SearchHnswGraph(const faiss::HNSW& graph,
                                      const SimdFlatIndex& storage,
                                      const float* query, int k, int ef,
                                      const AdmittedLabels& admitted) {
  if (graph.entry_point < 0 || storage.ntotal == 0 || k < 1) return {};
  GraphWalk walk(graph, storage, query);
  const int64_t start = graph.entry_point;
  const Scored entry = walk.Descend({walk.Score(start), start});
  walk.SearchBottom(entry, std::max(ef, k), admitted);

  std::vector<Scored>& results = buffers.results;
  std::sort_heap(results.begin(), results.end(), FartherFirst);
  const bool negate = storage.metric_type == faiss::METRIC_INNER_PRODUCT;
  std::vector<Neighbor> neighbors;
  neighbors.reserve(std::min<size_t>(k, results.size()));
  for (const Scored& result : results) {
    if (static_cast<int>(neighbors.size()) == k) break;
    neighbors.push_back({result.node, negate ? -result.score : result.score});
  }
  return neighbors;
}

}  // namespace vecdb::index
