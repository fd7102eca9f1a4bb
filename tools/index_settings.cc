#include "tools/index_settings.h"

#include <algorithm>
#include <initializer_list>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/client.h"

namespace vecdb::tools {
namespace {

// An index parameter: its option on the command line, where the tool and
// the API keep it, and the kinds it applies to.
struct Parameter {
  const char* name;
  std::optional<uint32_t> IndexSettings::*setting;
  uint32_t (v1::IndexConfig::*get)() const;
  void (v1::IndexConfig::*set)(uint32_t);
  std::vector<v1::IndexKind> kinds;
};

// The parameters in the order of IndexConfig, which is the order in which
// they are printed.
const std::vector<Parameter>& Parameters() {
  static const auto* const parameters = new std::vector<Parameter>{
      {"m",
       &IndexSettings::m,
       &v1::IndexConfig::m,
       &v1::IndexConfig::set_m,
       {v1::HNSW, v1::HNSW_SQ8}},
      {"ef_construction",
       &IndexSettings::ef_construction,
       &v1::IndexConfig::ef_construction,
       &v1::IndexConfig::set_ef_construction,
       {v1::HNSW, v1::HNSW_SQ8}},
      {"ef_search",
       &IndexSettings::ef_search,
       &v1::IndexConfig::ef_search,
       &v1::IndexConfig::set_ef_search,
       {v1::HNSW, v1::HNSW_SQ8}},
      {"nlist",
       &IndexSettings::nlist,
       &v1::IndexConfig::nlist,
       &v1::IndexConfig::set_nlist,
       {v1::IVF_FLAT, v1::IVF_PQ}},
      {"nprobe",
       &IndexSettings::nprobe,
       &v1::IndexConfig::nprobe,
       &v1::IndexConfig::set_nprobe,
       {v1::IVF_FLAT, v1::IVF_PQ}},
      {"pq_m",
       &IndexSettings::pq_m,
       &v1::IndexConfig::pq_m,
       &v1::IndexConfig::set_pq_m,
       {v1::IVF_PQ}},
      {"pq_bits",
       &IndexSettings::pq_bits,
       &v1::IndexConfig::pq_bits,
       &v1::IndexConfig::set_pq_bits,
       {v1::IVF_PQ}},
  };
  return *parameters;
}

bool AppliesTo(const std::vector<v1::IndexKind>& kinds, v1::IndexKind kind) {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

// "ivf_flat and ivf_pq", "hnsw, ivf_pq and sq8".
std::string JoinKindNames(const std::vector<v1::IndexKind>& kinds) {
  std::string text;
  for (size_t i = 0; i < kinds.size(); ++i) {
    if (i > 0) absl::StrAppend(&text, i + 1 == kinds.size() ? " and " : ", ");
    absl::StrAppend(&text, IndexKindName(kinds[i]));
  }
  return text;
}

// One sentence about an option that does not apply, such as "--nlist does
// not apply to index hnsw (only to ivf_flat and ivf_pq)".
std::string Misplaced(absl::string_view option, absl::string_view subject,
                      const std::vector<v1::IndexKind>& kinds) {
  return absl::StrCat("--", option, " does not apply to ", subject,
                      " (only to ", JoinKindNames(kinds), ")");
}

}  // namespace

bool IndexSettings::AnyGiven() const {
  if (!kind.empty()) return true;
  for (const Parameter& parameter : Parameters()) {
    if ((this->*parameter.setting).has_value()) return true;
  }
  return false;
}

const std::vector<std::string>& IndexKindNames() {
  static const auto* const names = new std::vector<std::string>{
      IndexKindName(v1::FLAT),     IndexKindName(v1::HNSW),
      IndexKindName(v1::IVF_FLAT), IndexKindName(v1::IVF_PQ),
      IndexKindName(v1::SQ8),      IndexKindName(v1::HNSW_SQ8)};
  return *names;
}

absl::StatusOr<v1::IndexKind> ParseIndexKind(absl::string_view name) {
  const std::string lowercase = absl::AsciiStrToLower(name);
  for (v1::IndexKind kind :
       {v1::FLAT, v1::HNSW, v1::IVF_FLAT, v1::IVF_PQ, v1::SQ8, v1::HNSW_SQ8}) {
    if (IndexKindName(kind) == lowercase) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown index '", name, "'; expected one of ",
                   absl::StrJoin(IndexKindNames(), ", ")));
}

absl::Status CheckIndexParameters(v1::IndexKind kind,
                                  const IndexSettings& settings) {
  std::vector<std::string> problems;
  for (const Parameter& parameter : Parameters()) {
    if ((settings.*parameter.setting).has_value() &&
        !AppliesTo(parameter.kinds, kind)) {
      problems.push_back(Misplaced(parameter.name,
                                   absl::StrCat("index ", IndexKindName(kind)),
                                   parameter.kinds));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
}

absl::StatusOr<v1::IndexConfig> MakeIndexConfig(const IndexSettings& settings) {
  v1::IndexKind kind = v1::HNSW;
  if (!settings.kind.empty()) {
    absl::StatusOr<v1::IndexKind> parsed = ParseIndexKind(settings.kind);
    if (!parsed.ok()) return parsed.status();
    kind = *parsed;
  }
  if (absl::Status status = CheckIndexParameters(kind, settings);
      !status.ok()) {
    return status;
  }

  v1::IndexConfig config;
  config.set_kind(kind);
  for (const Parameter& parameter : Parameters()) {
    if (const auto& value = settings.*parameter.setting; value.has_value()) {
      (config.*parameter.set)(*value);
    }
  }
  return config;
}

absl::Status CheckIndexUpdate(const IndexSettings& settings) {
  if (!settings.AnyGiven()) {
    return absl::InvalidArgumentError(
        "nothing to change; give --index or an index parameter such as "
        "--ef_search or --nprobe");
  }
  if (settings.kind.empty()) return absl::OkStatus();
  absl::StatusOr<v1::IndexKind> kind = ParseIndexKind(settings.kind);
  if (!kind.ok()) return kind.status();
  return CheckIndexParameters(*kind, settings);
}

absl::StatusOr<v1::IndexConfig> MakeUpdatedIndexConfig(
    const v1::IndexConfig& current, const IndexSettings& settings) {
  if (absl::Status status = CheckIndexUpdate(settings); !status.ok()) {
    return status;
  }
  v1::IndexKind kind = current.kind();
  if (!settings.kind.empty()) {
    absl::StatusOr<v1::IndexKind> parsed = ParseIndexKind(settings.kind);
    if (!parsed.ok()) return parsed.status();
    kind = *parsed;
  }
  if (absl::Status status = CheckIndexParameters(kind, settings);
      !status.ok()) {
    return status;
  }

  // The server takes the whole config, so the current parameters are sent
  // again unless the kind changes, in which case zero means its default.
  v1::IndexConfig config;
  if (kind == current.kind()) config = current;
  config.set_kind(kind);
  for (const Parameter& parameter : Parameters()) {
    if (const auto& value = settings.*parameter.setting; value.has_value()) {
      (config.*parameter.set)(*value);
    }
  }
  return config;
}

absl::Status CheckSearchTuning(v1::IndexKind kind,
                               const std::string& collection,
                               const SearchTuning& tuning) {
  const std::string subject = absl::StrCat(
      "collection '", collection, "', whose index is ", IndexKindName(kind));
  std::vector<std::string> problems;
  const std::vector<v1::IndexKind> graph_kinds = {v1::HNSW, v1::HNSW_SQ8};
  const std::vector<v1::IndexKind> ivf_kinds = {v1::IVF_FLAT, v1::IVF_PQ};
  const std::vector<v1::IndexKind> compressed_kinds = {v1::IVF_PQ, v1::SQ8,
                                                       v1::HNSW_SQ8};
  if (tuning.ef_search && !AppliesTo(graph_kinds, kind)) {
    problems.push_back(Misplaced("ef_search", subject, graph_kinds));
  }
  if (tuning.nprobe && !AppliesTo(ivf_kinds, kind)) {
    problems.push_back(Misplaced("nprobe", subject, ivf_kinds));
  }
  if (tuning.rerank && !AppliesTo(compressed_kinds, kind)) {
    problems.push_back(
        absl::StrCat(Misplaced("rerank", subject, compressed_kinds),
                     ", because its scores are exact already"));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
}

std::string FormatIndex(const v1::IndexConfig& index) {
  std::vector<std::string> parameters;
  for (const Parameter& parameter : Parameters()) {
    const uint32_t value = (index.*parameter.get)();
    if (AppliesTo(parameter.kinds, index.kind()) && value != 0) {
      parameters.push_back(absl::StrCat(parameter.name, " ", value));
    }
  }
  const std::string name = IndexKindName(index.kind());
  if (parameters.empty()) return name;
  return absl::StrCat(name, " (", absl::StrJoin(parameters, ", "), ")");
}

std::string FormatIndexParameters(const v1::IndexConfig& index) {
  std::vector<std::string> parameters;
  for (const Parameter& parameter : Parameters()) {
    if (AppliesTo(parameter.kinds, index.kind())) {
      parameters.push_back(
          absl::StrCat(parameter.name, "=", (index.*parameter.get)()));
    }
  }
  return parameters.empty() ? "-" : absl::StrJoin(parameters, " ");
}

std::string IndexStateName(v1::IndexState state) {
  switch (state) {
    case v1::EXACT:
      return "exact";
    case v1::BUILDING:
      return "building";
    case v1::READY:
      return "ready";
    default:
      return "unknown";
  }
}

std::string DescribeIndexState(const v1::CollectionInfo& info) {
  const std::string kind = IndexKindName(info.index().kind());
  switch (info.index_state()) {
    case v1::EXACT:
      return absl::StrCat(
          "exact: searches scan every vector until the collection has ",
          info.training_threshold(), " points to train the ", kind,
          " index on (it has ", info.point_count(), ")");
    case v1::BUILDING:
      return absl::StrCat("building: the ", kind,
                          " index is being built in the background, and "
                          "searches use the previous index until it is ready");
    case v1::READY:
      return absl::StrCat("ready: the ", kind, " index serves searches");
    default:
      return "unknown: the server did not report it";
  }
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, units[unit]);
}

}  // namespace vecdb::tools
