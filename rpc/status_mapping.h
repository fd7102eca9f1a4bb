#ifndef VECDB_RPC_STATUS_MAPPING_H_
#define VECDB_RPC_STATUS_MAPPING_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace vecdb::rpc {

// Maps an absl::Status onto the gRPC status with the same code and message.
// The canonical codes of both libraries share their numbers.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace vecdb::rpc

#endif  // VECDB_RPC_STATUS_MAPPING_H_
