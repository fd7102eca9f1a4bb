#include "rpc/api_keys.h"

#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace vecdb::rpc {
namespace {

constexpr absl::string_view kBearerPrefix = "Bearer ";

// Returns whether `a` and `b` are equal, reading every byte of the longer
// one whatever the contents, unlike memcmp, which stops at the first
// difference.
bool EqualInConstantTime(absl::string_view a, absl::string_view b) {
  const size_t length = std::max(a.size(), b.size());
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < length; ++i) {
    const unsigned char from_a =
        i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char from_b =
        i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    difference |= from_a ^ from_b;
  }
  return difference == 0;
}

std::optional<Right> ParseRight(absl::string_view name) {
  if (name == "read") return Right::kRead;
  if (name == "write") return Right::kWrite;
  if (name == "admin") return Right::kAdmin;
  return std::nullopt;
}

}  // namespace

absl::string_view RightName(Right right) {
  switch (right) {
    case Right::kRead:
      return "read";
    case Right::kWrite:
      return "write";
    case Right::kAdmin:
      return "admin";
  }
  return "admin";
}

Right RequiredRight(absl::string_view method) {
  static const auto* const kReads = new absl::flat_hash_set<absl::string_view>{
      "Get",    "Search",        "SearchBatch",    "Count",
      "Scroll", "GetCollection", "ListCollections"};
  static const auto* const kWrites =
      new absl::flat_hash_set<absl::string_view>{"Upsert", "Import", "Delete"};
  if (kReads->contains(method)) return Right::kRead;
  if (kWrites->contains(method)) return Right::kWrite;
  return Right::kAdmin;
}

absl::StatusOr<ApiKeys> ApiKeys::Parse(absl::string_view text,
                                       absl::string_view source) {
  ApiKeys keys;
  absl::flat_hash_set<std::string> seen;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    const std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty()) continue;
    const std::string where = absl::StrCat(source, ": line ", line_number);
    if (words.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(where,
                       ": expected a key and its right (read, write or admin), "
                       "found ",
                       words.size(), " words"));
    }
    const std::optional<Right> right = ParseRight(words[1]);
    if (!right.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": the right must be read, write or admin"));
    }
    if (!seen.insert(std::string(words[0])).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": the key appears on an earlier line too"));
    }
    keys.entries_.push_back({std::string(words[0]), *right});
  }
  if (keys.entries_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": no keys; add lines of the form 'KEY read|write|admin'"));
  }
  return keys;
}

absl::StatusOr<ApiKeys> ApiKeys::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read the API keys file ", path));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

std::optional<Right> ApiKeys::Find(absl::string_view key) const {
  // Every entry is compared, so that the time does not tell which one
  // matched.
  std::optional<Right> found;
  for (const Entry& entry : entries_) {
    if (EqualInConstantTime(entry.key, key)) found = entry.right;
  }
  return found;
}

grpc::Status Authorize(const ApiKeys* keys,
                       const grpc::ServerContextBase& context,
                       absl::string_view method) {
  if (keys == nullptr) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto header = metadata.find("authorization");
  if (header == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing API key; send the metadata "
                        "'authorization: Bearer KEY'");
  }
  const absl::string_view value(header->second.data(), header->second.size());
  if (!absl::StartsWith(value, kBearerPrefix)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the authorization metadata must be 'Bearer KEY'");
  }
  const std::optional<Right> right =
      keys->Find(absl::StripPrefix(value, kBearerPrefix));
  if (!right.has_value()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown API key");
  }
  const Right required = RequiredRight(method);
  if (*right < required) {
    return grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        absl::StrCat(method, " needs an API key with the ", RightName(required),
                     " right; this key has ", RightName(*right)));
  }
  return grpc::Status::OK;
}

}  // namespace vecdb::rpc
