#include "rpc/vector_db_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
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

// Reads the single request of a streamed unary call, runs `handle` on it
// and writes its response. `handle` has the signature
// absl::Status(const Request&, Response*).
template <typename Request, typename Response, typename Handler>
grpc::Status ServeUnary(RequestGate* gate,
                        grpc::ServerUnaryStreamer<Request, Response>* stream,
                        Handler handle) {
  GatePass pass(gate);
  if (!pass.admitted()) return ShuttingDownStatus();
  Request request;
  if (!stream->Read(&request)) {
    return ToGrpcStatus(
        MalformedRequestError(Request::descriptor()->full_name()));
  }
  Response response;
  if (absl::Status status = handle(request, &response); !status.ok()) {
    return ToGrpcStatus(status);
  }
  stream->Write(response);
  return grpc::Status::OK;
}

}  // namespace

absl::StatusOr<uint64_t> VectorDbService::ApplyUpsert(
    const v1::UpsertRequest& request) {
  absl::StatusOr<std::shared_ptr<Collection>> collection =
      database_->GetCollection(request.collection());
  if (!collection.ok()) return collection.status();
  return (*collection)->Upsert(request.points());
}

// Parses and applies one Upsert on a worker thread.
class VectorDbService::UpsertReactor final : public grpc::ServerUnaryReactor {
 public:
  UpsertReactor(VectorDbService* service, const grpc::ByteBuffer* request,
                grpc::ByteBuffer* response)
      : service_(service), admitted_(service->gate_.Enter()) {
    if (!admitted_) {
      Finish(ShuttingDownStatus());
      return;
    }
    service_->workers_.Schedule([this, request, response] {
      v1::UpsertRequest parsed;
      absl::Status status = ParseUpsertRequest(*request, &parsed);
      if (status.ok()) {
        absl::StatusOr<uint64_t> upserted = service_->ApplyUpsert(parsed);
        if (upserted.ok()) {
          v1::UpsertResponse reply;
          reply.set_upserted(*upserted);
          SerializeToByteBuffer(reply, response);
        }
        status = upserted.status();
      }
      Finish(ToGrpcStatus(status));
    });
  }

  // Runs once the status reached the client, so the gate counts the call
  // until its reply is sent.
  void OnDone() override {
    if (admitted_) service_->gate_.Exit();
    delete this;
  }

 private:
  VectorDbService* const service_;
  const bool admitted_;
};

grpc::ServerUnaryReactor* VectorDbService::Upsert(
    grpc::CallbackServerContext*, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return new UpsertReactor(this, request, response);
}

// Applies each streamed request as one upsert on a worker thread, in order,
// and stops at the first that fails. The requests before it stay stored.
class VectorDbService::ImportReactor final
    : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  ImportReactor(VectorDbService* service, grpc::ByteBuffer* response)
      : service_(service),
        response_(response),
        admitted_(service->gate_.Enter()) {
    if (!admitted_) {
      Finish(ShuttingDownStatus());
      return;
    }
    StartRead(&buffer_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client finished the stream (or went away, in which case the
      // status below is never delivered).
      v1::ImportResponse reply;
      reply.set_upserted(upserted_);
      SerializeToByteBuffer(reply, response_);
      Finish(grpc::Status::OK);
      return;
    }
    service_->workers_.Schedule([this] { ApplyRequest(); });
  }

  void OnDone() override {
    if (admitted_) service_->gate_.Exit();
    delete this;
  }

 private:
  void ApplyRequest() {
    v1::UpsertRequest request;
    absl::Status status = ParseUpsertRequest(buffer_, &request);
    if (status.ok()) {
      absl::StatusOr<uint64_t> written = service_->ApplyUpsert(request);
      if (written.ok()) upserted_ += *written;
      status = written.status();
    }
    if (!status.ok()) {
      FinishWithError(status);
      return;
    }
    ++position_;
    StartRead(&buffer_);
  }

  // Finishes the stream, saying how many points are stored so that the
  // client knows where to resume.
  void FinishWithError(const absl::Status& status) {
    Finish(ToGrpcStatus(absl::Status(
        status.code(),
        absl::StrCat("stream request ", position_, ": ", status.message(), " (",
                     upserted_,
                     upserted_ == 1 ? " point from earlier requests is stored)"
                                    : " points from earlier requests are "
                                      "stored)"))));
  }

  VectorDbService* const service_;
  grpc::ByteBuffer* const response_;
  const bool admitted_;
  grpc::ByteBuffer buffer_;
  int64_t position_ = 0;
  uint64_t upserted_ = 0;
};

grpc::ServerReadReactor<grpc::ByteBuffer>* VectorDbService::Import(
    grpc::CallbackServerContext*, grpc::ByteBuffer* response) {
  return new ImportReactor(this, response);
}

grpc::Status VectorDbService::StreamedCreateCollection(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::CreateCollectionRequest, v1::CollectionInfo>*
        stream) {
  return ServeUnary(&gate_, stream,
                    [this](const v1::CreateCollectionRequest& request,
                           v1::CollectionInfo* response) {
                      absl::StatusOr<v1::CollectionInfo> info =
                          database_->CreateCollection(request);
                      if (info.ok()) *response = *std::move(info);
                      return info.status();
                    });
}

grpc::Status VectorDbService::StreamedGetCollection(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::GetCollectionRequest, v1::CollectionInfo>*
        stream) {
  return ServeUnary(&gate_, stream,
                    [this](const v1::GetCollectionRequest& request,
                           v1::CollectionInfo* response) {
                      absl::StatusOr<std::shared_ptr<Collection>> collection =
                          database_->GetCollection(request.name());
                      if (collection.ok())
                        *response = (*collection)->Describe();
                      return collection.status();
                    });
}

grpc::Status VectorDbService::StreamedListCollections(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::ListCollectionsRequest,
                              v1::ListCollectionsResponse>* stream) {
  return ServeUnary(
      &gate_, stream,
      [this](const v1::ListCollectionsRequest&,
             v1::ListCollectionsResponse* response) {
        for (v1::CollectionInfo& info : database_->ListCollections()) {
          *response->add_collections() = std::move(info);
        }
        return absl::OkStatus();
      });
}

grpc::Status VectorDbService::StreamedDropCollection(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::DropCollectionRequest,
                              v1::DropCollectionResponse>* stream) {
  return ServeUnary(&gate_, stream,
                    [this](const v1::DropCollectionRequest& request,
                           v1::DropCollectionResponse*) {
                      return database_->DropCollection(request.name());
                    });
}

grpc::Status VectorDbService::StreamedGet(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::GetRequest, v1::GetResponse>* stream) {
  return ServeUnary(
      &gate_, stream,
      [this](const v1::GetRequest& request, v1::GetResponse* response) {
        absl::StatusOr<std::shared_ptr<Collection>> collection =
            database_->GetCollection(request.collection());
        if (!collection.ok()) return collection.status();
        absl::StatusOr<std::vector<v1::Point>> points =
            (*collection)->Get(request.ids());
        if (!points.ok()) return points.status();
        response->mutable_points()->Reserve(static_cast<int>(points->size()));
        for (v1::Point& point : *points) {
          *response->add_points() = std::move(point);
        }
        return absl::OkStatus();
      });
}

grpc::Status VectorDbService::StreamedDelete(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::DeleteRequest, v1::DeleteResponse>* stream) {
  return ServeUnary(
      &gate_, stream,
      [this](const v1::DeleteRequest& request, v1::DeleteResponse* response) {
        absl::StatusOr<std::shared_ptr<Collection>> collection =
            database_->GetCollection(request.collection());
        if (!collection.ok()) return collection.status();
        absl::StatusOr<uint64_t> deleted = (*collection)->Delete(request);
        if (deleted.ok()) response->set_deleted(*deleted);
        return deleted.status();
      });
}

grpc::Status VectorDbService::StreamedSearch(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::SearchRequest, v1::SearchResponse>* stream) {
  return ServeUnary(
      &gate_, stream,
      [this](const v1::SearchRequest& request, v1::SearchResponse* response) {
        absl::StatusOr<std::shared_ptr<Collection>> collection =
            database_->GetCollection(request.collection());
        if (!collection.ok()) return collection.status();
        absl::StatusOr<v1::SearchResponse> result =
            (*collection)->Search(request);
        if (result.ok()) *response = *std::move(result);
        return result.status();
      });
}

grpc::Status VectorDbService::StreamedSearchBatch(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::SearchBatchRequest, v1::SearchBatchResponse>*
        stream) {
  return ServeUnary(&gate_, stream,
                    [this](const v1::SearchBatchRequest& request,
                           v1::SearchBatchResponse* response) {
                      absl::StatusOr<std::shared_ptr<Collection>> collection =
                          database_->GetCollection(request.collection());
                      if (!collection.ok()) return collection.status();
                      absl::StatusOr<v1::SearchBatchResponse> result =
                          (*collection)->SearchBatch(request);
                      if (result.ok()) *response = *std::move(result);
                      return result.status();
                    });
}

grpc::Status VectorDbService::StreamedCreateSnapshot(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::CreateSnapshotRequest,
                              v1::CreateSnapshotResponse>* stream) {
  return ServeUnary(
      &gate_, stream,
      [this](const v1::CreateSnapshotRequest&,
             v1::CreateSnapshotResponse* response) -> absl::Status {
        absl::StatusOr<std::string> path = database_->CreateSnapshot();
        if (!path.ok()) return path.status();
        response->set_path(*std::move(path));
        return absl::OkStatus();
      });
}

grpc::Status VectorDbService::StreamedCount(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::CountRequest, v1::CountResponse>* stream) {
  return ServeUnary(
      &gate_, stream,
      [this](const v1::CountRequest& request, v1::CountResponse* response) {
        absl::StatusOr<std::shared_ptr<Collection>> collection =
            database_->GetCollection(request.collection());
        if (!collection.ok()) return collection.status();
        absl::StatusOr<uint64_t> count = (*collection)->Count(request);
        if (count.ok()) response->set_count(*count);
        return count.status();
      });
}

grpc::Status VectorDbService::StreamedScroll(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::ScrollRequest, v1::ScrollResponse>* stream) {
  return ServeUnary(
      &gate_, stream,
      [this](const v1::ScrollRequest& request, v1::ScrollResponse* response) {
        absl::StatusOr<std::shared_ptr<Collection>> collection =
            database_->GetCollection(request.collection());
        if (!collection.ok()) return collection.status();
        absl::StatusOr<v1::ScrollResponse> page =
            (*collection)->Scroll(request);
        if (page.ok()) *response = *std::move(page);
        return page.status();
      });
}

grpc::Status VectorDbService::StreamedCreateFieldIndex(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::CreateFieldIndexRequest,
                              v1::CreateFieldIndexResponse>* stream) {
  return ServeUnary(&gate_, stream,
                    [this](const v1::CreateFieldIndexRequest& request,
                           v1::CreateFieldIndexResponse* response) {
                      absl::StatusOr<std::shared_ptr<Collection>> collection =
                          database_->GetCollection(request.collection());
                      if (!collection.ok()) return collection.status();
                      absl::StatusOr<v1::CollectionInfo> info =
                          (*collection)->CreateFieldIndex(request);
                      if (info.ok()) {
                        *response->mutable_collection() = *std::move(info);
                      }
                      return info.status();
                    });
}

grpc::Status VectorDbService::StreamedUpdateCollection(
    grpc::ServerContext*,
    grpc::ServerUnaryStreamer<v1::UpdateCollectionRequest, v1::CollectionInfo>*
        stream) {
  return ServeUnary(&gate_, stream,
                    [this](const v1::UpdateCollectionRequest& request,
                           v1::CollectionInfo* response) {
                      absl::StatusOr<v1::CollectionInfo> info =
                          database_->UpdateCollection(request);
                      if (info.ok()) *response = *std::move(info);
                      return info.status();
                    });
}

}  // namespace vecdb::rpc
