#!/usr/bin/python3
"""Load the SAP Fiori documentation embeddings into vecdb and search them.

The retrieval step of a RAG pipeline on a real corpus: the npm package
@sap-ux/fiori-docs-embeddings 1.2.6 (Apache-2.0), which scripts/fetch-data.sh
unpacks under .cache/. Its data/embeddings/embeddings.bin contains 778
all-MiniLM-L6-v2 embeddings, each 384 little-endian float32 values, and
records.jsonl contains one JSON object per embedding in the same order, with
the chunk's id, title, path, category, content and more.

The chunks go through the Import RPC into a COSINE collection with a FLAT
index, so every score is the exact cosine similarity. The metadata of each
point is the chunk's title, path and category. Then five chunks spread over
the corpus are searched with their own vectors, and the top 5 hits printed.

The script exits 1 when a check fails. Each probe chunk must come back first
with score 1 within 1e-5, and scores must not increase down the list. The
collection must count 778 points. Get must return the probe chunks' vectors
exactly as written, with their metadata.

Needs the Python stubs on PYTHONPATH (BUILD_DIR/python) and Debian's
python3-grpcio and python3-numpy, so run it with /usr/bin/python3.
"""

import argparse
import json
import pathlib
import sys

import grpc
import numpy as np

from vecdb.v1 import vecdb_pb2, vecdb_pb2_grpc

COLLECTION = "fiori_docs"
DIMENSION = 384
TOP_K = 5
PROBE_COUNT = 5
SCORE_TOLERANCE = 1e-5
METADATA_FIELDS = ("title", "path", "category")
DEFAULT_DATA_DIR = (pathlib.Path(__file__).resolve().parent.parent / ".cache" /
                    "fiori-docs-embeddings-1.2.6" / "data" / "embeddings")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051",
                        help="vecdb-server address, HOST:PORT "
                        "(default: %(default)s)")
    parser.add_argument("--data-dir", type=pathlib.Path,
                        default=DEFAULT_DATA_DIR,
                        help="folder with embeddings.bin and records.jsonl "
                        "(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=100,
                        help="points per streamed Import request "
                        "(default: %(default)s)")
    return parser.parse_args()


def load_corpus(data_dir):
    """Return the records as dicts and their embeddings as a (n, 384) array."""
    with open(data_dir / "records.jsonl", encoding="utf-8") as file:
        records = [json.loads(line) for line in file if line.strip()]
    embeddings = np.fromfile(data_dir / "embeddings.bin", dtype="<f4")
    if embeddings.size != len(records) * DIMENSION:
        raise ValueError(
            f"{data_dir}: embeddings.bin has {embeddings.size} floats, "
            f"expected {len(records)} records x {DIMENSION}")
    return records, embeddings.reshape(len(records), DIMENSION)


def metadata_value(metadata, field):
    """Return a metadata field, or None when the Struct lacks it."""
    return metadata[field] if field in metadata else None


def make_point(record, vector):
    point = vecdb_pb2.Point(id=record["id"], vector=vector.tolist())
    point.metadata.update({field: record[field] for field in METADATA_FIELDS})
    return point


def import_corpus(stub, records, embeddings, batch_size):
    """Stream every chunk into the collection and return the count upserted."""

    def stream():
        for start in range(0, len(records), batch_size):
            end = min(start + batch_size, len(records))
            yield vecdb_pb2.UpsertRequest(
                collection=COLLECTION,
                points=[make_point(records[row], embeddings[row])
                        for row in range(start, end)])

    return stub.Import(stream()).upserted


def create_collection(stub):
    """Create the COSINE FLAT collection, dropping any earlier namesake."""
    try:
        stub.DropCollection(vecdb_pb2.DropCollectionRequest(name=COLLECTION))
        print(f"dropped the existing collection {COLLECTION}")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
    stub.CreateCollection(vecdb_pb2.CreateCollectionRequest(
        name=COLLECTION, dimension=DIMENSION, metric=vecdb_pb2.COSINE,
        index=vecdb_pb2.IndexConfig(kind=vecdb_pb2.FLAT)))


def search_probe(stub, record, vector):
    """Search with a chunk's own vector, print the hits and return problems."""
    response = stub.Search(vecdb_pb2.SearchRequest(
        collection=COLLECTION, vector=vector.tolist(), top_k=TOP_K,
        include_metadata=True))
    print(f"\nchunk {record['id']}: {record['title']}")
    for rank, hit in enumerate(response.hits, start=1):
        title = metadata_value(hit.metadata, "title")
        category = metadata_value(hit.metadata, "category")
        print(f"  {rank}. {hit.score:.6f}  {title}  [{category}]")

    problems = []
    if len(response.hits) != TOP_K:
        problems.append(f"{record['id']}: {len(response.hits)} hits, "
                        f"expected {TOP_K}")
    if response.hits and response.hits[0].id != record["id"]:
        problems.append(f"{record['id']}: first hit is "
                        f"{response.hits[0].id}, expected the chunk itself")
    if response.hits and abs(response.hits[0].score - 1.0) > SCORE_TOLERANCE:
        problems.append(f"{record['id']}: self-similarity "
                        f"{response.hits[0].score:.7f}, expected 1 within "
                        f"{SCORE_TOLERANCE}")
    if any("title" not in hit.metadata for hit in response.hits):
        problems.append(f"{record['id']}: hits lack their metadata although "
                        f"include_metadata was set")
    scores = [hit.score for hit in response.hits]
    if any(later > earlier for earlier, later in zip(scores, scores[1:])):
        problems.append(f"{record['id']}: scores {scores} are not in "
                        f"descending order")
    return problems


def check_get(stub, probes, records, embeddings):
    """Check that Get returns each probe's vector and metadata as written.

    Returns a list of problems, empty when all match.
    """
    ids = [records[row]["id"] for row in probes]
    response = stub.Get(vecdb_pb2.GetRequest(collection=COLLECTION, ids=ids))
    found = {point.id: point for point in response.points}
    problems = []
    for row in probes:
        record = records[row]
        point = found.get(record["id"])
        if point is None:
            problems.append(f"Get did not return {record['id']}")
            continue
        stored = np.array(point.vector, dtype=np.float32)
        if not np.array_equal(stored, embeddings[row]):
            problems.append(f"Get returned a vector for {record['id']} that "
                            f"differs from the one written")
        for field in METADATA_FIELDS:
            value = metadata_value(point.metadata, field)
            if value != record[field]:
                problems.append(f"Get returned {field}={value!r} for "
                                f"{record['id']}, expected {record[field]!r}")
    return problems


def main():
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    records, embeddings = load_corpus(args.data_dir)
    print(f"read {len(records)} chunks of {DIMENSION} dimensions from "
          f"{args.data_dir}")

    with grpc.insecure_channel(args.server) as channel:
        stub = vecdb_pb2_grpc.VectorDBStub(channel)
        create_collection(stub)
        upserted = import_corpus(stub, records, embeddings, args.batch_size)
        info = stub.GetCollection(
            vecdb_pb2.GetCollectionRequest(name=COLLECTION))
        print(f"imported {upserted} chunks into {COLLECTION} (COSINE, FLAT); "
              f"it counts {info.point_count} points")

        failures = []
        if info.point_count != len(records):
            failures.append(f"{COLLECTION} counts {info.point_count} points, "
                            f"expected {len(records)}")

        # Evenly spaced rows, from the first chunk to the last.
        probes = [round(i * (len(records) - 1) / (PROBE_COUNT - 1))
                  for i in range(PROBE_COUNT)]
        for row in probes:
            failures.extend(search_probe(stub, records[row], embeddings[row]))
        failures.extend(check_get(stub, probes, records, embeddings))

    print()
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    if not failures:
        print(f"all {PROBE_COUNT} probe chunks came back first with score 1")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except grpc.RpcError as error:
        print(f"FAILED: RPC error {error.code().name}: {error.details()}",
              file=sys.stderr)
        sys.exit(1)
