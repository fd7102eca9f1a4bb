#include "rpc/metrics_http.h"

#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "civetweb.h"

namespace vecdb::rpc {
namespace {

// Appends one gauge per collection, labelled with its name.
template <typename Value>
void AppendCollectionGauge(const std::vector<v1::CollectionInfo>& collections,
                           absl::string_view name, absl::string_view help,
                           Value (v1::CollectionInfo::*value)() const,
                           std::string* out, absl::string_view type = "gauge") {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n");
  for (const v1::CollectionInfo& info : collections) {
    // Collection names are ASCII letters, digits, '_' and '-', so they need
    // no escaping inside a label value.
    absl::StrAppend(out, name, "{collection=\"", info.name(), "\"} ",
                    (info.*value)(), "\n");
  }
}

// Sends a complete response with a text body. mg_send_http_error is not
// used because with civetweb 1.15 it overflowed the worker thread's stack
// under AddressSanitizer.
void SendText(mg_connection* connection, int status,
              absl::string_view content_type, absl::string_view body) {
  mg_response_header_start(connection, status);
  mg_response_header_add(connection, "Content-Type", content_type.data(),
                         static_cast<int>(content_type.size()));
  const std::string length = absl::StrCat(body.size());
  mg_response_header_add(connection, "Content-Length", length.c_str(),
                         static_cast<int>(length.size()));
  mg_response_header_send(connection);
  mg_write(connection, body.data(), body.size());
}

// Appends, per collection with an index checkpoint, the seconds since the
// checkpoint file was written: how much a restart would have to replay.
void AppendCheckpointAges(engine::Database& database,
                          const std::vector<v1::CollectionInfo>& collections,
                          std::string* out) {
  absl::StrAppend(out,
                  "# HELP vecdb_collection_checkpoint_age_seconds Seconds "
                  "since the collection's newest index checkpoint was "
                  "written; absent before the first one.\n"
                  "# TYPE vecdb_collection_checkpoint_age_seconds gauge\n");
  const double now = absl::ToUnixSeconds(absl::Now());
  for (const v1::CollectionInfo& info : collections) {
    absl::StatusOr<std::shared_ptr<engine::Collection>> collection =
        database.GetCollection(info.name());
    // A collection dropped since the list was taken has no age to report.
    if (!collection.ok()) continue;
    const std::string path = (*collection)->CheckpointPath();
    struct stat file_status;
    if (path.empty() || stat(path.c_str(), &file_status) != 0) continue;
    absl::StrAppend(
        out, "vecdb_collection_checkpoint_age_seconds{collection=\"",
        info.name(), "\"} ", std::max(0.0, now - file_status.st_mtime), "\n");
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, const ServiceMetrics* metrics) {
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(metrics));
  mg_init_library(0);
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads",
                           "2", nullptr};
  mg_callbacks callbacks = {};
  // civetweb prints its own errors to stderr by default; the caller reports
  // the failure instead.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  server->context_ = mg_start(&callbacks, nullptr, options);
  if (server->context_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", listen,
                     ": the address is invalid or already in use"));
  }
  // One handler for every path, because civetweb drops the connection of a
  // request that no handler matches when it serves no document root.
  mg_set_request_handler(server->context_, "/", &HandleRequest, server.get());
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (context_ != nullptr) mg_stop(context_);
}

std::string MetricsHttpServer::RenderMetrics() const {
  std::string out;
  metrics_->AppendPrometheusText(&out);
  engine::Database* database = database_.load(std::memory_order_acquire);
  absl::StrAppend(&out,
                  "# HELP vecdb_database_open 1 once the database is open "
                  "and the server serves requests, 0 while it opens.\n"
                  "# TYPE vecdb_database_open gauge\n"
                  "vecdb_database_open ",
                  database != nullptr ? 1 : 0, "\n");
  if (database == nullptr) return out;

  const std::vector<v1::CollectionInfo> collections =
      database->ListCollections();
  absl::StrAppend(&out,
                  "# HELP vecdb_collections Collections in the database.\n"
                  "# TYPE vecdb_collections gauge\nvecdb_collections ",
                  collections.size(), "\n");
  AppendCollectionGauge(collections, "vecdb_collection_points",
                        "Live points of the collection.",
                        &v1::CollectionInfo::point_count, &out);
  AppendCollectionGauge(collections, "vecdb_collection_disk_bytes",
                        "Estimated bytes of the collection in RocksDB files.",
                        &v1::CollectionInfo::disk_bytes, &out);
  AppendCollectionGauge(collections, "vecdb_collection_memory_bytes",
                        "Estimated bytes of the collection's index, id maps "
                        "and metadata in memory.",
                        &v1::CollectionInfo::memory_bytes, &out);
  AppendCollectionGauge(collections, "vecdb_collection_unindexed_points",
                        "Points that searches scan exactly because they are "
                        "not yet in the HNSW graph.",
                        &v1::CollectionInfo::unindexed_points, &out);
  AppendCollectionGauge(collections, "vecdb_collection_index_builds_total",
                        "Index builds since the server started: rebuilds "
                        "from storage, trainings, compactions and rebuilds "
                        "for new index settings.",
                        &v1::CollectionInfo::index_builds, &out, "counter");
  AppendCheckpointAges(*database, collections, &out);
  return out;
}

int MetricsHttpServer::HandleRequest(mg_connection* connection, void* server) {
  const mg_request_info* request = mg_get_request_info(connection);
  if (request->local_uri == nullptr ||
      std::string(request->local_uri) != "/metrics") {
    SendText(connection, 404, "text/plain",
             "not found; metrics are at /metrics\n");
    return 404;
  }
  if (std::string(request->request_method) != "GET") {
    SendText(connection, 405, "text/plain", "only GET is supported\n");
    return 405;
  }
  const std::string body =
      static_cast<const MetricsHttpServer*>(server)->RenderMetrics();
  SendText(connection, 200, "text/plain; version=0.0.4; charset=utf-8", body);
  return 200;
}

}  // namespace vecdb::rpc
