#include "rpc/service_metrics.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vecdb::rpc {

std::string StatusCodeName(grpc::StatusCode code) {
  // gRPC and Abseil number their status codes alike.
  std::string name =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? absl::StrCat("CODE_", static_cast<int>(code)) : name;
}

void ServiceMetrics::Record(absl::string_view method, grpc::StatusCode code,
                            absl::Duration latency) {
  const double seconds = absl::ToDoubleSeconds(latency);
  absl::MutexLock lock(&mutex_);
  ++requests_[{std::string(method), code}];
  auto it = latencies_.find(method);
  if (it == latencies_.end()) {
    it = latencies_.emplace(std::string(method), Latency()).first;
  }
  Latency& latency_counts = it->second;
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) ++latency_counts.buckets[i];
  }
  ++latency_counts.count;
  latency_counts.sum_seconds += seconds;
}

void ServiceMetrics::AppendPrometheusText(std::string* out) const {
  absl::MutexLock lock(&mutex_);
  absl::StrAppend(out,
                  "# HELP vecdb_requests_total Finished vecdb.v1.VectorDB "
                  "calls by method and gRPC status code.\n"
                  "# TYPE vecdb_requests_total counter\n");
  for (const auto& [key, count] : requests_) {
    absl::StrAppend(out, "vecdb_requests_total{method=\"", key.first,
                    "\",code=\"", StatusCodeName(key.second), "\"} ", count,
                    "\n");
  }
  absl::StrAppend(out,
                  "# HELP vecdb_request_duration_seconds Time from a call's "
                  "arrival to its status, by method.\n"
                  "# TYPE vecdb_request_duration_seconds histogram\n");
  for (const auto& [method, latency] : latencies_) {
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      absl::StrAppend(out, "vecdb_request_duration_seconds_bucket{method=\"",
                      method, "\",le=\"", kLatencyBuckets[i], "\"} ",
                      latency.buckets[i], "\n");
    }
    absl::StrAppend(out, "vecdb_request_duration_seconds_bucket{method=\"",
                    method, "\",le=\"+Inf\"} ", latency.count, "\n");
    absl::StrAppend(out, "vecdb_request_duration_seconds_sum{method=\"", method,
                    "\"} ", latency.sum_seconds, "\n");
    absl::StrAppend(out, "vecdb_request_duration_seconds_count{method=\"",
                    method, "\"} ", latency.count, "\n");
  }
}

}  // namespace vecdb::rpc
