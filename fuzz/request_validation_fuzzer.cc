// Parses arbitrary bytes as the write and search requests that clients
// send, as the server does, and runs every check that the server runs
// before a request reaches a collection.

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/limits.h"
#include "engine/validation.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/support/byte_buffer.h"
#include "rpc/request_parsing.h"
#include "vecdb/v1/vecdb.pb.h"

namespace {

using vecdb::engine::Limits;

// Small limits, so that short inputs reach the limit checks too.
Limits SmallLimits() {
  Limits limits;
  limits.max_point_id_bytes = 16;
  limits.max_top_k = 8;
  limits.max_metadata_bytes = 256;
  limits.max_metadata_depth = 3;
  limits.max_batch_points = 4;
  return limits;
}

void CheckVectorUnderEveryMetric(
    const google::protobuf::RepeatedField<float>& vector) {
  for (vecdb::v1::Metric metric :
       {vecdb::v1::COSINE, vecdb::v1::DOT_PRODUCT, vecdb::v1::L2}) {
    const uint32_t dimension = static_cast<uint32_t>(vector.size());
    if (!vecdb::engine::ValidateVector(vector, dimension, metric).ok()) {
      continue;
    }
    std::string prepared(vector.size() * sizeof(float), '\0');
    vecdb::engine::PrepareForIndex(vector, metric,
                                   reinterpret_cast<float*>(prepared.data()));
  }
}

void FuzzUpsert(const uint8_t* data, size_t size) {
  grpc::Slice slice(data, size);
  grpc::ByteBuffer buffer(&slice, 1);
  vecdb::v1::UpsertRequest request;
  if (!vecdb::rpc::ParseUpsertRequest(buffer, &request).ok()) return;

  vecdb::engine::CheckUpsertLimits(request, Limits()).IgnoreError();
  vecdb::engine::CheckUpsertLimits(request, SmallLimits()).IgnoreError();
  vecdb::engine::ValidateCollectionName(request.collection()).IgnoreError();
  for (const vecdb::v1::Point& point : request.points()) {
    vecdb::engine::ValidatePointId(point.id()).IgnoreError();
    vecdb::engine::ValidateMetadata(point.metadata()).IgnoreError();
    CheckVectorUnderEveryMetric(point.vector());
  }
}

void FuzzSearch(const uint8_t* data, size_t size) {
  vecdb::v1::SearchRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return;
  vecdb::engine::CheckSearchLimits(request, Limits()).IgnoreError();
  vecdb::engine::CheckSearchLimits(request, SmallLimits()).IgnoreError();
  CheckVectorUnderEveryMetric(request.vector());
}

}  // namespace

// Silences protobuf's log line for every input with invalid UTF-8, which
// would bury libFuzzer's output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzUpsert(data, size);
  FuzzSearch(data, size);
  return 0;
}
