// The `vecdb import` command: checks the whole input locally, then sends it
// over Import streams and prints a summary.

#include <cstdio>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/commands.h"
#include "tools/importer.h"
#include "tools/point_source.h"

namespace vecdb::tools {

namespace {

int Fail(absl::string_view message) {
  absl::FPrintF(stderr, "vecdb import: %s\n", message);
  return 1;
}

// The collection as the import finds it: its info when it exists.
struct Target {
  std::optional<v1::CollectionInfo> info;
  v1::Metric metric = v1::METRIC_UNSPECIFIED;
};

absl::StatusOr<Target> FindTarget(const ImportCommand& command,
                                  v1::VectorDB::Stub& stub) {
  grpc::ClientContext context;
  SetDeadline(command.connection, &context);
  v1::GetCollectionRequest request;
  request.set_name(command.import.collection);
  v1::CollectionInfo info;
  const grpc::Status status = stub.GetCollection(&context, request, &info);

  Target target;
  if (status.ok()) {
    if (command.create && command.settings.index.AnyGiven()) {
      absl::FPrintF(stderr,
                    "vecdb import: collection '%s' exists, so --index and "
                    "its parameters are not applied; 'vecdb collections "
                    "update' changes its index\n",
                    command.import.collection);
    }
    target.metric = info.metric();
    target.info = std::move(info);
    return target;
  }
  if (status.error_code() != grpc::StatusCode::NOT_FOUND) {
    return absl::UnavailableError(DescribeRpcError("GetCollection", status));
  }
  if (!command.create) {
    return absl::NotFoundError(
        absl::StrCat("collection '", command.import.collection,
                     "' not found; add --create to create it"));
  }
  // The request is checked once the dimension is known; here only the
  // metric is needed, to check the vectors.
  absl::StatusOr<v1::CreateCollectionRequest> create =
      MakeCreateRequest(command.import.collection, 1, command.settings);
  if (!create.ok()) return create.status();
  target.metric = create->metric();
  return target;
}

absl::Status CreateCollection(const ImportCommand& command,
                              v1::VectorDB::Stub& stub, uint32_t dimension) {
  absl::StatusOr<v1::CreateCollectionRequest> request =
      MakeCreateRequest(command.import.collection, dimension, command.settings);
  if (!request.ok()) return request.status();
  grpc::ClientContext context;
  SetDeadline(command.connection, &context);
  v1::CollectionInfo info;
  const grpc::Status status = stub.CreateCollection(&context, *request, &info);
  if (!status.ok()) {
    return absl::UnavailableError(DescribeRpcError("CreateCollection", status));
  }
  absl::FPrintF(stderr,
                "vecdb import: created collection '%s' (dimension %d, %s, "
                "%s)\n",
                info.name(), info.dimension(), MetricName(info.metric()),
                FormatIndex(info.index()));
  return absl::OkStatus();
}

void PrintDryRun(const ImportCommand& command, const PointSource& source,
                 const Target& target, const CheckedInput& input,
                 size_t present) {
  std::printf("dry run: %s is valid: %zu points of dimension %u\n",
              source.Describe().c_str(), input.ids.size(), input.dimension);
  if (!target.info) {
    // RunImport checked the index settings before anything was sent.
    const absl::StatusOr<v1::IndexConfig> index =
        MakeIndexConfig(command.settings.index);
    std::printf(
        "dry run: would create collection '%s' (dimension %u, %s, "
        "%s)\n",
        command.import.collection.c_str(), input.dimension,
        MetricName(target.metric).c_str(),
        index.ok() ? FormatIndex(*index).c_str() : "?");
  }
  if (command.resume) {
    std::printf(
        "dry run: %zu points are already present and would be "
        "skipped\n",
        present);
  }
  std::printf(
      "dry run: would import %zu points into '%s'; nothing was "
      "written\n",
      input.ids.size() - present, command.import.collection.c_str());
}

int PrintResult(const ImportCommand& command, const ImportResult& result,
                size_t skipped) {
  const double rate = result.seconds > 0 ? result.imported / result.seconds : 0;
  std::printf(
      "imported %llu points into '%s' in %.1f s (%.0f points/s), %llu "
      "rejected",
      static_cast<unsigned long long>(result.imported),
      command.import.collection.c_str(), result.seconds, rate,
      static_cast<unsigned long long>(result.rejected));
  if (command.resume) std::printf(", %zu skipped as already present", skipped);
  std::printf("\n");
  std::fflush(stdout);
  if (result.status.ok()) return 0;

  absl::FPrintF(stderr, "vecdb import: %s\n", result.status.message());
  if (result.rejected > 0) {
    absl::FPrintF(stderr,
                  "vecdb import: the server rejected a request of %d "
                  "points\n",
                  result.rejected);
  }
  if (result.unconfirmed > 0) {
    absl::FPrintF(stderr,
                  "vecdb import: %d points were sent on streams that broke "
                  "before the server acknowledged them; some may be stored\n",
                  result.unconfirmed);
  }
  absl::FPrintF(stderr,
                "vecdb import: %d points were not stored; run the same "
                "command with --resume to import the rest\n",
                result.not_sent);
  return 1;
}

// Checks the collection settings before anything is read or sent: they
// apply only with --create, and the index parameters must fit the kind.
absl::Status CheckSettings(const ImportCommand& command) {
  if (!command.create) {
    if (!command.settings.metric.empty() || command.settings.index.AnyGiven()) {
      return absl::InvalidArgumentError(
          "--metric, --index and the index parameters apply only with "
          "--create; use 'vecdb collections update' to change the index of "
          "an existing collection");
    }
    return absl::OkStatus();
  }
  return MakeIndexConfig(command.settings.index).status();
}

}  // namespace

int RunImport(const ImportCommand& command) {
  if (absl::Status status = CheckSettings(command); !status.ok()) {
    return Fail(status.message());
  }
  absl::StatusOr<std::unique_ptr<PointSource>> source =
      OpenPointSource(command.source);
  if (!source.ok()) return Fail(source.status().message());

  std::unique_ptr<v1::VectorDB::Stub> stub =
      v1::VectorDB::NewStub(MakeChannel(command.connection));
  absl::StatusOr<Target> target = FindTarget(command, *stub);
  if (!target.ok()) return Fail(target.status().message());

  // The whole input is checked before anything is written, so that bad
  // input stops the import with nothing half done.
  const uint32_t dimension = target->info ? target->info->dimension() : 0;
  absl::StatusOr<CheckedInput> input =
      CheckInput(**source, dimension, target->metric,
                 command.connection.max_message_bytes);
  if (!input.ok()) {
    return Fail(absl::StrCat(input.status().message(),
                             "\nvecdb import: nothing was imported"));
  }

  absl::flat_hash_set<size_t> present;
  if (command.resume && target->info) {
    absl::StatusOr<absl::flat_hash_set<size_t>> found =
        FindPresentIds(command.connection, command.import.collection,
                       input->ids, input->dimension);
    if (!found.ok()) return Fail(found.status().message());
    present = *std::move(found);
  }

  if (command.dry_run) {
    PrintDryRun(command, **source, *target, *input, present.size());
    return 0;
  }
  if (!target->info) {
    if (absl::Status status =
            CreateCollection(command, *stub, input->dimension);
        !status.ok()) {
      return Fail(status.message());
    }
  }

  const ImportResult result = SendPoints(**source, present, input->ids.size(),
                                         command.connection, command.import);
  return PrintResult(command, result, present.size());
}

}  // namespace vecdb::tools
