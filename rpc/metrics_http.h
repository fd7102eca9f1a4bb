#ifndef VECDB_RPC_METRICS_HTTP_H_
#define VECDB_RPC_METRICS_HTTP_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/database.h"
#include "rpc/service_metrics.h"

struct mg_context;
struct mg_connection;

namespace vecdb::rpc {

// An HTTP server (civetweb) that serves GET /metrics with the server's
// metrics in the Prometheus text format: the request counters and latency
// histograms of a ServiceMetrics, and per collection its points and bytes.
// Other paths get 404. Thread-safe.
class MetricsHttpServer {
 public:
  // Starts serving on `listen` (HOST:PORT). `metrics` must outlive the
  // server. Returns UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, const ServiceMetrics* metrics);

  // Stops the server and waits for its threads.
  ~MetricsHttpServer();

  // Adds the collections of `database` to the output from now on. The
  // database must outlive the server, or the server must be destroyed
  // first.
  void SetDatabase(engine::Database* database) {
    database_.store(database, std::memory_order_release);
  }

  // Returns the body that GET /metrics sends.
  std::string RenderMetrics() const;

 private:
  explicit MetricsHttpServer(const ServiceMetrics* metrics)
      : metrics_(metrics) {}

  static int HandleRequest(mg_connection* connection, void* server);

  const ServiceMetrics* const metrics_;
  std::atomic<engine::Database*> database_{nullptr};
  mg_context* context_ = nullptr;
};

}  // namespace vecdb::rpc

#endif  // VECDB_RPC_METRICS_HTTP_H_
