#ifndef VECDB_TOOLS_JSON_VALUES_H_
#define VECDB_TOOLS_JSON_VALUES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/struct.pb.h"
#include "simdjson.h"

namespace vecdb::tools {

// Conversions from simdjson's DOM to the values of the vecdb API. Each
// returns INVALID_ARGUMENT with a message that names the offending part,
// for the caller to prefix with the file and line.

// Appends the numbers of a JSON array to `vector` as float32. Rejects a
// non-array, a non-number item, and a value that is not finite as float32.
absl::Status AppendFloatArray(simdjson::dom::element array,
                              std::vector<float>* vector);

// Converts a JSON object into point metadata. Integers and floats both
// become numbers (doubles, so integers beyond 2^53 lose precision). Rejects
// nesting deeper than the server accepts and metadata larger than it
// accepts when serialized.
absl::Status ConvertMetadata(simdjson::dom::object object,
                             google::protobuf::Struct* metadata);

// Returns a short name for a JSON value's type, such as "string".
std::string JsonTypeName(simdjson::dom::element value);

}  // namespace vecdb::tools

#endif  // VECDB_TOOLS_JSON_VALUES_H_
