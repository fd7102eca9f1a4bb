#!/usr/bin/python3
"""Load Fashion-MNIST into vecdb and measure import rate, search rate, recall.

Streams the 60,000 training images through the Import RPC into an HNSW
collection (default index parameters) and a FLAT collection, both with the L2
metric. Each image is one point of 784 float32 values, the raw 0-255 pixels,
as in ann-benchmarks' fashion-mnist-784-euclidean. Then the 10,000 test images
are searched with top_k 10 against each collection, one Search call at a time
and in SearchBatch requests. One-at-a-time exact search is slow with Debian's
generic FAISS build, so FLAT is timed that way on a sample only
(--flat-single-queries). FLAT's SearchBatch results, which FAISS computes
with BLAS, serve as the ground truth.

Recall@10 is the share of FLAT's ten ids that HNSW also returns. The script
exits 1 when a check fails: HNSW recall below --min-recall, a collection whose
point count is not 60,000, a query with fewer than top_k hits, FLAT scores
that differ from the exact Euclidean distances that numpy computes, or FLAT
Search scores that differ from its SearchBatch scores.

Needs the Python stubs on PYTHONPATH (BUILD_DIR/python) and Debian's
python3-grpcio and python3-numpy, so run it with /usr/bin/python3.
"""

import argparse
import gzip
import struct
import sys
import time

import grpc
import numpy as np

from vecdb.v1 import vecdb_pb2, vecdb_pb2_grpc

TOP_K = 10
HNSW_COLLECTION = "fashion_mnist_hnsw"
FLAT_COLLECTION = "fashion_mnist_flat"
IDX3_MAGIC = 2051
# Requests of 500 points of 784 floats are about 1.6 MB, under gRPC's
# default 4 MB limit, but a larger --batch-size may need more.
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051",
                        help="vecdb-server address, HOST:PORT "
                        "(default: %(default)s)")
    parser.add_argument("--data-dir",
                        default="/usr/share/datasets/fashion-mnist",
                        help="folder with train- and t10k-images-idx3-ubyte.gz "
                        "(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=500,
                        help="points per streamed Import request "
                        "(default: %(default)s)")
    parser.add_argument("--search-batch-size", type=int, default=100,
                        help="queries per SearchBatch request "
                        "(default: %(default)s)")
    parser.add_argument("--queries", type=int, default=10000,
                        help="test images to search, from the first "
                        "(default: %(default)s, all of them)")
    parser.add_argument("--flat-single-queries", type=int, default=500,
                        help="queries sent to FLAT one Search call at a "
                        "time, for its timing (default: %(default)s)")
    parser.add_argument("--exact-check-queries", type=int, default=500,
                        help="queries whose FLAT hits are compared with "
                        "distances computed by numpy (default: %(default)s)")
    parser.add_argument("--min-recall", type=float, default=0.95,
                        help="lowest accepted HNSW recall@10 "
                        "(default: %(default)s)")
    return parser.parse_args()


def read_idx_images(path):
    """Read an IDX3 file of uint8 images as an (n, rows * cols) float32 array.

    Raises ValueError when the header or the size does not fit IDX3.
    """
    with gzip.open(path, "rb") as file:
        magic, count, rows, cols = struct.unpack(">4I", file.read(16))
        if magic != IDX3_MAGIC:
            raise ValueError(f"{path}: magic number {magic}, expected "
                             f"{IDX3_MAGIC} for an IDX3 image file")
        pixels = np.frombuffer(file.read(), dtype=np.uint8)
    if pixels.size != count * rows * cols:
        raise ValueError(f"{path}: {pixels.size} pixels, expected "
                         f"{count} images of {rows}x{cols}")
    return pixels.reshape(count, rows * cols).astype(np.float32)


def create_collection(stub, name, dimension, kind):
    """Create an empty L2 collection, dropping an earlier one of that name."""
    try:
        stub.DropCollection(vecdb_pb2.DropCollectionRequest(name=name))
        print(f"dropped the existing collection {name}")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
    return stub.CreateCollection(vecdb_pb2.CreateCollectionRequest(
        name=name, dimension=dimension, metric=vecdb_pb2.L2,
        index=vecdb_pb2.IndexConfig(kind=kind)))


def describe_index(index):
    kind = vecdb_pb2.IndexKind.Name(index.kind)
    if index.kind != vecdb_pb2.HNSW:
        return kind
    return (f"{kind} m={index.m} ef_construction={index.ef_construction} "
            f"ef_search={index.ef_search}")


def build_upsert_requests(vectors, batch_size):
    """Split the vectors into UpsertRequests with the row numbers as point ids.

    The collection field is left empty and set while streaming, so one list
    serves both collections.
    """
    requests = []
    for start in range(0, len(vectors), batch_size):
        request = vecdb_pb2.UpsertRequest()
        for row in range(start, min(start + batch_size, len(vectors))):
            request.points.add(id=str(row), vector=vectors[row].tolist())
        requests.append(request)
    return requests


def import_points(stub, collection, requests):
    """Stream the requests through Import.

    Returns the count of points upserted and the seconds the stream took.
    """
    progress_step = 10000

    def stream():
        sent = 0
        for request in requests:
            request.collection = collection
            yield request
            sent += len(request.points)
            if sent % progress_step < len(request.points):
                print(f"  {collection}: sent {sent} points")

    start = time.perf_counter()
    response = stub.Import(stream())
    return response.upserted, time.perf_counter() - start


def parse_hits(response):
    """Return the hit ids as ints and the scores of one SearchResponse."""
    ids = [int(hit.id) for hit in response.hits]
    scores = [hit.score for hit in response.hits]
    return ids, scores


def search_one_at_a_time(stub, collection, queries):
    """Run one Search per query, in sequence.

    Returns a list of (ids, scores) per query and the latency of each call in
    seconds.
    """
    requests = [
        vecdb_pb2.SearchRequest(collection=collection, vector=query.tolist(),
                                top_k=TOP_K)
        for query in queries
    ]
    results = []
    latencies = np.empty(len(requests))
    for number, request in enumerate(requests):
        start = time.perf_counter()
        response = stub.Search(request)
        latencies[number] = time.perf_counter() - start
        results.append(parse_hits(response))
        if (number + 1) % 2000 == 0:
            print(f"  {collection}: {number + 1} searches done")
    return results, latencies


def search_in_batches(stub, collection, queries, batch_size):
    """Run the queries as SearchBatch requests.

    Returns a list of (ids, scores) per query and the total seconds.
    """
    batches = []
    for start in range(0, len(queries), batch_size):
        batch = vecdb_pb2.SearchBatchRequest(collection=collection)
        for query in queries[start:start + batch_size]:
            batch.searches.add(vector=query.tolist(), top_k=TOP_K)
        batches.append(batch)

    results = []
    start = time.perf_counter()
    for batch in batches:
        response = stub.SearchBatch(batch)
        if len(response.results) != len(batch.searches):
            raise RuntimeError(
                f"{collection}: SearchBatch returned {len(response.results)} "
                f"results for {len(batch.searches)} searches")
        results.extend(parse_hits(result) for result in response.results)
    return results, time.perf_counter() - start


def recall_at_k(approximate, exact):
    """Return the share of exact top-k ids that the approximate search found."""
    found = sum(len(set(a_ids) & set(e_ids))
                for (a_ids, _), (e_ids, _) in zip(approximate, exact))
    return found / sum(len(e_ids) for e_ids, _ in exact)


def count_short_results(results, expected):
    return sum(1 for ids, _ in results if len(ids) != expected)


def count_score_mismatches(results, reference):
    """Count queries whose scores differ from the reference by over 1e-4.

    The tolerance is relative to each reference score (absolute below 1).
    Compares only the queries both lists cover, from the first.
    """
    mismatches = 0
    for (_, scores), (_, expected) in zip(results, reference):
        scores = np.array(scores, dtype=np.float64)
        expected = np.array(expected, dtype=np.float64)
        tolerance = 1e-4 * np.maximum(np.abs(expected), 1.0)
        if (len(scores) != len(expected)
                or np.any(np.abs(scores - expected) > tolerance)):
            mismatches += 1
    return mismatches


def check_flat_is_exact(flat_results, base, queries):
    """Compare FLAT hits with Euclidean distances computed in float64 by numpy.

    Returns a list of problems, empty when every score equals the distance of
    its hit and the k-th score equals the k-th smallest true distance, both
    within a relative tolerance of 1e-4. Comparing distances, not ids, keeps
    the check stable when images tie.
    """
    base_double = base.astype(np.float64)
    base_norms = np.einsum("ij,ij->i", base_double, base_double)
    problems = []
    block_size = 100
    for block_start in range(0, len(queries), block_size):
        block = queries[block_start:block_start + block_size].astype(np.float64)
        squared = (base_norms[None, :] - 2.0 * (block @ base_double.T)
                   + np.einsum("ij,ij->i", block, block)[:, None])
        block_distances = np.sqrt(np.maximum(squared, 0.0))
        for offset, distances in enumerate(block_distances):
            number = block_start + offset
            ids, scores = flat_results[number]
            scores = np.array(scores, dtype=np.float64)
            expected = np.sort(np.partition(distances, TOP_K)[:TOP_K])
            tolerance = 1e-4 * np.maximum(expected, 1.0)
            if (len(scores) != TOP_K
                    or np.any(np.abs(scores - expected) > tolerance)):
                problems.append(
                    f"query {number}: FLAT scores {scores[:3]}... differ from "
                    f"exact distances {expected[:3]}...")
            elif np.any(np.abs(distances[ids] - scores) > tolerance):
                problems.append(
                    f"query {number}: FLAT hits {ids[:3]}... are not at the "
                    f"distances of their scores {scores[:3]}...")
    return problems


def main():
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    failures = []

    base = read_idx_images(f"{args.data_dir}/train-images-idx3-ubyte.gz")
    queries = read_idx_images(f"{args.data_dir}/t10k-images-idx3-ubyte.gz")
    queries = queries[:args.queries]
    dimension = base.shape[1]
    print(f"read {len(base)} base and {len(queries)} query vectors of "
          f"{dimension} dimensions from {args.data_dir}")

    channel = grpc.insecure_channel(args.server, options=CHANNEL_OPTIONS)
    stub = vecdb_pb2_grpc.VectorDBStub(channel)
    upsert_requests = build_upsert_requests(base, args.batch_size)

    collections = [(HNSW_COLLECTION, vecdb_pb2.HNSW),
                   (FLAT_COLLECTION, vecdb_pb2.FLAT)]
    import_rates = {}
    for name, kind in collections:
        info = create_collection(stub, name, dimension, kind)
        print(f"created {name}: {describe_index(info.index)}")
        upserted, seconds = import_points(stub, name, upsert_requests)
        import_rates[name] = upserted / seconds
        print(f"imported {upserted} points into {name} in {seconds:.1f} s "
              f"({import_rates[name]:.0f} points/s)")

        point_count = stub.GetCollection(
            vecdb_pb2.GetCollectionRequest(name=name)).point_count
        if point_count != len(base):
            failures.append(f"{name} has {point_count} points after the "
                            f"import, expected {len(base)}")

    single = {}
    batched = {}
    for name, _ in collections:
        sample = (queries if name == HNSW_COLLECTION else
                  queries[:args.flat_single_queries])
        print(f"searching {name} one query at a time ({len(sample)} queries)")
        single[name] = search_one_at_a_time(stub, name, sample)
        print(f"searching {name} in SearchBatch requests of "
              f"{args.search_batch_size}")
        batched[name] = search_in_batches(stub, name, queries,
                                          args.search_batch_size)
        for mode, results in (("Search", single[name][0]),
                              ("SearchBatch", batched[name][0])):
            short = count_short_results(results, TOP_K)
            if short:
                failures.append(f"{name}: {short} {mode} results have fewer "
                                f"than {TOP_K} hits")

    exact_count = min(args.exact_check_queries, len(queries))
    print(f"checking FLAT scores of {exact_count} queries against numpy")
    problems = check_flat_is_exact(batched[FLAT_COLLECTION][0], base,
                                   queries[:exact_count])
    if problems:
        failures.append(f"{len(problems)} of {exact_count} FLAT results are "
                        f"not exact, for example " + "; ".join(problems[:3]))

    flat_results = batched[FLAT_COLLECTION][0]
    flat_single = single[FLAT_COLLECTION][0]
    mismatches = count_score_mismatches(flat_single, flat_results)
    if mismatches:
        failures.append(f"{mismatches} of {len(flat_single)} FLAT Search "
                        f"results differ from the SearchBatch results")
    recall = recall_at_k(single[HNSW_COLLECTION][0], flat_results)
    batch_recall = recall_at_k(batched[HNSW_COLLECTION][0], flat_results)
    for label, value in (("Search", recall), ("SearchBatch", batch_recall)):
        if value < args.min_recall:
            failures.append(f"HNSW recall@{TOP_K} with {label} is {value:.4f}, "
                            f"below the minimum {args.min_recall}")

    print()
    print(f"{'collection':<20} {'import points/s':>16} {'Search qps':>11} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'SearchBatch qps':>16}")
    for name, _ in collections:
        latencies = single[name][1]
        batch_seconds = batched[name][1]
        print(f"{name:<20} {import_rates[name]:>16.0f} "
              f"{len(latencies) / latencies.sum():>11.0f} "
              f"{np.percentile(latencies, 50) * 1000:>7.2f} "
              f"{np.percentile(latencies, 99) * 1000:>7.2f} "
              f"{len(queries) / batch_seconds:>16.0f}")
    print(f"HNSW recall@{TOP_K} against FLAT: {recall:.4f} with Search, "
          f"{batch_recall:.4f} with SearchBatch ({len(queries)} queries)")

    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except grpc.RpcError as error:
        print(f"FAILED: RPC error {error.code().name}: {error.details()}",
              file=sys.stderr)
        sys.exit(1)
