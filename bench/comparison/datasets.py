"""The data sets of bench/compare.py, written once as float32 files.

Each data set becomes a base file and a query file of raw little-endian
float32 rows, which every adapter reads. Its exact ground truth contains
the ids of the 100 nearest base rows of each query, found by FAISS's flat
(brute force) search. All three are cached in the cache folder, with names that
contain the data set, size, query count, metric and seed, so a later run
reuses them.
"""

import gzip
import os
import struct
import sys
from dataclasses import dataclass

import numpy as np

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BENCH_DIR)

from clustered import clustered_vectors  # noqa: E402

TRUTH_K = 100
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FIORI_EMBEDDINGS = "fiori-docs-embeddings-1.2.6/data/embeddings/embeddings.bin"
FIORI_DIMENSION = 384
SYNTHETIC_FULL = 1000000
SYNTHETIC_QUICK = 200000
SYNTHETIC_QUERIES = 1000
SYNTHETIC_SEED = 5

# Data set name: (title, metric).
DATASETS = {
    "fashion-l2": ("Fashion-MNIST, L2", "l2"),
    "fashion-cosine": ("Fashion-MNIST, cosine", "cosine"),
    "fiori-cosine": ("Fiori documentation embeddings, cosine", "cosine"),
    "synthetic-l2": ("Synthetic clustered vectors, L2", "l2"),
}


@dataclass
class Dataset:
    name: str
    title: str
    metric: str
    dim: int
    base: str
    base_count: int
    queries: str
    query_count: int
    truth_path: str
    truth: np.ndarray
    source: str


def read_idx_images(path):
    """Return the images of an IDX file as (count, rows * cols) float32."""
    with gzip.open(path, "rb") as file:
        _, count, rows, cols = struct.unpack(">4I", file.read(16))
        pixels = np.frombuffer(file.read(), dtype=np.uint8)
    return pixels.reshape(count, rows * cols).astype(np.float32)


def write_rows(path, vectors):
    """Write float32 rows to path through a temporary file, atomically."""
    partial = path + ".partial"
    np.ascontiguousarray(vectors, dtype="<f4").tofile(partial)
    os.replace(partial, path)


def exact_top(base, queries, metric, k):
    """Return the ids of the k nearest base rows of each query."""
    import faiss
    if metric == "cosine":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        index = faiss.IndexFlatIP(base.shape[1])
    else:
        index = faiss.IndexFlatL2(base.shape[1])
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32),
                          min(k, len(base)))
    return ids


def synthetic_files(cache_dir, count, log):
    """Return the base and query files of the synthetic set of count rows.

    The full set is generated once; the quick set is its first rows, with
    the same queries.
    """
    stem = os.path.join(cache_dir, f"synthetic-seed{SYNTHETIC_SEED}")
    full_base = f"{stem}-base-{SYNTHETIC_FULL}.f32"
    queries = f"{stem}-queries-{SYNTHETIC_QUERIES}.f32"
    if not (os.path.exists(full_base) and os.path.exists(queries)):
        log(f"generating {SYNTHETIC_FULL} synthetic vectors")
        base_rows, query_rows = clustered_vectors(
            SYNTHETIC_FULL, SYNTHETIC_QUERIES, seed=SYNTHETIC_SEED)
        write_rows(queries, query_rows)
        write_rows(full_base, base_rows)
        del base_rows
    base = f"{stem}-base-{count}.f32"
    if not os.path.exists(base):
        write_rows(base, np.fromfile(full_base, dtype="<f4",
                                     count=count * 128))
    return base, queries


def prepare(name, cache_dir, fiori_cache_dir, quick, query_limit, log):
    """Write (or reuse) the files of data set name; return a Dataset.

    quick selects the 200,000-row synthetic subset; query_limit caps the
    number of queries.
    """
    title, metric = DATASETS[name]
    os.makedirs(cache_dir, exist_ok=True)
    if name.startswith("fashion"):
        base = os.path.join(cache_dir, "fashion-mnist-base-60000.f32")
        queries = os.path.join(cache_dir, "fashion-mnist-queries-10000.f32")
        if not (os.path.exists(base) and os.path.exists(queries)):
            write_rows(base, read_idx_images(os.path.join(
                FASHION_DIR, "train-images-idx3-ubyte.gz")))
            write_rows(queries, read_idx_images(os.path.join(
                FASHION_DIR, "t10k-images-idx3-ubyte.gz")))
        dim, base_count, available, seed = 784, 60000, 10000, "none"
        source = ("Debian dataset-fashion-mnist: the 60,000 training images "
                  "as base, the first test images as queries, raw pixels")
    elif name == "fiori-cosine":
        base = os.path.join(fiori_cache_dir, FIORI_EMBEDDINGS)
        if not os.path.exists(base):
            raise FileNotFoundError(f"{base} is missing; run "
                                    "scripts/fetch-data.sh")
        queries = base
        dim, seed = FIORI_DIMENSION, "none"
        base_count = available = os.path.getsize(base) // (4 * dim)
        source = ("npm @sap-ux/fiori-docs-embeddings 1.2.6: all-MiniLM-L6-v2 "
                  "embeddings, each also a query")
    else:
        base_count = SYNTHETIC_QUICK if quick else SYNTHETIC_FULL
        base, queries = synthetic_files(cache_dir, base_count, log)
        dim, available, seed = 128, SYNTHETIC_QUERIES, SYNTHETIC_SEED
        share = ("all" if base_count == SYNTHETIC_FULL else
                 f"the first {base_count:,} of {SYNTHETIC_FULL:,}")
        source = (f"bench/clustered.py, seed {seed}: {share} base rows, "
                  "further rows as queries")

    query_count = min(available, query_limit)
    truth_path = os.path.join(
        cache_dir, f"truth-{name}-n{base_count}-q{query_count}-seed{seed}"
        f"-top{TRUTH_K}.npy")
    if not os.path.exists(truth_path):
        log(f"exact top {TRUTH_K} of {query_count} queries")
        truth = exact_top(
            np.fromfile(base, dtype="<f4",
                        count=base_count * dim).reshape(-1, dim),
            np.fromfile(queries, dtype="<f4",
                        count=query_count * dim).reshape(-1, dim),
            metric, TRUTH_K)
        np.save(truth_path + ".partial.npy", truth)
        os.replace(truth_path + ".partial.npy", truth_path)
    return Dataset(name, title, metric, dim, base, base_count, queries,
                   query_count, truth_path, np.load(truth_path), source)
