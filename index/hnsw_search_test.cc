#include "index/hnsw_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "faiss/IndexHNSW.h"
#include "faiss/impl/io.h"
#include "faiss/index_io.h"
#include "faiss/utils/distances.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/simd_distance.h"
#include "index/simd_flat_index.h"
#include "index/vector_index.h"
#include "tests/status_matchers.h"

namespace vecdb::index {
namespace {

constexpr int kDimension = 40;
constexpr int kPoints = 5000;
constexpr int kQueries = 100;
constexpr int kTopK = 10;

// Normal vectors, scaled to unit length for the inner product so that it
// ranks like cosine similarity.
std::vector<float> RandomVectors(int count, faiss::MetricType metric,
                                 unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> vectors(static_cast<size_t>(count) * kDimension);
  for (float& value : vectors) value = normal(generator);
  if (metric == faiss::METRIC_INNER_PRODUCT) {
    for (int i = 0; i < count; ++i) {
      float* vector = vectors.data() + i * kDimension;
      float norm = 0;
      for (int j = 0; j < kDimension; ++j) norm += vector[j] * vector[j];
      for (int j = 0; j < kDimension; ++j) vector[j] /= std::sqrt(norm);
    }
  }
  return vectors;
}

// The k best positions for `query` among the admitted ones, by brute force.
std::vector<int64_t> BruteForce(const std::vector<float>& vectors,
                                faiss::MetricType metric, const float* query,
                                const AdmittedLabels& admitted) {
  std::vector<std::pair<float, int64_t>> scored;
  for (int64_t i = 0; i < static_cast<int64_t>(vectors.size()) / kDimension;
       ++i) {
    if (!admitted.Admits(i)) continue;
    const float* vector = vectors.data() + i * kDimension;
    float score = 0;
    for (int j = 0; j < kDimension; ++j) {
      score += metric == faiss::METRIC_L2
                   ? (vector[j] - query[j]) * (vector[j] - query[j])
                   : -vector[j] * query[j];
    }
    scored.push_back({score, i});
  }
  const size_t best_count = std::min<size_t>(kTopK, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + best_count, scored.end());
  std::vector<int64_t> best;
  for (size_t i = 0; i < best_count; ++i) best.push_back(scored[i].second);
  return best;
}

// An HNSW graph built by FAISS over a SimdFlatIndex.
class HnswSearchTest : public ::testing::TestWithParam<faiss::MetricType> {
 protected:
  void SetUp() override {
    metric_ = GetParam();
    vectors_ = RandomVectors(kPoints, metric_, 1);
    queries_ = RandomVectors(kQueries, metric_, 2);
    graph_ = std::make_unique<faiss::IndexHNSWFlat>(kDimension, 16, metric_);
    graph_->hnsw.efConstruction = 80;
    delete graph_->storage;
    graph_->storage = new SimdFlatIndex(kDimension, metric_);
    graph_->add(kPoints, vectors_.data());
  }

  const SimdFlatIndex& storage() const {
    return *static_cast<const SimdFlatIndex*>(graph_->storage);
  }

  // Mean recall@10 of SearchHnswGraph against brute force.
  double Recall(int ef, const AdmittedLabels& admitted = {}) const {
    int found = 0;
    int expected = 0;
    for (int q = 0; q < kQueries; ++q) {
      const float* query = queries_.data() + q * kDimension;
      const std::vector<int64_t> truth =
          BruteForce(vectors_, metric_, query, admitted);
      const std::vector<Neighbor> got =
          SearchHnswGraph(graph_->hnsw, storage(), query, kTopK, ef, admitted);
      for (const Neighbor& neighbor : got) {
        EXPECT_TRUE(admitted.Admits(neighbor.label));
        found += std::count(truth.begin(), truth.end(), neighbor.label);
      }
      expected += static_cast<int>(truth.size());
    }
    return static_cast<double>(found) / expected;
  }

  faiss::MetricType metric_;
  std::vector<float> vectors_;
  std::vector<float> queries_;
  std::unique_ptr<faiss::IndexHNSWFlat> graph_;
};

TEST_P(HnswSearchTest, RecallGrowsWithEf) {
  const double at_10 = Recall(10);
  const double at_40 = Recall(40);
  const double at_200 = Recall(200);
  EXPECT_GE(at_40, at_10);
  EXPECT_GE(at_200, at_40);
  EXPECT_GE(at_200, 0.99);
}

TEST_P(HnswSearchTest, DistancesAreFaissDistancesBestFirst) {
  const float* query = queries_.data();
  const std::vector<Neighbor> got =
      SearchHnswGraph(graph_->hnsw, storage(), query, kTopK, 64, {});
  ASSERT_EQ(got.size(), static_cast<size_t>(kTopK));
  for (size_t i = 0; i < got.size(); ++i) {
    const float* vector = vectors_.data() + got[i].label * kDimension;
    const float expected =
        metric_ == faiss::METRIC_L2
            ? faiss::fvec_L2sqr(query, vector, kDimension)
            : faiss::fvec_inner_product(query, vector, kDimension);
    EXPECT_NEAR(got[i].distance, expected, 1e-4);
    if (i == 0) continue;
    if (metric_ == faiss::METRIC_L2) {
      EXPECT_LE(got[i - 1].distance, got[i].distance);
    } else {
      EXPECT_GE(got[i - 1].distance, got[i].distance);
    }
  }
}

TEST_P(HnswSearchTest, FindsWhatFaissOwnSearchFinds) {
  // The same graph searched by FAISS with the same ef: the walks differ in
  // small details, so nearly all results must agree.
  constexpr int kEf = 64;
  graph_->hnsw.efSearch = kEf;
  std::vector<float> distances(kQueries * kTopK);
  std::vector<faiss::Index::idx_t> labels(kQueries * kTopK);
  graph_->search(kQueries, queries_.data(), kTopK, distances.data(),
                 labels.data());
  int shared = 0;
  for (int q = 0; q < kQueries; ++q) {
    const std::vector<Neighbor> got =
        SearchHnswGraph(graph_->hnsw, storage(),
                        queries_.data() + q * kDimension, kTopK, kEf, {});
    std::set<int64_t> faiss_row(labels.begin() + q * kTopK,
                                labels.begin() + (q + 1) * kTopK);
    for (const Neighbor& neighbor : got)
      shared += faiss_row.count(neighbor.label);
  }
  EXPECT_GE(shared, kQueries * kTopK * 97 / 100);
}

TEST_P(HnswSearchTest, ReturnsOnlyAdmittedLabels) {
  std::vector<uint8_t> deleted(kPoints, 0);
  std::vector<uint8_t> selected(kPoints, 0);
  for (int i = 0; i < kPoints; ++i) {
    deleted[i] = i % 3 == 0;
    selected[i] = i % 2 == 0;
  }
  AdmittedLabels admitted;
  admitted.deleted = &deleted;
  admitted.selected = &selected;
  // Recall checks every returned label against `admitted` as well.
  EXPECT_GE(Recall(200, admitted), 0.95);
}

TEST_P(HnswSearchTest, EmptyGraphReturnsNothing) {
  faiss::IndexHNSWFlat empty(kDimension, 16, metric_);
  delete empty.storage;
  auto* vectors = new SimdFlatIndex(kDimension, metric_);
  empty.storage = vectors;
  EXPECT_TRUE(SearchHnswGraph(empty.hnsw, *vectors, queries_.data(), 5, 16, {})
                  .empty());
}

INSTANTIATE_TEST_SUITE_P(Metrics, HnswSearchTest,
                         ::testing::Values(faiss::METRIC_L2,
                                           faiss::METRIC_INNER_PRODUCT));

// Builds a VectorIndex of kind HNSW over `vectors` with the kernels of
// whatever level is active.
std::unique_ptr<VectorIndex> BuildHnsw(const std::vector<float>& vectors) {
  IndexSpec spec;
  spec.kind = IndexKind::kHnsw;
  spec.dimension = kDimension;
  spec.m = 16;
  spec.ef_construction = 80;
  absl::StatusOr<std::unique_ptr<VectorIndex>> index =
      VectorIndex::Create(spec);
  EXPECT_OK(index);
  EXPECT_OK((*index)->Add(kPoints, vectors.data()));
  return *std::move(index);
}

std::unique_ptr<VectorIndex> SaveAndLoad(const VectorIndex& index) {
  faiss::VectorIOWriter writer;
  EXPECT_OK(index.Save(&writer));
  faiss::VectorIOReader reader;
  reader.data = writer.data;
  absl::StatusOr<std::unique_ptr<VectorIndex>> loaded = VectorIndex::Load(
      index.spec(), &reader, std::vector<uint8_t>(index.size(), 0));
  EXPECT_OK(loaded);
  return *std::move(loaded);
}

std::vector<Label> LabelsOf(const VectorIndex& index, const float* query) {
  SearchOptions options;
  options.k = kTopK;
  options.ef_search = 64;
  absl::StatusOr<std::vector<Neighbor>> found = index.Search(query, options);
  EXPECT_OK(found);
  std::vector<Label> labels;
  for (const Neighbor& neighbor : *found) labels.push_back(neighbor.label);
  return labels;
}

TEST(SimdLevelsTest, SameResultsAtEveryLevel) {
  const SimdLevel before = ActiveSimdLevel();
  const std::vector<float> vectors =
      RandomVectors(kPoints, faiss::METRIC_L2, 3);
  const std::vector<float> queries =
      RandomVectors(kQueries, faiss::METRIC_L2, 4);
  SetSimdLevel(SimdLevel::kGeneric);
  const std::unique_ptr<VectorIndex> generic = BuildHnsw(vectors);

  for (SimdLevel level : {SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (SetSimdLevel(level) != level) continue;
    // The same graph, loaded with this level's kernels.
    const std::unique_ptr<VectorIndex> loaded = SaveAndLoad(*generic);
    int same = 0;
    for (int q = 0; q < kQueries; ++q) {
      const float* query = queries.data() + q * kDimension;
      std::vector<Label> expected = LabelsOf(*generic, query);
      std::vector<Label> got = LabelsOf(*loaded, query);
      same += expected == got;
    }
    // Rounding may swap two neighbours at equal distance, rarely.
    EXPECT_GE(same, kQueries * 98 / 100) << SimdLevelName(level);
  }
  SetSimdLevel(before);
}

TEST(SimdLevelsTest, SavesAndLoadsPlainFaissFiles) {
  const std::vector<float> vectors =
      RandomVectors(kPoints, faiss::METRIC_L2, 5);
  const std::unique_ptr<VectorIndex> index = BuildHnsw(vectors);
  faiss::VectorIOWriter writer;
  ASSERT_OK(index->Save(&writer));

  // Any FAISS reads the graph back as IndexHNSWFlat over IndexFlat.
  faiss::VectorIOReader reader;
  reader.data = writer.data;
  std::unique_ptr<faiss::Index> plain(faiss::read_index(&reader));
  auto* hnsw = dynamic_cast<faiss::IndexHNSWFlat*>(plain.get());
  ASSERT_NE(hnsw, nullptr);
  EXPECT_NE(dynamic_cast<faiss::IndexFlat*>(hnsw->storage), nullptr);
  EXPECT_EQ(dynamic_cast<SimdFlatIndex*>(hnsw->storage), nullptr);
  EXPECT_EQ(hnsw->ntotal, kPoints);

  // And a file that plain FAISS wrote loads and searches: the graph, then
  // the empty flat index of vectors waiting for it.
  faiss::VectorIOWriter plain_writer;
  faiss::write_index(plain.get(), &plain_writer);
  faiss::IndexFlat waiting(kDimension, faiss::METRIC_L2);
  faiss::write_index(&waiting, &plain_writer);
  faiss::VectorIOReader plain_reader;
  plain_reader.data = plain_writer.data;
  absl::StatusOr<std::unique_ptr<VectorIndex>> loaded = VectorIndex::Load(
      index->spec(), &plain_reader, std::vector<uint8_t>(kPoints, 0));
  ASSERT_OK(loaded);
  for (int i = 0; i < 20; ++i) {
    const float* vector = vectors.data() + i * 250 * kDimension;
    EXPECT_EQ(LabelsOf(**loaded, vector).front(), i * 250);
    EXPECT_EQ(std::memcmp((*loaded)->StoredVector(i * 250), vector,
                          kDimension * sizeof(float)),
              0);
  }
}

}  // namespace
}  // namespace vecdb::index
