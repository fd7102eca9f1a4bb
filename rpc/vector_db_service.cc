#include "rpc/vector_db_service.h"

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/validation.h"
#include "rpc/request_parsing.h"
#include "rpc/status_mapping.h"

namespace vecdb::rpc {
namespace {

using engine::Collection;

grpc::Status ShuttingDownStatus() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "server is shutting down; retry once it is back");
}

// Counts a request in the gate for as long as it lives.
class GatePass {
 public:
  explicit GatePass(RequestGate* gate)
      : gate_(gate), admitted_(gate->Enter()) {}
  ~GatePass() {
    if (admitted_) gate_->Exit();
  }
  bool admitted() const { return admitted_; }

 private:
  RequestGate* const gate_;
  const bool admitted_;
};

grpc::Status DatabaseOpeningStatus() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "server is opening its database; retry shortly");
}

}  // namespace

grpc::Status VectorDbService::Admit(const grpc::ServerContextBase& context,
                                    absl::string_view method,
                                    engine::Database** database) {
  if (grpc::Status status = Authorize(api_keys_, context, method);
      !status.ok()) {
    return status;
  }
  *database = database_.load(std::memory_order_acquire);
  if (*database == nullptr) return DatabaseOpeningStatus();
  return grpc::Status::OK;
}

// Checks the key and admits the call, reads its single request, runs
// `handle` on it and writes the response. `handle` has the signature
// absl::Status(engine::Database&, const Request&, Response*).
namespace {

// Adapts `call`, absl::Status(Collection&, const Request&, Response*), to a
// ServeUnary handler that first looks up the request's collection.
template <typename Call>
auto OnCollection(Call call) {
  return [call](engine::Database& database, const auto& request,
                auto* response) -> absl::Status {
    absl::StatusOr<std::shared_ptr<Collection>> collection =
        database.GetCollection(request.collection());
    if (!collection.ok()) return collection.status();
    return call(**collection, request, response);
  };
}

// Moves an OK `result` into `*response` and returns its status.
template <typename T>
absl::Status StoreResult(absl::StatusOr<T> result, T* response) {
  if (result.ok()) *response = *std::move(result);
  return result.status();
}

}  // namespace

template <typename Request, typename Response, typename Handler>
grpc::Status VectorDbService::ServeUnary(
    const grpc::ServerContextBase& context, absl::string_view method,
    grpc::ServerUnaryStreamer<Request, Response>* stream, Handler handle) {
  const absl::Time start = absl::Now();
  auto finish = [&](grpc::Status status) {
    if (metrics_ != nullptr) {
      metrics_->Record(method, status.error_code(), absl::Now() - start);
    }
    return status;
  };
  engine::Database* database = nullptr;
  if (grpc::Status status = Admit(context, method, &database); !status.ok()) {
    return finish(status);
  }
  GatePass pass(&gate_);
  if (!pass.admitted()) return finish(ShuttingDownStatus());
  Request request;
  if (!stream->Read(&request)) {
    return finish(ToGrpcStatus(
        MalformedRequestError(Request::descriptor()->full_name())));
  }
  Response response;
  if (absl::Status status = handle(*database, request, &response);
      !status.ok()) {
    return finish(ToGrpcStatus(status));
  }
  stream->Write(response);
  return finish(grpc::Status::OK);
}

absl::StatusOr<uint64_t> VectorDbService::ApplyUpsert(
    engine::Database& database, const v1::UpsertRequest& request) {
  if (absl::Status status =
          engine::CheckUpsertLimits(request, database.limits());
      !status.ok()) {
    return status;
  }
  absl::StatusOr<std::shared_ptr<Collection>> collection =
      database.GetCollection(request.collection());
  if (!collection.ok()) return collection.status();
  return (*collection)
      ->Upsert(request.points(), request.defer_index()
                                     ? index::AddMode::kDeferGraph
                                     : index::AddMode::kGraph);
}

// Parses and applies one Upsert on a worker thread.
class VectorDbService::UpsertReactor final : public grpc::ServerUnaryReactor {
 public:
  UpsertReactor(VectorDbService* service,
                const grpc::CallbackServerContext& context,
                const grpc::ByteBuffer* request, grpc::ByteBuffer* response)
      : service_(service), start_(absl::Now()) {
    engine::Database* database = nullptr;
    if (grpc::Status status = service_->Admit(context, "Upsert", &database);
        !status.ok()) {
      FinishAndRecord(status);
      return;
    }
    admitted_ = service_->gate_.Enter();
    if (!admitted_) {
      FinishAndRecord(ShuttingDownStatus());
      return;
    }
    service_->workers_.Schedule([this, database, request, response] {
      v1::UpsertRequest parsed;
      absl::Status status = ParseUpsertRequest(*request, &parsed);
      if (status.ok()) {
        absl::StatusOr<uint64_t> upserted =
            service_->ApplyUpsert(*database, parsed);
        if (upserted.ok()) {
          v1::UpsertResponse reply;
          reply.set_upserted(*upserted);
          SerializeToByteBuffer(reply, response);
        }
        status = upserted.status();
      }
      FinishAndRecord(ToGrpcStatus(status));
    });
  }

  // Runs once the status reached the client, so the gate counts the call
  // until its reply is sent.
  void OnDone() override {
    if (admitted_) service_->gate_.Exit();
    delete this;
  }

 private:
  void FinishAndRecord(const grpc::Status& status) {
    if (service_->metrics_ != nullptr) {
      service_->metrics_->Record("Upsert", status.error_code(),
                                 absl::Now() - start_);
    }
    Finish(status);
  }

  VectorDbService* const service_;
  const absl::Time start_;
  bool admitted_ = false;
};

grpc::ServerUnaryReactor* VectorDbService::Upsert(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return new UpsertReactor(this, *context, request, response);
}

// Applies each streamed request as one upsert on a worker thread, in order,
// and stops at the first that fails. The requests before it stay stored.
class VectorDbService::ImportReactor final
    : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  ImportReactor(VectorDbService* service,
                const grpc::CallbackServerContext& context,
                grpc::ByteBuffer* response)
      : service_(service), response_(response), start_(absl::Now()) {
    if (grpc::Status status = service_->Admit(context, "Import", &database_);
        !status.ok()) {
      FinishAndRecord(status);
      return;
    }
    admitted_ = service_->gate_.Enter();
    if (!admitted_) {
      FinishAndRecord(ShuttingDownStatus());
      return;
    }
    reading_ = true;
    StartRead(&buffer_);
  }

  // Queues each request and reads the next one while a worker applies the
  // queue, so that receiving overlaps with writing.
  void OnReadDone(bool ok) override {
    std::optional<grpc::Status> final_status;
    {
      absl::MutexLock lock(&mutex_);
      reading_ = false;
      if (finished_) return;
      if (!ok) {
        // The client finished the stream (or went away, in which case the
        // status below is never delivered).
        client_done_ = true;
        if (!applying_) final_status = CountStatus();
      } else {
        queue_.push_back(std::move(buffer_));
        buffer_ = grpc::ByteBuffer();
        ReadMoreIfRoom();
        if (!applying_) {
          applying_ = true;
          service_->workers_.Schedule([this] { ApplyQueue(); });
        }
      }
    }
    if (final_status.has_value()) FinishAndRecord(*final_status);
  }

  void OnDone() override {
    if (admitted_) service_->gate_.Exit();
    delete this;
  }

 private:
  // Requests received but not applied yet, at most.
  static constexpr size_t kMaxQueued = 2;

  void ReadMoreIfRoom() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (reading_ || client_done_ || finished_ || queue_.size() >= kMaxQueued) {
      return;
    }
    reading_ = true;
    StartRead(&buffer_);
  }

  // Applies queued requests in order until the queue is empty. Finish is
  // the last use of `this`, because OnDone may delete it at once.
  void ApplyQueue() {
    std::optional<grpc::Status> final_status;
    while (!final_status.has_value()) {
      grpc::ByteBuffer next;
      {
        absl::MutexLock lock(&mutex_);
        if (queue_.empty()) {
          applying_ = false;
          if (!client_done_ || finished_) return;
          final_status = CountStatus();
          break;
        }
        next = std::move(queue_.front());
        queue_.pop_front();
        ReadMoreIfRoom();
      }
      v1::UpsertRequest request;
      absl::Status status = ParseUpsertRequest(next, &request);
      if (status.ok()) {
        absl::StatusOr<uint64_t> written =
            service_->ApplyUpsert(*database_, request);
        if (written.ok()) upserted_ += *written;
        status = written.status();
      }
      if (status.ok()) {
        ++position_;
        continue;
      }
      // A read still in flight ends with ok false once the call is
      // finished, and OnReadDone then does nothing.
      absl::MutexLock lock(&mutex_);
      queue_.clear();
      applying_ = false;
      final_status = ErrorStatus(status);
    }
    FinishAndRecord(*final_status);
  }

  // The reply for a stream the client completed: how many points it stored.
  grpc::Status CountStatus() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    finished_ = true;
    v1::ImportResponse reply;
    reply.set_upserted(upserted_);
    SerializeToByteBuffer(reply, response_);
    return grpc::Status::OK;
  }

  // The status for a failed request, saying how many points are stored so
  // that the client knows where to resume.
  grpc::Status ErrorStatus(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    finished_ = true;
    return ToGrpcStatus(absl::Status(
        status.code(),
        absl::StrCat("stream request ", position_, ": ", status.message(), " (",
                     upserted_,
                     upserted_ == 1 ? " point from earlier requests is stored)"
                                    : " points from earlier requests are "
                                      "stored)")));
  }

  void FinishAndRecord(const grpc::Status& status) {
    if (service_->metrics_ != nullptr) {
      service_->metrics_->Record("Import", status.error_code(),
                                 absl::Now() - start_);
    }
    Finish(status);
  }

  VectorDbService* const service_;
  grpc::ByteBuffer* const response_;
  const absl::Time start_;
  engine::Database* database_ = nullptr;
  bool admitted_ = false;
  absl::Mutex mutex_;
  // The buffer the read in flight fills.
  grpc::ByteBuffer buffer_ ABSL_GUARDED_BY(mutex_);
  std::deque<grpc::ByteBuffer> queue_ ABSL_GUARDED_BY(mutex_);
  bool reading_ ABSL_GUARDED_BY(mutex_) = false;
  bool applying_ ABSL_GUARDED_BY(mutex_) = false;
  bool client_done_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  // Only the worker applying the queue touches these.
  int64_t position_ = 0;
  uint64_t upserted_ = 0;
};

grpc::ServerReadReactor<grpc::ByteBuffer>* VectorDbService::Import(
    grpc::CallbackServerContext* context, grpc::ByteBuffer* response) {
  return new ImportReactor(this, *context, response);
}

grpc::Status VectorDbService::StreamedCreateCollection(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::CreateCollectionRequest, v1::CollectionInfo>*
        stream) {
  return ServeUnary(
      *context, "CreateCollection", stream,
      [](engine::Database& database, const v1::CreateCollectionRequest& request,
         v1::CollectionInfo* response) {
        return StoreResult(database.CreateCollection(request), response);
      });
}

grpc::Status VectorDbService::StreamedGetCollection(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::GetCollectionRequest, v1::CollectionInfo>*
        stream) {
  return ServeUnary(
      *context, "GetCollection", stream,
      [](engine::Database& database, const v1::GetCollectionRequest& request,
         v1::CollectionInfo* response) {
        absl::StatusOr<std::shared_ptr<Collection>> collection =
            database.GetCollection(request.name());
        if (collection.ok()) *response = (*collection)->Describe();
        return collection.status();
      });
}

grpc::Status VectorDbService::StreamedListCollections(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::ListCollectionsRequest,
                              v1::ListCollectionsResponse>* stream) {
  return ServeUnary(
      *context, "ListCollections", stream,
      [](engine::Database& database, const v1::ListCollectionsRequest&,
         v1::ListCollectionsResponse* response) {
        for (v1::CollectionInfo& info : database.ListCollections()) {
          *response->add_collections() = std::move(info);
        }
        return absl::OkStatus();
      });
}

grpc::Status VectorDbService::StreamedDropCollection(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::DropCollectionRequest,
                              v1::DropCollectionResponse>* stream) {
  return ServeUnary(
      *context, "DropCollection", stream,
      [](engine::Database& database, const v1::DropCollectionRequest& request,
         v1::DropCollectionResponse*) {
        return database.DropCollection(request.name());
      });
}

grpc::Status VectorDbService::StreamedGet(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::GetRequest, v1::GetResponse>* stream) {
  return ServeUnary(
      *context, "Get", stream,
      OnCollection([](Collection& collection, const v1::GetRequest& request,
                      v1::GetResponse* response) -> absl::Status {
        absl::StatusOr<std::vector<v1::Point>> points =
            collection.Get(request.ids());
        if (!points.ok()) return points.status();
        response->mutable_points()->Reserve(static_cast<int>(points->size()));
        for (v1::Point& point : *points) {
          *response->add_points() = std::move(point);
        }
        return absl::OkStatus();
      }));
}

grpc::Status VectorDbService::StreamedDelete(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::DeleteRequest, v1::DeleteResponse>* stream) {
  return ServeUnary(
      *context, "Delete", stream,
      OnCollection([](Collection& collection, const v1::DeleteRequest& request,
                      v1::DeleteResponse* response) -> absl::Status {
        absl::StatusOr<uint64_t> deleted = collection.Delete(request);
        if (deleted.ok()) response->set_deleted(*deleted);
        return deleted.status();
      }));
}

grpc::Status VectorDbService::StreamedSearch(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::SearchRequest, v1::SearchResponse>* stream) {
  return ServeUnary(
      *context, "Search", stream,
      [](engine::Database& database, const v1::SearchRequest& request,
         v1::SearchResponse* response) {
        if (absl::Status status =
                engine::CheckSearchLimits(request, database.limits());
            !status.ok()) {
          return status;
        }
        absl::StatusOr<std::shared_ptr<Collection>> collection =
            database.GetCollection(request.collection());
        if (!collection.ok()) return collection.status();
        return StoreResult((*collection)->Search(request), response);
      });
}

grpc::Status VectorDbService::StreamedSearchBatch(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::SearchBatchRequest, v1::SearchBatchResponse>*
        stream) {
  return ServeUnary(
      *context, "SearchBatch", stream,
      [](engine::Database& database, const v1::SearchBatchRequest& request,
         v1::SearchBatchResponse* response) {
        for (int i = 0; i < request.searches_size(); ++i) {
          absl::Status status =
              engine::CheckSearchLimits(request.searches(i), database.limits());
          if (!status.ok()) {
            return absl::Status(
                status.code(),
                absl::StrCat("searches[", i, "]: ", status.message()));
          }
        }
        absl::StatusOr<std::shared_ptr<Collection>> collection =
            database.GetCollection(request.collection());
        if (!collection.ok()) return collection.status();
        return StoreResult((*collection)->SearchBatch(request), response);
      });
}

grpc::Status VectorDbService::StreamedCreateSnapshot(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::CreateSnapshotRequest,
                              v1::CreateSnapshotResponse>* stream) {
  return ServeUnary(
      *context, "CreateSnapshot", stream,
      [](engine::Database& database, const v1::CreateSnapshotRequest&,
         v1::CreateSnapshotResponse* response) -> absl::Status {
        absl::StatusOr<std::string> path = database.CreateSnapshot();
        if (!path.ok()) return path.status();
        response->set_path(*std::move(path));
        return absl::OkStatus();
      });
}

grpc::Status VectorDbService::StreamedCount(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::CountRequest, v1::CountResponse>* stream) {
  return ServeUnary(
      *context, "Count", stream,
      OnCollection([](Collection& collection, const v1::CountRequest& request,
                      v1::CountResponse* response) -> absl::Status {
        absl::StatusOr<uint64_t> count = collection.Count(request);
        if (count.ok()) response->set_count(*count);
        return count.status();
      }));
}

grpc::Status VectorDbService::StreamedScroll(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::ScrollRequest, v1::ScrollResponse>* stream) {
  return ServeUnary(
      *context, "Scroll", stream,
      OnCollection([](Collection& collection, const v1::ScrollRequest& request,
                      v1::ScrollResponse* response) -> absl::Status {
        return StoreResult(collection.Scroll(request), response);
      }));
}

grpc::Status VectorDbService::StreamedCreateFieldIndex(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::CreateFieldIndexRequest,
                              v1::CreateFieldIndexResponse>* stream) {
  return ServeUnary(
      *context, "CreateFieldIndex", stream,
      OnCollection([](Collection& collection,
                      const v1::CreateFieldIndexRequest& request,
                      v1::CreateFieldIndexResponse* response) -> absl::Status {
        absl::StatusOr<v1::CollectionInfo> info =
            collection.CreateFieldIndex(request);
        if (info.ok()) {
          *response->mutable_collection() = *std::move(info);
        }
        return info.status();
      }));
}

grpc::Status VectorDbService::StreamedUpdateCollection(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::UpdateCollectionRequest, v1::CollectionInfo>*
        stream) {
  return ServeUnary(
      *context, "UpdateCollection", stream,
      [](engine::Database& database, const v1::UpdateCollectionRequest& request,
         v1::CollectionInfo* response) -> absl::Status {
        return StoreResult(database.UpdateCollection(request), response);
      });
}

}  // namespace vecdb::rpc
