#include "rpc/vector_db_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/status_mapping.h"

namespace vecdb::rpc {

grpc::Status VectorDbService::CreateCollection(
    grpc::ServerContext*, const v1::CreateCollectionRequest* request,
    v1::CollectionInfo* response) {
  absl::StatusOr<v1::CollectionInfo> info =
      database_->CreateCollection(*request);
  if (!info.ok()) return ToGrpcStatus(info.status());
  *response = *std::move(info);
  return grpc::Status::OK;
}

grpc::Status VectorDbService::GetCollection(
    grpc::ServerContext*, const v1::GetCollectionRequest* request,
    v1::CollectionInfo* response) {
  absl::StatusOr<std::shared_ptr<engine::Collection>> collection =
      database_->GetCollection(request->name());
  if (!collection.ok()) return ToGrpcStatus(collection.status());
  *response = (*collection)->Describe();
  return grpc::Status::OK;
}

grpc::Status VectorDbService::ListCollections(
    grpc::ServerContext*, const v1::ListCollectionsRequest*,
    v1::ListCollectionsResponse* response) {
  for (v1::CollectionInfo& info : database_->ListCollections()) {
    *response->add_collections() = std::move(info);
  }
  return grpc::Status::OK;
}

grpc::Status VectorDbService::DropCollection(
    grpc::ServerContext*, const v1::DropCollectionRequest* request,
    v1::DropCollectionResponse*) {
  return ToGrpcStatus(database_->DropCollection(request->name()));
}

grpc::Status VectorDbService::Upsert(grpc::ServerContext*,
                                     const v1::UpsertRequest* request,
                                     v1::UpsertResponse* response) {
  absl::StatusOr<std::shared_ptr<engine::Collection>> collection =
      database_->GetCollection(request->collection());
  if (!collection.ok()) return ToGrpcStatus(collection.status());
  absl::StatusOr<uint64_t> upserted = (*collection)->Upsert(request->points());
  if (!upserted.ok()) return ToGrpcStatus(upserted.status());
  response->set_upserted(*upserted);
  return grpc::Status::OK;
}

grpc::Status VectorDbService::Import(
    grpc::ServerContext*, grpc::ServerReader<v1::UpsertRequest>* reader,
    v1::ImportResponse* response) {
  v1::UpsertRequest request;
  std::shared_ptr<engine::Collection> collection;
  uint64_t upserted = 0;
  for (int64_t position = 0; reader->Read(&request); ++position) {
    if (collection == nullptr ||
        collection->config().name != request.collection()) {
      absl::StatusOr<std::shared_ptr<engine::Collection>> found =
          database_->GetCollection(request.collection());
      if (!found.ok()) return ToGrpcStatus(found.status());
      collection = *std::move(found);
    }
    absl::StatusOr<uint64_t> written = collection->Upsert(request.points());
    if (!written.ok()) {
      // Earlier requests of the stream are durable; say how many points so
      // that the client knows where to resume.
      return grpc::Status(
          static_cast<grpc::StatusCode>(written.status().code()),
          absl::StrCat("stream request ", position, ": ",
                       written.status().message(), " (", upserted,
                       " points from earlier requests were stored)"));
    }
    upserted += *written;
  }
  response->set_upserted(upserted);
  return grpc::Status::OK;
}

grpc::Status VectorDbService::Get(grpc::ServerContext*,
                                  const v1::GetRequest* request,
                                  v1::GetResponse* response) {
  absl::StatusOr<std::shared_ptr<engine::Collection>> collection =
      database_->GetCollection(request->collection());
  if (!collection.ok()) return ToGrpcStatus(collection.status());
  absl::StatusOr<std::vector<v1::Point>> points =
      (*collection)->Get(request->ids());
  if (!points.ok()) return ToGrpcStatus(points.status());
  response->mutable_points()->Reserve(static_cast<int>(points->size()));
  for (v1::Point& point : *points) {
    *response->add_points() = std::move(point);
  }
  return grpc::Status::OK;
}

grpc::Status VectorDbService::Delete(grpc::ServerContext*,
                                     const v1::DeleteRequest* request,
                                     v1::DeleteResponse* response) {
  absl::StatusOr<std::shared_ptr<engine::Collection>> collection =
      database_->GetCollection(request->collection());
  if (!collection.ok()) return ToGrpcStatus(collection.status());
  absl::StatusOr<uint64_t> deleted = (*collection)->Delete(request->ids());
  if (!deleted.ok()) return ToGrpcStatus(deleted.status());
  response->set_deleted(*deleted);
  return grpc::Status::OK;
}

grpc::Status VectorDbService::Search(grpc::ServerContext*,
                                     const v1::SearchRequest* request,
                                     v1::SearchResponse* response) {
  absl::StatusOr<std::shared_ptr<engine::Collection>> collection =
      database_->GetCollection(request->collection());
  if (!collection.ok()) return ToGrpcStatus(collection.status());
  absl::StatusOr<v1::SearchResponse> result = (*collection)->Search(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status VectorDbService::SearchBatch(
    grpc::ServerContext*, const v1::SearchBatchRequest* request,
    v1::SearchBatchResponse* response) {
  absl::StatusOr<std::shared_ptr<engine::Collection>> collection =
      database_->GetCollection(request->collection());
  if (!collection.ok()) return ToGrpcStatus(collection.status());
  absl::StatusOr<v1::SearchBatchResponse> result =
      (*collection)->SearchBatch(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace vecdb::rpc
