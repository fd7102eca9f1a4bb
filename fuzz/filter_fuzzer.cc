// Parses arbitrary bytes as a filter, field index types and points, then
// compiles the filter as a search would and tests every point against it.

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/status/statusor.h"
#include "engine/filter.h"
#include "fuzz/fuzz_inputs.pb.h"
#include "google/protobuf/stubs/logging.h"

// Silences protobuf's log line for every input with invalid UTF-8, which
// would bury libFuzzer's output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vecdb::fuzz::FilterCase input;
  if (!input.ParseFromArray(data, static_cast<int>(size))) return 0;

  vecdb::engine::FieldIndexTypes indexed;
  for (const auto& [key, type] : input.indexed()) {
    indexed[key] = static_cast<vecdb::v1::FieldIndexType>(type);
  }
  absl::StatusOr<vecdb::engine::PointFilter> filter =
      vecdb::engine::PointFilter::Compile(input.filter(), "filter", indexed);
  if (!filter.ok()) return 0;

  for (const vecdb::v1::Point& point : input.points()) {
    const bool with_metadata = filter->Matches(point.id(), &point.metadata());
    const bool without_metadata = filter->Matches(point.id(), nullptr);
    // An empty filter matches every point.
    if (filter->empty() && !(with_metadata && without_metadata)) {
      std::abort();
    }
  }
  return 0;
}
