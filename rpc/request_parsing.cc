#include "rpc/request_parsing.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/limits.h"
#include "engine/validation.h"
#include "google/protobuf/struct.pb.h"
#include "rpc/wire_check.pb.h"

namespace vecdb::rpc {
namespace {

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  // In gRPC 1.51 Dump fails only for a buffer without data, which
  // then reads as empty.
  if (!buffer.Dump(&slices).ok()) return bytes;
  bytes.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// Explains why `bytes` did not parse as an UpsertRequest.
absl::Status DiagnoseUpsertRequest(const std::string& bytes) {
  UpsertRequestBytes mirror;
  if (!mirror.ParseFromString(bytes)) {
    return MalformedRequestError("vecdb.v1.UpsertRequest");
  }
  if (absl::Status status = engine::ValidatePointId(mirror.collection());
      !status.ok() && !mirror.collection().empty()) {
    return absl::InvalidArgumentError(
        "collection name is not valid UTF-8; names are ASCII letters, "
        "digits, '_' and '-'");
  }
  for (int i = 0; i < mirror.points_size(); ++i) {
    const PointBytes& point = mirror.points(i);
    const std::string where = absl::StrCat(
        "points[", i, "] (id \"", absl::CHexEscape(point.id()), "\"): ");
    if (absl::Status status = engine::ValidatePointId(point.id());
        !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, status.message()));
    }
    google::protobuf::Struct metadata;
    if (!metadata.ParseFromString(point.metadata())) {
      // Protobuf stops parsing at 100 nested messages, about 33 levels of
      // metadata, so too deep a nesting also ends here.
      return absl::InvalidArgumentError(
          absl::StrCat(where, "metadata is malformed, is nested deeper than ",
                       engine::kMaxMetadataDepth,
                       " levels, or holds a string that is not valid UTF-8"));
    }
    // Parsed alone, the metadata sits two messages shallower than inside the
    // request, so metadata just past the depth limit is caught here.
    if (absl::Status status = engine::ValidateMetadata(metadata);
        !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, status.message()));
    }
  }
  return MalformedRequestError("vecdb.v1.UpsertRequest");
}

}  // namespace

absl::Status MalformedRequestError(absl::string_view message_name) {
  return absl::InvalidArgumentError(
      absl::StrCat("request is not a valid ", message_name,
                   ": it is malformed or a string field is not valid UTF-8"));
}

absl::Status ParseUpsertRequest(const grpc::ByteBuffer& buffer,
                                v1::UpsertRequest* request) {
  const std::string bytes = Flatten(buffer);
  if (request->ParseFromString(bytes)) return absl::OkStatus();
  return DiagnoseUpsertRequest(bytes);
}

void SerializeToByteBuffer(const google::protobuf::Message& message,
                           grpc::ByteBuffer* buffer) {
  const std::string bytes = message.SerializeAsString();
  grpc::Slice slice(bytes);
  *buffer = grpc::ByteBuffer(&slice, 1);
}

}  // namespace vecdb::rpc
