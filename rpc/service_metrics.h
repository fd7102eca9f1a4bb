#ifndef VECDB_RPC_SERVICE_METRICS_H_
#define VECDB_RPC_SERVICE_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"

namespace vecdb::rpc {

// Request counts by method and status code, and a latency histogram per
// method, written out in the Prometheus text format. Thread-safe.
class ServiceMetrics {
 public:
  // Upper bounds in seconds of the latency histogram's buckets; a last
  // bucket, +Inf, counts every request.
  static constexpr std::array<double, 12> kLatencyBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

  // Counts one finished call of `method` (such as "Search").
  void Record(absl::string_view method, grpc::StatusCode code,
              absl::Duration latency);

  // Appends the vecdb_requests_total counter and the
  // vecdb_request_duration_seconds histogram to `out`.
  void AppendPrometheusText(std::string* out) const;

 private:
  struct Latency {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum_seconds = 0;
  };

  mutable absl::Mutex mutex_;
  std::map<std::pair<std::string, grpc::StatusCode>, uint64_t> requests_
      ABSL_GUARDED_BY(mutex_);
  std::map<std::string, Latency, std::less<>> latencies_
      ABSL_GUARDED_BY(mutex_);
};

// Returns the name of a gRPC status code as in the gRPC documentation, such
// as "OK" or "INVALID_ARGUMENT".
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace vecdb::rpc

#endif  // VECDB_RPC_SERVICE_METRICS_H_
