#ifndef VECDB_TOOLS_IMPORTER_H_
#define VECDB_TOOLS_IMPORTER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/client.h"
#include "tools/point_source.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::tools {

// Settings of an import: the target collection, request sizes and streams.
struct ImportOptions {
  std::string collection;
  // Points per UpsertRequest at most (default 1000). A request is also cut
  // before it would exceed the connection's max_message_bytes.
  size_t batch_size = 1000;
  // Import streams open at once (default 2).
  int streams = 2;
  // Requests sent on one Import stream before it is closed and its reply,
  // the acknowledgement of all its requests, is awaited (default 8).
  int requests_per_stream = 8;
  // Seconds between plain progress lines when stderr is not a terminal.
  double progress_interval_seconds = 5;
  // Ask the server to add the points to the HNSW graph after the load
  // (UpsertRequest.defer_index).
  bool defer_index = false;
};

// The input after a full local check.
struct CheckedInput {
  // Every point's id, by index.
  std::vector<std::string> ids;
  uint32_t dimension = 0;
};

// Reads every point of `source` and checks it as the server would. An id
// must be 1 to 256 bytes of UTF-8 and unique in the input. A vector must
// have the collection's `dimension` (when 0, the input's own), must not be
// zero under COSINE, and its squared norm must be within the server's limit
// under L2 and DOT_PRODUCT. Metadata must be within the server's limits.
// Returns INVALID_ARGUMENT naming the file and line or row of the first bad
// point; for a duplicate id, also where the id appeared first. Rewinds `source`
// before it returns. A point too large for one message of `max_message_bytes`
// is rejected too.
absl::StatusOr<CheckedInput> CheckInput(PointSource& source, uint32_t dimension,
                                        v1::Metric metric,
                                        size_t max_message_bytes);

// Returns the indexes of the ids in `ids` that the collection already
// contains, asking the server with Get in batches.
absl::StatusOr<absl::flat_hash_set<size_t>> FindPresentIds(
    const ConnectionOptions& connection, const std::string& collection,
    const std::vector<std::string>& ids, uint32_t dimension);

// Upsert requests built from points with each request's size bounded.
class RequestBuilder {
 public:
  // Bytes of a request kept free below the message limit.
  static constexpr size_t kReservedBytes = 1024;

  RequestBuilder(std::string collection, size_t batch_size,
                 size_t max_message_bytes);

  // Returns true when `point`, of `point_bytes` serialized bytes, still fits
  // into the current request.
  bool Fits(size_t point_bytes) const;
  // True when a point of `point_bytes` bytes fits into an empty request.
  bool FitsAlone(size_t point_bytes) const;
  // Moves `point` into the current request, which must fit it.
  void Add(v1::Point&& point, size_t point_bytes);
  bool empty() const { return request_.points_size() == 0; }
  // Returns the current request and starts a new one.
  v1::UpsertRequest Take();

 private:
  const std::string collection_;
  const size_t batch_size_;
  const size_t byte_limit_;
  v1::UpsertRequest request_;
  size_t request_bytes_ = 0;
};

// Counts of an import, for its summary.
struct ImportResult {
  // Points acknowledged by the server: those of streams that ended OK, and
  // of the requests that a failed stream's status reported as stored.
  uint64_t imported = 0;
  // Points of a request that the server rejected.
  uint64_t rejected = 0;
  // Points sent on a stream that broke without saying what it stored; some
  // or all of them may be stored.
  uint64_t unconfirmed = 0;
  // Points not stored: never sent because the import stopped, or sent after
  // a request that the server rejected.
  uint64_t not_sent = 0;
  double seconds = 0;
  // OK, or the first failure.
  absl::Status status;
};

// Sends the `point_count` points of `source` whose index is not in `skip`
// over parallel Import streams, reporting progress on stderr. `source` must
// have passed CheckInput. Stops at the first failure; the result counts
// what was acknowledged until then.
ImportResult SendPoints(PointSource& source,
                        const absl::flat_hash_set<size_t>& skip,
                        size_t point_count, const ConnectionOptions& connection,
                        const ImportOptions& options);

}  // namespace vecdb::tools

#endif  // VECDB_TOOLS_IMPORTER_H_
