#ifndef VECDB_TOOLS_COMMANDS_H_
#define VECDB_TOOLS_COMMANDS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "tools/client.h"
#include "tools/importer.h"
#include "tools/index_settings.h"
#include "tools/point_source.h"

namespace vecdb::tools {

// The subcommands of the `vecdb` tool. Each prints its result on stdout and
// its errors on stderr, and returns the process exit status: 0 on success,
// 1 on any failure.

// The settings of a collection that `--create` or `collections create`
// makes.
struct CollectionSettings {
  // "cosine", "dot" or "l2"; empty when not given.
  std::string metric;
  IndexSettings index;
};

// Builds the CreateCollection request for `settings`. Returns
// INVALID_ARGUMENT for a missing or unknown metric, an unknown index kind or
// an index parameter that does not apply to the kind.
absl::StatusOr<v1::CreateCollectionRequest> MakeCreateRequest(
    const std::string& name, uint32_t dimension,
    const CollectionSettings& settings);

struct ImportCommand {
  ConnectionOptions connection;
  SourceOptions source;
  ImportOptions import;
  // Create the collection when it does not exist, with `settings`.
  bool create = false;
  CollectionSettings settings;
  // Skip points whose id the collection already contains.
  bool resume = false;
  // Check the input and report what would be imported, without writing.
  bool dry_run = false;
};

int RunImport(const ImportCommand& command);

int RunListCollections(const ConnectionOptions& connection, bool json);
int RunCreateCollection(const ConnectionOptions& connection,
                        const std::string& name, uint32_t dimension,
                        const CollectionSettings& settings, bool json);
int RunDescribeCollection(const ConnectionOptions& connection,
                          const std::string& name, bool json);
// Changes the index kind or parameters of a collection with
// UpdateCollection; see MakeUpdatedIndexConfig for how `settings` combine
// with the current config.
int RunUpdateCollection(const ConnectionOptions& connection,
                        const std::string& name, const IndexSettings& settings,
                        bool json);
int RunDropCollection(const ConnectionOptions& connection,
                      const std::string& name);

struct SearchCommand {
  ConnectionOptions connection;
  std::string collection;
  // Exactly one of the three query sources is set: a .npy or .fvecs file
  // (with `row`) or a .json file holding an array, an inline JSON array,
  // or the id of a stored point.
  std::string query_file;
  size_t row = 0;
  std::string vector_json;
  std::string id;
  uint32_t top_k = 10;
  // The options below are set only when the command line gives them; 0
  // takes the collection's default.
  std::optional<uint32_t> ef_search;
  std::optional<uint32_t> nprobe;
  // Candidates per hit for `rerank`.
  std::optional<uint32_t> oversampling;
  bool rerank = false;
  bool exact = false;
  bool include_vectors = false;
  // Print the hits as JSON rather than a table.
  bool json = false;
};

int RunSearch(const SearchCommand& command);

}  // namespace vecdb::tools

#endif  // VECDB_TOOLS_COMMANDS_H_
