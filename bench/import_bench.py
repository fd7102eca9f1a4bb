#!/usr/bin/python3
"""Measure `vecdb import` beside raw RocksDB writes and raw FAISS adds.

Generates seeded, clustered float32 vectors (128 dimensions by default) into
a .npy file under .cache/bench/ (reused by later runs), then in one run:

  1. imports them with `vecdb import` into a FLAT and an HNSW collection
     (L2, m 16, ef_construction 100), each on a fresh vecdb-server with its
     default synced WAL, and reads the server's peak resident memory
     (VmHWM in /proc/PID/status) before stopping it;
  2. runs build/bench/import_baseline for raw RocksDB writes of the same
     bytes (synced WAL, same batch size) and raw FAISS adds into the same
     index kinds in-process;
  3. prints the rates, the ratios and the goals:
       FLAT import >= 0.5 x raw RocksDB rate
       HNSW import >= 0.8 x raw FAISS HNSW add rate
       server peak memory <= 1.5 x (raw vectors + FAISS index bytes)

Usage: /usr/bin/python3 bench/import_bench.py [--points 100000]
Needs a Release build in build/ (or --build_dir) with vecdb-server, vecdb
and import_baseline.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMMARY = re.compile(r"imported (\d+) points into '[^']*' in ([\d.]+) s "
                     r"\((\d+) points/s\)")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000,
                        help="vectors to generate and import (default "
                        "1,000,000)")
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch_size", type=int, default=1000,
                        help="points per request and per raw batch")
    parser.add_argument("--streams", type=int, default=2,
                        help="parallel Import streams of `vecdb import`")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef_construction", type=int, default=100)
    parser.add_argument("--kinds", default="flat,hnsw",
                        help="index kinds to measure, comma-separated")
    parser.add_argument("--build_dir", default=os.path.join(REPO, "build"))
    parser.add_argument("--cache_dir", default=os.path.join(REPO, ".cache",
                                                            "bench"))
    parser.add_argument("--work_dir", default=None,
                        help="where server data and the RocksDB baseline go "
                        "(default: a new temporary directory)")
    parser.add_argument("--output", help="also write the figures as JSON")
    return parser.parse_args()


def generate_vectors(args):
    """Write the clustered vectors once and return the .npy path.

    Each vector is a random cluster centre plus unit Gaussian noise; the
    centres are Gaussian with standard deviation 3.
    """
    os.makedirs(args.cache_dir, exist_ok=True)
    path = os.path.join(
        args.cache_dir, f"clustered-{args.points}x{args.dimension}-"
        f"c{args.clusters}-seed{args.seed}.npy")
    if os.path.exists(path):
        return path
    print(f"generating {args.points} vectors into {path}", flush=True)
    rng = np.random.default_rng(args.seed)
    centres = 3 * rng.standard_normal((args.clusters, args.dimension))
    partial = path + ".partial"
    array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32,
                                      shape=(args.points, args.dimension))
    chunk = 100_000
    for start in range(0, args.points, chunk):
        count = min(chunk, args.points - start)
        labels = rng.integers(0, args.clusters, count)
        array[start:start + count] = (
            centres[labels] + rng.standard_normal((count, args.dimension)))
    array.flush()
    del array
    os.replace(partial, path)
    return path


def peak_resident_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


class Server:
    """A vecdb-server on 127.0.0.1 with a fresh data directory."""

    def __init__(self, binary, work_dir, name):
        self.data_dir = os.path.join(work_dir, f"data-{name}")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        port_file = os.path.join(work_dir, f"port-{name}")
        if os.path.exists(port_file):
            os.remove(port_file)
        self.log = open(os.path.join(work_dir, f"server-{name}.log"), "wb")
        self.process = subprocess.Popen(
            [binary, "--data_dir", self.data_dir, "--listen", "127.0.0.1:0",
             "--port_file", port_file],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"vecdb-server exited with status "
                                   f"{self.process.returncode}")
            if os.path.exists(port_file):
                with open(port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.address = f"127.0.0.1:{int(text)}"
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("vecdb-server did not start within 60 s")
            time.sleep(0.05)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def run_import(args, npy, kind, work_dir):
    server = Server(os.path.join(args.build_dir, "rpc", "vecdb-server"),
                    work_dir, kind)
    try:
        command = [os.path.join(args.build_dir, "rpc", "vecdb"), "import", npy,
                   "--server", server.address, "--collection", f"bench_{kind}",
                   "--create", "--metric", "l2", "--index", kind,
                   "--batch_size", str(args.batch_size),
                   "--streams", str(args.streams),
                   "--progress_interval", "30"]
        if kind == "hnsw":
            command += ["--m", str(args.m),
                        "--ef_construction", str(args.ef_construction)]
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True)
        wall_seconds = time.monotonic() - started
        sys.stderr.write(result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"vecdb import failed:\n{result.stdout}")
        match = SUMMARY.search(result.stdout)
        # The rate printed by the tool is computed from unrounded seconds.
        imported, rate = int(match.group(1)), int(match.group(3))
        if imported != args.points:
            raise RuntimeError(f"imported {imported} of {args.points} points")
        peak = peak_resident_bytes(server.process.pid)
    finally:
        server.stop()
    return {"points_per_second": rate, "wall_seconds": wall_seconds,
            "server_peak_bytes": peak}


def run_baseline(args, npy, mode, work_dir):
    command = [os.path.join(args.build_dir, "bench", "import_baseline"),
               "--npy", npy, "--mode", mode,
               "--batch_size", str(args.batch_size),
               "--m", str(args.m),
               "--ef_construction", str(args.ef_construction),
               "--work_dir", os.path.join(work_dir, "rocksdb-baseline")]
    result = subprocess.run(command, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)


def report(args, figures):
    raw_vector_bytes = args.points * args.dimension * 4
    print()
    print(f"{args.points} vectors of {args.dimension} float32, batches of "
          f"{args.batch_size}, {args.streams} Import streams, "
          f"{os.cpu_count()} cores")
    print(f"{'measurement':44} {'points/s':>12}")
    print(f"{'raw RocksDB writes (synced WAL)':44} "
          f"{figures['rocksdb']['points_per_second']:12.0f}")
    for kind in args.kinds.split(","):
        print(f"{'raw FAISS ' + kind.upper() + ' adds':44} "
              f"{figures['faiss_' + kind]['points_per_second']:12.0f}")
        imported = figures["import_" + kind]
        print(f"{'vecdb import, ' + kind.upper():44} "
              f"{imported['points_per_second']:12.0f}  (whole command "
              f"{imported['wall_seconds']:.1f} s, with the local check)")
    print()

    rows = []
    if "flat" in args.kinds:
        flat = figures["import_flat"]["points_per_second"]
        rocksdb = figures["rocksdb"]["points_per_second"]
        rows.append(("FLAT import / raw RocksDB", flat / rocksdb, ">=", 0.5))
    if "hnsw" in args.kinds:
        hnsw = figures["import_hnsw"]["points_per_second"]
        faiss = figures["faiss_hnsw"]["points_per_second"]
        rows.append(("HNSW import / raw FAISS HNSW", hnsw / faiss, ">=", 0.8))
    for kind in args.kinds.split(","):
        peak = figures["import_" + kind]["server_peak_bytes"]
        budget = raw_vector_bytes + figures["faiss_" + kind]["index_bytes"]
        print(f"{kind.upper()}: server peak memory {peak / 2**20:.0f} MiB, "
              f"raw vectors {raw_vector_bytes / 2**20:.0f} MiB + FAISS index "
              f"{figures['faiss_' + kind]['index_bytes'] / 2**20:.0f} MiB")
        rows.append((f"{kind.upper()} peak memory / (vectors + index)",
                     peak / budget, "<=", 1.5))
    print()
    print(f"{'ratio':44} {'measured':>9} {'goal':>8}  met")
    for name, value, relation, goal in rows:
        met = value >= goal if relation == ">=" else value <= goal
        print(f"{name:44} {value:9.3f} {relation:>4} {goal:<4}  "
              f"{'yes' if met else 'no'}")


def main():
    args = parse_arguments()
    npy = generate_vectors(args)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="vecdb-import-bench-")
    os.makedirs(work_dir, exist_ok=True)
    figures = {}
    try:
        print("raw RocksDB writes", flush=True)
        figures["rocksdb"] = run_baseline(args, npy, "rocksdb", work_dir)
        for kind in args.kinds.split(","):
            print(f"raw FAISS {kind.upper()} adds", flush=True)
            figures["faiss_" + kind] = run_baseline(args, npy, kind, work_dir)
            print(f"vecdb import into {kind.upper()}", flush=True)
            figures["import_" + kind] = run_import(args, npy, kind, work_dir)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    report(args, figures)
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"arguments": vars(args), "figures": figures}, f,
                      indent=2)


if __name__ == "__main__":
    main()
