#ifndef VECDB_RPC_VECTOR_DB_SERVICE_H_
#define VECDB_RPC_VECTOR_DB_SERVICE_H_

#include <atomic>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/database.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/sync_stream.h"
#include "rpc/api_keys.h"
#include "rpc/request_gate.h"
#include "rpc/service_metrics.h"
#include "rpc/worker_pool.h"
#include "vecdb/v1/vecdb.grpc.pb.h"

namespace vecdb::rpc {

// The snapshot, filter, field index and collection update methods, streamed
// unary like the others below.
using LaterMethodsBase = v1::VectorDB::WithStreamedUnaryMethod_CreateSnapshot<
    v1::VectorDB::WithStreamedUnaryMethod_Count<
        v1::VectorDB::WithStreamedUnaryMethod_Scroll<
            v1::VectorDB::WithStreamedUnaryMethod_CreateFieldIndex<
                v1::VectorDB::WithStreamedUnaryMethod_UpdateCollection<
                    v1::VectorDB::Service>>>>>;

// The generated service with every method in a form that lets the handler
// detect an unparsable request. Upsert and Import receive raw bytes and
// parse them (see request_parsing.h). The other methods are "streamed
// unary", whose handler learns when the request failed to parse.
using VectorDbServiceBase = v1::VectorDB::WithRawCallbackMethod_Upsert<
    v1::VectorDB::WithRawCallbackMethod_Import<
        v1::VectorDB::WithStreamedUnaryMethod_CreateCollection<
            v1::VectorDB::WithStreamedUnaryMethod_GetCollection<
                v1::VectorDB::WithStreamedUnaryMethod_ListCollections<
                    v1::VectorDB::WithStreamedUnaryMethod_DropCollection<
                        v1::VectorDB::WithStreamedUnaryMethod_Get<
                            v1::VectorDB::WithStreamedUnaryMethod_Delete<
                                v1::VectorDB::WithStreamedUnaryMethod_Search<
                                    v1::VectorDB::
                                        WithStreamedUnaryMethod_SearchBatch<
                                            LaterMethodsBase>>>>>>>>>>;

// The vecdb.v1.VectorDB service over one Database. Each handler first
// checks the caller's API key (see Authorize in api_keys.h), before it
// parses the request, then calls the engine and maps the result onto a gRPC
// status. A request that cannot be parsed is INVALID_ARGUMENT, and one that
// arrives before SetDatabase or after Drain started is UNAVAILABLE. Writes
// run on the service's own worker threads and the other methods on gRPC's.
// Thread-safe.
class VectorDbService final : public VectorDbServiceBase {
 public:
  // `write_threads` sets how many writes run at once. `api_keys`, when not
  // null, are the keys that callers must present. `metrics`, when not null,
  // counts every call. Both must outlive the service.
  VectorDbService(int write_threads, const ApiKeys* api_keys,
                  ServiceMetrics* metrics)
      : api_keys_(api_keys), metrics_(metrics), workers_(write_threads) {}

  // Starts serving `database`, which must outlive the service. Until then
  // every call fails with UNAVAILABLE, so that the server can listen (and
  // serve health checks) while the database opens.
  void SetDatabase(engine::Database* database) {
    database_.store(database, std::memory_order_release);
  }

  // Turns new requests away and waits until those in flight finish or
  // `deadline` passes. Returns how many are still running.
  int64_t Drain(absl::Time deadline) { return gate_.Drain(deadline); }

  grpc::ServerUnaryReactor* Upsert(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* Import(
      grpc::CallbackServerContext* context,
      grpc::ByteBuffer* response) override;

  grpc::Status StreamedCreateCollection(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::CreateCollectionRequest,
                                v1::CollectionInfo>* stream) override;
  grpc::Status StreamedGetCollection(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::GetCollectionRequest, v1::CollectionInfo>*
          stream) override;
  grpc::Status StreamedListCollections(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::ListCollectionsRequest,
                                v1::ListCollectionsResponse>* stream) override;
  grpc::Status StreamedDropCollection(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::DropCollectionRequest,
                                v1::DropCollectionResponse>* stream) override;
  grpc::Status StreamedGet(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::GetRequest, v1::GetResponse>* stream)
      override;
  grpc::Status StreamedDelete(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::DeleteRequest, v1::DeleteResponse>* stream)
      override;
  grpc::Status StreamedSearch(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::SearchRequest, v1::SearchResponse>* stream)
      override;
  grpc::Status StreamedSearchBatch(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::SearchBatchRequest,
                                v1::SearchBatchResponse>* stream) override;
  grpc::Status StreamedCreateSnapshot(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::CreateSnapshotRequest,
                                v1::CreateSnapshotResponse>* stream) override;
  grpc::Status StreamedCount(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::CountRequest, v1::CountResponse>* stream)
      override;
  grpc::Status StreamedScroll(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::ScrollRequest, v1::ScrollResponse>* stream)
      override;
  grpc::Status StreamedCreateFieldIndex(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::CreateFieldIndexRequest,
                                v1::CreateFieldIndexResponse>* stream) override;
  grpc::Status StreamedUpdateCollection(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::UpdateCollectionRequest,
                                v1::CollectionInfo>* stream) override;

 private:
  class UpsertReactor;
  class ImportReactor;

  // Applies one parsed UpsertRequest; shared by Upsert and Import.
  absl::StatusOr<uint64_t> ApplyUpsert(engine::Database& database,
                                       const v1::UpsertRequest& request);

  // Checks the caller's key for `method` and that the database is open.
  // Returns the error to end the call with, or OK and sets `*database`.
  grpc::Status Admit(const grpc::ServerContextBase& context,
                     absl::string_view method, engine::Database** database);

  // Serves one streamed unary call of `method`; see the .cc file.
  template <typename Request, typename Response, typename Handler>
  grpc::Status ServeUnary(const grpc::ServerContextBase& context,
                          absl::string_view method,
                          grpc::ServerUnaryStreamer<Request, Response>* stream,
                          Handler handle);

  const ApiKeys* const api_keys_;
  ServiceMetrics* const metrics_;
  std::atomic<engine::Database*> database_{nullptr};
  RequestGate gate_;
  // Declared last so that its threads, which use the members above, are
  // joined first.
  WorkerPool workers_;
};

}  // namespace vecdb::rpc

#endif  // VECDB_RPC_VECTOR_DB_SERVICE_H_
