#!/usr/bin/python3
"""Measure filtered search on Fashion-MNIST: queries per second and recall@10.

Loads the 60,000 training images into an HNSW collection (L2, default
parameters) with two generated metadata fields per image: "category", one of
100 keywords, and "price", an integer from 0 to 999, both uniform at random
and independent of the image. Then it searches the first --queries test
images one Search call at a time with these filters:

  selectivity  filter
  0.1%         price < 1
  1%           category = "c007"
  10%          category any of 10 keywords
  50%          price < 500
  100%         price < 1000

first without field indexes, then after CreateFieldIndex on both fields,
beside the unfiltered search. Recall@10 is the share of the exact top 10
among the matching images, computed by numpy, that vecdb returns.

Starts its own vecdb-server on 127.0.0.1 with a temporary data dir. Needs
the Python stubs on PYTHONPATH (BUILD_DIR/python), so run it with Debian's
/usr/bin/python3.
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

import grpc
import numpy as np
from google.protobuf import struct_pb2

from vecdb.v1 import vecdb_pb2, vecdb_pb2_grpc

TOP_K = 10
COLLECTION = "filter_bench"
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1),
                   ("grpc.max_receive_message_length", 256 * 1024 * 1024)]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-binary", default="build/rpc/vecdb-server",
                        help="vecdb-server to start (default: %(default)s)")
    parser.add_argument("--data-dir",
                        default="/usr/share/datasets/fashion-mnist",
                        help="folder with train- and t10k-images-idx3-ubyte.gz "
                        "(default: %(default)s)")
    parser.add_argument("--queries", type=int, default=1000,
                        help="test images to search (default: %(default)s)")
    return parser.parse_args()


def read_images(path):
    with gzip.open(path, "rb") as file:
        _, count, rows, cols = struct.unpack(">4I", file.read(16))
        pixels = np.frombuffer(file.read(), dtype=np.uint8)
    return pixels.reshape(count, rows * cols).astype(np.float32)


def start_server(binary, work_dir):
    """Start vecdb-server on a free port; return the process and address."""
    port_file = os.path.join(work_dir, "port")
    log = open(os.path.join(work_dir, "server.log"), "wb")
    process = subprocess.Popen(
        [binary, "--data_dir", os.path.join(work_dir, "data"),
         "--listen", "127.0.0.1:0", "--port_file", port_file],
        stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while True:
        if os.path.exists(port_file):
            with open(port_file) as file:
                text = file.read()
            if text.endswith("\n"):
                return process, f"127.0.0.1:{int(text)}"
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"vecdb-server did not start; see {log.name}")
        time.sleep(0.05)


def field(key, **condition):
    return vecdb_pb2.Condition(field=vecdb_pb2.FieldCondition(key=key,
                                                              **condition))


def make_filters():
    """Return (label, Filter, numpy predicate over the metadata arrays)."""
    ten = struct_pb2.ListValue()
    ten.extend([f"c{i:03d}" for i in range(10)])
    return [
        ("0.1%", vecdb_pb2.Filter(must=[field(
            "price", range=vecdb_pb2.Range(lt=1))]),
         lambda category, price: price < 1),
        ("1%", vecdb_pb2.Filter(must=[field(
            "category", match=struct_pb2.Value(string_value="c007"))]),
         lambda category, price: category == 7),
        ("10%", vecdb_pb2.Filter(must=[field("category", any=ten)]),
         lambda category, price: category < 10),
        ("50%", vecdb_pb2.Filter(must=[field(
            "price", range=vecdb_pb2.Range(lt=500))]),
         lambda category, price: price < 500),
        ("100%", vecdb_pb2.Filter(must=[field(
            "price", range=vecdb_pb2.Range(lt=1000))]),
         lambda category, price: price < 1000),
    ]


def load(stub, base, categories, prices):
    stub.CreateCollection(vecdb_pb2.CreateCollectionRequest(
        name=COLLECTION, dimension=base.shape[1], metric=vecdb_pb2.L2,
        index=vecdb_pb2.IndexConfig(kind=vecdb_pb2.HNSW)))
    start = time.perf_counter()
    for begin in range(0, len(base), 500):
        request = vecdb_pb2.UpsertRequest(collection=COLLECTION)
        for index in range(begin, min(begin + 500, len(base))):
            point = request.points.add(id=str(index),
                                       vector=base[index].tolist())
            point.metadata.update({"category": f"c{categories[index]:03d}",
                                   "price": int(prices[index])})
        stub.Upsert(request)
    return time.perf_counter() - start


def run(stub, queries, filter_message, truth):
    """Search every query; return queries per second and recall@10."""
    requests = [vecdb_pb2.SearchRequest(collection=COLLECTION,
                                        vector=query.tolist(), top_k=TOP_K)
                for query in queries]
    if filter_message is not None:
        for request in requests:
            request.filter.CopyFrom(filter_message)
    found = 0
    start = time.perf_counter()
    results = [stub.Search(request).hits for request in requests]
    seconds = time.perf_counter() - start
    for hits, expected in zip(results, truth):
        if len(hits) != min(TOP_K, len(expected)):
            raise RuntimeError(f"{len(hits)} hits, expected "
                               f"{min(TOP_K, len(expected))}")
        found += len({int(hit.id) for hit in hits} & set(expected))
    return len(queries) / seconds, found / sum(len(e) for e in truth)


def exact_truth(squared, mask):
    matching = np.flatnonzero(mask)
    truth = []
    for row in squared:
        distances = row[matching]
        top = np.argpartition(distances, min(TOP_K, len(matching) - 1))
        top = top[:TOP_K]
        truth.append(matching[top[np.argsort(distances[top])]].tolist())
    return truth


def main():
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    base = read_images(os.path.join(args.data_dir,
                                    "train-images-idx3-ubyte.gz"))
    queries = read_images(os.path.join(args.data_dir,
                                       "t10k-images-idx3-ubyte.gz"))
    queries = queries[:args.queries]
    random = np.random.default_rng(3)
    categories = random.integers(0, 100, len(base))
    prices = random.integers(0, 1000, len(base))

    base64 = base.astype(np.float64)
    queries64 = queries.astype(np.float64)
    squared = ((queries64 ** 2).sum(1)[:, None] - 2 * queries64 @ base64.T
               + (base64 ** 2).sum(1)[None, :])

    work_dir = tempfile.mkdtemp(prefix="vecdb-filter-bench-")
    process, address = start_server(args.server_binary, work_dir)
    try:
        stub = vecdb_pb2_grpc.VectorDBStub(
            grpc.insecure_channel(address, options=CHANNEL_OPTIONS))
        seconds = load(stub, base, categories, prices)
        print(f"loaded {len(base)} points in {seconds:.1f} s; searching "
              f"{len(queries)} queries one at a time, top_k {TOP_K}")

        all_truth = exact_truth(squared, np.ones(len(base), dtype=bool))
        qps, recall = run(stub, queries, None, all_truth)
        print(f"\n{'filter':<10} {'matching':>9} {'field index':>12} "
              f"{'queries/s':>10} {'recall@10':>10}")
        print(f"{'none':<10} {len(base):>9} {'-':>12} {qps:>10.0f} "
              f"{recall:>10.4f}")

        filters = make_filters()
        truths = [exact_truth(squared, predicate(categories, prices))
                  for _, _, predicate in filters]
        for indexed in (False, True):
            if indexed:
                for key, index_type in (("category", vecdb_pb2.KEYWORD),
                                        ("price", vecdb_pb2.INTEGER)):
                    stub.CreateFieldIndex(vecdb_pb2.CreateFieldIndexRequest(
                        collection=COLLECTION, key=key, type=index_type))
            for (label, filter_message, predicate), truth in zip(filters,
                                                                 truths):
                matching = int(predicate(categories, prices).sum())
                qps, recall = run(stub, queries, filter_message, truth)
                print(f"{label:<10} {matching:>9} "
                      f"{'yes' if indexed else 'no':>12} {qps:>10.0f} "
                      f"{recall:>10.4f}")
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
