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
struct IndexHNSW;
struct IndexIVF;
struct IndexScalarQuantizer;
struct IOReader;
struct SearchParameters;
struct IOWriter;
}  // namespace faiss

namespace vecdb::index {

class SimdFlatIndex;

// The FAISS distance between vectors. Cosine similarity is the inner product
// of vectors the caller normalised.
enum class IndexMetric { kInnerProduct, kL2 };

// The FAISS index behind a VectorIndex once it is trained:
//   kFlat      IndexFlat, exact.
//   kHnsw      IndexHNSWFlat, a graph over float vectors.
//   kIvfFlat   IndexIVFFlat, inverted lists of float vectors.
//   kIvfPq     IndexIVFPQ, inverted lists of product-quantizer codes.
//   kSq8       IndexScalarQuantizer with 8 bits per component, scanned.
//   kHnswSq8   IndexHNSWSQ, a graph over 8-bit scalar-quantizer codes.
enum class IndexKind { kFlat, kHnsw, kIvfFlat, kIvfPq, kSq8, kHnswSq8 };

// True for the kinds whose FAISS index learns from sample vectors (k-means
// centroids or quantizer ranges) before it can hold any: IVF and SQ kinds.
bool NeedsTraining(IndexKind kind);

// True for the kinds that keep lossy codes instead of float vectors, so
// that their distances are approximate: kIvfPq, kSq8 and kHnswSq8.
bool IsCompressed(IndexKind kind);

// The raw FAISS distance between two vectors of `dimension` floats: the
// inner product, or the squared L2 distance, as Neighbor::distance holds,
// computed with the active kernels of simd_distance.h.
float Distance(IndexMetric metric, const float* a, const float* b,
               int dimension);

struct IndexSpec {
  IndexKind kind = IndexKind::kHnsw;
  int dimension = 0;
  IndexMetric metric = IndexMetric::kL2;
  // HNSW kinds: neighbours per node and the build-time candidate list size.
  int m = 16;
  int ef_construction = 200;
  // IVF kinds: inverted lists, that is k-means centroids (1 to 65536).
  int nlist = 256;
  // IVF_PQ: sub-quantizers per vector, which must divide the dimension,
  // and bits per sub-quantizer code (4 to 12). A vector's code takes
  // pq_m * pq_bits / 8 bytes, rounded up.
  int pq_m = 8;
  int pq_bits = 8;
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

// The destination of vectors that Add puts into an index of an HNSW kind.
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
  // IVF inverted lists probed per query, capped at nlist.
  int nprobe = 16;
  // Scan every vector even when the index is approximate. Under the
  // compressed kinds the scan compares codes, so its distances stay
  // approximate.
  bool exact = false;
};

// A FAISS index over dense labels with deletion marks.
//
// A kind that NeedsTraining starts untrained: it keeps its vectors in a
// flat store and searches them exactly. Train, called on an empty index,
// builds the real FAISS index. The caller rebuilds into a trained index
// once the untrained one contains TrainingThreshold vectors.
//
// Not thread-safe for writes: Add and MarkDeleted need exclusive access,
// while any number of Search calls may run concurrently with each other.
class VectorIndex {
 public:
  // Returns an empty index, untrained for a kind that NeedsTraining.
  // INVALID_ARGUMENT for a dimension below 1 or parameters out of range.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Create(
      const IndexSpec& spec);

  // Vectors a collection should contain before an index of `spec` is
  // trained: max(40 * nlist, 1000) for IVF_FLAT, and also at least
  // 40 * 2^pq_bits for IVF_PQ, because k-means wants about 40 points per
  // centroid. The SQ kinds, whose training only finds each component's
  // range, need 2000. Returns 0 for the kinds that need no training.
  static int64_t TrainingThreshold(const IndexSpec& spec);

  // Trains the FAISS index of a kind that NeedsTraining on `count` vectors
  // (count * dimension floats). When more are given, an even sample of at
  // most 256 per centroid (65536 for the SQ kinds) is used. Later Adds go
  // to the trained index. FAILED_PRECONDITION when the kind needs no training,
  // the index is trained already or contains vectors; INVALID_ARGUMENT when
  // count is below 1; INTERNAL when FAISS fails.
  absl::Status Train(int64_t count, const float* vectors);

  // False while a kind that NeedsTraining keeps its vectors flat.
  bool trained() const { return trained_; }

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
  // the HNSW and IVF kinds, a search that comes back short (deleted labels
  // can cut the graph apart, and the probed lists may hold too few) is
  // redone as a scan of every vector or code.
  absl::StatusOr<std::vector<Neighbor>> Search(
      const float* query, const SearchOptions& options) const;

  // Runs Search for `count` queries (count * dimension floats) in one FAISS
  // call, which spreads them over every core. Returns one list per query,
  // in order.
  absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchMany(
      int64_t count, const float* queries, const SearchOptions& options) const;

  // Writes the FAISS index in FAISS's own format (a flat index while
  // untrained), followed under the trained HNSW kinds by the vectors
  // waiting for the graph as a flat index. Deletion marks are
  // not part of it: the caller saves them and hands them back to Load.
  absl::Status Save(faiss::IOWriter* writer) const;

  // True when the index keeps float vectors, so that StoredVector works and
  // every distance is exact: FLAT, HNSW and any untrained index.
  bool has_flat_vectors() const { return flat_ != nullptr; }

  // True when search distances are exact: has_flat_vectors() or IVF_FLAT.
  bool distances_exact() const;

  // The stored vector of `label` (dimension floats, normalised where the
  // caller normalised it), valid until the next Add or ShrinkToFit.
  // `label` must be below size() and has_flat_vectors() true.
  const float* StoredVector(Label label) const;

  // Copies the vector of `label` into `out` (dimension floats), decoded from
  // its code under the compressed kinds, so only approximately equal to the
  // added vector then. `label` must be below size().
  void ReconstructVector(Label label, float* out) const;

  bool IsDeleted(Label label) const { return deleted_[label] != 0; }

  // Labels ever added, deleted ones included.
  int64_t size() const;
  // Labels not marked deleted.
  int64_t live_count() const { return size() - deleted_count_; }
  int64_t deleted_count() const { return deleted_count_; }
  const IndexSpec& spec() const { return spec_; }

  // Frees the spare capacity that adding in batches leaves behind; the
  // next Add may allocate some again. For a freshly built index.
  void ShrinkToFit();

  // Estimated heap bytes of the vectors or codes, the graph, inverted lists
  // and centroids, and the deletion marks.
  uint64_t MemoryBytes() const;

  // Bytes that ShrinkToFit would free: capacity that vectors, codes, lists
  // and deletion marks reserved for growth.
  uint64_t SpareBytes() const;

  // Finds up to options.k nearest neighbours of `query` (dimension floats)
  // among the live labels whose byte in `selected` is nonzero, best first.
  // `selected` has one byte per label, size() in all. Under the HNSW kinds
  // the graph walk skips unselected labels, and under the IVF kinds only
  // options.nprobe lists are probed, so either can come back short even
  // when enough are selected; FLAT and SQ8 scan every vector. options.exact
  // is ignored: SearchAmong is the exact search over a subset.
  absl::StatusOr<std::vector<Neighbor>> SearchSelected(
      const float* query, const SearchOptions& options,
      const std::vector<uint8_t>& selected) const;

  // Finds the k nearest neighbours of `query` (dimension floats) among
  // `labels` by computing the distance to each, best first. Exact unless
  // the kind is compressed, where the distances are to the decoded codes.
  // Every label must be below size(); deletion marks are not consulted.
  absl::StatusOr<std::vector<Neighbor>> SearchAmong(
      const float* query, absl::Span<const Label> labels, int k) const;

 private:
  explicit VectorIndex(const IndexSpec& spec);

  // Points index_ and the typed pointers at `index`, which must match
  // spec_: a flat index when untrained, the kind's own index otherwise.
  absl::Status Adopt(std::unique_ptr<faiss::Index> index);
  // Checks the parameters of a trained FAISS index against spec_ and sets
  // the typed pointers.
  absl::Status AdoptTrained(faiss::Index* index);

  // Scans every vector or code, for live labels that are also in `selected`
  // when it is given.
  absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchExhaustive(
      int64_t count, const float* queries, int k,
      const std::vector<uint8_t>* selected = nullptr) const;
  // Searches `index`, whose positions are labels minus `offset`, with
  // `params`, whose selector this call sets to admit live labels that are
  // also in `selected` when it is given.
  absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchFaiss(
      const faiss::Index& index, Label offset, int64_t count,
      const float* queries, int k, faiss::SearchParameters* params,
      const std::vector<uint8_t>* selected = nullptr) const;
  // Walks the HNSW graph over float vectors with SearchHnswGraph, spreading
  // the queries over the OpenMP threads.
  std::vector<std::vector<Neighbor>> SearchGraph(
      int64_t count, const float* queries, int k, int ef,
      const std::vector<uint8_t>* selected) const;
  // Searches the HNSW graph or the IVF lists, the approximate part of the
  // trained index.
  absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchApproximate(
      int64_t count, const float* queries, int k, const SearchOptions& options,
      const std::vector<uint8_t>* selected = nullptr) const;
  // Adds the neighbours among the vectors waiting for the graph to `rows`.
  absl::Status MergePending(int64_t count, const float* queries, int k,
                            const std::vector<uint8_t>* selected,
                            std::vector<std::vector<Neighbor>>* rows) const;

  const IndexSpec spec_;
  bool trained_ = false;
  std::unique_ptr<faiss::Index> index_;
  // Views of index_ by type; null when index_ is not of that type.
  // The flat vectors: index_ itself under FLAT or untrained, the HNSW
  // storage under HNSW.
  SimdFlatIndex* flat_ = nullptr;
  faiss::IndexHNSW* hnsw_ = nullptr;  // HNSW and HNSW_SQ8
  faiss::IndexIVF* ivf_ = nullptr;    // IVF_FLAT and IVF_PQ
  // The codes: index_ under SQ8, the HNSW storage under HNSW_SQ8.
  faiss::IndexScalarQuantizer* sq_ = nullptr;
  // HNSW kinds: vectors added but not yet in the graph. Position i contains
  // label index_->ntotal + i.
  std::unique_ptr<SimdFlatIndex> pending_;
  // One byte per label, 1 when deleted; read by the search-time selector.
  std::vector<uint8_t> deleted_;
  int64_t deleted_count_ = 0;
};

}  // namespace vecdb::index

#endif  // VECDB_INDEX_VECTOR_INDEX_H_
