#ifndef VECDB_RPC_VECTOR_DB_SERVICE_H_
#define VECDB_RPC_VECTOR_DB_SERVICE_H_

#include "engine/database.h"
#include "vecdb/v1/vecdb.grpc.pb.h"

namespace vecdb::rpc {

// The vecdb.v1.VectorDB service over one Database. Each handler checks its
// request, calls the engine and maps the result onto a gRPC status; nothing
// here keeps state of its own. Thread-safe.
class VectorDbService final : public v1::VectorDB::Service {
 public:
  // `database` must outlive the service.
  explicit VectorDbService(engine::Database* database)
      : database_(database) {}

  grpc::Status CreateCollection(grpc::ServerContext* context,
                                const v1::CreateCollectionRequest* request,
                                v1::CollectionInfo* response) override;
  grpc::Status GetCollection(grpc::ServerContext* context,
                             const v1::GetCollectionRequest* request,
                             v1::CollectionInfo* response) override;
  grpc::Status ListCollections(grpc::ServerContext* context,
                               const v1::ListCollectionsRequest* request,
                               v1::ListCollectionsResponse* response) override;
  grpc::Status DropCollection(grpc::ServerContext* context,
                              const v1::DropCollectionRequest* request,
                              v1::DropCollectionResponse* response) override;
  grpc::Status Upsert(grpc::ServerContext* context,
                      const v1::UpsertRequest* request,
                      v1::UpsertResponse* response) override;
  grpc::Status Import(grpc::ServerContext* context,
                      grpc::ServerReader<v1::UpsertRequest>* reader,
                      v1::ImportResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const v1::GetRequest* request,
                   v1::GetResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context,
                      const v1::DeleteRequest* request,
                      v1::DeleteResponse* response) override;
  grpc::Status Search(grpc::ServerContext* context,
                      const v1::SearchRequest* request,
                      v1::SearchResponse* response) override;
  grpc::Status SearchBatch(grpc::ServerContext* context,
                           const v1::SearchBatchRequest* request,
                           v1::SearchBatchResponse* response) override;

 private:
  engine::Database* const database_;
};

}  // namespace vecdb::rpc

#endif  // VECDB_RPC_VECTOR_DB_SERVICE_H_
