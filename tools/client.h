#ifndef VECDB_TOOLS_CLIENT_H_
#define VECDB_TOOLS_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "vecdb/v1/vecdb.grpc.pb.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::tools {

// Address, message limit and deadline of the client's calls.
struct ConnectionOptions {
  // HOST:PORT of vecdb-server.
  std::string server = "127.0.0.1:50051";
  // Largest message sent or received, as the server's --max_message_bytes.
  size_t max_message_bytes = 64 << 20;
  // Deadline of each unary call; streams of an import have none.
  std::chrono::seconds timeout{60};
};

// Returns a new channel to the server. Channels made with different
// `connection_number` values use separate TCP connections, so that parallel
// import streams do not share one.
std::shared_ptr<grpc::Channel> MakeChannel(const ConnectionOptions& options,
                                           int connection_number = 0);

// Sets the deadline of a unary call on `context`.
void SetDeadline(const ConnectionOptions& options,
                 grpc::ClientContext* context);

// Formats a failed call for a person, such as
// "CreateCollection failed: ALREADY_EXISTS: collection 'docs' exists".
std::string DescribeRpcError(const std::string& rpc,
                             const grpc::Status& status);

// The name of a status code, such as "NOT_FOUND".
std::string StatusCodeName(grpc::StatusCode code);

// Lowercase names for the command line ("cosine", "hnsw") and back.
std::string MetricName(v1::Metric metric);
std::string IndexKindName(v1::IndexKind kind);

}  // namespace vecdb::tools

#endif  // VECDB_TOOLS_CLIENT_H_
