#include "tools/importer.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <optional>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/limits.h"
#include "simdjson.h"
#include "tools/progress.h"

namespace vecdb::tools {
namespace {

// Bytes that a length-delimited field adds around its payload at most: a
// one-byte tag and a varint length of up to five bytes.
constexpr size_t kFieldOverheadBytes = 6;

// Ids per Get request of FindPresentIds, before the message limit lowers it.
constexpr size_t kMaxIdsPerGet = 1000;

absl::Status CheckId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("the id is empty");
  if (id.size() > engine::kMaxPointIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the id is ", id.size(),
                                                   " bytes long, the limit is ",
                                                   engine::kMaxPointIdBytes));
  }
  if (!simdjson::validate_utf8(id.data(), id.size())) {
    return absl::InvalidArgumentError("the id is not valid UTF-8");
  }
  return absl::OkStatus();
}

// Checks the norm as the server does for `metric`.
absl::Status CheckNorm(const v1::Point& point, v1::Metric metric) {
  double squared_norm = 0;
  for (float component : point.vector()) {
    squared_norm += double{component} * component;
  }
  if (metric == v1::COSINE && squared_norm == 0) {
    return absl::InvalidArgumentError(
        "the vector is all zeros, which a COSINE collection rejects");
  }
  if (metric != v1::COSINE && squared_norm > engine::kMaxSquaredNorm) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the vector's squared norm ", squared_norm, " exceeds ",
        engine::kMaxSquaredNorm, ", the server's limit under L2 and DOT"));
  }
  return absl::OkStatus();
}

absl::Status AtLocation(const std::string& location,
                        absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(location, ": ", problem));
}

}  // namespace

absl::StatusOr<CheckedInput> CheckInput(PointSource& source, uint32_t dimension,
                                        v1::Metric metric,
                                        size_t max_message_bytes) {
  CheckedInput result;
  result.dimension = dimension;
  absl::flat_hash_map<std::string, size_t> first_index;
  const RequestBuilder empty_request("", 1, max_message_bytes);
  v1::Point point;
  source.Rewind();

  for (size_t index = 0;; ++index) {
    absl::StatusOr<bool> more = source.Next(&point);
    if (!more.ok()) return more.status();
    if (!*more) break;

    if (result.dimension == 0) result.dimension = point.vector_size();
    if (static_cast<uint32_t>(point.vector_size()) != result.dimension) {
      return AtLocation(
          source.Location(index),
          absl::StrCat("the vector has dimension ", point.vector_size(),
                       ", the collection ", result.dimension));
    }
    if (absl::Status status = CheckNorm(point, metric); !status.ok()) {
      return AtLocation(source.Location(index), status.message());
    }
    if (absl::Status status = CheckId(point.id()); !status.ok()) {
      return AtLocation(source.IdLocation(index), status.message());
    }
    if (!empty_request.FitsAlone(point.ByteSizeLong())) {
      return AtLocation(
          source.Location(index),
          absl::StrCat("the point is ", point.ByteSizeLong(),
                       " bytes serialized, too large for a message of at "
                       "most ",
                       max_message_bytes, " bytes (--max_message_bytes)"));
    }

    auto [first, inserted] = first_index.emplace(point.id(), index);
    if (!inserted) {
      return AtLocation(
          source.IdLocation(index),
          absl::StrCat("duplicate id \"", point.id(), "\", first seen at ",
                       source.IdLocation(first->second)));
    }
    result.ids.push_back(point.id());
  }

  source.Rewind();
  if (result.ids.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source.Describe(), " contains no points"));
  }
  return result;
}

absl::StatusOr<absl::flat_hash_set<size_t>> FindPresentIds(
    const ConnectionOptions& connection, const std::string& collection,
    const std::vector<std::string>& ids, uint32_t dimension) {
  std::unique_ptr<v1::VectorDB::Stub> stub =
      v1::VectorDB::NewStub(MakeChannel(connection));
  // Get returns whole points, so a batch is sized to keep the reply well
  // below the message limit. A reply that still exceeds it because of large
  // metadata is retried with half as many ids.
  const size_t point_bytes = size_t{dimension} * 5 + 512;
  size_t batch = std::clamp<size_t>(
      connection.max_message_bytes / 2 / point_bytes, 1, kMaxIdsPerGet);

  absl::flat_hash_set<size_t> present;
  for (size_t start = 0; start < ids.size();) {
    const size_t end = std::min(ids.size(), start + batch);
    v1::GetRequest request;
    request.set_collection(collection);
    absl::flat_hash_map<absl::string_view, size_t> index_of;
    for (size_t i = start; i < end; ++i) {
      request.add_ids(ids[i]);
      index_of.emplace(ids[i], i);
    }

    grpc::ClientContext context;
    SetDeadline(connection, &context);
    v1::GetResponse response;
    grpc::Status status = stub->Get(&context, request, &response);
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
        batch > 1) {
      batch /= 2;
      continue;
    }
    if (!status.ok()) {
      return absl::UnavailableError(DescribeRpcError("Get", status));
    }
    for (const v1::Point& point : response.points()) {
      auto found = index_of.find(point.id());
      if (found != index_of.end()) present.insert(found->second);
    }
    start = end;
  }
  return present;
}

RequestBuilder::RequestBuilder(std::string collection, size_t batch_size,
                               size_t max_message_bytes)
    : collection_(std::move(collection)),
      batch_size_(std::max<size_t>(batch_size, 1)),
      byte_limit_(max_message_bytes > kReservedBytes
                      ? max_message_bytes - kReservedBytes
                      : 0) {
  Take();
}

bool RequestBuilder::Fits(size_t point_bytes) const {
  return static_cast<size_t>(request_.points_size()) < batch_size_ &&
         request_bytes_ + point_bytes + kFieldOverheadBytes <= byte_limit_;
}

bool RequestBuilder::FitsAlone(size_t point_bytes) const {
  return collection_.size() + point_bytes + 2 * kFieldOverheadBytes <=
         byte_limit_;
}

void RequestBuilder::Add(v1::Point&& point, size_t point_bytes) {
  *request_.add_points() = std::move(point);
  request_bytes_ += point_bytes + kFieldOverheadBytes;
}

v1::UpsertRequest RequestBuilder::Take() {
  v1::UpsertRequest taken = std::move(request_);
  request_ = v1::UpsertRequest();
  request_.set_collection(collection_);
  request_bytes_ = collection_.size() + kFieldOverheadBytes;
  return taken;
}

namespace {

// The requests of one Import stream.
struct Chunk {
  std::vector<v1::UpsertRequest> requests;
  uint64_t points = 0;
};

// A queue of chunks between the reading thread and the stream threads,
// bounded so that reading cannot run far ahead of sending.
class ChunkQueue {
 public:
  explicit ChunkQueue(size_t capacity) : capacity_(capacity) {}

  // Waits for room and adds `chunk`. Returns false, dropping it, once the
  // queue is closed.
  bool Push(Chunk chunk) {
    absl::MutexLock lock(&mutex_);
    mutex_.Await(absl::Condition(this, &ChunkQueue::HasRoomOrClosed));
    if (closed_) return false;
    chunks_.push_back(std::move(chunk));
    return true;
  }

  // Waits for a chunk. Returns nothing once the queue is closed and empty.
  std::optional<Chunk> Pop() {
    absl::MutexLock lock(&mutex_);
    mutex_.Await(absl::Condition(this, &ChunkQueue::HasChunkOrClosed));
    if (chunks_.empty()) return std::nullopt;
    Chunk chunk = std::move(chunks_.front());
    chunks_.pop_front();
    return chunk;
  }

  // Lets Pop drain what is queued, then return nothing.
  void Close() {
    absl::MutexLock lock(&mutex_);
    closed_ = true;
  }

  // Drops what is queued and closes the queue.
  void Abort() {
    absl::MutexLock lock(&mutex_);
    closed_ = true;
    chunks_.clear();
  }

 private:
  bool HasRoomOrClosed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return closed_ || chunks_.size() < capacity_;
  }
  bool HasChunkOrClosed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return closed_ || !chunks_.empty();
  }

  const size_t capacity_;
  absl::Mutex mutex_;
  std::deque<Chunk> chunks_ ABSL_GUARDED_BY(mutex_);
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
};

// Returns N when a failed Import's message starts with "stream request N:",
// which the server writes when request N (counted from 0) failed after the
// N requests before it were stored.
std::optional<size_t> StoredRequestsFromStatus(const grpc::Status& status) {
  absl::string_view message = status.error_message();
  constexpr absl::string_view kPrefix = "stream request ";
  if (message.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  message.remove_prefix(kPrefix.size());
  const size_t colon = message.find(':');
  size_t position;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(message.substr(0, colon), &position)) {
    return std::nullopt;
  }
  return position;
}

// Runs the Import streams and keeps the counts. Thread-safe.
class StreamSender {
 public:
  StreamSender(const ConnectionOptions& connection, ChunkQueue* queue,
               ProgressReporter* progress)
      : connection_(connection), queue_(queue), progress_(progress) {}

  // Sends chunks from the queue, one stream each, until it is closed and
  // empty or a stream fails.
  void Run(int connection_number) {
    std::unique_ptr<v1::VectorDB::Stub> stub =
        v1::VectorDB::NewStub(MakeChannel(connection_, connection_number));
    while (!failed()) {
      std::optional<Chunk> chunk = queue_->Pop();
      if (!chunk) return;
      Send(*stub, *chunk);
    }
  }

  bool failed() const { return failed_.load(); }

  void AddTo(ImportResult* result) {
    absl::MutexLock lock(&mutex_);
    result->imported += imported_;
    result->rejected += rejected_;
    result->unconfirmed += unconfirmed_;
    if (result->status.ok()) result->status = first_error_;
  }

 private:
  void Send(v1::VectorDB::Stub& stub, const Chunk& chunk) {
    grpc::ClientContext context;
    v1::ImportResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::UpsertRequest>> writer =
        stub.Import(&context, &response);
    size_t written = 0;
    for (const v1::UpsertRequest& request : chunk.requests) {
      // A failed write means the stream is broken, and Finish returns why.
      if (!writer->Write(request)) break;
      ++written;
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();

    if (status.ok() && written == chunk.requests.size()) {
      Count(chunk.points, 0, 0);
      return;
    }
    Fail(chunk, written, status);
  }

  // Counts what a failed stream stored. The server applies a stream's
  // requests in order and stops at the first that fails, so the requests
  // before it are stored and none after it. When the status does not say
  // which request failed (the connection broke, the server was killed),
  // the requests written are unconfirmed.
  void Fail(const Chunk& chunk, size_t written, const grpc::Status& status) {
    auto points_in = [&](size_t begin, size_t end) {
      uint64_t points = 0;
      for (size_t i = begin; i < end && i < chunk.requests.size(); ++i) {
        points += chunk.requests[i].points_size();
      }
      return points;
    };

    std::string error = DescribeRpcError("Import", status);
    const std::optional<size_t> stored = StoredRequestsFromStatus(status);
    if (status.ok()) {
      // The stream ended OK but not every request went out.
      error = absl::StrCat("Import stream ended after ", written, " of ",
                           chunk.requests.size(), " requests");
      Count(points_in(0, written), 0, 0);
    } else if (stored && *stored < chunk.requests.size()) {
      Count(points_in(0, *stored), points_in(*stored, *stored + 1), 0);
    } else {
      Count(0, 0, points_in(0, written));
    }

    absl::MutexLock lock(&mutex_);
    if (first_error_.ok()) {
      // gRPC's status codes have the same numbers as Abseil's.
      first_error_ = absl::Status(
          status.ok() ? absl::StatusCode::kInternal
                      : static_cast<absl::StatusCode>(status.error_code()),
          error);
    }
    failed_.store(true);
    queue_->Abort();
  }

  void Count(uint64_t imported, uint64_t rejected, uint64_t unconfirmed) {
    progress_->Add(imported);
    absl::MutexLock lock(&mutex_);
    imported_ += imported;
    rejected_ += rejected;
    unconfirmed_ += unconfirmed;
  }

  const ConnectionOptions& connection_;
  ChunkQueue* const queue_;
  ProgressReporter* const progress_;
  std::atomic<bool> failed_{false};
  absl::Mutex mutex_;
  uint64_t imported_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t rejected_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t unconfirmed_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::Status first_error_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace

ImportResult SendPoints(PointSource& source,
                        const absl::flat_hash_set<size_t>& skip,
                        size_t point_count, const ConnectionOptions& connection,
                        const ImportOptions& options) {
  const absl::Time start = absl::Now();
  const uint64_t to_send = point_count - skip.size();
  ProgressReporter progress(to_send, stderr, ::isatty(STDERR_FILENO) != 0,
                            absl::Seconds(options.progress_interval_seconds));
  const int streams = std::max(options.streams, 1);
  ChunkQueue queue(2 * static_cast<size_t>(streams));
  StreamSender sender(connection, &queue, &progress);
  std::vector<std::thread> threads;
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back([&sender, i] { sender.Run(i + 1); });
  }

  // Reads points into requests and requests into chunks, one per stream.
  absl::Status read_status;
  RequestBuilder builder(options.collection, options.batch_size,
                         connection.max_message_bytes);
  Chunk chunk;
  auto finish_request = [&] {
    v1::UpsertRequest request = builder.Take();
    request.set_defer_index(options.defer_index);
    chunk.points += request.points_size();
    chunk.requests.push_back(std::move(request));
  };
  v1::Point point;
  for (size_t index = 0; !sender.failed(); ++index) {
    absl::StatusOr<bool> more = source.Next(&point);
    if (!more.ok()) {
      read_status = more.status();
      break;
    }
    if (!*more) break;
    if (skip.contains(index)) continue;

    const size_t point_bytes = point.ByteSizeLong();
    if (!builder.empty() && !builder.Fits(point_bytes)) {
      finish_request();
      if (chunk.requests.size() >=
          static_cast<size_t>(std::max(options.requests_per_stream, 1))) {
        if (!queue.Push(std::move(chunk))) break;
        chunk = Chunk();
      }
    }
    builder.Add(std::move(point), point_bytes);
  }
  if (!builder.empty()) finish_request();
  if (!chunk.requests.empty() && read_status.ok()) queue.Push(std::move(chunk));

  queue.Close();
  for (std::thread& thread : threads) thread.join();
  progress.Stop();

  ImportResult result;
  result.status = read_status;
  sender.AddTo(&result);
  result.not_sent =
      to_send - result.imported - result.rejected - result.unconfirmed;
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return result;
}

}  // namespace vecdb::tools
