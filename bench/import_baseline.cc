// Raw baselines for bench/import_bench.py: writes the vectors of a .npy
// file into RocksDB or adds them to a FAISS index in-process, in batches,
// and prints one JSON line with the rate. The figures stand beside those of
// `vecdb import` measured on the same file in the same run.
//
//   import_baseline --npy FILE --mode rocksdb --work_dir DIR
//   import_baseline --npy FILE --mode hnsw --m 16 --ef_construction 100

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/io.h"
#include "faiss/index_io.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "tools/vector_file.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Arguments {
  std::string npy;
  std::string mode;
  std::string work_dir;
  size_t batch_size = 1000;
  int m = 16;
  int ef_construction = 100;
};

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Writes each batch as one RocksDB WriteBatch with a synced WAL, as the
// server does for each request: the key is the point's id, the value its
// raw float32 bytes. Returns the seconds taken.
double WriteRocksDb(const Arguments& arguments,
                    const std::vector<float>& vectors, size_t rows,
                    size_t dimension) {
  std::filesystem::remove_all(arguments.work_dir);
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status status =
      rocksdb::DB::Open(options, arguments.work_dir, &raw_db);
  if (!status.ok()) {
    std::fprintf(stderr, "import_baseline: opening RocksDB failed: %s\n",
                 status.ToString().c_str());
    std::exit(1);
  }
  std::unique_ptr<rocksdb::DB> db(raw_db);
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  const size_t row_bytes = dimension * sizeof(float);

  const Clock::time_point start = Clock::now();
  for (size_t begin = 0; begin < rows; begin += arguments.batch_size) {
    rocksdb::WriteBatch batch;
    const size_t end = std::min(rows, begin + arguments.batch_size);
    for (size_t row = begin; row < end; ++row) {
      const std::string key = absl::StrCat(row);
      batch.Put(key, rocksdb::Slice(reinterpret_cast<const char*>(
                                        vectors.data() + row * dimension),
                                    row_bytes));
    }
    status = db->Write(write_options, &batch);
    if (!status.ok()) {
      std::fprintf(stderr, "import_baseline: RocksDB write failed: %s\n",
                   status.ToString().c_str());
      std::exit(1);
    }
  }
  const double seconds = SecondsSince(start);
  db.reset();
  std::filesystem::remove_all(arguments.work_dir);
  return seconds;
}

// Adds the vectors to a FAISS index in batches. Returns the seconds taken
// and sets `index_bytes` to the size of the serialized index.
double AddToFaiss(const Arguments& arguments, const std::vector<float>& vectors,
                  size_t rows, size_t dimension, size_t* index_bytes) {
  std::unique_ptr<faiss::Index> index;
  if (arguments.mode == "flat") {
    index = std::make_unique<faiss::IndexFlatL2>(dimension);
  } else {
    auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(dimension, arguments.m);
    hnsw->hnsw.efConstruction = arguments.ef_construction;
    index = std::move(hnsw);
  }

  const Clock::time_point start = Clock::now();
  for (size_t begin = 0; begin < rows; begin += arguments.batch_size) {
    const size_t count = std::min(arguments.batch_size, rows - begin);
    index->add(count, vectors.data() + begin * dimension);
  }
  const double seconds = SecondsSince(start);

  faiss::VectorIOWriter writer;
  faiss::write_index(index.get(), &writer);
  *index_bytes = writer.data.size();
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  Arguments arguments;
  CLI::App app("Raw RocksDB and FAISS baselines for the import benchmark.");
  app.add_option("--npy", arguments.npy, "float32 .npy file of vectors")
      ->required();
  app.add_option("--mode", arguments.mode, "what to measure")
      ->required()
      ->check(CLI::IsMember({"rocksdb", "flat", "hnsw"}));
  app.add_option("--work_dir", arguments.work_dir,
                 "RocksDB directory, replaced (rocksdb mode)");
  app.add_option("--batch_size", arguments.batch_size, "points per batch")
      ->capture_default_str();
  app.add_option("--m", arguments.m, "HNSW m")->capture_default_str();
  app.add_option("--ef_construction", arguments.ef_construction,
                 "HNSW ef_construction")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (arguments.mode == "rocksdb" && arguments.work_dir.empty()) {
    std::fprintf(stderr, "import_baseline: --mode rocksdb needs --work_dir\n");
    return 1;
  }

  auto file = vecdb::tools::VectorFile::Open(arguments.npy);
  if (!file.ok()) {
    std::fprintf(stderr, "import_baseline: %s\n",
                 std::string(file.status().message()).c_str());
    return 1;
  }
  const size_t rows = (*file)->rows();
  const size_t dimension = (*file)->dimension();
  std::vector<float> vectors(rows * dimension);
  for (size_t row = 0; row < rows; ++row) {
    if (auto status = (*file)->ReadRow(row, vectors.data() + row * dimension);
        !status.ok()) {
      std::fprintf(stderr, "import_baseline: %s\n",
                   std::string(status.message()).c_str());
      return 1;
    }
  }

  size_t index_bytes = 0;
  const double seconds =
      arguments.mode == "rocksdb"
          ? WriteRocksDb(arguments, vectors, rows, dimension)
          : AddToFaiss(arguments, vectors, rows, dimension, &index_bytes);
  std::printf(
      "{\"mode\": \"%s\", \"points\": %zu, \"seconds\": %.3f, "
      "\"points_per_second\": %.1f, \"index_bytes\": %zu}\n",
      arguments.mode.c_str(), rows, seconds, rows / seconds, index_bytes);
  return 0;
}
