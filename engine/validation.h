#ifndef VECDB_ENGINE_VALIDATION_H_
#define VECDB_ENGINE_VALIDATION_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/limits.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/struct.pb.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::engine {

// Each check returns OK or INVALID_ARGUMENT with a message that names the
// offending value and the rule it breaks (limits in engine/limits.h).

absl::Status ValidateCollectionName(absl::string_view name);

absl::Status ValidatePointId(absl::string_view id);
// The same with a lower length limit, at most kMaxPointIdBytes.
absl::Status ValidatePointId(absl::string_view id, size_t max_bytes);

// Checks every id of a Get or Delete request; the message names the first
// bad one's position as "ids[N]".
absl::Status ValidatePointIds(
    const google::protobuf::RepeatedPtrField<std::string>& ids);

// Checks a stored or query vector against the collection: the dimension,
// finite components, and a norm that the metric can use (nonzero under
// COSINE, not overflowing under the others).
absl::Status ValidateVector(
    const google::protobuf::RepeatedField<float>& vector, uint32_t dimension,
    v1::Metric metric);

// Checks metadata size, nesting depth and that every number is finite.
absl::Status ValidateMetadata(const google::protobuf::Struct& metadata);
// The same under the size and depth limits of `limits`.
absl::Status ValidateMetadata(const google::protobuf::Struct& metadata,
                              const Limits& limits);

// Returns OK, or INVALID_ARGUMENT naming the first limit that is zero or
// above its built-in maximum.
absl::Status ValidateLimits(const Limits& limits);

// Checks an upsert against the operator's limits: the number of points, and
// each point's id length and metadata size and depth. The message names the
// first bad point's position and id. Checks nothing else: the collection
// validates vectors and applies the built-in limits.
absl::Status CheckUpsertLimits(const v1::UpsertRequest& request,
                               const Limits& limits);

// Checks a search's top_k against limits.max_top_k.
absl::Status CheckSearchLimits(const v1::SearchRequest& request,
                               const Limits& limits);

// Copies `vector` into `out` (dimension floats), scaled to unit length when
// the metric is COSINE. The norm is computed in double so that components
// near the float limit do not overflow. The vector must have passed
// ValidateVector.
void PrepareForIndex(const google::protobuf::RepeatedField<float>& vector,
                     v1::Metric metric, float* out);

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_VALIDATION_H_
