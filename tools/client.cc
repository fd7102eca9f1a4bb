#include "tools/client.h"

#include "absl/strings/str_cat.h"

namespace vecdb::tools {

std::shared_ptr<grpc::Channel> MakeChannel(const ConnectionOptions& options,
                                           int connection_number) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(
      static_cast<int>(options.max_message_bytes));
  arguments.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  // Channels whose arguments differ never share a subchannel, and so never
  // share a connection.
  arguments.SetInt("vecdb.connection_number", connection_number);
  return grpc::CreateCustomChannel(
      options.server, grpc::InsecureChannelCredentials(), arguments);
}

void SetDeadline(const ConnectionOptions& options,
                 grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() + options.timeout);
}

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return absl::StrCat("status ", static_cast<int>(code));
  }
}

std::string DescribeRpcError(const std::string& rpc,
                             const grpc::Status& status) {
  return absl::StrCat(rpc, " failed: ", StatusCodeName(status.error_code()),
                      ": ", status.error_message());
}

std::string MetricName(v1::Metric metric) {
  switch (metric) {
    case v1::COSINE:
      return "cosine";
    case v1::DOT_PRODUCT:
      return "dot";
    case v1::L2:
      return "l2";
    default:
      return "unspecified";
  }
}

std::string IndexKindName(v1::IndexKind kind) {
  switch (kind) {
    case v1::FLAT:
      return "flat";
    case v1::HNSW:
      return "hnsw";
    default:
      return "unspecified";
  }
}

}  // namespace vecdb::tools
