#include "index/vector_index.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "faiss/impl/io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace vecdb::index {
namespace {

using ::vecdb::testing::StatusIs;

constexpr int kDimension = 16;

std::vector<float> RandomVectors(int count, int dimension, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> vectors(static_cast<size_t>(count) * dimension);
  for (float& value : vectors) value = normal(generator);
  return vectors;
}

// Returns the labels of the k nearest vectors by brute force, best first,
// skipping those in `deleted`.
std::vector<Label> BruteForce(const std::vector<float>& vectors,
                              const float* query, int k, IndexMetric metric,
                              const std::set<Label>& deleted = {}) {
  const int count = static_cast<int>(vectors.size() / kDimension);
  std::vector<std::pair<double, Label>> scored;
  for (int i = 0; i < count; ++i) {
    if (deleted.count(i) != 0) continue;
    double value = 0;
    for (int j = 0; j < kDimension; ++j) {
      const double a = vectors[i * kDimension + j];
      value += metric == IndexMetric::kL2 ? (a - query[j]) * (a - query[j])
                                          : -a * query[j];
    }
    scored.push_back({value, i});
  }
  std::sort(scored.begin(), scored.end());
  std::vector<Label> labels;
  for (int i = 0; i < k && i < static_cast<int>(scored.size()); ++i) {
    labels.push_back(scored[i].second);
  }
  return labels;
}

std::vector<Label> Labels(const std::vector<Neighbor>& neighbors) {
  std::vector<Label> labels;
  for (const Neighbor& neighbor : neighbors) labels.push_back(neighbor.label);
  return labels;
}

std::unique_ptr<VectorIndex> MakeIndex(IndexKind kind, IndexMetric metric) {
  IndexSpec spec;
  spec.kind = kind;
  spec.dimension = kDimension;
  spec.metric = metric;
  spec.m = 16;
  spec.ef_construction = 100;
  absl::StatusOr<std::unique_ptr<VectorIndex>> index =
      VectorIndex::Create(spec);
  EXPECT_OK(index);
  return index.ok() ? *std::move(index) : nullptr;
}

class VectorIndexTest
    : public ::testing::TestWithParam<std::tuple<IndexKind, IndexMetric>> {
 protected:
  void SetUp() override {
    index_ = MakeIndex(std::get<0>(GetParam()), std::get<1>(GetParam()));
    ASSERT_NE(index_, nullptr);
  }

  void AddRandom(int count, unsigned seed = 1) {
    std::vector<float> added = RandomVectors(count, kDimension, seed);
    ASSERT_OK(index_->Add(count, added.data()));
    vectors_.insert(vectors_.end(), added.begin(), added.end());
  }

  std::vector<Neighbor> Search(const float* query, int k, int ef = 64) {
    SearchOptions options;
    options.k = k;
    options.ef_search = ef;
    absl::StatusOr<std::vector<Neighbor>> neighbors =
        index_->Search(query, options);
    EXPECT_OK(neighbors);
    return neighbors.ok() ? *neighbors : std::vector<Neighbor>();
  }

  IndexMetric metric() const { return std::get<1>(GetParam()); }

  std::unique_ptr<VectorIndex> index_;
  std::vector<float> vectors_;
};

TEST_P(VectorIndexTest, EmptyIndexReturnsNothing) {
  std::vector<float> query = RandomVectors(1, kDimension, 9);
  EXPECT_TRUE(Search(query.data(), 10).empty());
}

TEST_P(VectorIndexTest, KAboveLiveCountReturnsEveryLivePoint) {
  AddRandom(7);
  index_->MarkDeleted(2);
  std::vector<Neighbor> neighbors = Search(vectors_.data(), 100);
  ASSERT_EQ(neighbors.size(), 6u);
  EXPECT_EQ(Labels(neighbors),
            BruteForce(vectors_, vectors_.data(), 100, metric(), {2}));
}

TEST_P(VectorIndexTest, DeletedLabelsAreNeverReturned) {
  AddRandom(500);
  std::set<Label> deleted;
  for (Label label = 0; label < 500; label += 3) {
    index_->MarkDeleted(label);
    deleted.insert(label);
  }
  EXPECT_EQ(index_->live_count(), 500 - static_cast<int64_t>(deleted.size()));
  for (int q = 0; q < 50; ++q) {
    std::vector<Neighbor> neighbors = Search(&vectors_[q * kDimension], 10);
    ASSERT_EQ(neighbors.size(), 10u);
    for (const Neighbor& neighbor : neighbors) {
      EXPECT_EQ(deleted.count(neighbor.label), 0u) << neighbor.label;
    }
  }
}

TEST_P(VectorIndexTest, MostlyDeletedIndexStillReturnsK) {
  AddRandom(300);
  for (Label label = 0; label < 290; ++label) index_->MarkDeleted(label);
  std::vector<Neighbor> neighbors = Search(vectors_.data(), 5);
  EXPECT_EQ(neighbors.size(), 5u);
  for (const Neighbor& neighbor : neighbors) EXPECT_GE(neighbor.label, 290);
}

TEST_P(VectorIndexTest, SearchManyMatchesSingleSearches) {
  AddRandom(1000);
  for (Label label = 0; label < 1000; label += 7) index_->MarkDeleted(label);
  std::vector<float> queries = RandomVectors(40, kDimension, 11);
  SearchOptions options;
  options.k = 10;
  absl::StatusOr<std::vector<std::vector<Neighbor>>> rows =
      index_->SearchMany(40, queries.data(), options);
  ASSERT_OK(rows);
  ASSERT_EQ(rows->size(), 40u);
  for (int q = 0; q < 40; ++q) {
    EXPECT_EQ(Labels((*rows)[q]), Labels(Search(&queries[q * kDimension], 10)))
        << "query " << q;
  }
}

TEST_P(VectorIndexTest, RecallAgainstBruteForce) {
  AddRandom(2000);
  std::vector<float> queries = RandomVectors(100, kDimension, 7);
  int found = 0;
  for (int q = 0; q < 100; ++q) {
    const float* query = &queries[q * kDimension];
    std::vector<Label> truth = BruteForce(vectors_, query, 10, metric());
    std::vector<Label> got = Labels(Search(query, 10));
    for (Label label : got) {
      found += std::count(truth.begin(), truth.end(), label);
    }
  }
  const double recall = found / 1000.0;
  if (std::get<0>(GetParam()) == IndexKind::kFlat) {
    EXPECT_EQ(recall, 1.0);
  } else {
    EXPECT_GE(recall, 0.95);
  }
}

INSTANTIATE_TEST_SUITE_P(
    KindsAndMetrics, VectorIndexTest,
    ::testing::Combine(::testing::Values(IndexKind::kFlat, IndexKind::kHnsw),
                       ::testing::Values(IndexMetric::kL2,
                                         IndexMetric::kInnerProduct)));

// Recall@10 of the graph search at a given ef_search.
double HnswRecallAt(VectorIndex& index, const std::vector<float>& vectors,
                    const std::vector<float>& queries, int ef_search) {
  int found = 0;
  const int query_count = static_cast<int>(queries.size() / kDimension);
  for (int q = 0; q < query_count; ++q) {
    const float* query = &queries[q * kDimension];
    SearchOptions options;
    options.k = 10;
    options.ef_search = ef_search;
    absl::StatusOr<std::vector<Neighbor>> got = index.Search(query, options);
    EXPECT_OK(got);
    std::vector<Label> truth = BruteForce(vectors, query, 10, IndexMetric::kL2);
    for (const Neighbor& neighbor : *got) {
      found += std::count(truth.begin(), truth.end(), neighbor.label);
    }
  }
  return found / (10.0 * query_count);
}

// The graph is built sparse (m 8, ef_construction 40) so that small
// ef_search values visibly miss neighbours.
TEST(HnswSearchTest, RecallGrowsWithEfSearch) {
  IndexSpec spec;
  spec.kind = IndexKind::kHnsw;
  spec.dimension = kDimension;
  spec.m = 8;
  spec.ef_construction = 40;
  absl::StatusOr<std::unique_ptr<VectorIndex>> index =
      VectorIndex::Create(spec);
  ASSERT_OK(index);
  std::vector<float> vectors = RandomVectors(20000, kDimension, 3);
  ASSERT_OK((*index)->Add(20000, vectors.data()));
  std::vector<float> queries = RandomVectors(200, kDimension, 4);

  const double at_10 = HnswRecallAt(**index, vectors, queries, 10);
  const double at_64 = HnswRecallAt(**index, vectors, queries, 64);
  const double at_512 = HnswRecallAt(**index, vectors, queries, 512);
  // Per-search ef_search must take effect in both directions: small values
  // search less, large ones more.
  std::printf("recall@10 at ef_search 10: %.4f, 64: %.4f, 512: %.4f\n", at_10,
              at_64, at_512);
  EXPECT_LT(at_10, 0.9);
  EXPECT_GT(at_64, at_10);
  EXPECT_GE(at_512, at_64);
  EXPECT_GE(at_512, 0.99);
  // A small value after a large one gives the small value's result, because
  // a search leaves no state behind in the index.
  EXPECT_EQ(HnswRecallAt(**index, vectors, queries, 10), at_10);
}

TEST(VectorIndexCreateTest, RejectsBadParameters) {
  IndexSpec spec;
  spec.dimension = 0;
  EXPECT_THAT(VectorIndex::Create(spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("dimension")));
  spec.dimension = 4;
  spec.m = 1;
  EXPECT_THAT(VectorIndex::Create(spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("m must be")));
}

// Vectors added with kDeferGraph are found by every search before and after
// they move into the graph, with unchanged labels.
TEST(DeferredGraphTest, WaitingVectorsAreSearchedAndKeepTheirLabels) {
  for (IndexMetric metric : {IndexMetric::kL2, IndexMetric::kInnerProduct}) {
    std::unique_ptr<VectorIndex> index = MakeIndex(IndexKind::kHnsw, metric);
    const std::vector<float> vectors = RandomVectors(3000, kDimension, 11);
    ASSERT_OK(index->Add(1000, vectors.data()));
    ASSERT_OK(index->Add(1000, vectors.data() + 1000 * kDimension,
                         AddMode::kDeferGraph));
    // Waiting vectors hold later ones back, whatever the mode.
    ASSERT_OK(index->Add(1000, vectors.data() + 2000 * kDimension));
    EXPECT_EQ(index->pending_count(), 2000);
    index->MarkDeleted(1500);
    index->MarkDeleted(10);
    const std::set<Label> deleted = {10, 1500};

    auto check = [&](const char* stage) {
      SCOPED_TRACE(stage);
      for (Label label : {5, 1200, 2500}) {
        const float* vector = vectors.data() + label * kDimension;
        EXPECT_EQ(std::vector<float>(vector, vector + kDimension),
                  std::vector<float>(index->StoredVector(label),
                                     index->StoredVector(label) + kDimension));
      }
      const std::vector<float> queries = RandomVectors(20, kDimension, 12);
      for (bool exact : {true, false}) {
        int agree = 0;
        for (int q = 0; q < 20; ++q) {
          const float* query = queries.data() + q * kDimension;
          SearchOptions options;
          options.k = 10;
          options.ef_search = 200;
          options.exact = exact;
          absl::StatusOr<std::vector<Neighbor>> found =
              index->Search(query, options);
          ASSERT_OK(found);
          const std::vector<Label> expected =
              BruteForce(vectors, query, 10, metric, deleted);
          for (Label label : Labels(*found)) {
            agree += std::count(expected.begin(), expected.end(), label);
            EXPECT_EQ(deleted.count(label), 0u);
          }
        }
        if (exact) {
          EXPECT_EQ(agree, 200);
        } else {
          EXPECT_GE(agree, 190);
        }
      }
    };
    check("with 2000 vectors waiting");
    ASSERT_OK(index->IndexPending(700));
    EXPECT_EQ(index->pending_count(), 1300);
    check("with 1300 vectors waiting");
    ASSERT_OK(index->IndexPending(5000));
    EXPECT_EQ(index->pending_count(), 0);
    check("with every vector in the graph");
  }
}

TEST(DeferredGraphTest, SaveAndLoadKeepWaitingVectors) {
  std::unique_ptr<VectorIndex> index =
      MakeIndex(IndexKind::kHnsw, IndexMetric::kL2);
  const std::vector<float> vectors = RandomVectors(600, kDimension, 13);
  ASSERT_OK(index->Add(400, vectors.data()));
  ASSERT_OK(
      index->Add(200, vectors.data() + 400 * kDimension, AddMode::kDeferGraph));
  faiss::VectorIOWriter writer;
  ASSERT_OK(index->Save(&writer));

  faiss::VectorIOReader reader;
  reader.data = writer.data;
  std::vector<uint8_t> deleted(600, 0);
  deleted[450] = 1;
  absl::StatusOr<std::unique_ptr<VectorIndex>> loaded =
      VectorIndex::Load(index->spec(), &reader, deleted);
  ASSERT_OK(loaded);
  EXPECT_EQ((*loaded)->size(), 600);
  EXPECT_EQ((*loaded)->pending_count(), 200);
  EXPECT_EQ((*loaded)->live_count(), 599);
  SearchOptions options;
  options.k = 1;
  absl::StatusOr<std::vector<Neighbor>> found =
      (*loaded)->Search(vectors.data() + 500 * kDimension, options);
  ASSERT_OK(found);
  EXPECT_THAT(Labels(*found), ::testing::ElementsAre(500));
}

}  // namespace
}  // namespace vecdb::index
