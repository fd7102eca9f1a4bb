// vecdb: the command-line client of vecdb-server. Run `vecdb --help` and
// `vecdb COMMAND --help` for the options.

#include <chrono>
#include <functional>
#include <string>

#include "CLI/CLI.hpp"
#include "tools/commands.h"

namespace {

using vecdb::tools::CollectionSettings;
using vecdb::tools::ConnectionOptions;
using vecdb::tools::IndexSettings;

// Adds the options that every command uses to reach the server.
void AddConnectionOptions(CLI::App* command, ConnectionOptions* connection,
                          int* timeout_seconds) {
  command
      ->add_option("--server", connection->server, "HOST:PORT of vecdb-server")
      ->capture_default_str();
  command
      ->add_option("--max_message_bytes", connection->max_message_bytes,
                   "largest gRPC message to send or receive, in bytes; match "
                   "the server's --max_message_bytes")
      ->capture_default_str()
      ->check(CLI::Range(size_t{65536}, size_t{2147483647}));
  command
      ->add_option("--timeout", *timeout_seconds,
                   "deadline of each request other than an import stream, "
                   "in seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

// Adds --index and the index parameters. Each parameter is set only when
// given, so that one that does not apply to the kind can be rejected.
void AddIndexSettings(CLI::App* command, IndexSettings* settings,
                      const std::string& index_help) {
  command->add_option("--index", settings->kind, index_help)
      ->check(CLI::IsMember(vecdb::tools::IndexKindNames(), CLI::ignore_case));
  command->add_option("--m", settings->m,
                      "hnsw, hnsw_sq8: neighbours per node, 2 to 256; 0 "
                      "takes the server's default (16)");
  command->add_option("--ef_construction", settings->ef_construction,
                      "hnsw, hnsw_sq8: candidate list size while building, 1 "
                      "to 4096; 0 takes the server's default (100)");
  command->add_option("--ef_search", settings->ef_search,
                      "hnsw, hnsw_sq8: candidate list size while searching, 1 "
                      "to 10000; 0 takes the server's default (64)");
  command->add_option("--nlist", settings->nlist,
                      "ivf_flat, ivf_pq: inverted lists that k-means splits "
                      "the vectors into, 1 to 65536; 0 takes the server's "
                      "default (256). Training waits for max(40 * nlist, "
                      "1000) points");
  command->add_option("--nprobe", settings->nprobe,
                      "ivf_flat, ivf_pq: lists scanned per search, 1 to "
                      "65536; 0 takes the server's default (16)");
  command->add_option("--pq_m", settings->pq_m,
                      "ivf_pq: sub-quantizers per vector, which must divide "
                      "the dimension; 0 takes the server's default (the "
                      "largest divisor of the dimension up to dimension / "
                      "8)");
  command->add_option("--pq_bits", settings->pq_bits,
                      "ivf_pq: bits per sub-quantizer code, 4 to 12; 0 takes "
                      "the server's default (8). A vector's code takes pq_m "
                      "* pq_bits / 8 bytes");
}

constexpr char kCreateIndexHelp[] =
    "index kind (default hnsw): flat (exact), hnsw (graph), ivf_flat "
    "(inverted lists), ivf_pq (inverted lists of product-quantizer codes, "
    "the smallest), sq8 (8-bit codes, scanned in full) or hnsw_sq8 (graph "
    "over 8-bit codes). All but flat and hnsw train once the collection "
    "holds enough points and search exactly until then";

void AddCollectionSettings(CLI::App* command, CollectionSettings* settings) {
  command
      ->add_option("--metric", settings->metric,
                   "similarity metric: cosine, dot (inner product) or l2 "
                   "(Euclidean distance)")
      ->check(CLI::IsMember({"cosine", "dot", "l2"}, CLI::ignore_case));
  AddIndexSettings(command, &settings->index, kCreateIndexHelp);
}

void AddImportCommand(CLI::App& app, vecdb::tools::ImportCommand* command,
                      int* timeout_seconds, std::function<int()>* run) {
  CLI::App* import = app.add_subcommand(
      "import",
      "Load points from a file into a collection over Import streams. The "
      "whole input is checked before anything is sent.");
  import
      ->add_option("FILE", command->source.path,
                   "points to load: .jsonl (one JSON object a line, with "
                   "'id', 'vector' and metadata), or vectors in .npy "
                   "(float32 or float64, two-dimensional, C order) or .fvecs")
      ->required();
  import
      ->add_option("--collection", command->import.collection,
                   "collection to load into")
      ->required();
  AddConnectionOptions(import, &command->connection, timeout_seconds);
  import->add_option("--ids", command->source.ids_path,
                     "with a .npy or .fvecs FILE: text file of ids, one a "
                     "line, in row order");
  import->add_option("--metadata", command->source.metadata_path,
                     "with a .npy or .fvecs FILE: .jsonl file of metadata "
                     "objects, one a line, in row order");
  import
      ->add_option("--id_prefix", command->source.id_prefix,
                   "points without an id get this prefix followed by "
                   "--id_start plus their position (from 0)")
      ->capture_default_str();
  import
      ->add_option("--id_start", command->source.id_start,
                   "number of the first generated id")
      ->capture_default_str();
  import->add_flag("--create", command->create,
                   "create the collection when it does not exist, with the "
                   "dimension of the input, --metric, --index and the index "
                   "parameters");
  AddCollectionSettings(import, &command->settings);
  import
      ->add_option("--batch_size", command->import.batch_size,
                   "points per request at most; a request is cut earlier to "
                   "stay below --max_message_bytes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  import
      ->add_option("--streams", command->import.streams,
                   "Import streams sent in parallel")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  import
      ->add_option("--requests_per_stream", command->import.requests_per_stream,
                   "requests sent on one stream before the tool waits for "
                   "the server to acknowledge them and opens the next")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  import->add_flag("--defer_index", command->import.defer_index,
                   "HNSW: store the points and let searches scan them "
                   "exactly, and have the server build the graph after the "
                   "load (the import finishes at storage speed)");
  import->add_flag("--resume", command->resume,
                   "skip points whose id the collection already contains, "
                   "to finish an import that stopped");
  import->add_flag("--dry-run,--dry_run", command->dry_run,
                   "check the input and the collection and print what would "
                   "be imported, without writing anything");
  import
      ->add_option("--progress_interval",
                   command->import.progress_interval_seconds,
                   "seconds between progress lines when stderr is not a "
                   "terminal")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  import->callback(
      [command, run] { *run = [command] { return RunImport(*command);
};
}  // namespace
);
}

// The arguments of the `collections` subcommands.
struct CollectionsArguments {
  ConnectionOptions connection;
  std::string name;
  uint32_t dimension = 0;
  bool json = false;
  CollectionSettings settings;
};

void AddCollectionsCommand(CLI::App& app, CollectionsArguments* arguments,
                           int* timeout_seconds, std::function<int()>* run) {
  CLI::App* collections = app.add_subcommand(
      "collections", "List, create, describe, update or drop collections.");
  collections->require_subcommand(1);
  ConnectionOptions* connection = &arguments->connection;
  std::string& name = arguments->name;
  bool& json = arguments->json;

  CLI::App* list = collections->add_subcommand("list", "List collections.");
  AddConnectionOptions(list, connection, timeout_seconds);
  list->add_flag("--json", json, "print JSON instead of a table");
  list->callback([arguments, run] {
    *run = [arguments] {
      return vecdb::tools::RunListCollections(arguments->connection,
                                              arguments->json);
    };
  });

  CLI::App* create =
      collections->add_subcommand("create", "Create a collection.");
  create->add_option("NAME", name, "collection name")->required();
  create
      ->add_option("--dimension", arguments->dimension,
                   "vector dimension, 1 to 65536")
      ->required();
  AddCollectionSettings(create, &arguments->settings);
  AddConnectionOptions(create, connection, timeout_seconds);
  create->add_flag("--json", json, "print JSON");
  create->callback([arguments, run] {
    *run = [arguments] {
      return vecdb::tools::RunCreateCollection(
          arguments->connection, arguments->name, arguments->dimension,
          arguments->settings, arguments->json);
    };
  });

  CLI::App* describe = collections->add_subcommand(
      "describe", "Show a collection's settings and size.");
  describe->add_option("NAME", name, "collection name")->required();
  AddConnectionOptions(describe, connection, timeout_seconds);
  describe->add_flag("--json", json, "print JSON");
  describe->callback([arguments, run] {
    *run = [arguments] {
      return vecdb::tools::RunDescribeCollection(
          arguments->connection, arguments->name, arguments->json);
    };
  });

  CLI::App* update = collections->add_subcommand(
      "update",
      "Change a collection's index kind or parameters. A change other than "
      "ef_search or nprobe rebuilds the index from the stored points in the "
      "background; searches use the previous index until the new one is "
      "ready.");
  update->add_option("NAME", name, "collection name")->required();
  AddIndexSettings(update, &arguments->settings.index,
                   "new index kind: flat, hnsw, ivf_flat, ivf_pq, sq8 or "
                   "hnsw_sq8. Without it, or with the current kind, the "
                   "parameters not given keep their values; with another "
                   "kind they take the server's defaults");
  AddConnectionOptions(update, connection, timeout_seconds);
  update->add_flag("--json", json, "print the collection as JSON");
  update->callback([arguments, run] {
    *run = [arguments] {
      return vecdb::tools::RunUpdateCollection(
          arguments->connection, arguments->name, arguments->settings.index,
          arguments->json);
    };
  });

  CLI::App* drop = collections->add_subcommand(
      "drop", "Delete a collection and all its points.");
  drop->add_option("NAME", name, "collection name")->required();
  AddConnectionOptions(drop, connection, timeout_seconds);
  drop->callback([arguments, run] {
    *run = [arguments] {
      return vecdb::tools::RunDropCollection(arguments->connection,
                                             arguments->name);
    };
  });
}

void AddSearchCommand(CLI::App& app, vecdb::tools::SearchCommand* command,
                      int* timeout_seconds, std::function<int()>* run) {
  CLI::App* search = app.add_subcommand(
      "search", "Find the nearest neighbours of a query vector.");
  search
      ->add_option("--collection", command->collection, "collection to search")
      ->required();
  search->add_option("FILE", command->query_file,
                     "query vector: a .npy or .fvecs file (see --row) or a "
                     ".json file holding an array of numbers");
  search
      ->add_option("--row", command->row,
                   "row of a .npy or .fvecs FILE to use, from 0")
      ->capture_default_str();
  search->add_option("--vector", command->vector_json,
                     "query vector as a JSON array, such as '[0.1, 0.2]'");
  search->add_option("--id", command->id,
                     "use the vector of this stored point as the query");
  search->add_option("--top_k", command->top_k, "hits to return, 1 to 10000")
      ->capture_default_str();
  search->add_option("--ef_search", command->ef_search,
                     "hnsw, hnsw_sq8: candidate list size, 1 to 10000; 0 "
                     "takes the collection's");
  search
      ->add_option("--nprobe", command->nprobe,
                   "ivf_flat, ivf_pq: inverted lists to scan, up to nlist; 0 "
                   "takes the collection's")
      ->check(CLI::Range(0, 65536));
  search->add_flag("--rerank", command->rerank,
                   "ivf_pq, sq8, hnsw_sq8: fetch --oversampling * top_k "
                   "candidates from the index and score them against the "
                   "stored vectors, so that the scores are exact");
  search
      ->add_option("--oversampling", command->oversampling,
                   "with --rerank: candidates per hit, 1 to 100; 0 takes the "
                   "server's default (10 under ivf_pq, 4 otherwise)")
      ->check(CLI::Range(0, 100));
  search->add_flag("--exact", command->exact,
                   "scan every vector instead of the approximate index");
  search->add_flag("--include_vectors", command->include_vectors,
                   "return the hits' vectors (in --json output)");
  search->add_flag("--json", command->json,
                   "print the response as JSON instead of a table");
  AddConnectionOptions(search, &command->connection, timeout_seconds);
  search->callback(
      [command, run] { *run = [command] { return RunSearch(*command); }; });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "vecdb: command-line client of vecdb-server. Import points from files, "
      "manage collections and search.",
      "vecdb");
  app.require_subcommand(1);

  vecdb::tools::ImportCommand import_command;
  vecdb::tools::SearchCommand search_command;
  CollectionsArguments collections_arguments;
  int timeout_seconds = 60;
  std::function<int()> run;
  AddImportCommand(app, &import_command, &timeout_seconds, &run);
  AddCollectionsCommand(app, &collections_arguments, &timeout_seconds, &run);
  AddSearchCommand(app, &search_command, &timeout_seconds, &run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }

  const std::chrono::seconds timeout(timeout_seconds);
  import_command.connection.timeout = timeout;
  search_command.connection.timeout = timeout;
  collections_arguments.connection.timeout = timeout;
  return run();
}
