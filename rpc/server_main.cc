// vecdb-server: serves the vecdb.v1.VectorDB API, the gRPC health service
// and server reflection over one data dir.

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/database.h"
#include "engine/limits.h"
#include "engine/validation.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "index/simd_distance.h"
#include "rpc/api_keys.h"
#include "rpc/metrics_http.h"
#include "rpc/service_metrics.h"
#include "rpc/vector_db_service.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, data_dir, "./data",
          "Directory holding all data; created when missing.");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to serve on, HOST:PORT. Port 0 picks a free port.");
ABSL_FLAG(std::string, port_file, "",
          "When set, the chosen port is written to this file (decimal, then "
          "a newline) once the server accepts requests.");
ABSL_FLAG(int, max_message_bytes, 64 << 20,
          "Largest request or response message in bytes, 65536 or more "
          "(default 64 MiB). Larger requests fail with RESOURCE_EXHAUSTED.");
ABSL_FLAG(bool, sync_writes, true,
          "Sync the write-ahead log to disk before acknowledging a write. "
          "When true, an acknowledged write survives a process crash and a "
          "power loss; when false, only a process crash (see README).");
ABSL_FLAG(int64_t, checkpoint_changes, 100000,
          "Save a collection's index to a checkpoint file once this many "
          "points changed since the last one, 1 or more.");
ABSL_FLAG(int, checkpoint_seconds, 60,
          "Save a collection's index once its oldest unsaved change is this "
          "many seconds old, 1 or more.");
ABSL_FLAG(double, compact_deleted_fraction, 0.2,
          "Rebuild an index without its deleted entries once they make up "
          "this fraction of it (above 0, at most 1) and number at least "
          "--compact_min_deleted.");
ABSL_FLAG(int64_t, compact_min_deleted, 1000,
          "See --compact_deleted_fraction; 1 or more.");
ABSL_FLAG(int, shutdown_grace_seconds, 30,
          "On SIGINT or SIGTERM, seconds to let in-flight requests finish "
          "before they are cancelled, 0 or more.");

ABSL_FLAG(std::string, tls_cert, "",
          "PEM file with the server's certificate chain. With --tls_key, "
          "the server accepts TLS connections only. Default: no TLS.");
ABSL_FLAG(std::string, tls_key, "",
          "PEM file with the private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM file with the certificate authorities that sign client "
          "certificates. When set, every client must present a certificate "
          "that one of them signed (mutual TLS). Needs --tls_cert.");
ABSL_FLAG(std::string, api_keys_file, "",
          "Text file of API keys, one per line followed by its right: read, "
          "write or admin ('#' starts a comment). When set, every "
          "vecdb.v1.VectorDB call must send 'authorization: Bearer KEY'. "
          "Default: no keys, and only a loopback --listen is allowed.");
ABSL_FLAG(bool, allow_unauthenticated_remote, false,
          "Allow a --listen address other than loopback without "
          "--api_keys_file, so that anyone who reaches it can read, write "
          "and drop every collection.");
ABSL_FLAG(int, max_response_bytes, 0,
          "Largest response message in bytes, 65536 or more; 0 (the "
          "default) means the same as --max_message_bytes.");
ABSL_FLAG(int64_t, max_batch_points, 100000,
          "Most points in one Upsert request or one request of an Import "
          "stream.");
ABSL_FLAG(int64_t, max_top_k, vecdb::engine::kMaxTopK,
          "Largest top_k of a search, 1 to 10000.");
ABSL_FLAG(int64_t, max_dimension, vecdb::engine::kMaxDimension,
          "Largest dimension of a new collection, 1 to 65536.");
ABSL_FLAG(int64_t, max_collections, 10000,
          "Most collections in the database; CreateCollection past it fails "
          "with RESOURCE_EXHAUSTED.");
ABSL_FLAG(int64_t, max_point_id_bytes, vecdb::engine::kMaxPointIdBytes,
          "Longest point id in bytes of UTF-8, 1 to 256.");
ABSL_FLAG(int64_t, max_collection_name_bytes,
          vecdb::engine::kMaxCollectionNameBytes,
          "Longest name of a new collection in bytes, 1 to 128.");
ABSL_FLAG(int64_t, max_metadata_bytes, vecdb::engine::kMaxMetadataBytes,
          "Largest metadata of one point in bytes, serialized as a "
          "google.protobuf.Struct, 1 to 1048576.");
ABSL_FLAG(int64_t, max_metadata_depth, vecdb::engine::kMaxMetadataDepth,
          "Deepest nesting of structs and lists in one point's metadata, 1 "
          "to 32.");
ABSL_FLAG(std::string, metrics_listen, "",
          "When set, IP:PORT of an HTTP server that answers GET /metrics in "
          "the Prometheus text format. Default: no metrics server.");

namespace {

// The stop signal handler writes the signal number here; the main thread
// reads it. A pipe is used because a handler may only call
// async-signal-safe functions such as write().
int stop_pipe[2] = {-1, -1};

void OnStopSignal(int signal_number) {
  const unsigned char byte = static_cast<unsigned char>(signal_number);
  // Nothing can be done about a failed write inside a handler.
  [[maybe_unused]] ssize_t written = write(stop_pipe[1], &byte, 1);
}

// Routes SIGINT and SIGTERM to the stop pipe, whichever thread receives
// them. Threads that libraries start before main (OpenBLAS starts some) do
// not block signals, so blocking them and calling sigwait would not do.
bool InstallStopHandlers() {
  if (pipe2(stop_pipe, O_CLOEXEC) != 0) return false;
  struct sigaction action = {};
  action.sa_handler = &OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  return sigaction(SIGINT, &action, nullptr) == 0 &&
         sigaction(SIGTERM, &action, nullptr) == 0;
}

// Returns the number of the first stop signal, waiting for one when
// `block` is true; returns 0 when none arrived and `block` is false.
int TakeStopSignal(bool block) {
  struct pollfd wait_for = {stop_pipe[0], POLLIN, 0};
  while (true) {
    const int ready = poll(&wait_for, 1, block ? -1 : 0);
    if (ready == 0) return 0;
    if (ready < 0) {
      if (errno == EINTR) continue;
      return SIGTERM;  // Treat a broken pipe as a request to stop.
    }
    unsigned char byte = 0;
    if (read(stop_pipe[0], &byte, 1) == 1) return byte;
  }
}

// Protobuf logs a line for every request holding invalid UTF-8, which the
// service already rejects with INVALID_ARGUMENT. A client must not be able
// to flood the log that way, so such lines go to the debug level.
void LogProtobufMessage(google::protobuf::LogLevel level, const char* file,
                        int line, const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("protobuf {}:{}: {}", file, line, message);
  } else {
    spdlog::debug("protobuf {}:{}: {}", file, line, message);
  }
}

// After a stop signal, how long new requests are rejected with UNAVAILABLE
// before the server closes its connections, unless the grace period is
// shorter.
constexpr absl::Duration kUnavailableWindow = absl::Milliseconds(500);

// Smallest accepted --max_message_bytes: below it even a CollectionInfo
// reply could fail after its collection was created.
constexpr int kMinMessageBytes = 65536;

// Returns the limits that the --max_* flags set. A negative flag becomes 0,
// which ValidateLimits rejects.
vecdb::engine::Limits LimitsFromFlags() {
  auto size = [](int64_t value) {
    return static_cast<size_t>(std::max<int64_t>(value, 0));
  };
  auto clamp_u32 = [](int64_t value) {
    return static_cast<uint32_t>(std::clamp<int64_t>(value, 0, UINT32_MAX));
  };
  vecdb::engine::Limits limits;
  limits.max_batch_points = size(absl::GetFlag(FLAGS_max_batch_points));
  limits.max_top_k = clamp_u32(absl::GetFlag(FLAGS_max_top_k));
  limits.max_dimension = clamp_u32(absl::GetFlag(FLAGS_max_dimension));
  limits.max_collections = size(absl::GetFlag(FLAGS_max_collections));
  limits.max_point_id_bytes = size(absl::GetFlag(FLAGS_max_point_id_bytes));
  limits.max_collection_name_bytes =
      size(absl::GetFlag(FLAGS_max_collection_name_bytes));
  limits.max_metadata_bytes = size(absl::GetFlag(FLAGS_max_metadata_bytes));
  limits.max_metadata_depth = static_cast<int>(
      std::clamp<int64_t>(absl::GetFlag(FLAGS_max_metadata_depth), 0, 1000));
  return limits;
}

// Returns whether `host`, the part of --listen before the port, is a
// loopback address: "localhost", 127.0.0.0/8 or ::1, the last with or
// without brackets.
bool IsLoopbackHost(absl::string_view host) {
  if (host == "localhost" || host == "[::1]" || host == "::1") return true;
  const std::vector<absl::string_view> octets = absl::StrSplit(host, '.');
  if (octets.size() != 4 || octets[0] != "127") return false;
  for (absl::string_view octet : octets) {
    int value = -1;
    if (!absl::SimpleAtoi(octet, &value) || value < 0 || value > 255) {
      return false;
    }
  }
  return true;
}

// Checks the flags that the server cannot use as given. Returns the problem
// as a message, or an empty string.
std::string CheckFlags() {
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(listen).substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::StrCat("--listen is '", listen,
                        "'; use HOST:PORT with a port from 0 to 65535");
  }
  if (absl::GetFlag(FLAGS_max_message_bytes) < kMinMessageBytes) {
    return absl::StrCat("--max_message_bytes is ",
                        absl::GetFlag(FLAGS_max_message_bytes),
                        "; use at least ", kMinMessageBytes);
  }
  if (absl::GetFlag(FLAGS_checkpoint_changes) < 1) {
    return absl::StrCat("--checkpoint_changes is ",
                        absl::GetFlag(FLAGS_checkpoint_changes),
                        "; use 1 or more");
  }
  if (absl::GetFlag(FLAGS_checkpoint_seconds) < 1) {
    return absl::StrCat("--checkpoint_seconds is ",
                        absl::GetFlag(FLAGS_checkpoint_seconds),
                        "; use 1 or more");
  }
  const double fraction = absl::GetFlag(FLAGS_compact_deleted_fraction);
  if (!(fraction > 0 && fraction <= 1)) {
    return absl::StrCat("--compact_deleted_fraction is ", fraction,
                        "; use a number above 0 and at most 1");
  }
  if (absl::GetFlag(FLAGS_compact_min_deleted) < 1) {
    return absl::StrCat("--compact_min_deleted is ",
                        absl::GetFlag(FLAGS_compact_min_deleted),
                        "; use 1 or more");
  }
  if (absl::GetFlag(FLAGS_shutdown_grace_seconds) < 0) {
    return absl::StrCat("--shutdown_grace_seconds is ",
                        absl::GetFlag(FLAGS_shutdown_grace_seconds),
                        "; use 0 or more");
  }
  const int response_bytes = absl::GetFlag(FLAGS_max_response_bytes);
  if (response_bytes != 0 && response_bytes < kMinMessageBytes) {
    return absl::StrCat("--max_response_bytes is ", response_bytes,
                        "; use 0 or at least ", kMinMessageBytes);
  }
  if (absl::GetFlag(FLAGS_tls_cert).empty() !=
      absl::GetFlag(FLAGS_tls_key).empty()) {
    return "--tls_cert and --tls_key must be given together";
  }
  if (!absl::GetFlag(FLAGS_tls_client_ca).empty() &&
      absl::GetFlag(FLAGS_tls_cert).empty()) {
    return "--tls_client_ca needs --tls_cert and --tls_key";
  }
  if (absl::Status status = vecdb::engine::ValidateLimits(LimitsFromFlags());
      !status.ok()) {
    return absl::StrCat("--", status.message());
  }
  if (absl::GetFlag(FLAGS_api_keys_file).empty() &&
      !absl::GetFlag(FLAGS_allow_unauthenticated_remote) &&
      !IsLoopbackHost(listen.substr(0, colon))) {
    return absl::StrCat(
        "--listen is '", listen,
        "', which is not a loopback address, and there is no "
        "--api_keys_file, so anyone who reaches it could read, write and "
        "drop every collection. Give --api_keys_file, listen on 127.0.0.1, "
        "or pass --allow_unauthenticated_remote to accept the risk");
  }
  return "";
}

bool WritePortFile(const std::string& path, int port) {
  // Write to a temporary name and rename, so that a reader never sees a
  // partly written file.
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << port << "\n";
    if (!out.good()) return false;
  }
  return std::rename(temporary.c_str(), path.c_str()) == 0;
}

// Reads a whole file into `contents`; returns false when it cannot.
bool ReadFile(const std::string& path, std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *contents = text.str();
  return in.good() || in.eof();
}

// Returns the credentials that the TLS flags ask for, plaintext when they
// are empty, or nullptr after logging which file cannot be read.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials() {
  const std::string cert_path = absl::GetFlag(FLAGS_tls_cert);
  if (cert_path.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  const std::string key_path = absl::GetFlag(FLAGS_tls_key);
  if (!ReadFile(cert_path, &pair.cert_chain)) {
    spdlog::critical("cannot read the --tls_cert file {}", cert_path);
    return nullptr;
  }
  if (!ReadFile(key_path, &pair.private_key)) {
    spdlog::critical("cannot read the --tls_key file {}", key_path);
    return nullptr;
  }
  const std::string ca_path = absl::GetFlag(FLAGS_tls_client_ca);
  grpc::SslServerCredentialsOptions options(
      ca_path.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!ca_path.empty() && !ReadFile(ca_path, &options.pem_root_certs)) {
    spdlog::critical("cannot read the --tls_client_ca file {}", ca_path);
    return nullptr;
  }
  options.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(options);
}

vecdb::engine::DatabaseOptions DatabaseOptionsFromFlags() {
  vecdb::engine::DatabaseOptions options;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.sync_writes = absl::GetFlag(FLAGS_sync_writes);
  options.maintenance.checkpoint_changes =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_checkpoint_changes));
  options.maintenance.checkpoint_interval =
      absl::Seconds(absl::GetFlag(FLAGS_checkpoint_seconds));
  options.maintenance.compact_deleted_fraction =
      absl::GetFlag(FLAGS_compact_deleted_fraction);
  options.maintenance.compact_min_deleted =
      absl::GetFlag(FLAGS_compact_min_deleted);
  options.limits = LimitsFromFlags();
  return options;
}

// Logs who may call the server, so that an operator sees at start how it
// is exposed.
void LogAccessRules(const std::string& listen, const vecdb::rpc::ApiKeys* keys,
                    bool tls) {
  const std::string transport =
      !tls ? "plaintext"
           : (absl::GetFlag(FLAGS_tls_client_ca).empty()
                  ? "TLS"
                  : "mutual TLS (client certificates required)");
  if (keys != nullptr) {
    spdlog::info("{} with {} API keys required on {}", transport, keys->size(),
                 listen);
    if (!tls) {
      spdlog::warn(
          "API keys travel in plaintext; use --tls_cert and --tls_key unless "
          "the network between clients and server is trusted");
    }
  } else if (absl::GetFlag(FLAGS_allow_unauthenticated_remote)) {
    spdlog::warn(
        "{} without API keys on {}: every client that reaches it can read, "
        "write and drop every collection",
        transport, listen);
  } else {
    spdlog::info("{} without API keys on {}, a loopback address", transport,
                 listen);
  }
}

// Serves until a stop signal arrives: listens at once, opens the database
// while the health service reports NOT_SERVING, then serves. Returns the
// process exit status.
int Serve(const vecdb::rpc::ApiKeys* keys) {
  std::shared_ptr<grpc::ServerCredentials> credentials =
      MakeServerCredentials();
  if (credentials == nullptr) return 1;
  vecdb::rpc::ServiceMetrics metrics;
  vecdb::rpc::VectorDbService service(
      std::max(4, 2 * static_cast<int>(std::thread::hardware_concurrency())),
      keys, &metrics);

  std::unique_ptr<vecdb::rpc::MetricsHttpServer> metrics_server;
  if (const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
      !metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<vecdb::rpc::MetricsHttpServer>> started =
        vecdb::rpc::MetricsHttpServer::Start(metrics_listen, &metrics);
    if (!started.ok()) {
      spdlog::critical("{}", std::string(started.status().message()));
      return 1;
    }
    metrics_server = *std::move(started);
    spdlog::info("metrics on http://{}/metrics", metrics_listen);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string listen = absl::GetFlag(FLAGS_listen);
  builder.AddListeningPort(listen, credentials, &port);
  const int request_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  const int response_bytes = absl::GetFlag(FLAGS_max_response_bytes);
  builder.SetMaxReceiveMessageSize(request_bytes);
  builder.SetMaxSendMessageSize(response_bytes != 0 ? response_bytes
                                                    : request_bytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    spdlog::critical(
        "failed to listen on {}: the address is invalid or already in use, "
        "or the TLS certificate and key do not match",
        listen);
    return 1;
  }
  // Health checks may name the service or not; both get the same status.
  // NOTE: gRPC's default health service starts as SERVING, so a check in
  // the moment between BuildAndStart and these lines can see SERVING.
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(false);
  health->SetServingStatus(vecdb::v1::VectorDB::service_full_name(), false);
  spdlog::info("vecdb-server listening on {} (port {}), opening the database",
               listen, port);
  LogAccessRules(listen, keys, !absl::GetFlag(FLAGS_tls_cert).empty());

  const vecdb::engine::DatabaseOptions options = DatabaseOptionsFromFlags();
  spdlog::info("opening data dir {}, {} writes, {} distance kernels",
               options.data_dir, options.sync_writes ? "synced" : "unsynced",
               vecdb::index::SimdLevelName(vecdb::index::ActiveSimdLevel()));
  absl::StatusOr<std::unique_ptr<vecdb::engine::Database>> database =
      vecdb::engine::Database::Open(options);
  if (!database.ok()) {
    spdlog::critical("failed to open the database: {}",
                     database.status().ToString());
    server->Shutdown();
    return 1;
  }
  if (const int signal_number = TakeStopSignal(/*block=*/false);
      signal_number != 0) {
    spdlog::info("received signal {} while opening, shutting down",
                 signal_number);
    server->Shutdown();
    server->Wait();
    return 0;
  }
  service.SetDatabase(database->get());
  if (metrics_server != nullptr) metrics_server->SetDatabase(database->get());
  health->SetServingStatus(true);
  health->SetServingStatus(vecdb::v1::VectorDB::service_full_name(), true);

  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty() && !WritePortFile(port_file, port)) {
    spdlog::critical("failed to write the port file {}", port_file);
    server->Shutdown();
    return 1;
  }
  spdlog::info("vecdb-server serving on {} (port {})", listen, port);

  const int signal_number = TakeStopSignal(/*block=*/true);
  spdlog::info("received signal {}, shutting down", signal_number);
  health->SetServingStatus(false);

  // Let the requests in flight finish, turning new ones away with
  // UNAVAILABLE, then close the connections. Draining first keeps idle
  // client connections from holding up the exit.
  const absl::Time stop_start = absl::Now();
  const absl::Duration grace =
      absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds));
  const int64_t unfinished = service.Drain(stop_start + grace);
  if (unfinished > 0) {
    spdlog::warn("cancelling {} requests still running after {}", unfinished,
                 absl::FormatDuration(grace));
  }
  // gRPC cancels calls that reach the server after Shutdown with status
  // CANCELLED, which clients take for their own doing. So new requests are
  // rejected with UNAVAILABLE for a moment first, so that clients sending
  // in that time learn that the server is going away.
  absl::SleepFor(std::min(grace, kUnavailableWindow) -
                 (absl::Now() - stop_start));
  // Replies of requests that just finished may still be on their way.
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  server->Wait();
  // The metrics server reads the database, so it stops first.
  metrics_server.reset();
  database->reset();
  return 0;
}

int Run() {
  std::optional<vecdb::rpc::ApiKeys> keys;
  if (const std::string path = absl::GetFlag(FLAGS_api_keys_file);
      !path.empty()) {
    absl::StatusOr<vecdb::rpc::ApiKeys> loaded =
        vecdb::rpc::ApiKeys::Load(path);
    if (!loaded.ok()) {
      spdlog::critical("invalid --api_keys_file: {}",
                       std::string(loaded.status().message()));
      return 2;
    }
    keys = *std::move(loaded);
  }
  spdlog::info("vecdb-server starting");
  const int status = Serve(keys.has_value() ? &*keys : nullptr);
  spdlog::info("vecdb-server stopped");
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (!InstallStopHandlers()) {
    std::perror("vecdb-server: failed to install signal handlers");
    return 1;
  }
  // Debian's Abseil checks every Mutex acquisition for lock-order cycles,
  // which showed in profiles of single searches. The unit tests keep the
  // check; the server skips it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "Serves the vecdb vector database over gRPC.\n"
      "Usage: vecdb-server [--data_dir DIR] [--listen HOST:PORT] "
      "[other flags]");
  // By default --help lists only flags defined in a file named after the
  // program; list this file's flags instead.
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::StrContains(path, "server_main");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  absl::ParseCommandLine(argc, argv);
  if (const std::string problem = CheckFlags(); !problem.empty()) {
    std::fprintf(stderr, "vecdb-server: %s\n", problem.c_str());
    return 2;
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  google::protobuf::SetLogHandler(&LogProtobufMessage);
  return Run();
}
