// Parses arbitrary bytes as a point's metadata and runs what the server
// does with metadata: the size and depth checks, the path lookups that
// filters and field indexes use, and a serialization round trip.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "engine/filter.h"
#include "engine/limits.h"
#include "engine/validation.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/message_differencer.h"

namespace {

// Collects the dotted paths of every field, nested structs included, down
// to a fixed depth.
void CollectPaths(const google::protobuf::Struct& object,
                  std::vector<std::string>& prefix, int depth,
                  std::vector<std::vector<std::string>>& paths) {
  if (depth > 4) return;
  for (const auto& [key, value] : object.fields()) {
    prefix.push_back(key);
    paths.push_back(prefix);
    if (value.has_struct_value()) {
      CollectPaths(value.struct_value(), prefix, depth + 1, paths);
    }
    prefix.pop_back();
  }
}

}  // namespace

// Silences protobuf's log line for every input with invalid UTF-8, which
// would bury libFuzzer's output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  google::protobuf::Struct metadata;
  if (!metadata.ParseFromArray(data, static_cast<int>(size))) return 0;

  vecdb::engine::Limits small;
  small.max_metadata_bytes = 128;
  small.max_metadata_depth = 2;
  const bool valid = vecdb::engine::ValidateMetadata(metadata).ok();
  vecdb::engine::ValidateMetadata(metadata, small).IgnoreError();

  std::vector<std::string> prefix;
  std::vector<std::vector<std::string>> paths;
  CollectPaths(metadata, prefix, 0, paths);
  for (const std::vector<std::string>& path : paths) {
    // A path of existing keys through structs must find its value.
    size_t visited = 0;
    for (bool expand : {false, true}) {
      vecdb::engine::VisitPathValues(metadata, path, expand,
                                     [&](const google::protobuf::Value&) {
                                       ++visited;
                                       return false;
                                     });
    }
    if (visited == 0) std::abort();
    vecdb::engine::SplitKeyPath(absl::StrJoin(path, "."), "key")
        .status()
        .IgnoreError();
  }

  // What the server stores must parse back to the same metadata. Map
  // fields serialize in no fixed order, so the messages are compared, not
  // the bytes.
  if (valid) {
    google::protobuf::Struct reparsed;
    if (!reparsed.ParseFromString(metadata.SerializeAsString())) std::abort();
    if (!google::protobuf::util::MessageDifferencer::Equals(metadata,
                                                            reparsed)) {
      std::abort();
    }
  }
  return 0;
}
