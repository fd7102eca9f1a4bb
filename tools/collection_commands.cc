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

void PrintCollection(const v1::CollectionInfo& info) {
  const v1::IndexConfig& index = info.index();
  absl::PrintF("name:               %s\n", info.name());
  absl::PrintF("dimension:          %d\n", info.dimension());
  absl::PrintF("metric:             %s\n", MetricName(info.metric()));
  absl::PrintF("index:              %s\n", FormatIndex(index));
  if (index.kind() == v1::IVF_PQ) {
    absl::PrintF(
        "code size:          %d bytes per vector (pq_m %d x pq_bits "
        "%d, rounded up to whole bytes)\n",
        (index.pq_m() * index.pq_bits() + 7) / 8, index.pq_m(),
        index.pq_bits());
  }
  absl::PrintF("index state:        %s\n", DescribeIndexState(info));
  if (info.training_threshold() > 0) {
    absl::PrintF("training threshold: %d points\n", info.training_threshold());
  } else {
    absl::PrintF("training threshold: none, %s needs no training\n",
                 IndexKindName(index.kind()));
  }
  absl::PrintF("points:             %d\n", info.point_count());
  if (info.unindexed_points() > 0) {
    absl::PrintF(
        "unindexed points:   %d, found by an exact scan until the "
        "background thread adds them to the index\n",
        info.unindexed_points());
  }
  absl::PrintF("index memory:       %s (%d bytes, estimate)\n",
               FormatBytes(info.index_memory_bytes()),
               info.index_memory_bytes());
  absl::PrintF(
      "memory:             %s (%d bytes, estimate: index, id maps "
      "and metadata)\n",
      FormatBytes(info.memory_bytes()), info.memory_bytes());
  absl::PrintF("disk:               %s (%d bytes, estimate)\n",
               FormatBytes(info.disk_bytes()), info.disk_bytes());
  absl::PrintF("index builds:       %d since the server started\n",
               info.index_builds());
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

  absl::StatusOr<v1::IndexConfig> index = MakeIndexConfig(settings.index);
  if (!index.ok()) return index.status();
  *request.mutable_index() = *std::move(index);
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
  absl::PrintF("%-24s %9s %-7s %-8s %12s %-8s %12s %12s %12s %15s  %s\n",
               "NAME", "DIMENSION", "METRIC", "INDEX", "POINTS", "STATE",
               "INDEX_MEMORY", "MEMORY", "DISK", "TRAINING_POINTS",
               "PARAMETERS");
  for (const v1::CollectionInfo& info : response.collections()) {
    const std::string training = info.training_threshold() > 0
                                     ? absl::StrCat(info.training_threshold())
                                     : "-";
    absl::PrintF("%-24s %9d %-7s %-8s %12d %-8s %12s %12s %12s %15s  %s\n",
                 info.name(), info.dimension(), MetricName(info.metric()),
                 IndexKindName(info.index().kind()), info.point_count(),
                 IndexStateName(info.index_state()),
                 FormatBytes(info.index_memory_bytes()),
                 FormatBytes(info.memory_bytes()),
                 FormatBytes(info.disk_bytes()), training,
                 FormatIndexParameters(info.index()));
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

int RunUpdateCollection(const ConnectionOptions& connection,
                        const std::string& name, const IndexSettings& settings,
                        bool json) {
  if (absl::Status status = CheckIndexUpdate(settings); !status.ok()) {
    return Fail("collections update", status.message());
  }

  // UpdateCollection takes the whole config, so the current one fills in
  // what the command line leaves out. NOTE: an update by another client
  // between the two calls is overwritten with the values read here.
  auto stub = v1::VectorDB::NewStub(MakeChannel(connection));
  v1::CollectionInfo current;
  {
    grpc::ClientContext context;
    SetDeadline(connection, &context);
    v1::GetCollectionRequest request;
    request.set_name(name);
    const grpc::Status status =
        stub->GetCollection(&context, request, &current);
    if (!status.ok()) {
      return FailRpc("collections update", "GetCollection", status);
    }
  }
  absl::StatusOr<v1::IndexConfig> index =
      MakeUpdatedIndexConfig(current.index(), settings);
  if (!index.ok()) return Fail("collections update", index.status().message());

  grpc::ClientContext context;
  SetDeadline(connection, &context);
  v1::UpdateCollectionRequest request;
  request.set_name(name);
  *request.mutable_index() = *std::move(index);
  v1::CollectionInfo info;
  const grpc::Status status = stub->UpdateCollection(&context, request, &info);
  if (!status.ok()) {
    return FailRpc("collections update", "UpdateCollection", status);
  }
  if (json) {
    PrintJson(info);
    return 0;
  }
  absl::PrintF("updated collection '%s': index %s\n", info.name(),
               FormatIndex(info.index()));
  if (info.index_state() == v1::BUILDING) {
    absl::PrintF(
        "the index is rebuilt in the background from the stored points; "
        "searches use the previous index until the new one is ready. Run "
        "'vecdb collections describe %s' to see when its index state is "
        "ready.\n",
        info.name());
  } else {
    absl::PrintF("no rebuild needed: searches use the new settings at once\n");
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

// Checks, with one GetCollection, that the search options which depend on
// the index kind apply to the collection's kind.
absl::Status CheckTuningForCollection(const SearchCommand& command,
                                      v1::VectorDB::Stub& stub) {
  SearchTuning tuning;
  tuning.ef_search = command.ef_search.has_value();
  tuning.nprobe = command.nprobe.has_value();
  tuning.rerank = command.rerank;
  if (!tuning.ef_search && !tuning.nprobe && !tuning.rerank) {
    return absl::OkStatus();
  }
  grpc::ClientContext context;
  SetDeadline(command.connection, &context);
  v1::GetCollectionRequest request;
  request.set_name(command.collection);
  v1::CollectionInfo info;
  const grpc::Status status = stub.GetCollection(&context, request, &info);
  if (!status.ok()) {
    return absl::UnavailableError(DescribeRpcError("GetCollection", status));
  }
  return CheckSearchTuning(info.index().kind(), command.collection, tuning);
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
  if (command.oversampling.has_value() && !command.rerank) {
    return Fail("search",
                "--oversampling sets the candidates per hit that --rerank "
                "scores; add --rerank or leave --oversampling out");
  }
  auto stub = v1::VectorDB::NewStub(MakeChannel(command.connection));
  if (absl::Status status = CheckTuningForCollection(command, *stub);
      !status.ok()) {
    return Fail("search", status.message());
  }
  std::vector<float> vector;
  if (absl::Status status = ReadQuery(command, *stub, &vector); !status.ok()) {
    return Fail("search", status.message());
  }

  v1::SearchRequest request;
  request.set_collection(command.collection);
  request.mutable_vector()->Assign(vector.begin(), vector.end());
  request.set_top_k(command.top_k);
  v1::SearchParams* params = request.mutable_params();
  params->set_ef_search(command.ef_search.value_or(0));
  params->set_nprobe(command.nprobe.value_or(0));
  params->set_rerank(command.rerank);
  params->set_oversampling(command.oversampling.value_or(0));
  params->set_exact(command.exact);
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
