#ifndef VECDB_RPC_REQUEST_PARSING_H_
#define VECDB_RPC_REQUEST_PARSING_H_

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::rpc {

// gRPC 1.51 rejects a request it cannot parse with INTERNAL and an empty
// message, and ends a client stream at such a request as if the client had
// finished. The service parses the write requests itself with these
// functions instead.

// Parses an UpsertRequest. On failure returns INVALID_ARGUMENT naming the
// part at fault: the collection name, or the position and id of the point
// whose id or metadata is not valid UTF-8.
absl::Status ParseUpsertRequest(const grpc::ByteBuffer& buffer,
                                v1::UpsertRequest* request);

// Returns the INVALID_ARGUMENT status for a request of type `message_name`
// that could not be parsed, when nothing more precise is known.
absl::Status MalformedRequestError(absl::string_view message_name);

// Serializes `message` into `buffer`.
void SerializeToByteBuffer(const google::protobuf::Message& message,
                           grpc::ByteBuffer* buffer);

}  // namespace vecdb::rpc

#endif  // VECDB_RPC_REQUEST_PARSING_H_
