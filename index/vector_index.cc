#include "index/vector_index.h"

#include <omp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/IndexIVF.h"
#include "faiss/IndexIVFFlat.h"
#include "faiss/IndexIVFPQ.h"
#include "faiss/IndexScalarQuantizer.h"
#include "faiss/impl/FaissException.h"
#include "faiss/impl/IDSelector.h"
#include "faiss/index_io.h"
#include "faiss/invlists/InvertedLists.h"
#include "index/hnsw_search.h"
#include "index/simd_distance.h"
#include "index/simd_flat_index.h"

namespace vecdb::index {
namespace {

constexpr int kMinM = 2;
constexpr int kMaxM = 256;
constexpr int kMaxEfConstruction = 4096;
constexpr int kMaxNlist = 65536;
constexpr int kMinPqBits = 4;
constexpr int kMaxPqBits = 12;

// Training thresholds and sample sizes; see TrainingThreshold and Train.
// FAISS's k-means warns below 39 points per centroid and by default samples
// down to 256 per centroid.
constexpr int64_t kTrainingPointsPerCentroid = 40;
constexpr int64_t kMinTrainingPoints = 1000;
constexpr int64_t kSqTrainingPoints = 2000;
constexpr int64_t kMaxSamplePointsPerCentroid = 256;
constexpr int64_t kMaxSqSamplePoints = 65536;

// IVF_PQ leaves out FAISS's precomputed distance table, which speeds up L2
// search but takes nlist * pq_m * 2^pq_bits floats: 16 MB, or 16 bytes per
// vector of a million, at nlist 1024 and 16 x 8 bits. With the value -1,
// FAISS 1.7.3 never builds it.
constexpr int kIvfPqPrecomputedTable = -1;

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

absl::Status CheckSpec(const IndexSpec& spec) {
  if (spec.dimension < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "index dimension must be at least 1, got ", spec.dimension));
  }
  if (spec.kind == IndexKind::kHnsw || spec.kind == IndexKind::kHnswSq8) {
    if (spec.m < kMinM || spec.m > kMaxM) {
      return absl::InvalidArgumentError(absl::StrCat(
          "HNSW m must be between ", kMinM, " and ", kMaxM, ", got ", spec.m));
    }
    if (spec.ef_construction < 1 || spec.ef_construction > kMaxEfConstruction) {
      return absl::InvalidArgumentError(
          absl::StrCat("HNSW ef_construction must be between 1 and ",
                       kMaxEfConstruction, ", got ", spec.ef_construction));
    }
  }
  if (spec.kind == IndexKind::kIvfFlat || spec.kind == IndexKind::kIvfPq) {
    if (spec.nlist < 1 || spec.nlist > kMaxNlist) {
      return absl::InvalidArgumentError(absl::StrCat(
          "IVF nlist must be between 1 and ", kMaxNlist, ", got ", spec.nlist));
    }
  }
  if (spec.kind == IndexKind::kIvfPq) {
    if (spec.pq_m < 1 || spec.dimension % spec.pq_m != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("PQ pq_m must divide the dimension ", spec.dimension,
                       ", got ", spec.pq_m));
    }
    if (spec.pq_bits < kMinPqBits || spec.pq_bits > kMaxPqBits) {
      return absl::InvalidArgumentError(
          absl::StrCat("PQ pq_bits must be between ", kMinPqBits, " and ",
                       kMaxPqBits, ", got ", spec.pq_bits));
    }
  }
  return absl::OkStatus();
}

// Returns an untrained FAISS index of a kind that NeedsTraining.
std::unique_ptr<faiss::Index> NewTrainableIndex(const IndexSpec& spec) {
  const faiss::MetricType metric = ToFaiss(spec.metric);
  switch (spec.kind) {
    case IndexKind::kIvfFlat: {
      auto ivf = std::make_unique<faiss::IndexIVFFlat>(
          new faiss::IndexFlat(spec.dimension, metric), spec.dimension,
          spec.nlist, metric);
      ivf->own_fields = true;
      return ivf;
    }
    case IndexKind::kIvfPq: {
      auto ivf = std::make_unique<faiss::IndexIVFPQ>(
          new faiss::IndexFlat(spec.dimension, metric), spec.dimension,
          spec.nlist, spec.pq_m, spec.pq_bits, metric);
      ivf->own_fields = true;
      ivf->use_precomputed_table = kIvfPqPrecomputedTable;
      return ivf;
    }
    case IndexKind::kSq8:
      return std::make_unique<faiss::IndexScalarQuantizer>(
          spec.dimension, faiss::ScalarQuantizer::QT_8bit, metric);
    case IndexKind::kHnswSq8: {
      auto hnsw = std::make_unique<faiss::IndexHNSWSQ>(
          spec.dimension, faiss::ScalarQuantizer::QT_8bit, spec.m, metric);
      hnsw->hnsw.efConstruction = spec.ef_construction;
      return hnsw;
    }
    default:
      return nullptr;
  }
}

// Copies an even sample of at most `limit` of the `count` vectors.
std::vector<float> EvenSample(int64_t count, const float* vectors,
                              int dimension, int64_t limit) {
  const int64_t kept = std::min(count, limit);
  std::vector<float> sample(static_cast<size_t>(kept) * dimension);
  for (int64_t i = 0; i < kept; ++i) {
    const int64_t from = i * count / kept;
    std::copy_n(vectors + from * dimension, dimension,
                sample.data() + i * dimension);
  }
  return sample;
}

// Replaces plain FAISS flat vectors, as a new index or faiss::read_index
// has them, with a SimdFlatIndex: the index itself when it is flat, or the
// storage of an HNSW graph over float vectors.
void UseSimdVectors(std::unique_ptr<faiss::Index>& index) {
  if (auto* flat = dynamic_cast<faiss::IndexFlat*>(index.get());
      flat != nullptr && dynamic_cast<SimdFlatIndex*>(flat) == nullptr) {
    index = SimdFlatIndex::FromFlat(*flat);
    return;
  }
  auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get());
  if (hnsw == nullptr) return;
  auto* storage = dynamic_cast<faiss::IndexFlat*>(hnsw->storage);
  if (storage == nullptr || dynamic_cast<SimdFlatIndex*>(storage) != nullptr) {
    return;
  }
  std::unique_ptr<SimdFlatIndex> vectors = SimdFlatIndex::FromFlat(*storage);
  if (hnsw->own_fields) delete hnsw->storage;
  hnsw->storage = vectors.release();
  hnsw->own_fields = true;
}

}  // namespace

float Distance(IndexMetric metric, const float* a, const float* b,
               int dimension) {
  const DistanceKernels& kernels = ActiveKernels();
  return metric == IndexMetric::kL2 ? kernels.l2_squared(a, b, dimension)
                                    : kernels.inner_product(a, b, dimension);
}

bool NeedsTraining(IndexKind kind) {
  return kind == IndexKind::kIvfFlat || kind == IndexKind::kIvfPq ||
         kind == IndexKind::kSq8 || kind == IndexKind::kHnswSq8;
}

bool IsCompressed(IndexKind kind) {
  return kind == IndexKind::kIvfPq || kind == IndexKind::kSq8 ||
         kind == IndexKind::kHnswSq8;
}

VectorIndex::VectorIndex(const IndexSpec& spec) : spec_(spec) {}

VectorIndex::~VectorIndex() = default;

absl::StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Create(
    const IndexSpec& spec) {
  if (absl::Status status = CheckSpec(spec); !status.ok()) return status;
  std::unique_ptr<VectorIndex> index(new VectorIndex(spec));
  const faiss::MetricType metric = ToFaiss(spec.metric);

  // Kinds that need training keep their vectors flat until Train.
  if (spec.kind == IndexKind::kFlat || NeedsTraining(spec.kind)) {
    if (absl::Status status = index->Adopt(
            std::make_unique<SimdFlatIndex>(spec.dimension, metric));
        !status.ok()) {
      return status;
    }
    return index;
  }

  // Adopt gives the graph a SimdFlatIndex as storage.
  auto hnsw =
      std::make_unique<faiss::IndexHNSWFlat>(spec.dimension, spec.m, metric);
  hnsw->hnsw.efConstruction = spec.ef_construction;
  if (absl::Status status = index->Adopt(std::move(hnsw)); !status.ok()) {
    return status;
  }
  return index;
}

int64_t VectorIndex::TrainingThreshold(const IndexSpec& spec) {
  switch (spec.kind) {
    case IndexKind::kIvfFlat:
      return std::max(kTrainingPointsPerCentroid * spec.nlist,
                      kMinTrainingPoints);
    case IndexKind::kIvfPq:
      return std::max(
          {kTrainingPointsPerCentroid * spec.nlist,
           kTrainingPointsPerCentroid * (int64_t{1} << spec.pq_bits),
           kMinTrainingPoints});
    case IndexKind::kSq8:
    case IndexKind::kHnswSq8:
      return kSqTrainingPoints;
    default:
      return 0;
  }
}

absl::Status VectorIndex::Train(int64_t count, const float* vectors) {
  if (!NeedsTraining(spec_.kind)) {
    return absl::FailedPreconditionError("this index kind needs no training");
  }
  if (trained_ || size() > 0) {
    return absl::FailedPreconditionError(
        "only an empty, untrained index can be trained");
  }
  if (count < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("training needs at least 1 vector, got ", count));
  }
  int64_t sample_limit = kMaxSqSamplePoints;
  if (spec_.kind == IndexKind::kIvfFlat || spec_.kind == IndexKind::kIvfPq) {
    int64_t centroids = spec_.nlist;
    if (spec_.kind == IndexKind::kIvfPq) {
      centroids = std::max<int64_t>(centroids, int64_t{1} << spec_.pq_bits);
    }
    sample_limit = kMaxSamplePointsPerCentroid * centroids;
  }
  const std::vector<float> sample =
      EvenSample(count, vectors, spec_.dimension, sample_limit);

  UseOpenMpThreads(omp_get_num_procs());
  std::unique_ptr<faiss::Index> trained = NewTrainableIndex(spec_);
  try {
    trained->train(static_cast<int64_t>(sample.size() / spec_.dimension),
                   sample.data());
    // A direct map lets SearchAmong and ReconstructVector reach a label's
    // code; it costs 8 bytes per vector.
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(trained.get())) {
      ivf->make_direct_map(true);
    }
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("FAISS training failed: ", e.what()));
  }
  return Adopt(std::move(trained));
}

absl::StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Load(
    const IndexSpec& spec, faiss::IOReader* reader,
    std::vector<uint8_t> deleted) {
  if (absl::Status status = CheckSpec(spec); !status.ok()) {
    return absl::DataLossError(status.message());
  }
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
    index->pending_ = SimdFlatIndex::FromFlat(*flat);
  }
  if (static_cast<int64_t>(deleted.size()) != index->size()) {
    return absl::DataLossError(
        absl::StrCat("the index contains ", index->size(), " vectors but ",
                     deleted.size(), " deletion marks came with it"));
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
  flat_ = nullptr;
  hnsw_ = nullptr;
  ivf_ = nullptr;
  sq_ = nullptr;
  pending_.reset();
  UseSimdVectors(index);
  auto* flat = dynamic_cast<SimdFlatIndex*>(index.get());
  if (flat != nullptr &&
      (spec_.kind == IndexKind::kFlat || NeedsTraining(spec_.kind))) {
    // FLAT, or a kind that still waits for its training.
    flat_ = flat;
    trained_ = spec_.kind == IndexKind::kFlat;
  } else if (absl::Status status = AdoptTrained(index.get()); !status.ok()) {
    return status;
  } else {
    trained_ = true;
  }
  index_ = std::move(index);
  if (hnsw_ != nullptr) {
    pending_ =
        std::make_unique<SimdFlatIndex>(spec_.dimension, ToFaiss(spec_.metric));
  }
  deleted_.resize(index_->ntotal, 0);
  return absl::OkStatus();
}

absl::Status VectorIndex::AdoptTrained(faiss::Index* index) {
  switch (spec_.kind) {
    case IndexKind::kFlat:
      return absl::DataLossError("the index is not a flat FAISS index");
    case IndexKind::kHnsw:
    case IndexKind::kHnswSq8: {
      auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index);
      SimdFlatIndex* flat = hnsw == nullptr
                                ? nullptr
                                : dynamic_cast<SimdFlatIndex*>(hnsw->storage);
      faiss::IndexScalarQuantizer* sq =
          hnsw == nullptr
              ? nullptr
              : dynamic_cast<faiss::IndexScalarQuantizer*>(hnsw->storage);
      if (spec_.kind == IndexKind::kHnsw && flat == nullptr) {
        return absl::DataLossError("the index is not a FAISS HNSW flat index");
      }
      if (spec_.kind == IndexKind::kHnswSq8 &&
          (sq == nullptr || sq->sq.qtype != faiss::ScalarQuantizer::QT_8bit)) {
        return absl::DataLossError(
            "the index is not a FAISS HNSW index over 8-bit scalar codes");
      }
      if (hnsw->hnsw.nb_neighbors(1) != spec_.m) {
        return absl::DataLossError(absl::StrCat("the HNSW index has m ",
                                                hnsw->hnsw.nb_neighbors(1),
                                                ", expected ", spec_.m));
      }
      // FAISS 1.7.3 sizes its candidate queue by max(hnsw.efSearch, k) but
      // stops by the efSearch of the search parameters, so a per-search
      // efSearch only works when the queue is sized by k. The index-wide
      // value stays at 1 and SearchApproximate requests max(ef_search, k)
      // results instead.
      hnsw->hnsw.efSearch = 1;
      hnsw->hnsw.efConstruction = spec_.ef_construction;
      hnsw_ = hnsw;
      flat_ = flat;
      sq_ = sq;
      return absl::OkStatus();
    }
    case IndexKind::kIvfFlat:
    case IndexKind::kIvfPq: {
      auto* ivf = dynamic_cast<faiss::IndexIVF*>(index);
      auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(index);
      const bool kind_matches =
          spec_.kind == IndexKind::kIvfPq
              ? pq != nullptr
              : dynamic_cast<faiss::IndexIVFFlat*>(index) != nullptr;
      if (!kind_matches) {
        return absl::DataLossError(absl::StrCat(
            "the index is not a FAISS ",
            spec_.kind == IndexKind::kIvfPq ? "IVF-PQ" : "IVF flat", " index"));
      }
      if (static_cast<int>(ivf->nlist) != spec_.nlist) {
        return absl::DataLossError(absl::StrCat("the IVF index has nlist ",
                                                ivf->nlist, ", expected ",
                                                spec_.nlist));
      }
      if (pq != nullptr && (static_cast<int>(pq->pq.M) != spec_.pq_m ||
                            static_cast<int>(pq->pq.nbits) != spec_.pq_bits)) {
        return absl::DataLossError(absl::StrCat(
            "the PQ index has pq_m ", pq->pq.M, " and pq_bits ", pq->pq.nbits,
            ", expected ", spec_.pq_m, " and ", spec_.pq_bits));
      }
      if (ivf->direct_map.type != faiss::DirectMap::Array) {
        return absl::DataLossError("the IVF index has no direct map");
      }
      if (pq != nullptr) {
        // read_index builds the table; drop it as Train never builds it.
        pq->use_precomputed_table = kIvfPqPrecomputedTable;
        pq->precomputed_table.resize(0);
      }
      ivf_ = ivf;
      return absl::OkStatus();
    }
    case IndexKind::kSq8: {
      auto* sq = dynamic_cast<faiss::IndexScalarQuantizer*>(index);
      if (sq == nullptr || sq->sq.qtype != faiss::ScalarQuantizer::QT_8bit) {
        return absl::DataLossError(
            "the index is not a FAISS 8-bit scalar quantizer index");
      }
      sq_ = sq;
      return absl::OkStatus();
    }
  }
  return absl::DataLossError("unknown index kind");
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

bool VectorIndex::distances_exact() const {
  return flat_ != nullptr || spec_.kind == IndexKind::kIvfFlat;
}

const float* VectorIndex::StoredVector(Label label) const {
  const Label in_index = index_->ntotal;
  if (label < in_index) {
    return flat_->get_xb() + static_cast<size_t>(label) * spec_.dimension;
  }
  return pending_->get_xb() +
         static_cast<size_t>(label - in_index) * spec_.dimension;
}

void VectorIndex::ReconstructVector(Label label, float* out) const {
  if (flat_ != nullptr || label >= index_->ntotal) {
    std::copy_n(StoredVector(label), spec_.dimension, out);
    return;
  }
  if (sq_ != nullptr) {
    sq_->reconstruct(label, out);
    return;
  }
  index_->reconstruct(label, out);
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
      // Under the IVF kinds add() numbers the vectors ntotal, ntotal + 1,
      // ..., which are their labels.
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

  // When k reaches the live count a graph walk or a probe of a few lists
  // gains nothing over a scan and may miss points, so scan.
  const bool approximate = hnsw_ != nullptr || ivf_ != nullptr;
  if (!approximate || options.exact || k >= live) {
    return SearchExhaustive(count, queries, k);
  }
  absl::StatusOr<std::vector<std::vector<Neighbor>>> rows =
      SearchApproximate(count, queries, k, options);
  if (!rows.ok()) return rows.status();

  // Redo short results with a scan, so that none is returned.
  for (int64_t i = 0; i < count; ++i) {
    if (static_cast<int>((*rows)[i].size()) >= k) continue;
    absl::StatusOr<std::vector<std::vector<Neighbor>>> scanned =
        SearchExhaustive(1, queries + i * spec_.dimension, k);
    if (!scanned.ok()) return scanned.status();
    (*rows)[i] = std::move(scanned->front());
  }
  return rows;
}

absl::StatusOr<std::vector<std::vector<Neighbor>>>
VectorIndex::SearchExhaustive(int64_t count, const float* queries, int k,
                              const std::vector<uint8_t>* selected) const {
  absl::StatusOr<std::vector<std::vector<Neighbor>>> rows;
  if (flat_ != nullptr || sq_ != nullptr) {
    // The flat vectors or the scalar codes, HNSW storage included, whose
    // positions are the labels.
    faiss::SearchParameters params;
    const faiss::Index& codes =
        flat_ != nullptr ? static_cast<const faiss::Index&>(*flat_) : *sq_;
    rows = SearchFaiss(codes, 0, count, queries, k, &params, selected);
  } else {
    // Probing every list scans every code.
    faiss::SearchParametersIVF params;
    params.nprobe = ivf_->nlist;
    rows = SearchFaiss(*ivf_, 0, count, queries, k, &params, selected);
  }
  if (!rows.ok()) return rows;
  if (absl::Status status = MergePending(count, queries, k, selected, &*rows);
      !status.ok()) {
    return status;
  }
  return rows;
}

absl::StatusOr<std::vector<std::vector<Neighbor>>> VectorIndex::SearchFaiss(
    const faiss::Index& index, Label offset, int64_t count,
    const float* queries, int k, faiss::SearchParameters* params,
    const std::vector<uint8_t>* selected) const {
  LiveLabelSelector selector(deleted_, offset, selected);
  if (deleted_count_ > 0 || selected != nullptr) params->sel = &selector;

  std::vector<float> distances(static_cast<size_t>(count) * k);
  std::vector<faiss::Index::idx_t> labels(distances.size());
  try {
    index.search(count, queries, k, distances.data(), labels.data(), params);
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat("FAISS search failed: ", e.what()));
  }
  return CollectNeighbors(count, k, distances, labels, k, offset);
}

absl::StatusOr<std::vector<std::vector<Neighbor>>>
VectorIndex::SearchApproximate(int64_t count, const float* queries, int k,
                               const SearchOptions& options,
                               const std::vector<uint8_t>* selected) const {
  absl::StatusOr<std::vector<std::vector<Neighbor>>> rows;
  if (ivf_ != nullptr) {
    faiss::SearchParametersIVF params;
    params.nprobe = static_cast<size_t>(std::clamp<int64_t>(
        options.nprobe, 1, static_cast<int64_t>(ivf_->nlist)));
    return SearchFaiss(*ivf_, 0, count, queries, k, &params, selected);
  }

  const int ef_search = std::max(options.ef_search, k);
  if (flat_ != nullptr) {
    rows = SearchGraph(count, queries, k, ef_search, selected);
    if (absl::Status status = MergePending(count, queries, k, selected, &*rows);
        !status.ok()) {
      return status;
    }
    return rows;
  }

  // HNSW_SQ8 searches with FAISS. Requesting ef_search results sizes
  // FAISS's candidate queue to ef_search (see AdoptTrained). The best k of
  // them are the result.
  const int requested =
      static_cast<int>(std::min<int64_t>(ef_search, index_->ntotal));
  if (requested == 0) {
    rows = std::vector<std::vector<Neighbor>>(count);
  } else {
    faiss::SearchParametersHNSW params;
    params.efSearch = requested;
    rows = SearchFaiss(*hnsw_, 0, count, queries, requested, &params, selected);
    if (!rows.ok()) return rows;
    for (std::vector<Neighbor>& row : *rows) {
      if (static_cast<int>(row.size()) > k) row.resize(k);
    }
  }
  if (absl::Status status = MergePending(count, queries, k, selected, &*rows);
      !status.ok()) {
    return status;
  }
  return rows;
}

std::vector<std::vector<Neighbor>> VectorIndex::SearchGraph(
    int64_t count, const float* queries, int k, int ef,
    const std::vector<uint8_t>* selected) const {
  AdmittedLabels admitted;
  if (deleted_count_ > 0) admitted.deleted = &deleted_;
  admitted.selected = selected;
  std::vector<std::vector<Neighbor>> rows(count);
#pragma omp parallel for schedule(dynamic) if (count > 1)
  for (int64_t i = 0; i < count; ++i) {
    rows[i] = SearchHnswGraph(hnsw_->hnsw, *flat_,
                              queries + i * spec_.dimension, k, ef, admitted);
  }
  return rows;
}

absl::Status VectorIndex::MergePending(
    int64_t count, const float* queries, int k,
    const std::vector<uint8_t>* selected,
    std::vector<std::vector<Neighbor>>* rows) const {
  if (pending_count() == 0) return absl::OkStatus();
  faiss::SearchParameters params;
  absl::StatusOr<std::vector<std::vector<Neighbor>>> waiting = SearchFaiss(
      *pending_, index_->ntotal, count, queries, k, &params, selected);
  if (!waiting.ok()) return waiting.status();
  MergeRows(rows, *waiting, k, spec_.metric);
  return absl::OkStatus();
}

void VectorIndex::ShrinkToFit() {
  if (flat_ != nullptr) flat_->codes.shrink_to_fit();
  if (sq_ != nullptr) sq_->codes.shrink_to_fit();
  if (hnsw_ != nullptr) {
    hnsw_->hnsw.neighbors.shrink_to_fit();
    hnsw_->hnsw.offsets.shrink_to_fit();
    hnsw_->hnsw.levels.shrink_to_fit();
  }
  if (ivf_ != nullptr) {
    if (auto* lists =
            dynamic_cast<faiss::ArrayInvertedLists*>(ivf_->invlists)) {
      for (size_t list = 0; list < lists->nlist; ++list) {
        lists->codes[list].shrink_to_fit();
        lists->ids[list].shrink_to_fit();
      }
    }
    ivf_->direct_map.array.shrink_to_fit();
  }
  deleted_.shrink_to_fit();
}

uint64_t VectorIndex::SpareBytes() const {
  auto spare = [](const auto& values) -> uint64_t {
    return (values.capacity() - values.size()) * sizeof(values[0]);
  };
  uint64_t bytes = spare(deleted_);
  if (flat_ != nullptr) bytes += spare(flat_->codes);
  if (sq_ != nullptr) bytes += spare(sq_->codes);
  if (ivf_ != nullptr) {
    if (auto* lists =
            dynamic_cast<const faiss::ArrayInvertedLists*>(ivf_->invlists)) {
      for (size_t list = 0; list < lists->nlist; ++list) {
        bytes += spare(lists->codes[list]) + spare(lists->ids[list]);
      }
    }
    bytes += spare(ivf_->direct_map.array);
  }
  return bytes;
}

uint64_t VectorIndex::MemoryBytes() const {
  uint64_t bytes = deleted_.capacity();
  if (flat_ != nullptr) bytes += flat_->codes.capacity();
  if (sq_ != nullptr)
    bytes += sq_->codes.capacity() + sq_->sq.trained.size() * sizeof(float);
  if (pending_ != nullptr) bytes += pending_->codes.capacity();
  if (hnsw_ != nullptr) {
    const faiss::HNSW& graph = hnsw_->hnsw;
    bytes += graph.neighbors.capacity() * sizeof(graph.neighbors[0]) +
             graph.offsets.capacity() * sizeof(graph.offsets[0]) +
             graph.levels.capacity() * sizeof(graph.levels[0]);
  }
  if (ivf_ != nullptr) {
    // Centroids, each list's codes and ids, and the direct map.
    bytes +=
        static_cast<uint64_t>(ivf_->nlist) * spec_.dimension * sizeof(float);
    if (auto* lists =
            dynamic_cast<const faiss::ArrayInvertedLists*>(ivf_->invlists)) {
      for (size_t list = 0; list < lists->nlist; ++list) {
        bytes += lists->codes[list].capacity() +
                 lists->ids[list].capacity() * sizeof(faiss::Index::idx_t);
      }
    }
    bytes += ivf_->direct_map.array.capacity() * sizeof(faiss::Index::idx_t);
    if (auto* pq = dynamic_cast<const faiss::IndexIVFPQ*>(ivf_)) {
      bytes += pq->pq.centroids.capacity() * sizeof(float) +
               pq->precomputed_table.size() * sizeof(float);
    }
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
  absl::StatusOr<std::vector<std::vector<Neighbor>>> rows =
      hnsw_ == nullptr && ivf_ == nullptr
          ? SearchExhaustive(1, query, k, &selected)
          : SearchApproximate(1, query, k, options, &selected);
  if (!rows.ok()) return rows.status();
  return std::move(rows->front());
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
  std::vector<float> decoded(flat_ != nullptr ? 0 : spec_.dimension);
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* stored = nullptr;
    if (flat_ != nullptr) {
      stored = StoredVector(labels[i]);
    } else {
      ReconstructVector(labels[i], decoded.data());
      stored = decoded.data();
    }
    distances[i] = Distance(spec_.metric, query, stored, spec_.dimension);
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
