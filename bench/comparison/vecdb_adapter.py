#!/usr/bin/python3
"""Benchmark vecdb through gRPC, with its own server on 127.0.0.1.

Usage: vecdb_adapter.py SPEC.json OUT.json (formats in bench/compare.py).
Beside the common fields, SPEC.json needs "server_binary" (vecdb-server),
"python_stubs" (the folder with the generated vecdb/v1 stubs) and "truth"
(an .npy array of exact ids per query, used to pick the latency ef_search).

Steps:
  ingest   Two parallel Import streams of 1,000-point requests load an
           HNSW collection. The time runs until no point waits for the
           graph.
  single   Every query is one Search call. The server is pinned to CPU 0
           and this client to CPU 1 with taskset.
  batch    SearchBatch requests of 100 queries, with both processes on
           every core.
  latency  1, 4 and 16 client processes (grpc_clients.py) send Search
           calls at the smallest ef_search of the sweep that reaches
           recall@10 0.95, or the largest when none does.
  size     The server's VmHWM just before a clean stop, which writes the
           index checkpoints, and then the bytes of its data dir.

When SPEC.json also names "search_client" (build/bench/search_client),
the single and latency steps run a second time from that C++ client,
whose threads replace the client processes. OUT.json then carries them
under "variants", as [{"client": "C++ client", "sweep": ..., "latency":
...}], which bench/compare.py reports as a system of its own.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

import common
import grpc_clients

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
COLLECTION = "bench"
IMPORT_BATCH = 1000
IMPORT_STREAMS = 2
READY_TIMEOUT_SECONDS = 4 * 3600
TARGET_RECALL = 0.95


def load_server_harness(spec):
    """Import the end-to-end tests' ServerProcess with this spec's paths."""
    os.environ["VECDB_SERVER"] = spec["server_binary"]
    os.environ["VECDB_PYTHON_STUBS"] = spec["python_stubs"]
    sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
    import harness
    return harness


def pin(pid, cpus):
    """Move every thread of process pid onto the CPU list cpus ("0,1")."""
    subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)],
                   stdout=subprocess.DEVNULL, check=True)


def import_requests(harness, spec, stream):
    """Yield serialized UpsertRequests of the stream's share of the rows.

    The requests are encoded by hand from the float32 bytes, which is far
    faster than filling repeated float fields from Python.
    """
    field = harness.length_delimited_field
    chunks = common.row_chunks(spec["base"], spec["dim"], spec["base_count"],
                               IMPORT_BATCH)
    for number, (first, rows) in enumerate(chunks):
        if number % IMPORT_STREAMS != stream:
            continue
        parts = [field(1, COLLECTION.encode())]
        for offset, row in enumerate(rows):
            parts.append(field(2, field(1, str(first + offset).encode()) +
                               field(2, row.astype("<f4").tobytes())))
        yield b"".join(parts)


def ingest(harness, server, spec):
    """Create and load the collection; return the seconds until indexed."""
    pb2 = harness.vecdb_pb2
    stub = server.stub()
    metric = pb2.COSINE if spec["metric"] == "cosine" else pb2.L2
    began = time.perf_counter()
    stub.CreateCollection(pb2.CreateCollectionRequest(
        name=COLLECTION, dimension=spec["dim"], metric=metric,
        index=pb2.IndexConfig(kind=pb2.HNSW, m=spec["m"],
                              ef_construction=spec["ef_construction"])))

    call = server.channel().stream_unary(
        "/vecdb.v1.VectorDB/Import",
        response_deserializer=pb2.ImportResponse.FromString)
    errors = []

    def run_stream(stream):
        try:
            call(import_requests(harness, spec, stream))
        except Exception as error:  # reported by the main thread below
            errors.append(error)

    threads = [threading.Thread(target=run_stream, args=(stream,))
               for stream in range(IMPORT_STREAMS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"Import failed: {errors[0]}")

    while True:
        info = stub.GetCollection(pb2.GetCollectionRequest(name=COLLECTION))
        if (info.point_count == spec["base_count"]
                and info.unindexed_points == 0):
            return time.perf_counter() - began
        if time.perf_counter() - began > READY_TIMEOUT_SECONDS:
            raise RuntimeError(f"{info.unindexed_points} points still wait "
                               f"for the graph after "
                               f"{READY_TIMEOUT_SECONDS} s")
        time.sleep(0.1)


def search_requests(pb2, queries, ef):
    return [pb2.SearchRequest(
        collection=COLLECTION, vector=query.tolist(), top_k=common.TOP_K,
        params=pb2.SearchParams(ef_search=ef)).SerializeToString()
        for query in queries]


def sweep_ef(harness, server, spec, queries, progress):
    """Return the sweep entries: single and batch queries/s and the ids."""
    pb2 = harness.vecdb_pb2
    search = server.channel().unary_unary("/vecdb.v1.VectorDB/Search")
    search_batch = server.channel().unary_unary(
        "/vecdb.v1.VectorDB/SearchBatch")
    all_cpus = ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))
    sweep = []
    for ef in spec["ef_search"]:
        progress(f"ef_search {ef}")
        requests = search_requests(pb2, queries, ef)
        pin(server.process.pid, "0")
        pin(os.getpid(), "1")
        for request in requests[:10]:
            search(request)
        replies, single_qps = common.time_single_queries(
            lambda i: search(requests[i]), len(requests),
            spec.get("repeats", 1))
        pin(server.process.pid, all_cpus)
        pin(os.getpid(), all_cpus)

        batches = [pb2.SearchBatchRequest(
            collection=COLLECTION, searches=[
                pb2.SearchRequest(vector=query.tolist(), top_k=common.TOP_K,
                                  params=pb2.SearchParams(ef_search=ef))
                for query in queries[first:first + common.BATCH_SIZE]]
        ).SerializeToString()
            for first in range(0, len(queries), common.BATCH_SIZE)]
        search_batch(batches[0])
        _, batches_per_second = common.time_single_queries(
            lambda i: search_batch(batches[i]), len(batches),
            spec.get("repeats", 1))
        batch_qps = batches_per_second * len(queries) / len(batches)

        ids = [[int(hit.id) for hit in pb2.SearchResponse.FromString(
            reply).hits] for reply in replies]
        sweep.append({"param": f"ef_search {ef}", "qps": single_qps,
                      "batch_qps": batch_qps, "ids": ids})
    return sweep


def latency_ef(spec, sweep):
    """Return the smallest swept ef_search reaching TARGET_RECALL."""
    truth = np.load(spec["truth"])
    for ef, entry in zip(spec["ef_search"], sweep):
        if common.recall_at_k(entry["ids"], truth) >= TARGET_RECALL:
            return ef
    return spec["ef_search"][-1]


def measure_latency(harness, server, spec, queries, ef, progress):
    requests = search_requests(harness.vecdb_pb2, queries, ef)
    count = spec.get("latency_requests", 2000)
    requests = [requests[i % len(requests)] for i in range(count)]
    address = f"127.0.0.1:{server.port}"
    results = []
    for clients in spec["concurrency"]:
        progress(f"latency at ef_search {ef}, {clients} client processes")
        results.append(dict(grpc_clients.measure(address, requests, clients),
                            ef_search=ef))
    return results


def cpp_client_variant(server, spec, queries, ef, progress):
    """Measure single queries and latency again with bench/search_client.

    The client writes the hit ids of every query and the latency
    percentiles as JSON; its single queries run pinned to CPU 1 with the
    server on CPU 0, its latency threads on every core.
    """
    work_dir = spec["work_dir"]
    queries_path = os.path.join(work_dir, "cpp-queries.f32")
    queries.astype("<f4").tofile(queries_path)
    common_args = [spec["search_client"], "--server",
                   f"127.0.0.1:{server.port}", "--collection", COLLECTION,
                   "--queries", queries_path, "--dimension", str(spec["dim"]),
                   "--top_k", str(common.TOP_K),
                   "--passes", str(spec.get("repeats", 1))]

    progress("single queries from the C++ client")
    all_cpus = ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))
    single_path = os.path.join(work_dir, "cpp-single.json")
    pin(server.process.pid, "0")
    try:
        subprocess.run(["taskset", "-c", "1"] + common_args + [
            "--ef_search", ",".join(map(str, spec["ef_search"])),
            "--clients", "", "--out", single_path], check=True)
    finally:
        pin(server.process.pid, all_cpus)

    progress(f"latency at ef_search {ef} from the C++ client")
    latency_path = os.path.join(work_dir, "cpp-latency.json")
    subprocess.run(common_args + [
        "--ef_search", "", "--clients",
        ",".join(map(str, spec["concurrency"])),
        "--latency_ef_search", str(ef),
        "--latency_queries", str(spec.get("latency_requests", 2000)),
        "--out", latency_path], check=True)

    with open(single_path) as file:
        single = json.load(file)
    with open(latency_path) as file:
        latency = json.load(file)
    sweep = [{"param": f"ef_search {entry['ef_search']}",
              "qps": entry["qps"],
              "ids": [[int(hit) for hit in hits] for hits in entry["ids"]]}
             for entry in single["sweep"]]
    return {"client": "C++ client", "sweep": sweep,
            "latency": [dict(row, ef_search=ef)
                        for row in latency["latency"]]}


def vecdb_version():
    result = subprocess.run(["git", "-C", REPO, "describe", "--always",
                             "--dirty"], capture_output=True, text=True,
                            check=False)
    return "commit " + (result.stdout.strip() or "unknown")


def main(spec_path, out_path):
    spec = common.read_spec(spec_path)
    progress = common.Progress(spec, "vecdb")
    harness = load_server_harness(spec)
    data_dir = tempfile.mkdtemp(prefix="vecdb-data-", dir=spec["work_dir"])
    server = harness.ServerProcess()
    try:
        server.start(data_dir)
        progress(f"ingest of {spec['base_count']} points")
        ingest_seconds = ingest(harness, server, spec)
        queries = common.read_rows(spec["queries"], spec["dim"], 0,
                                   spec["query_count"])
        sweep = sweep_ef(harness, server, spec, queries, progress)
        ef = latency_ef(spec, sweep)
        latency = measure_latency(harness, server, spec, queries, ef,
                                  progress)
        variants = []
        if spec.get("search_client"):
            variants.append(cpp_client_variant(server, spec, queries, ef,
                                               progress))
        peak_rss = common.peak_rss_bytes(server.process.pid)
        progress("clean stop")
        server.stop()
        disk_bytes = common.tree_bytes(data_dir)
    finally:
        server.close()

    common.write_out(out_path, {
        "system": "vecdb",
        "version": vecdb_version(),
        "index": f"HNSW m {spec['m']}, "
                 f"ef_construction {spec['ef_construction']}",
        "ingest_seconds": ingest_seconds,
        "disk_bytes": disk_bytes,
        "peak_rss_bytes": peak_rss,
        "sweep": sweep,
        "latency": latency,
        "variants": variants,
        "error": None,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
