// Single-query search through vecdb's VectorIndex beside raw FAISS on the
// same HNSW parameters and data, to show what the wrapper costs. Both sides
// build their own graph from the same seeded vectors.
//
// Run: build/bench/index_search_bench [--benchmark_filter=...]

#include <memory>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "faiss/IndexHNSW.h"
#include "index/vector_index.h"

namespace vecdb::index {
namespace {

constexpr int kDimension = 128;
constexpr int kPoints = 50000;
constexpr int kQueries = 1000;
constexpr int kM = 16;
constexpr int kEfConstruction = 100;
constexpr int kTopK = 10;

// Clustered data, closer to real embeddings than uniform noise.
std::vector<float> ClusteredVectors(int count, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centers(100 * kDimension);
  for (float& value : centers) value = normal(generator);
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<float> vectors(static_cast<size_t>(count) * kDimension);
  for (int i = 0; i < count; ++i) {
    const int center = pick(generator);
    for (int j = 0; j < kDimension; ++j) {
      vectors[i * kDimension + j] =
          centers[center * kDimension + j] + 0.3f * normal(generator);
    }
  }
  return vectors;
}

struct Fixture {
  Fixture()
      : base(ClusteredVectors(kPoints, 1)),
        queries(ClusteredVectors(kQueries, 2)) {
    IndexSpec spec;
    spec.kind = IndexKind::kHnsw;
    spec.dimension = kDimension;
    spec.m = kM;
    spec.ef_construction = kEfConstruction;
    vecdb_index = *VectorIndex::Create(spec);
    (void)vecdb_index->Add(kPoints, base.data());

    raw = std::make_unique<faiss::IndexHNSWFlat>(kDimension, kM);
    raw->hnsw.efConstruction = kEfConstruction;
    raw->add(kPoints, base.data());
  }

  std::vector<float> base;
  std::vector<float> queries;
  std::unique_ptr<VectorIndex> vecdb_index;
  std::unique_ptr<faiss::IndexHNSWFlat> raw;
};

Fixture& SharedFixture() {
  static Fixture* fixture = new Fixture();
  return *fixture;
}

void BM_VecdbHnswSearch(benchmark::State& state) {
  Fixture& fixture = SharedFixture();
  SearchOptions options;
  options.k = kTopK;
  options.ef_search = static_cast<int>(state.range(0));
  int q = 0;
  for (auto _ : state) {
    auto neighbors = fixture.vecdb_index->Search(
        &fixture.queries[(q++ % kQueries) * kDimension], options);
    benchmark::DoNotOptimize(neighbors);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RawFaissHnswSearch(benchmark::State& state) {
  Fixture& fixture = SharedFixture();
  fixture.raw->hnsw.efSearch = static_cast<int>(state.range(0));
  std::vector<float> distances(kTopK);
  std::vector<faiss::Index::idx_t> labels(kTopK);
  int q = 0;
  for (auto _ : state) {
    fixture.raw->search(1, &fixture.queries[(q++ % kQueries) * kDimension],
                        kTopK, distances.data(), labels.data());
    benchmark::DoNotOptimize(labels.data());
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_VecdbHnswSearch)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK(BM_RawFaissHnswSearch)->Arg(16)->Arg(64)->Arg(256);

}  // namespace
}  // namespace vecdb::index

BENCHMARK_MAIN();
