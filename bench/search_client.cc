// A C++ gRPC client that times vecdb's Search, so that benchmarks can
// measure the server without the per-call cost of a Python client.
//
// It reads the queries from a file of little-endian float32 rows, then
//   --ef_search 16,32,...  sends every query one at a time for each value,
//                          --passes times, and keeps the fastest pass;
//   --clients 1,4,16       runs that many threads, each with its own
//                          connection, sending queries back to back at
//                          --latency_ef_search, and records each call's
//                          latency.
// The result is one JSON object on --out:
//   {"sweep": [{"ef_search": E, "qps": Q, "ids": [[id, ...], ...]}],
//    "latency": [{"clients": C, "p50_ms": P, "p99_ms": P, "qps": Q}]}
// where "ids" are the hit ids of the first pass, one list per query.
//
//   build/bench/search_client --server 127.0.0.1:PORT --collection docs
//       --queries queries.f32 --dimension 784 --out result.json

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_split.h"
#include "tools/client.h"

namespace vecdb::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Settings {
  tools::ConnectionOptions connection;
  std::string collection;
  std::string queries_path;
  int dimension = 0;
  int top_k = 10;
  std::string ef_list = "16,32,64,128,256,512";
  int passes = 3;
  std::string client_counts = "1,4,16";
  int latency_ef_search = 64;
  int latency_queries = 2000;
  std::string out_path;
};

std::vector<int> ParseInts(const std::string& text) {
  std::vector<int> values;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    values.push_back(std::stoi(std::string(part)));
  }
  return values;
}

// Reads rows of `dimension` floats. Exits with a message when the file is
// missing or its size is not a whole number of rows.
std::vector<float> ReadQueries(const std::string& path, int dimension) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) {
    std::fprintf(stderr, "failed to open %s\n", path.c_str());
    std::exit(1);
  }
  const std::streamsize bytes = file.tellg();
  const std::streamsize row_bytes = dimension * sizeof(float);
  if (bytes == 0 || bytes % row_bytes != 0) {
    std::fprintf(stderr,
                 "%s: %lld bytes is not a whole number of %d-float rows\n",
                 path.c_str(), static_cast<long long>(bytes), dimension);
    std::exit(1);
  }
  std::vector<float> values(bytes / sizeof(float));
  file.seekg(0);
  file.read(reinterpret_cast<char*>(values.data()), bytes);
  return values;
}

std::vector<v1::SearchRequest> MakeRequests(const Settings& settings,
                                            const std::vector<float>& values,
                                            int ef_search) {
  const size_t count = values.size() / settings.dimension;
  std::vector<v1::SearchRequest> requests(count);
  for (size_t i = 0; i < count; ++i) {
    v1::SearchRequest& request = requests[i];
    request.set_collection(settings.collection);
    request.set_top_k(settings.top_k);
    request.mutable_params()->set_ef_search(ef_search);
    request.mutable_vector()->Add(
        values.begin() + i * settings.dimension,
        values.begin() + (i + 1) * settings.dimension);
  }
  return requests;
}

// Sends one search and exits on failure: a benchmark that loses calls
// would report wrong rates.
void Search(v1::VectorDB::Stub& stub, const Settings& settings,
            const v1::SearchRequest& request, v1::SearchResponse* response) {
  grpc::ClientContext context;
  tools::SetDeadline(settings.connection, &context);
  const grpc::Status status = stub.Search(&context, request, response);
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n",
                 tools::DescribeRpcError("Search", status).c_str());
    std::exit(1);
  }
}

// Writes `text` as a JSON string.
void WriteJsonString(std::FILE* out, const std::string& text) {
  std::fputc('"', out);
  for (char c : text) {
    if (c == '"' || c == '\\') {
      std::fputc('\\', out);
      std::fputc(c, out);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      std::fprintf(out, "\\u%04x", c);
    } else {
      std::fputc(c, out);
    }
  }
  std::fputc('"', out);
}

void RunSweep(const Settings& settings, const std::vector<float>& values,
              std::FILE* out) {
  auto stub = v1::VectorDB::NewStub(tools::MakeChannel(settings.connection));
  std::fprintf(out, "\"sweep\": [");
  const std::vector<int> efs = ParseInts(settings.ef_list);
  for (size_t e = 0; e < efs.size(); ++e) {
    const std::vector<v1::SearchRequest> requests =
        MakeRequests(settings, values, efs[e]);
    std::vector<std::vector<std::string>> ids(requests.size());
    double best_seconds = 0;
    for (int pass = 0; pass < settings.passes; ++pass) {
      v1::SearchResponse response;
      const Clock::time_point start = Clock::now();
      for (size_t q = 0; q < requests.size(); ++q) {
        Search(*stub, settings, requests[q], &response);
        if (pass != 0) continue;
        for (const v1::ScoredPoint& hit : response.hits()) {
          ids[q].push_back(hit.id());
        }
      }
      const double seconds =
          std::chrono::duration<double>(Clock::now() - start).count();
      if (pass == 0 || seconds < best_seconds) best_seconds = seconds;
    }
    std::fprintf(stderr, "search_client: ef_search %d, %.0f queries/s\n",
                 efs[e], requests.size() / best_seconds);
    std::fprintf(out, "%s{\"ef_search\": %d, \"qps\": %.3f, \"ids\": [",
                 e == 0 ? "" : ", ", efs[e], requests.size() / best_seconds);
    for (size_t q = 0; q < ids.size(); ++q) {
      std::fprintf(out, "%s[", q == 0 ? "" : ", ");
      for (size_t i = 0; i < ids[q].size(); ++i) {
        if (i != 0) std::fprintf(out, ", ");
        WriteJsonString(out, ids[q][i]);
      }
      std::fprintf(out, "]");
    }
    std::fprintf(out, "]}");
  }
  std::fprintf(out, "]");
}

// Runs `clients` threads over one shared counter of calls, each thread on
// its own connection, and reports the latency percentiles of all calls.
void RunLatency(const Settings& settings, const std::vector<float>& values,
                int clients, bool first, std::FILE* out) {
  const std::vector<v1::SearchRequest> requests =
      MakeRequests(settings, values, settings.latency_ef_search);
  std::atomic<int> next{0};
  std::vector<std::vector<double>> latencies(clients);
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto stub =
          v1::VectorDB::NewStub(tools::MakeChannel(settings.connection, c + 1));
      v1::SearchResponse response;
      for (int call = next++; call < settings.latency_queries; call = next++) {
        const Clock::time_point sent = Clock::now();
        Search(*stub, settings, requests[call % requests.size()], &response);
        latencies[c].push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - sent)
                .count());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> all;
  for (const std::vector<double>& some : latencies) {
    all.insert(all.end(), some.begin(), some.end());
  }
  std::sort(all.begin(), all.end());
  auto percentile = [&all](double p) {
    return all[std::min(all.size() - 1,
                        static_cast<size_t>(p * (all.size() - 1) + 0.5))];
  };
  std::fprintf(stderr,
               "search_client: %d clients, p50 %.2f ms, p99 %.2f ms, %.0f "
               "queries/s\n",
               clients, percentile(0.5), percentile(0.99),
               all.size() / seconds);
  std::fprintf(out,
               "%s{\"clients\": %d, \"p50_ms\": %.4f, \"p99_ms\": %.4f, "
               "\"qps\": %.3f}",
               first ? "" : ", ", clients, percentile(0.5), percentile(0.99),
               all.size() / seconds);
}

}  // namespace
}  // namespace vecdb::bench

int main(int argc, char** argv) {
  using vecdb::bench::Settings;
  Settings settings;
  CLI::App app("Times vecdb Search calls from a C++ gRPC client");
  app.add_option("--server", settings.connection.server, "HOST:PORT")
      ->required();
  app.add_option("--collection", settings.collection, "collection to search")
      ->required();
  app.add_option("--queries", settings.queries_path,
                 "file of little-endian float32 query rows")
      ->required();
  app.add_option("--dimension", settings.dimension, "floats per query")
      ->required()
      ->check(CLI::PositiveNumber);
  app.add_option("--out", settings.out_path, "JSON result file")->required();
  app.add_option("--top_k", settings.top_k, "hits per query");
  app.add_option("--ef_search", settings.ef_list,
                 "ef_search values of the one-at-a-time sweep, comma "
                 "separated; empty skips the sweep");
  app.add_option("--passes", settings.passes,
                 "passes per ef_search; the fastest counts")
      ->check(CLI::PositiveNumber);
  app.add_option("--clients", settings.client_counts,
                 "concurrent client counts of the latency runs, comma "
                 "separated; empty skips them");
  app.add_option("--latency_ef_search", settings.latency_ef_search,
                 "ef_search of the latency runs");
  app.add_option("--latency_queries", settings.latency_queries,
                 "calls per latency run")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  const std::vector<float> values =
      vecdb::bench::ReadQueries(settings.queries_path, settings.dimension);
  std::FILE* out = std::fopen(settings.out_path.c_str(), "w");
  if (out == nullptr) {
    std::fprintf(stderr, "failed to create %s\n", settings.out_path.c_str());
    return 1;
  }
  std::fprintf(out, "{");
  vecdb::bench::RunSweep(settings, values, out);
  std::fprintf(out, ", \"latency\": [");
  const std::vector<int> counts =
      vecdb::bench::ParseInts(settings.client_counts);
  for (size_t i = 0; i < counts.size(); ++i) {
    vecdb::bench::RunLatency(settings, values, counts[i], i == 0, out);
  }
  std::fprintf(out, "]}\n");
  return std::fclose(out) == 0 ? 0 : 1;
}
