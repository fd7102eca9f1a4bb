"""Helpers shared by the adapters that bench/compare.py runs.

Every system under test, vecdb and the in-process libraries as much as the
Node peers in bench/peers/, is an adapter program called as

    PROGRAM SPEC.json OUT.json

SPEC.json names the data (raw little-endian float32 files, row-major, the
point ids being the row numbers) and the parameters; OUT.json returns the
build time, sizes, the ids found for each query at each ef_search and the
latencies. bench/compare.py documents both formats.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

# Ids per query that adapters return and recall is measured on.
TOP_K = 10
# Queries per batch when a system searches many at once.
BATCH_SIZE = 100


def read_spec(path):
    with open(path) as file:
        return json.load(file)


def write_out(path, out):
    with open(path, "w") as file:
        json.dump(out, file)


def write_library_out(path, system, package, index, build_seconds,
                      index_path, sweep):
    """Write OUT.json for an in-process library whose index is saved at
    index_path. Such a library has no latency runs, and its peak RSS is
    that of this process.
    """
    write_out(path, {
        "system": system,
        "version": debian_version(package),
        "index": index,
        "ingest_seconds": build_seconds,
        "disk_bytes": os.path.getsize(index_path),
        "peak_rss_bytes": peak_rss_bytes(),
        "sweep": sweep,
        "latency": [],
        "error": None,
    })


def read_rows(path, dimension, first, count):
    """Return rows [first, first + count) of a float32 file as an array."""
    return np.fromfile(path, dtype="<f4", count=count * dimension,
                       offset=first * dimension * 4).reshape(count, dimension)


def row_chunks(path, dimension, total, chunk=10000):
    """Yield (first row, rows) over the first total rows of a float32 file.

    Reading in chunks keeps the input vectors out of the adapter's peak
    resident memory, which should show the index alone.
    """
    for first in range(0, total, chunk):
        count = min(chunk, total - first)
        yield first, read_rows(path, dimension, first, count)


def normalized(vectors):
    """Return the rows scaled to unit length, as cosine search needs."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-30)).astype(np.float32)


def peak_rss_bytes(pid="self"):
    """Return the peak resident memory (VmHWM) of a process, in bytes."""
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")


def tree_bytes(path):
    """Return the total size of the regular files under path."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            file_path = os.path.join(folder, name)
            if not os.path.islink(file_path):
                total += os.path.getsize(file_path)
    return total


def pin_current_thread(cpu):
    """Run the calling thread on one CPU only; return its previous set."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    return previous


class Progress:
    """Prints progress lines to stderr: data set, system, step, elapsed."""

    def __init__(self, spec, system):
        self.label = spec.get("label", "?")
        self.system = system
        self.started = time.monotonic()

    def __call__(self, step):
        elapsed = time.monotonic() - self.started
        print(f"  [{self.label}] {self.system}: {step} ({elapsed:.0f} s)",
              file=sys.stderr, flush=True)


def time_single_queries(search_one, count, repeats=1):
    """Run search_one(i) for each query index in [0, count), repeats times.

    Returns the results of the first pass and the queries per second of
    the fastest pass. The fastest pass is the one least disturbed by other
    work on the machine.
    """
    found = None
    best = 0.0
    for _ in range(repeats):
        results = []
        began = time.perf_counter()
        for i in range(count):
            results.append(search_one(i))
        best = max(best, count / (time.perf_counter() - began))
        if found is None:
            found = results
    return found, best


def time_batches(search_many, queries, repeats=1):
    """Run search_many(rows) on batches of BATCH_SIZE queries, repeats times.

    Returns the queries per second of the fastest pass.
    """
    best = 0.0
    for _ in range(repeats):
        began = time.perf_counter()
        for first in range(0, len(queries), BATCH_SIZE):
            search_many(queries[first:first + BATCH_SIZE])
        best = max(best, len(queries) / (time.perf_counter() - began))
    return best


def debian_version(package):
    """Return the installed version of a Debian package, or "unknown"."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def recall_at_k(found, truth):
    """Return the mean share of each query's true top TOP_K that was found.

    found is a list of id lists per query, as integers or decimal strings;
    truth a (queries, >= TOP_K) array of exact ids, best first.
    """
    hits = 0
    for ids, expected in zip(found, truth):
        hits += len({int(i) for i in ids[:TOP_K]} &
                    set(expected[:TOP_K].tolist()))
    return hits / (TOP_K * len(truth))
