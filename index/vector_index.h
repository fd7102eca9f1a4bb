#ifndef VECDB_INDEX_VECTOR_INDEX_H_
#define VECDB_INDEX_VECTOR_INDEX_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace faiss {
struct Index;
struct IndexFlat;
struct IndexHNSWFlat;
struct IOReader;
struct IOWriter;
}  // namespace faiss

namespace vecdb::index {

// The FAISS distance between vectors. Cosine similarity is the inner product
// of vectors the caller normalised.
enum class IndexMetric { kInnerProduct, kL2 };

enum class IndexKind { kFlat, kHnsw };

struct IndexSpec {
  IndexKind kind = IndexKind::kHnsw;
  int dimension = 0;
  IndexMetric metric = IndexMetric::kL2;
  // HNSW only: neighbours per node and the build-time candidate list size.
  int m = 16;
  int ef_construction = 200;
};

// Dense label of a vector inside one index: the n-th vector added has label
// n. Labels are never reused; a replaced or deleted vector's label is only
// marked deleted.
using Label = int64_t;

struct Neighbor {
  Label label;
  // Raw FAISS distance: the inner product, or the *squared* L2 distance.
  float distance;
};

// The destination of vectors that Add puts into an HNSW index.
enum class AddMode {
  // Into the graph at once, which is slow while the caller has exclusive
  // access.
  kGraph,
  // Into a flat list that searches scan exactly, until IndexPending moves
  // them into the graph. Quick, so a caller can add many vectors and build
  // the graph later. FLAT indexes ignore the mode.
  kDeferGraph,
};

struct SearchOptions {
  // Neighbours wanted, at least 1.
  int k = 10;
  // HNSW candidate list size. The search uses max(ef_search, k).
  int ef_search = 64;
  // Scan every vector even when the index is approximate.
  bool exact = false;
};

// A FAISS index over dense labels with deletion marks.
//
// Not thread-safe for writes: Add and MarkDeleted need exclusive access,
// while any number of Search calls may run concurrently with each other.
class VectorIndex {
 public:
  // Returns INVALID_ARGUMENT for a dimension below 1 or HNSW parameters out
  // of range.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Create(
      const IndexSpec& spec);

  // Reads an index that Save wrote for the same spec and marks the labels
  // whose `deleted` byte is nonzero as deleted. `deleted` has one byte per
  // stored vector. Returns DATA_LOSS when FAISS cannot read the index or it
  // does not match the spec.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Load(
      const IndexSpec& spec, faiss::IOReader* reader,
      std::vector<uint8_t> deleted);

  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // Adds `count` vectors (count * dimension floats) under the next labels,
  // size() to size() + count - 1. While any vectors wait for the graph, new
  // ones wait behind them whatever the mode. FAISS failures come back as
  // INTERNAL.
  absl::Status Add(int64_t count, const float* vectors,
                   AddMode mode = AddMode::kGraph);

  // Moves up to `max_count` of the vectors waiting for the graph into it,
  // oldest first. Their labels do not change.
  absl::Status IndexPending(int64_t max_count);

  // Vectors waiting for the graph.
  int64_t pending_count() const;

  // Excludes a label from every later search. Out-of-range labels are
  // ignored.
  void MarkDeleted(Label label);

  // Finds up to options.k nearest live vectors to `query` (dimension
  // floats), best first. Fewer come back only when fewer are live: under
  // HNSW, a graph search that comes back short (deleted labels can cut the
  // graph apart) is redone as an exact scan.
  absl::StatusOr<std::vector<Neighbor>> Search(
      const float* query, const SearchOptions& options) const;

  // Runs Search for `count` queries (count * dimension floats) in one FAISS
  // call, which spreads them over every core. Returns one list per query,
  // in order.
  absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchMany(
      int64_t count, const float* queries, const SearchOptions& options) const;

  // Writes the FAISS index in FAISS's own format, followed under HNSW by
  // the vectors waiting for the graph as a flat index. Deletion marks are
  // not part of it: the caller saves them and hands them back to Load.
  absl::Status Save(faiss::IOWriter* writer) const;

  // The stored vector of `label` (dimension floats, normalised where the
  // caller normalised it), valid until the next Add. `label` must be below
  // size().
  const float* StoredVector(Label label) const;

  bool IsDeleted(Label label) const { return deleted_[label] != 0; }

  // Labels ever added, deleted ones included.
  int64_t size() const;
  // Labels not marked deleted.
  int64_t live_count() const { return size() - deleted_count_; }
  int64_t deleted_count() const { return deleted_count_; }
  const IndexSpec& spec() const { return spec_; }

  // Estimated heap bytes of the vectors, the graph and the deletion marks.
  uint64_t MemoryBytes() const;

  // Finds up to options.k nearest neighbours of `query` (dimension floats)
  // among the live labels whose byte in `selected` is nonzero, best first.
  // `selected` has one byte per label, size() in all. Under HNSW the graph
  // walk skips unselected labels and can come back short even when enough
  // are selected; under FLAT every vector is scanned. options.exact is
  // ignored: SearchAmong is the exact search over a subset.
  absl::StatusOr<std::vector<Neighbor>> SearchSelected(
      const float* query, const SearchOptions& options,
      const std::vector<uint8_t>& selected) const;

  // Finds the k nearest neighbours of `query` (dimension floats) among
  // `labels` by computing the distance to each, best first. Exact. Every
  // label must be below size(); deletion marks are not consulted.
  absl::StatusOr<std::vector<Neighbor>> SearchAmong(
      const float* query, absl::Span<const Label> labels, int k) const;

 private:
  explicit VectorIndex(const IndexSpec& spec);

  // Points index_, flat_ and hnsw_ at `index`, which must match spec_.
  absl::Status Adopt(std::unique_ptr<faiss::Index> index);

  absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchExact(
      int64_t count, const float* queries, int k) const;
  // Scans `flat`, whose positions are labels minus `offset`, for live
  // labels that are also in `selected` when it is given.
  absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchFlat(
      const faiss::IndexFlat& flat, Label offset, int64_t count,
      const float* queries, int k,
      const std::vector<uint8_t>* selected = nullptr) const;
  absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchGraph(
      int64_t count, const float* queries, int k, int ef_search) const;

  const IndexSpec spec_;
  std::unique_ptr<faiss::Index> index_;
  // The flat vectors: index_ itself under FLAT, the HNSW storage otherwise.
  faiss::IndexFlat* flat_ = nullptr;
  faiss::IndexHNSWFlat* hnsw_ = nullptr;  // null under FLAT
  // HNSW only: vectors added but not yet in the graph. Position i contains
  // label index_->ntotal + i.
  std::unique_ptr<faiss::IndexFlat> pending_;
  // One byte per label, 1 when deleted; read by the search-time selector.
  std::vector<uint8_t> deleted_;
  int64_t deleted_count_ = 0;
};

}  // namespace vecdb::index

#endif  // VECDB_INDEX_VECTOR_INDEX_H_
