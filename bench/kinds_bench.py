#!/usr/bin/python3
"""Compare vecdb's index kinds with raw FAISS: build time, memory, recall@10
and queries per second.

Two datasets:
  synthetic  --points 128-dimensional vectors (100,000 by default; use
             1,000,000 for the full run) around 1,000 seeded random centres.
             Each point spreads in a 16-dimensional subspace of its own
             cluster, plus small noise in every dimension, much as
             embeddings spread near a low-dimensional surface.
  fashion    the 60,000 Fashion-MNIST training images (784 dimensions),
             from Debian's dataset-fashion-mnist.
Queries are --queries further points of the same generator, or test images.
Ground truth is exact search (L2) by FAISS IndexFlatL2.

For each kind (HNSW for reference, IVF_FLAT, IVF_PQ, SQ8, HNSW_SQ8) the
script loads a vecdb collection through Upsert, waits until the server's
maintenance thread has trained the index (index_state READY), and reports:
  build s     from the first Upsert until READY (load, training, build)
  index B/pt  CollectionInfo.index_memory_bytes per point: vectors or
              codes, graph, lists, centroids, direct map, deletion marks,
              read 7 s after the load, once the server freed the capacity
              that growth reserved
  total B/pt  CollectionInfo.memory_bytes per point, which adds the id maps
Then it sweeps nprobe (IVF) or ef_search (HNSW kinds) and runs all queries
as one SearchBatch, with rerank of --oversampling (default 4) candidates
per hit for the compressed kinds, reporting recall@10 and queries per
second. Raw FAISS runs the same index with the
same parameters in this process beside it: its build time covers train and
add, its B/pt is the size of faiss.serialize_index, and its compressed
kinds rerank the same number of candidates with numpy.

Starts its own vecdb-server on 127.0.0.1 with a temporary data dir. Run it
with Debian's /usr/bin/python3 and the stubs on PYTHONPATH:

  PYTHONPATH=build/python /usr/bin/python3 bench/kinds_bench.py \
      --server-binary build/rpc/vecdb-server --points 100000
"""

import argparse
import gzip
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

# FAISS's OpenMP threads spin while they wait; on a machine shared with other
# work that slows training by orders of magnitude. The server inherits this.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402
import grpc  # noqa: E402
import numpy as np  # noqa: E402

from clustered import clustered_vectors  # noqa: E402
from vecdb.v1 import vecdb_pb2, vecdb_pb2_grpc  # noqa: E402

TOP_K = 10
DEFAULT_OVERSAMPLING = 4
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1),
                   ("grpc.max_receive_message_length", -1)]
READY_TIMEOUT_SECONDS = 3600


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-binary", default="build/rpc/vecdb-server",
                        help="vecdb-server to start (default: %(default)s)")
    parser.add_argument("--points", type=int, default=100000,
                        help="synthetic base points (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=200,
                        help="queries per dataset (default: %(default)s)")
    parser.add_argument("--datasets", default="synthetic,fashion",
                        help="comma-separated: synthetic, fashion "
                        "(default: %(default)s)")
    parser.add_argument("--kinds",
                        default="HNSW,IVF_FLAT,IVF_PQ,SQ8,HNSW_SQ8",
                        help="comma-separated kinds to run "
                        "(default: %(default)s)")
    parser.add_argument("--oversampling", type=int,
                        default=DEFAULT_OVERSAMPLING,
                        help="candidates per hit that the compressed kinds "
                        "rerank (default: %(default)s)")
    parser.add_argument("--fashion-dir",
                        default="/usr/share/datasets/fashion-mnist",
                        help="folder with the Fashion-MNIST IDX files "
                        "(default: %(default)s)")
    return parser.parse_args()


def read_images(path):
    with gzip.open(path, "rb") as file:
        _, count, rows, cols = struct.unpack(">4I", file.read(16))
        pixels = np.frombuffer(file.read(), dtype=np.uint8)
    return pixels.reshape(count, rows * cols).astype(np.float32)


def configs(dimension, points):
    """Return (label, IndexConfig, sweep field, sweep values, rerank)."""
    nlist = 1024 if points >= 500000 else 256
    probes = [1, 4, 16, 64]
    efs = [16, 64, 256]
    pq_m = dimension // 8
    return [
        ("HNSW", vecdb_pb2.IndexConfig(kind=vecdb_pb2.HNSW), "ef_search",
         efs, False),
        ("IVF_FLAT", vecdb_pb2.IndexConfig(kind=vecdb_pb2.IVF_FLAT,
                                           nlist=nlist), "nprobe", probes,
         False),
        ("IVF_PQ", vecdb_pb2.IndexConfig(kind=vecdb_pb2.IVF_PQ, nlist=nlist,
                                         pq_m=pq_m, pq_bits=8), "nprobe",
         probes, True),
        ("SQ8", vecdb_pb2.IndexConfig(kind=vecdb_pb2.SQ8), None, [0], True),
        ("HNSW_SQ8", vecdb_pb2.IndexConfig(kind=vecdb_pb2.HNSW_SQ8),
         "ef_search", efs, True),
    ]


def start_server(binary, work_dir):
    """Start vecdb-server on a port it picks; return (process, address)."""
    port_file = os.path.join(work_dir, "port")
    log = open(os.path.join(work_dir, "server.log"), "wb")
    process = subprocess.Popen(
        [binary, "--data_dir", os.path.join(work_dir, "data"),
         "--listen", "127.0.0.1:0", "--port_file", port_file],
        stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.exists(port_file):
            with open(port_file) as file:
                text = file.read()
            if text.endswith("\n"):
                return process, f"127.0.0.1:{int(text)}"
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"vecdb-server did not start; see {log.name}")


def recall_at_k(found_ids, truth):
    hits = sum(len(set(row[:TOP_K]) & set(expected))
               for row, expected in zip(found_ids, truth))
    return hits / (TOP_K * len(truth))


def vecdb_run(stub, name, base, queries, truth, config, sweep_field,
              sweep_values, rerank, oversampling):
    start = time.perf_counter()
    stub.CreateCollection(vecdb_pb2.CreateCollectionRequest(
        name=name, dimension=base.shape[1], metric=vecdb_pb2.L2,
        index=config))
    for first in range(0, len(base), 1000):
        stub.Upsert(vecdb_pb2.UpsertRequest(collection=name, points=[
            vecdb_pb2.Point(id=str(i), vector=base[i].tolist())
            for i in range(first, min(first + 1000, len(base)))]))
    while True:
        info = stub.GetCollection(vecdb_pb2.GetCollectionRequest(name=name))
        if (info.index_state == vecdb_pb2.READY
                and info.unindexed_points == 0):
            break
        if time.perf_counter() - start > READY_TIMEOUT_SECONDS:
            raise RuntimeError(f"{name} not ready")
        time.sleep(0.2)
    build = time.perf_counter() - start
    # Read the memory once the server has freed the capacity that growth
    # reserved, which it does after writes pause for 5 s.
    time.sleep(7)
    info = stub.GetCollection(vecdb_pb2.GetCollectionRequest(name=name))
    rows = []
    for value in sweep_values:
        params = vecdb_pb2.SearchParams(rerank=rerank,
                                        oversampling=oversampling)
        if sweep_field:
            setattr(params, sweep_field, value)
        request = vecdb_pb2.SearchBatchRequest(collection=name, searches=[
            vecdb_pb2.SearchRequest(vector=query.tolist(), top_k=TOP_K,
                                    params=params) for query in queries])
        began = time.perf_counter()
        response = stub.SearchBatch(request)
        seconds = time.perf_counter() - began
        found = [[int(hit.id) for hit in result.hits]
                 for result in response.results]
        rows.append((value, recall_at_k(found, truth), len(queries) / seconds))
    return (build, info.index_memory_bytes / len(base),
            info.memory_bytes / len(base), rows)


def faiss_index(label, dimension, config):
    if label == "HNSW":
        index = faiss.IndexHNSWFlat(dimension, 16)
        index.hnsw.efConstruction = 100
    elif label == "IVF_FLAT":
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dimension), dimension,
                                   config.nlist)
    elif label == "IVF_PQ":
        index = faiss.IndexIVFPQ(faiss.IndexFlatL2(dimension), dimension,
                                 config.nlist, config.pq_m, config.pq_bits)
    elif label == "SQ8":
        index = faiss.IndexScalarQuantizer(dimension,
                                           faiss.ScalarQuantizer.QT_8bit)
    else:
        index = faiss.IndexHNSWSQ(dimension, faiss.ScalarQuantizer.QT_8bit,
                                  16)
        index.hnsw.efConstruction = 100
    # The quantizer must outlive the Python wrapper of the IVF index.
    index.keep = index.quantizer if hasattr(index, "quantizer") else None
    return index


def faiss_run(label, base, queries, truth, config, sweep_field, sweep_values,
              rerank, oversampling):
    index = faiss_index(label, base.shape[1], config)
    start = time.perf_counter()
    if not index.is_trained:
        # vecdb trains on an even sample of at most 256 points per centroid
        # (65,536 for SQ); do the same.
        centroids = max(config.nlist, 1 << config.pq_bits
                        if label == "IVF_PQ" else 0)
        limit = 256 * centroids if label.startswith("IVF") else 65536
        step = max(1, len(base) // limit)
        index.train(base[::step][:limit])
    index.add(base)
    build = time.perf_counter() - start
    size = len(faiss.serialize_index(index)) / len(base)
    rows = []
    fetched = TOP_K * oversampling if rerank else TOP_K
    for value in sweep_values:
        if sweep_field == "nprobe":
            index.nprobe = value
        elif sweep_field == "ef_search":
            index.hnsw.efSearch = max(value, fetched)
        began = time.perf_counter()
        _, labels = index.search(queries, fetched)
        if rerank:
            reranked = []
            for query, row in zip(queries, labels):
                row = row[row >= 0]
                distances = ((base[row] - query) ** 2).sum(1)
                reranked.append(row[np.argsort(distances)][:TOP_K])
            labels = reranked
        seconds = time.perf_counter() - began
        rows.append((value, recall_at_k([list(r) for r in labels], truth),
                     len(queries) / seconds))
    return build, size, rows


def run_dataset(stub, dataset, base, queries, kinds, oversampling):
    flat = faiss.IndexFlatL2(base.shape[1])
    flat.add(base)
    _, truth = flat.search(queries, TOP_K)
    truth = [list(row) for row in truth]
    print(f"\n## {dataset}: {len(base):,} points, {base.shape[1]} "
          f"dimensions, {len(queries)} queries, L2, top {TOP_K}\n")
    print("| kind | engine | build s | index B/pt | total B/pt | param | "
          "recall@10 | queries/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, config, field, values, rerank in configs(base.shape[1],
                                                        len(base)):
        if label not in kinds:
            continue
        name = f"{dataset}_{label.lower()}"
        build, index_bytes, total_bytes, rows = vecdb_run(
            stub, name, base, queries, truth, config, field, values, rerank,
            oversampling)
        for value, recall, qps in rows:
            param = f"{field} {value}" if field else "-"
            if rerank:
                param += f", rerank x{oversampling}"
            print(f"| {label} | vecdb | {build:.1f} | {index_bytes:.1f} | "
                  f"{total_bytes:.1f} | {param} | {recall:.4f} | {qps:.0f} |")
        stub.DropCollection(vecdb_pb2.DropCollectionRequest(name=name))
        build, size, rows = faiss_run(label, base, queries, truth, config,
                                      field, values, rerank, oversampling)
        for value, recall, qps in rows:
            param = f"{field} {value}" if field else "-"
            if rerank:
                param += f", rerank x{oversampling}"
            print(f"| {label} | FAISS | {build:.1f} | {size:.1f} | - | "
                  f"{param} | {recall:.4f} | {qps:.0f} |")


def main():
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    work_dir = tempfile.mkdtemp(prefix="vecdb-kinds-bench-")
    process, address = start_server(args.server_binary, work_dir)
    try:
        stub = vecdb_pb2_grpc.VectorDBStub(
            grpc.insecure_channel(address, options=CHANNEL_OPTIONS))
        for dataset in args.datasets.split(","):
            if dataset == "synthetic":
                base, queries = clustered_vectors(args.points, args.queries)
            elif dataset == "fashion":
                base = read_images(os.path.join(
                    args.fashion_dir, "train-images-idx3-ubyte.gz"))
                queries = read_images(os.path.join(
                    args.fashion_dir,
                    "t10k-images-idx3-ubyte.gz"))[:args.queries]
            else:
                raise SystemExit(f"unknown dataset {dataset!r}; use "
                                 "synthetic or fashion")
            run_dataset(stub, dataset, base, queries,
                        args.kinds.split(","), args.oversampling)
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
