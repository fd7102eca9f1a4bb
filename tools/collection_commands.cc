// The `vecdb collections` and `vecdb search` commands.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "simdjson.h"
#include "tools/commands.h"
#include "tools/json_values.h"
#include "tools/mapped_file.h"
#include "tools/vector_file.h"

namespace vecdb::tools {
namespace {

int Fail(absl::string_view command, absl::string_view message) {
  absl::FPrintF(stderr, "vecdb %s: %s\n", command, message);
  return 1;
}

int FailRpc(absl::string_view command, const std::string& rpc,
            const grpc::Status& status) {
  return Fail(command, DescribeRpcError(rpc, status));
}

// Prints `message` as one line of JSON with the proto field names.
void PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    absl::FPrintF(stderr, "vecdb: printing the reply as JSON failed: %s\n",
                  status.ToString());
    return;
  }
  std::printf("%s\n", json.c_str());
}

std::string CompactJson(const google::protobuf::Struct& metadata) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(metadata, &json).ok()) {
    return "(metadata not printable as JSON)";
  }
  return json;
}

std::string FormatIndex(const v1::IndexConfig& index) {
  if (index.kind() != v1::HNSW) return IndexKindName(index.kind());
  return absl::StrFormat("hnsw (m %d, ef_construction %d, ef_search %d)",
                         index.m(), index.ef_construction(), index.ef_search());
}

void PrintCollection(const v1::CollectionInfo& info) {
  absl::PrintF("name:         %s\n", info.name());
  absl::PrintF("dimension:    %d\n", info.dimension());
  absl::PrintF("metric:       %s\n", MetricName(info.metric()));
  absl::PrintF("index:        %s\n", FormatIndex(info.index()));
  absl::PrintF("points:       %d\n", info.point_count());
  absl::PrintF("disk bytes:   %d (estimate)\n", info.disk_bytes());
  absl::PrintF("memory bytes: %d (estimate)\n", info.memory_bytes());
}

}  // namespace

absl::StatusOr<v1::CreateCollectionRequest> MakeCreateRequest(
    const std::string& name, uint32_t dimension,
    const CollectionSettings& settings) {
  v1::CreateCollectionRequest request;
  request.set_name(name);
  request.set_dimension(dimension);

  const std::string metric = absl::AsciiStrToLower(settings.metric);
  if (metric == "cosine") {
    request.set_metric(v1::COSINE);
  } else if (metric == "dot") {
    request.set_metric(v1::DOT_PRODUCT);
  } else if (metric == "l2") {
    request.set_metric(v1::L2);
  } else if (metric.empty()) {
    return absl::InvalidArgumentError(
        "creating a collection needs --metric cosine, dot or l2");
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown metric '", settings.metric, "'; expected cosine, dot or l2"));
  }

  const std::string index = absl::AsciiStrToLower(settings.index);
  v1::IndexConfig* config = request.mutable_index();
  if (index == "flat") {
    config->set_kind(v1::FLAT);
  } else if (index == "hnsw") {
    config->set_kind(v1::HNSW);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown index '", settings.index, "'; expected flat or hnsw"));
  }
  config->set_m(settings.m);
  config->set_ef_construction(settings.ef_construction);
  config->set_ef_search(settings.ef_search);
  return request;
}

int RunListCollections(const ConnectionOptions& connection, bool json) {
  auto stub = v1::VectorDB::NewStub(MakeChannel(connection));
  grpc::ClientContext context;
  SetDeadline(connection, &context);
  v1::ListCollectionsResponse response;
  const grpc::Status status =
      stub->ListCollections(&context, v1::ListCollectionsRequest(), &response);
  if (!status.ok()) {
    return FailRpc("collections list", "ListCollections", status);
  }

  if (json) {
    PrintJson(response);
    return 0;
  }
  absl::PrintF("%-24s %9s %-7s %-5s %12s %14s %14s\n", "NAME", "DIMENSION",
               "METRIC", "INDEX", "POINTS", "DISK_BYTES", "MEMORY_BYTES");
  for (const v1::CollectionInfo& info : response.collections()) {
    absl::PrintF("%-24s %9d %-7s %-5s %12d %14d %14d\n", info.name(),
                 info.dimension(), MetricName(info.metric()),
                 IndexKindName(info.index().kind()), info.point_count(),
                 info.disk_bytes(), info.memory_bytes());
  }
  return 0;
}

int RunCreateCollection(const ConnectionOptions& connection,
                        const std::string& name, uint32_t dimension,
                        const CollectionSettings& settings, bool json) {
  absl::StatusOr<v1::CreateCollectionRequest> request =
      MakeCreateRequest(name, dimension, settings);
  if (!request.ok()) {
    return Fail("collections create", request.status().message());
  }
  auto stub = v1::VectorDB::NewStub(MakeChannel(connection));
  grpc::ClientContext context;
  SetDeadline(connection, &context);
  v1::CollectionInfo info;
  const grpc::Status status = stub->CreateCollection(&context, *request, &info);
  if (!status.ok()) {
    return FailRpc("collections create", "CreateCollection", status);
  }
  if (json) {
    PrintJson(info);
  } else {
    PrintCollection(info);
  }
  return 0;
}

int RunDescribeCollection(const ConnectionOptions& connection,
                          const std::string& name, bool json) {
  auto stub = v1::VectorDB::NewStub(MakeChannel(connection));
  grpc::ClientContext context;
  SetDeadline(connection, &context);
  v1::GetCollectionRequest request;
  request.set_name(name);
  v1::CollectionInfo info;
  const grpc::Status status = stub->GetCollection(&context, request, &info);
  if (!status.ok()) {
    return FailRpc("collections describe", "GetCollection", status);
  }
  if (json) {
    PrintJson(info);
  } else {
    PrintCollection(info);
  }
  return 0;
}

int RunDropCollection(const ConnectionOptions& connection,
                      const std::string& name) {
  auto stub = v1::VectorDB::NewStub(MakeChannel(connection));
  grpc::ClientContext context;
  SetDeadline(connection, &context);
  v1::DropCollectionRequest request;
  request.set_name(name);
  v1::DropCollectionResponse response;
  const grpc::Status status =
      stub->DropCollection(&context, request, &response);
  if (!status.ok()) {
    return FailRpc("collections drop", "DropCollection", status);
  }
  absl::PrintF("dropped collection '%s'\n", name);
  return 0;
}

namespace {

absl::Status ParseVectorJson(absl::string_view text, const std::string& origin,
                             std::vector<float>* vector) {
  simdjson::dom::parser parser;
  simdjson::dom::element element;
  if (auto error = parser.parse(text.data(), text.size(), true).get(element);
      error != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin, ": invalid JSON: ", simdjson::error_message(error)));
  }
  if (absl::Status status = AppendFloatArray(element, vector); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": ", status.message()));
  }
  if (vector->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": the vector is empty"));
  }
  return absl::OkStatus();
}

// Reads the query vector from the file, the inline JSON or the stored point
// that `command` names.
absl::Status ReadQuery(const SearchCommand& command, v1::VectorDB::Stub& stub,
                       std::vector<float>* vector) {
  if (!command.vector_json.empty()) {
    return ParseVectorJson(command.vector_json, "--vector", vector);
  }

  if (!command.id.empty()) {
    grpc::ClientContext context;
    SetDeadline(command.connection, &context);
    v1::GetRequest request;
    request.set_collection(command.collection);
    request.add_ids(command.id);
    v1::GetResponse response;
    const grpc::Status status = stub.Get(&context, request, &response);
    if (!status.ok()) {
      return absl::UnavailableError(DescribeRpcError("Get", status));
    }
    if (response.points_size() == 0) {
      return absl::NotFoundError(absl::StrCat("no point with id '", command.id,
                                              "' in collection '",
                                              command.collection, "'"));
    }
    vector->assign(response.points(0).vector().begin(),
                   response.points(0).vector().end());
    return absl::OkStatus();
  }

  if (VectorFile::HasVectorFileExtension(command.query_file)) {
    absl::StatusOr<std::unique_ptr<VectorFile>> file =
        VectorFile::Open(command.query_file);
    if (!file.ok()) return file.status();
    if (command.row >= (*file)->rows()) {
      return absl::InvalidArgumentError(
          absl::StrCat(command.query_file, " has ", (*file)->rows(),
                       " rows; --row ", command.row, " is out of range"));
    }
    vector->resize((*file)->dimension());
    return (*file)->ReadRow(command.row, vector->data());
  }

  absl::StatusOr<std::unique_ptr<MappedFile>> file =
      MappedFile::Open(command.query_file);
  if (!file.ok()) return file.status();
  return ParseVectorJson((*file)->contents(), command.query_file, vector);
}

void PrintHitsTable(const v1::SearchResponse& response) {
  absl::PrintF("%4s  %-24s %12s  %s\n", "RANK", "ID", "SCORE", "METADATA");
  int rank = 1;
  for (const v1::ScoredPoint& hit : response.hits()) {
    absl::PrintF(
        "%4d  %-24s %12.6f  %s\n", rank++, hit.id(), hit.score(),
        hit.metadata().fields().empty() ? "" : CompactJson(hit.metadata()));
  }
}

}  // namespace

int RunSearch(const SearchCommand& command) {
  const int query_sources = !command.query_file.empty() +
                            !command.vector_json.empty() + !command.id.empty();
  if (query_sources != 1) {
    return Fail("search",
                "give exactly one query: a FILE (.npy, .fvecs or .json), "
                "--vector or --id");
  }
  auto stub = v1::VectorDB::NewStub(MakeChannel(command.connection));
  std::vector<float> vector;
  if (absl::Status status = ReadQuery(command, *stub, &vector); !status.ok()) {
    return Fail("search", status.message());
  }

  v1::SearchRequest request;
  request.set_collection(command.collection);
  request.mutable_vector()->Assign(vector.begin(), vector.end());
  request.set_top_k(command.top_k);
  request.mutable_params()->set_ef_search(command.ef_search);
  request.mutable_params()->set_exact(command.exact);
  request.set_include_metadata(true);
  request.set_include_vectors(command.include_vectors);

  grpc::ClientContext context;
  SetDeadline(command.connection, &context);
  v1::SearchResponse response;
  const grpc::Status status = stub->Search(&context, request, &response);
  if (!status.ok()) return FailRpc("search", "Search", status);

  if (command.json) {
    PrintJson(response);
  } else {
    PrintHitsTable(response);
  }
  return 0;
}

}  // namespace vecdb::tools
