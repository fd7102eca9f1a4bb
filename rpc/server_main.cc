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
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/database.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
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

// Serves until a stop signal arrives. Returns the process exit status.
int Serve(vecdb::engine::Database* database) {
  vecdb::rpc::VectorDbService service(
      database,
      std::max(4, 2 * static_cast<int>(std::thread::hardware_concurrency())));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string listen = absl::GetFlag(FLAGS_listen);
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.SetMaxSendMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    spdlog::critical(
        "failed to listen on {}: the address is invalid or already in use",
        listen);
    return 1;
  }
  // Health checks may name the service or not; both get the same status.
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus(vecdb::v1::VectorDB::service_full_name(), true);

  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty() && !WritePortFile(port_file, port)) {
    spdlog::critical("failed to write the port file {}", port_file);
    server->Shutdown();
    return 1;
  }
  spdlog::info("vecdb-server listening on {} (port {})", listen, port);

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
  return 0;
}

int Run() {
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
  spdlog::info("vecdb-server starting, data dir {}, {} writes",
               options.data_dir, options.sync_writes ? "synced" : "unsynced");
  absl::StatusOr<std::unique_ptr<vecdb::engine::Database>> database =
      vecdb::engine::Database::Open(options);
  if (!database.ok()) {
    spdlog::critical("failed to open the database: {}",
                     database.status().ToString());
    return 1;
  }

  int status = 0;
  if (const int signal_number = TakeStopSignal(/*block=*/false);
      signal_number != 0) {
    spdlog::info("received signal {} while opening, shutting down",
                 signal_number);
  } else {
    status = Serve(database->get());
  }
  database->reset();
  spdlog::info("vecdb-server stopped");
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (!InstallStopHandlers()) {
    std::perror("vecdb-server: failed to install signal handlers");
    return 1;
  }
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
