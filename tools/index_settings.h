#ifndef VECDB_TOOLS_INDEX_SETTINGS_H_
#define VECDB_TOOLS_INDEX_SETTINGS_H_

// Index kinds and parameters as the `vecdb` tool takes them from the command
// line, and their descriptions for a person. Nothing here talks to the
// server.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::tools {

// The index options of `collections create`, `collections update` and
// `import --create`. An option is set only when the command line gives it,
// so that one that does not apply to the kind can be rejected. A given 0
// takes the server's default.
struct IndexSettings {
  // Lowercase kind name such as "ivf_pq"; empty when not given.
  std::string kind;
  std::optional<uint32_t> m;
  std::optional<uint32_t> ef_construction;
  std::optional<uint32_t> ef_search;
  std::optional<uint32_t> nlist;
  std::optional<uint32_t> nprobe;
  std::optional<uint32_t> pq_m;
  std::optional<uint32_t> pq_bits;

  // Whether the command line gave the kind or any parameter.
  bool AnyGiven() const;
};

// The kind names that the command line accepts, in the order of IndexKind:
// flat, hnsw, ivf_flat, ivf_pq, sq8, hnsw_sq8.
const std::vector<std::string>& IndexKindNames();

// Returns the kind that `name` names, ignoring case. INVALID_ARGUMENT for
// any other name, with the list of valid ones.
absl::StatusOr<v1::IndexKind> ParseIndexKind(absl::string_view name);

// Checks that every parameter set in `settings` applies to `kind`.
// INVALID_ARGUMENT names each option that does not and the kinds that take
// it, such as "--nlist does not apply to index hnsw (only to ivf_flat and
// ivf_pq)".
absl::Status CheckIndexParameters(v1::IndexKind kind,
                                  const IndexSettings& settings);

// Builds the index config of a new collection: the given kind (hnsw when
// none) and the given parameters, leaving the others 0 for the server's
// defaults. INVALID_ARGUMENT for an unknown kind or a parameter that does
// not apply to it.
absl::StatusOr<v1::IndexConfig> MakeIndexConfig(const IndexSettings& settings);

// Checks the parts of an update that need no current config: that
// `settings` gives something, that a given kind is known and that the
// given parameters apply to it. INVALID_ARGUMENT otherwise.
absl::Status CheckIndexUpdate(const IndexSettings& settings);

// Builds the whole index config that UpdateCollection takes from the
// collection's `current` config and the changes in `settings`. Without a
// kind, or with the current one, the parameters not given keep their
// current values; with another kind they take the server's defaults.
// INVALID_ARGUMENT when `settings` gives nothing, names an unknown kind or
// sets a parameter that does not apply to the resulting kind.
absl::StatusOr<v1::IndexConfig> MakeUpdatedIndexConfig(
    const v1::IndexConfig& current, const IndexSettings& settings);

// The search options that depend on the collection's index kind, each set
// when the command line gave it.
struct SearchTuning {
  bool ef_search = false;
  bool nprobe = false;
  bool rerank = false;
};

// Checks that every search option set in `tuning` applies to a collection
// of `kind`. INVALID_ARGUMENT names each option that does not, such as
// "--nprobe does not apply to collection 'docs', whose index is hnsw (only
// to ivf_flat and ivf_pq)".
absl::Status CheckSearchTuning(v1::IndexKind kind,
                               const std::string& collection,
                               const SearchTuning& tuning);

// Formats a config as its kind and parameters, such as
// "ivf_pq (nlist 256, nprobe 16, pq_m 16, pq_bits 8)" or "flat". Parameters
// left 0, which take the server's defaults, are left out.
std::string FormatIndex(const v1::IndexConfig& index);

// Formats only the parameters, as "nlist=256 nprobe=16", or "-" for a kind
// without any.
std::string FormatIndexParameters(const v1::IndexConfig& index);

// The lowercase name of an index state: "exact", "building" or "ready".
std::string IndexStateName(v1::IndexState state);

// Explains the index state of `info` in a sentence, such as "exact:
// searches scan every vector until the collection has 10240 points to
// train the ivf_pq index on (it has 500)".
std::string DescribeIndexState(const v1::CollectionInfo& info);

// Formats a byte count with a binary unit, such as "1.5 MiB" or "512 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace vecdb::tools

#endif  // VECDB_TOOLS_INDEX_SETTINGS_H_
