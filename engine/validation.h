#ifndef VECDB_ENGINE_VALIDATION_H_
#define VECDB_ENGINE_VALIDATION_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/struct.pb.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::engine {

// Each check returns OK or INVALID_ARGUMENT with a message that names the
// offending value and the rule it breaks (limits in engine/limits.h).

absl::Status ValidateCollectionName(absl::string_view name);

absl::Status ValidatePointId(absl::string_view id);

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

// Copies `vector` into `out` (dimension floats), scaled to unit length when
// the metric is COSINE. The norm is computed in double so that components
// near the float limit do not overflow. The vector must have passed
// ValidateVector.
void PrepareForIndex(const google::protobuf::RepeatedField<float>& vector,
                     v1::Metric metric, float* out);

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_VALIDATION_H_
