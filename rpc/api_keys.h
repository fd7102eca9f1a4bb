#ifndef VECDB_RPC_API_KEYS_H_
#define VECDB_RPC_API_KEYS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace vecdb::rpc {

// The permission level of an API key. Each right includes the ones before
// it.
enum class Right { kRead = 0, kWrite = 1, kAdmin = 2 };

// Returns "read", "write" or "admin".
absl::string_view RightName(Right right);

// Returns the right that calling the vecdb.v1.VectorDB method `method` (its
// short name, such as "Search") requires. Reads need kRead, Upsert, Import
// and Delete need kWrite, and every other method, including ones added
// later, needs kAdmin.
Right RequiredRight(absl::string_view method);

// The API keys that a server accepts, each with its right. Immutable after
// loading, so thread-safe.
class ApiKeys {
 public:
  // Parses the text of a keys file: one key per line followed by whitespace
  // and its right (read, write or admin). Blank lines and everything after a
  // '#' are ignored. `source` names the file in messages. Returns
  // INVALID_ARGUMENT naming the line for a malformed line, a duplicate key
  // or a file without keys. Messages never contain a key.
  static absl::StatusOr<ApiKeys> Parse(absl::string_view text,
                                       absl::string_view source);

  // Reads and parses the file at `path`; NOT_FOUND when it cannot be read.
  static absl::StatusOr<ApiKeys> Load(const std::string& path);

  // Returns the right of `key`, or nullopt for an unknown key. Compares
  // `key` with every stored key in time that depends only on the lengths,
  // so that response times reveal nothing about how much of a key matched.
  std::optional<Right> Find(absl::string_view key) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string key;
    Right right;
  };
  std::vector<Entry> entries_;
};

// Checks the call's "authorization: Bearer KEY" metadata against `keys`
// for the method `method`. Every handler calls it before it reads the
// request, rather than a server interceptor, because the server
// interceptors of gRPC 1.51 cannot end a call with a status and an
// AuthMetadataProcessor runs on TLS ports only. Returns OK when `keys` is null (the server runs
// without keys) or the key has the method's right, UNAUTHENTICATED when the
// key is missing or unknown, and PERMISSION_DENIED when its right is too
// small.
grpc::Status Authorize(const ApiKeys* keys,
                       const grpc::ServerContextBase& context,
                       absl::string_view method);

}  // namespace vecdb::rpc

#endif  // VECDB_RPC_API_KEYS_H_
