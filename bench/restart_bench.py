#!/usr/bin/python3
"""Time from process start to the first search result, three ways.

Loads synthetic clustered 128-dimensional vectors into an HNSW collection
(m 16, ef_construction 100) of a fresh vecdb-server, then measures how long
a restarted server takes to answer its first search:

  clean      after SIGTERM, which saves every index checkpoint;
  sigkill    after more writes and SIGKILL: the newest checkpoint is loaded
             and the writes after it are replayed;
  rebuild    with the index files removed, so the index is rebuilt from
             RocksDB alone.

The goal is under 5 s with a checkpoint and at least ten times faster than
the rebuild. Prints a Markdown table and, with --results, writes it there.

Usage: bench/restart_bench.py [--points N] [--server PATH] [--results FILE]
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "python"))

import grpc  # noqa: E402
from vecdb.v1 import vecdb_pb2, vecdb_pb2_grpc  # noqa: E402

DIMENSION = 128
CLUSTERS = 1000
BATCH = 2000
COLLECTION = "bench"


def clustered_vectors(count, seed=42):
    """Seeded clustered vectors: Gaussian noise around random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIMENSION), dtype=np.float32)
    vectors = np.empty((count, DIMENSION), dtype=np.float32)
    for start in range(0, count, 100000):
        stop = min(count, start + 100000)
        labels = rng.integers(0, CLUSTERS, stop - start)
        vectors[start:stop] = centres[labels] + 0.3 * rng.standard_normal(
            (stop - start, DIMENSION), dtype=np.float32)
    return vectors


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    """Encode a length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def upsert_request_bytes(first_id, vectors):
    """Serialize an UpsertRequest by hand: numpy gives the packed floats
    directly, far faster than filling repeated fields from Python."""
    parts = [field(1, COLLECTION.encode())]
    for offset, vector in enumerate(vectors):
        point = (field(1, f"p{first_id + offset}".encode()) +
                 field(2, vector.astype("<f4").tobytes()))
        parts.append(field(2, point))
    return b"".join(parts)


class Server:
    def __init__(self, binary, data_dir, log_dir):
        self.binary = binary
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.process = None
        self.starts = 0

    def start(self):
        """Start the server; return the monotonic time of the spawn."""
        self.starts += 1
        self.port_file = os.path.join(self.log_dir, f"port-{self.starts}")
        log = open(os.path.join(self.log_dir, f"server-{self.starts}.log"),
                   "wb")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [self.binary, "--data_dir", self.data_dir,
             "--listen", "127.0.0.1:0", "--port_file", self.port_file],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        return started

    def wait_for_port(self):
        while True:
            if self.process.poll() is not None:
                sys.exit(f"vecdb-server exited; see {self.log_dir}")
            try:
                with open(self.port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    return int(text)
            except FileNotFoundError:
                pass
            time.sleep(0.005)

    def stub(self, port):
        channel = grpc.insecure_channel(
            f"127.0.0.1:{port}",
            options=[("grpc.max_send_message_length", 64 << 20)])
        return channel, vecdb_pb2_grpc.VectorDBStub(channel)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        if self.process.wait(timeout=600) != 0:
            sys.exit(f"vecdb-server failed to stop; see {self.log_dir}")

    def kill(self):
        self.process.kill()
        self.process.wait()


def time_to_first_search(server, query):
    """Start the server and return seconds until a search returns."""
    started = server.start()
    port = server.wait_for_port()
    channel, stub = server.stub(port)
    response = stub.Search(vecdb_pb2.SearchRequest(
        collection=COLLECTION, vector=query.tolist(), top_k=10),
        timeout=600)
    elapsed = time.monotonic() - started
    channel.close()
    if len(response.hits) != 10:
        sys.exit(f"first search returned {len(response.hits)} hits")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1000000)
    parser.add_argument("--extra_writes", type=int, default=20000,
                        help="points upserted after the clean restart and "
                        "before SIGKILL, replayed by the next start")
    parser.add_argument("--server",
                        default=os.path.join(REPO, "build", "rpc",
                                             "vecdb-server"))
    parser.add_argument("--work_dir",
                        default=os.path.join(REPO, ".cache", "bench"))
    parser.add_argument("--results", default="")
    args = parser.parse_args()

    os.makedirs(args.work_dir, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix="restart-", dir=args.work_dir)
    data_dir = os.path.join(run_dir, "data")
    server = Server(args.server, data_dir, run_dir)
    query = clustered_vectors(1, seed=7)[0]

    print(f"generating {args.points} clustered vectors", flush=True)
    vectors = clustered_vectors(args.points)

    server.start()
    port = server.wait_for_port()
    channel, stub = server.stub(port)
    stub.CreateCollection(vecdb_pb2.CreateCollectionRequest(
        name=COLLECTION, dimension=DIMENSION, metric=vecdb_pb2.L2,
        index=vecdb_pb2.IndexConfig(kind=vecdb_pb2.HNSW, m=16,
                                    ef_construction=100)), timeout=60)
    raw_import = channel.stream_unary(
        "/vecdb.v1.VectorDB/Import",
        request_serializer=lambda data: data,
        response_deserializer=vecdb_pb2.ImportResponse.FromString)
    print("importing", flush=True)
    started = time.monotonic()
    for start in range(0, args.points, 100 * BATCH):
        chunk = vectors[start:start + 100 * BATCH]
        response = raw_import(
            (upsert_request_bytes(start + offset, chunk[offset:offset + BATCH])
             for offset in range(0, len(chunk), BATCH)), timeout=3600)
        if response.upserted != len(chunk):
            sys.exit(f"Import stored {response.upserted} of {len(chunk)}")
        done = start + len(chunk)
        rate = done / (time.monotonic() - started)
        print(f"  {done} points, {rate:,.0f} points/s", flush=True)
    import_seconds = time.monotonic() - started
    channel.close()

    stop_started = time.monotonic()
    server.stop()
    stop_seconds = time.monotonic() - stop_started
    index_bytes = sum(
        os.path.getsize(os.path.join(data_dir, "indexes", name))
        for name in os.listdir(os.path.join(data_dir, "indexes")))

    print("restart after SIGTERM", flush=True)
    clean = time_to_first_search(server, query)

    port = server.wait_for_port()
    channel, stub = server.stub(port)
    raw_import = channel.stream_unary(
        "/vecdb.v1.VectorDB/Import",
        request_serializer=lambda data: data,
        response_deserializer=vecdb_pb2.ImportResponse.FromString)
    extra = clustered_vectors(args.extra_writes, seed=43)
    raw_import((upsert_request_bytes(args.points + offset,
                                     extra[offset:offset + BATCH])
                for offset in range(0, len(extra), BATCH)), timeout=3600)
    channel.close()
    server.kill()
    print(f"restart after {args.extra_writes} more writes and SIGKILL",
          flush=True)
    killed = time_to_first_search(server, query)
    server.stop()

    shutil.rmtree(os.path.join(data_dir, "indexes"))
    print("restart with the index files removed (rebuild)", flush=True)
    rebuild = time_to_first_search(server, query)
    server.stop()

    total = args.points + args.extra_writes
    lines = [
        f"Restart of vecdb-server with {total:,} HNSW points "
        f"(128-d, m 16, ef_construction 100), "
        f"{os.cpu_count()} cores; time from process start to the first "
        f"answered search.",
        "",
        "| start | seconds | vs rebuild |",
        "| --- | ---: | ---: |",
        f"| after SIGTERM (checkpoint saved at stop) | {clean:.2f} | "
        f"{rebuild / clean:.1f}x faster |",
        f"| after SIGKILL ({args.extra_writes:,} writes replayed) | "
        f"{killed:.2f} | {rebuild / killed:.1f}x faster |",
        f"| rebuild from RocksDB (no index files) | {rebuild:.2f} | 1.0x |",
        "",
        f"Import of {args.points:,} points: {import_seconds:.1f} s "
        f"({args.points / import_seconds:,.0f} points/s). Stop with "
        f"checkpoint: {stop_seconds:.1f} s. Index files (the newest two are "
        f"kept): "
        f"{index_bytes / 2**20:,.0f} MiB.",
        "",
        f"Goal: under 5 s with a checkpoint: "
        f"{'met' if max(clean, killed) < 5 else 'NOT met'}; at least 10x "
        f"faster than the rebuild: "
        f"{'met' if rebuild / max(clean, killed) >= 10 else 'NOT met'}.",
    ]
    text = "\n".join(lines)
    print()
    print(text)
    if args.results:
        with open(args.results, "w") as f:
            f.write("# Restart benchmark\n\n")
            f.write("Command: `bench/restart_bench.py "
                    f"--points {args.points} --results {args.results}`\n\n")
            f.write(text + "\n")
    shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
