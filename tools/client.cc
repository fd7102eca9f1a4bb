#include "tools/client.h"

#include "absl/status/status.h"
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
  // gRPC and Abseil number their status codes alike.
  std::string name =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? absl::StrCat("status ", static_cast<int>(code)) : name;
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
    case v1::IVF_FLAT:
      return "ivf_flat";
    case v1::IVF_PQ:
      return "ivf_pq";
    case v1::SQ8:
      return "sq8";
    case v1::HNSW_SQ8:
      return "hnsw_sq8";
    default:
      return "unspecified";
  }
}

}  // namespace vecdb::tools
