// vecdb-server: serves the vecdb.v1.VectorDB API, the gRPC health service
// and server reflection over one data dir.

#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
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
          "Largest request or response message in bytes (default 64 MiB). "
          "Larger requests fail with RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, shutdown_grace_seconds, 30,
          "On SIGINT or SIGTERM, seconds to let in-flight requests finish "
          "before they are cancelled.");

namespace {

// Blocks SIGINT and SIGTERM in every thread; WaitForStopSignal then takes
// them synchronously. Must run before any thread starts.
sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int WaitForStopSignal(const sigset_t& signals) {
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  return signal_number;
}

// Protobuf logs a line for every request holding invalid UTF-8, which the
// service already rejects with INVALID_ARGUMENT; a client must not be able
// to flood the log that way, so such lines go to the debug level.
void LogProtobufMessage(google::protobuf::LogLevel level, const char* file,
                        int line, const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("protobuf {}:{}: {}", file, line, message);
  } else {
    spdlog::debug("protobuf {}:{}: {}", file, line, message);
  }
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

int Run() {
  const sigset_t stop_signals = BlockStopSignals();

  vecdb::engine::DatabaseOptions options;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  spdlog::info("vecdb-server starting, data dir {}", options.data_dir);
  absl::StatusOr<std::unique_ptr<vecdb::engine::Database>> database =
      vecdb::engine::Database::Open(options);
  if (!database.ok()) {
    spdlog::critical("failed to open the database: {}",
                     database.status().ToString());
    return 1;
  }

  vecdb::rpc::VectorDbService service(database->get());
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
  server->GetHealthCheckService()->SetServingStatus(true);

  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty() && !WritePortFile(port_file, port)) {
    spdlog::critical("failed to write the port file {}", port_file);
    server->Shutdown();
    return 1;
  }
  spdlog::info("vecdb-server listening on {} (port {})", listen, port);

  const int signal_number = WaitForStopSignal(stop_signals);
  spdlog::info("received signal {}, shutting down", signal_number);
  server->GetHealthCheckService()->SetServingStatus(false);
  server->Shutdown(absl::ToChronoTime(
      absl::Now() +
      absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds))));
  server->Wait();
  database->reset();
  spdlog::info("vecdb-server stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves the vecdb vector database over gRPC.\n"
      "Usage: vecdb-server [--data_dir DIR] [--listen HOST:PORT]");
  absl::ParseCommandLine(argc, argv);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  google::protobuf::SetLogHandler(&LogProtobufMessage);
  return Run();
}
