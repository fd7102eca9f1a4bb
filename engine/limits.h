#ifndef VECDB_ENGINE_LIMITS_H_
#define VECDB_ENGINE_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace vecdb::engine {

// Collection names: 1 to kMaxCollectionNameBytes ASCII letters, digits, '_'
// or '-', starting with a letter, digit or '_'.
inline constexpr size_t kMaxCollectionNameBytes = 128;
// Point ids: 1 to kMaxPointIdBytes bytes of valid UTF-8.
inline constexpr size_t kMaxPointIdBytes = 256;
inline constexpr uint32_t kMaxDimension = 65536;
inline constexpr uint32_t kMaxTopK = 10000;
// Upper bound of ef_search, per collection and per search.
inline constexpr uint32_t kMaxEfSearch = 10000;
// Serialized metadata of one point, and its nesting of structs and lists.
inline constexpr size_t kMaxMetadataBytes = 1 << 20;
inline constexpr int kMaxMetadataDepth = 32;
// Under DOT_PRODUCT and L2 a vector's squared norm, computed in double, must
// stay below a quarter of the largest float, so that no inner product or
// squared distance between two stored vectors overflows to infinity.
inline constexpr double kMaxSquaredNorm = 3.4028234663852886e38 / 4;

// HNSW defaults. On Fashion-MNIST (60,000 x 784, L2) they give recall@10 of
// about 0.996 against exact search, measured with FAISS 1.7.3 on the first
// 2,000 test images. ef_construction 200 gives 0.998 but builds a third
// slower.
inline constexpr uint32_t kDefaultHnswM = 16;
inline constexpr uint32_t kDefaultHnswEfConstruction = 100;
inline constexpr uint32_t kDefaultHnswEfSearch = 64;

// IVF defaults and bounds. nlist 256 suits collections of roughly 10,000 to
// 1,000,000 points (the FAISS guideline is about sqrt(points) to
// 16 * sqrt(points) lists); larger collections want more. nprobe is used up
// to nlist, per collection and per search.
inline constexpr uint32_t kDefaultNlist = 256;
inline constexpr uint32_t kMaxNlist = 65536;
inline constexpr uint32_t kDefaultNprobe = 16;
inline constexpr uint32_t kMaxNprobe = 65536;
// IVF_PQ code bits per sub-quantizer; pq_m defaults to the largest divisor
// of the dimension up to dimension / kDefaultPqDimensionsPerCode.
inline constexpr uint32_t kDefaultPqBits = 8;
inline constexpr uint32_t kMinPqBits = 4;
inline constexpr uint32_t kMaxPqBits = 12;
inline constexpr uint32_t kDefaultPqDimensionsPerCode = 8;

// Reranking: candidates fetched per hit when the search leaves oversampling
// at 0, and its largest value. The candidate count is also capped at
// kMaxTopK. IVF_PQ's 16-byte codes of 128-d vectors need more candidates:
// on 1,000,000 clustered points, recall@10 was 0.86 with 4 per hit and
// 0.95 with 10 (bench/results/kinds.md).
inline constexpr uint32_t kDefaultOversampling = 4;
inline constexpr uint32_t kDefaultIvfPqOversampling = 10;
inline constexpr uint32_t kMaxOversampling = 100;

// Filters: nested filter conditions at most kMaxFilterDepth levels deep, and
// at most kMaxFilterConditions conditions in one filter, nested ones
// included.
inline constexpr int kMaxFilterDepth = 16;
inline constexpr int kMaxFilterConditions = 1024;

// A filtered search scans the matching points' vectors exactly when they
// are at most kFilterExactMaxPoints or less than kFilterGraphMinSelectivity
// of the live points. Otherwise it searches the HNSW graph restricted to
// them, with ef_search divided by the selectivity (at most kMaxEfSearch), so
// that the graph walk meets about as many matching points as an unfiltered
// walk meets points.
inline constexpr size_t kFilterExactMaxPoints = 1024;
inline constexpr double kFilterGraphMinSelectivity = 0.05;

// Scroll pages: points per page when the request leaves limit at 0, and the
// largest limit.
inline constexpr uint32_t kDefaultScrollLimit = 100;
inline constexpr uint32_t kMaxScrollLimit = 10000;

// Field indexes per collection, and the bytes of an indexed key.
inline constexpr size_t kMaxFieldIndexes = 64;
inline constexpr size_t kMaxFieldIndexKeyBytes = 1024;
// Longer strings are left out of KEYWORD indexes, because they would make
// RocksDB keys that large. A match on such a string reads every point.
inline constexpr size_t kMaxIndexedKeywordBytes = 1024;

// Limits that a server operator can set, each at most the built-in maximum
// above it: the engine checks those maximums on every path, so a limit here
// can only make the engine stricter. Defaults equal the built-in maximums,
// except for the two limits that have none.
struct Limits {
  size_t max_collection_name_bytes = kMaxCollectionNameBytes;
  size_t max_point_id_bytes = kMaxPointIdBytes;
  uint32_t max_dimension = kMaxDimension;
  uint32_t max_top_k = kMaxTopK;
  size_t max_metadata_bytes = kMaxMetadataBytes;
  int max_metadata_depth = kMaxMetadataDepth;
  // Points in one Upsert request, or in one request of an Import stream.
  size_t max_batch_points = 100000;
  // Collections in the database; CreateCollection past it fails.
  size_t max_collections = 10000;
};

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_LIMITS_H_
