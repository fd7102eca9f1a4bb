// HNSW build time and single-query speed of vecdb's index layer beside raw
// FAISS and hnswlib, in one process, on the same vectors, graph parameters
// and queries. No gRPC and no storage: this isolates the graph search and
// the distance kernels.
//
// Systems (--systems, comma separated):
//   faiss           faiss::IndexHNSWFlat as Debian builds it (generic x86-64)
//   vecdb-generic   vecdb's VectorIndex with FAISS's generic distance loops
//   vecdb-avx2      ... with the AVX2 kernels of index/simd_distance.h
//   vecdb-avx512    ... with the AVX-512 kernels
//   hnswlib         Debian's libhnswlib-dev headers, compiled with this
//                   project's flags (SSE, as Debian's python3-hnswlib)
// Builds use every core. Searches run one query at a time on the calling
// thread, so pin the process (taskset -c 1) for steady figures.
//
//   build/bench/hnsw_bench --fashion /usr/share/datasets/fashion-mnist
//   build/bench/hnsw_bench --synthetic 200000 --dimension 128

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_split.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "hnswlib/hnswlib.h"
#include "index/simd_distance.h"
#include "index/vector_index.h"
#include "zlib.h"

namespace vecdb::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kTopK = 10;

struct DataSet {
  int dimension = 0;
  std::vector<float> base;
  std::vector<float> queries;
  int64_t base_count() const { return base.size() / dimension; }
  int64_t query_count() const { return queries.size() / dimension; }
};

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Reads a gzipped IDX3 image file as floats 0 to 255, one row per image.
std::vector<float> ReadIdxImages(const std::string& path, int* dimension) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    std::fprintf(stderr, "failed to open %s\n", path.c_str());
    std::exit(1);
  }
  unsigned char header[16];
  if (gzread(file, header, sizeof(header)) != sizeof(header)) {
    std::fprintf(stderr, "%s: too short for an IDX3 header\n", path.c_str());
    std::exit(1);
  }
  auto field = [&header](int at) {
    return (uint32_t{header[at]} << 24) | (uint32_t{header[at + 1]} << 16) |
           (uint32_t{header[at + 2]} << 8) | uint32_t{header[at + 3]};
  };
  const uint32_t count = field(4);
  *dimension = static_cast<int>(field(8) * field(12));
  std::vector<unsigned char> pixels(static_cast<size_t>(count) * *dimension);
  if (gzread(file, pixels.data(), pixels.size()) !=
      static_cast<int>(pixels.size())) {
    std::fprintf(stderr,
                 "%s: truncated, fewer pixels than the header declares\n",
                 path.c_str());
    std::exit(1);
  }
  gzclose(file);
  return std::vector<float>(pixels.begin(), pixels.end());
}

// Points around 1,000 seeded centres, as bench/kinds_bench.py makes them.
std::vector<float> ClusteredVectors(int64_t count, int dimension,
                                    unsigned seed) {
  std::mt19937 centre_generator(42);
  std::normal_distribution<float> normal;
  std::vector<float> centres(1000 * static_cast<size_t>(dimension));
  for (float& value : centres) value = normal(centre_generator);
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int> pick(0, 999);
  std::vector<float> vectors(static_cast<size_t>(count) * dimension);
  for (int64_t i = 0; i < count; ++i) {
    const float* centre = centres.data() + pick(generator) * dimension;
    for (int j = 0; j < dimension; ++j) {
      vectors[i * dimension + j] = centre[j] + 0.25f * normal(generator);
    }
  }
  return vectors;
}

// The exact top k of every query, by FAISS's BLAS search.
std::vector<int64_t> GroundTruth(const DataSet& data, bool inner_product) {
  faiss::IndexFlat flat(data.dimension, inner_product
                                            ? faiss::METRIC_INNER_PRODUCT
                                            : faiss::METRIC_L2);
  flat.add(data.base_count(), data.base.data());
  std::vector<float> distances(data.query_count() * kTopK);
  std::vector<faiss::Index::idx_t> labels(distances.size());
  omp_set_num_threads(omp_get_num_procs());
  flat.search(data.query_count(), data.queries.data(), kTopK, distances.data(),
              labels.data());
  return std::vector<int64_t>(labels.begin(), labels.end());
}

// One system under test: builds once, then searches one query at a time.
class System {
 public:
  virtual ~System() = default;
  virtual void Build(const DataSet& data) = 0;
  // Writes the k best labels for `query` into `labels`.
  virtual void Search(const float* query, int ef, int64_t* labels) = 0;
};

class FaissSystem : public System {
 public:
  FaissSystem(int m, int ef_construction, bool inner_product)
      : m_(m), ef_construction_(ef_construction), ip_(inner_product) {}

  void Build(const DataSet& data) override {
    index_ = std::make_unique<faiss::IndexHNSWFlat>(
        data.dimension, m_,
        ip_ ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2);
    index_->hnsw.efConstruction = ef_construction_;
    omp_set_num_threads(omp_get_num_procs());
    index_->add(data.base_count(), data.base.data());
    omp_set_num_threads(1);
  }

  void Search(const float* query, int ef, int64_t* labels) override {
    index_->hnsw.efSearch = ef;
    float distances[kTopK];
    index_->search(1, query, kTopK, distances, labels);
  }

 private:
  const int m_;
  const int ef_construction_;
  const bool ip_;
  std::unique_ptr<faiss::IndexHNSWFlat> index_;
};

class VecdbSystem : public System {
 public:
  VecdbSystem(int m, int ef_construction, bool inner_product,
              index::SimdLevel level)
      : level_(level) {
    spec_.kind = index::IndexKind::kHnsw;
    spec_.m = m;
    spec_.ef_construction = ef_construction;
    spec_.metric = inner_product ? index::IndexMetric::kInnerProduct
                                 : index::IndexMetric::kL2;
  }

  void Build(const DataSet& data) override {
    index::SetSimdLevel(level_);
    spec_.dimension = data.dimension;
    index_ = *index::VectorIndex::Create(spec_);
    // Adds in requests of 1,000, as the server does.
    for (int64_t start = 0; start < data.base_count(); start += 1000) {
      const int64_t count = std::min<int64_t>(1000, data.base_count() - start);
      (void)index_->Add(count, data.base.data() + start * data.dimension);
    }
  }

  void Search(const float* query, int ef, int64_t* labels) override {
    index::SearchOptions options;
    options.k = kTopK;
    options.ef_search = ef;
    const std::vector<index::Neighbor> found = *index_->Search(query, options);
    for (int i = 0; i < kTopK; ++i) {
      labels[i] = i < static_cast<int>(found.size()) ? found[i].label : -1;
    }
  }

 private:
  const index::SimdLevel level_;
  index::IndexSpec spec_;
  std::unique_ptr<index::VectorIndex> index_;
};

class HnswlibSystem : public System {
 public:
  HnswlibSystem(int m, int ef_construction, bool inner_product)
      : m_(m), ef_construction_(ef_construction), ip_(inner_product) {}

  void Build(const DataSet& data) override {
    if (ip_) {
      space_ = std::make_unique<hnswlib::InnerProductSpace>(data.dimension);
    } else {
      space_ = std::make_unique<hnswlib::L2Space>(data.dimension);
    }
    index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        space_.get(), data.base_count(), m_, ef_construction_);
    // addPoint is thread-safe; split the points over every core.
    const int threads = static_cast<int>(std::thread::hardware_concurrency());
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([this, &data, t, threads] {
        for (int64_t i = t; i < data.base_count(); i += threads) {
          index_->addPoint(data.base.data() + i * data.dimension, i);
        }
      });
    }
    for (std::thread& worker : workers) worker.join();
  }

  void Search(const float* query, int ef, int64_t* labels) override {
    index_->setEf(ef);
    auto found = index_->searchKnn(query, kTopK);
    // The queue has the farthest on top.
    for (int i = kTopK - 1; i >= 0; --i) {
      labels[i] = found.empty() ? -1 : static_cast<int64_t>(found.top().second);
      if (!found.empty()) found.pop();
    }
  }

 private:
  const int m_;
  const int ef_construction_;
  const bool ip_;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
};

std::unique_ptr<System> MakeSystem(const std::string& name, int m,
                                   int ef_construction, bool inner_product) {
  if (name == "faiss") {
    return std::make_unique<FaissSystem>(m, ef_construction, inner_product);
  }
  if (name == "hnswlib") {
    return std::make_unique<HnswlibSystem>(m, ef_construction, inner_product);
  }
  if (name.rfind("vecdb-", 0) == 0) {
    if (auto level = index::ParseSimdLevel(name.substr(6))) {
      if (index::SetSimdLevel(*level) != *level) {
        std::fprintf(stderr, "%s: this CPU lacks that instruction set\n",
                     name.c_str());
        return nullptr;
      }
      return std::make_unique<VecdbSystem>(m, ef_construction, inner_product,
                                           *level);
    }
  }
  std::fprintf(stderr,
               "unknown system %s; expected faiss, vecdb-generic, "
               "vecdb-avx2, vecdb-avx512 or hnswlib\n",
               name.c_str());
  return nullptr;
}

}  // namespace
}  // namespace vecdb::bench

int main(int argc, char** argv) {
  using namespace vecdb::bench;
  CLI::App app(
      "HNSW build and single-query search: vecdb beside raw FAISS "
      "and hnswlib");
  std::string fashion_dir;
  int64_t synthetic = 0;
  int dimension = 128;
  int64_t query_count = 1000;
  int m = 16;
  int ef_construction = 100;
  std::string ef_list = "16,32,64,128,256,512";
  std::string systems = "faiss,vecdb-generic,vecdb-avx2,vecdb-avx512,hnswlib";
  std::string metric = "l2";
  app.add_option("--fashion", fashion_dir,
                 "folder with Fashion-MNIST's gzipped IDX files");
  app.add_option("--synthetic", synthetic,
                 "clustered points instead of Fashion-MNIST");
  app.add_option("--dimension", dimension, "dimension of synthetic points");
  app.add_option("--queries", query_count, "queries (at most the test set)");
  app.add_option("--m", m, "HNSW neighbours per node");
  app.add_option("--ef_construction", ef_construction, "HNSW build queue");
  app.add_option("--ef", ef_list, "ef_search values, comma separated");
  app.add_option("--systems", systems, "systems to run, comma separated");
  app.add_option("--metric", metric, "l2 or ip")
      ->check(CLI::IsMember({"l2", "ip"}));
  CLI11_PARSE(app, argc, argv);

  DataSet data;
  if (!fashion_dir.empty()) {
    data.base =
        ReadIdxImages(fashion_dir + "/train-images-idx3-ubyte.gz", &dimension);
    data.queries =
        ReadIdxImages(fashion_dir + "/t10k-images-idx3-ubyte.gz", &dimension);
  } else {
    data.base =
        ClusteredVectors(synthetic > 0 ? synthetic : 200000, dimension, 1);
    data.queries = ClusteredVectors(query_count, dimension, 2);
  }
  data.dimension = dimension;
  data.queries.resize(std::min<size_t>(
      data.queries.size(), static_cast<size_t>(query_count) * dimension));
  const bool inner_product = metric == "ip";
  const std::vector<int64_t> truth = GroundTruth(data, inner_product);
  std::printf(
      "%lld points x %d, %lld queries, %s, m %d, ef_construction %d, "
      "top %d, CPU supports %s\n\n",
      static_cast<long long>(data.base_count()), dimension,
      static_cast<long long>(data.query_count()), metric.c_str(), m,
      ef_construction, kTopK,
      std::string(
          vecdb::index::SimdLevelName(vecdb::index::SupportedSimdLevel()))
          .c_str());
  std::printf(
      "| system | build s | points/s | ef | recall@10 | queries/s |\n"
      "| --- | --- | --- | --- | --- | --- |\n");

  for (const std::string& name :
       std::vector<std::string>(absl::StrSplit(systems, ','))) {
    std::unique_ptr<System> system =
        MakeSystem(name, m, ef_construction, inner_product);
    if (system == nullptr) return 1;
    const Clock::time_point build_start = Clock::now();
    system->Build(data);
    const double build_seconds = SecondsSince(build_start);
    omp_set_num_threads(1);

    for (const std::string& ef_text :
         std::vector<std::string>(absl::StrSplit(ef_list, ','))) {
      const int ef = std::stoi(ef_text);
      std::vector<int64_t> labels(data.query_count() * kTopK);
      const Clock::time_point start = Clock::now();
      for (int64_t q = 0; q < data.query_count(); ++q) {
        system->Search(data.queries.data() + q * dimension, ef,
                       labels.data() + q * kTopK);
      }
      const double seconds = SecondsSince(start);
      int64_t found = 0;
      for (int64_t q = 0; q < data.query_count(); ++q) {
        const auto row = truth.begin() + q * kTopK;
        for (int i = 0; i < kTopK; ++i) {
          found += std::count(row, row + kTopK, labels[q * kTopK + i]);
        }
      }
      std::printf("| %s | %.1f | %.0f | %d | %.4f | %.0f |\n", name.c_str(),
                  build_seconds, data.base_count() / build_seconds, ef,
                  static_cast<double>(found) / (data.query_count() * kTopK),
                  data.query_count() / seconds);
      std::fflush(stdout);
    }
  }
  return 0;
}
