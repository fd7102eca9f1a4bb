#!/usr/bin/python3
"""Benchmark raw FAISS (python3-faiss) in-process: IndexHNSWFlat.

Usage: faiss_adapter.py SPEC.json OUT.json (formats in bench/compare.py).

The build adds the base vectors in chunks of 10,000 on all cores. Single
queries run one at a time on CPU 0 with one OpenMP thread; batches of 100
run on all cores. Cosine is inner product on unit-length vectors. The disk
size is that of faiss.write_index.
"""

import os
import sys
import time

# FAISS's OpenMP threads spin while they wait, which on a shared machine
# steals the cores that other work needs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402

import common  # noqa: E402


def build(spec, progress):
    dimension = spec["dim"]
    if spec["metric"] == "cosine":
        index = faiss.IndexHNSWFlat(dimension, spec["m"],
                                    faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexHNSWFlat(dimension, spec["m"])
    index.hnsw.efConstruction = spec["ef_construction"]
    progress(f"build of {spec['base_count']} points")
    began = time.perf_counter()
    for _, rows in common.row_chunks(spec["base"], dimension,
                                     spec["base_count"]):
        if spec["metric"] == "cosine":
            rows = common.normalized(rows)
        index.add(rows)
    return index, time.perf_counter() - began


def main(spec_path, out_path):
    spec = common.read_spec(spec_path)
    progress = common.Progress(spec, "faiss")
    cores = os.cpu_count()
    faiss.omp_set_num_threads(cores)
    index, build_seconds = build(spec, progress)

    queries = common.read_rows(spec["queries"], spec["dim"], 0,
                               spec["query_count"])
    if spec["metric"] == "cosine":
        queries = common.normalized(queries)
    sweep = []
    for ef in spec["ef_search"]:
        progress(f"ef_search {ef}")
        index.hnsw.efSearch = ef

        faiss.omp_set_num_threads(1)
        previous = common.pin_current_thread(0)
        found, single_qps = common.time_single_queries(
            lambda i: index.search(queries[i:i + 1], common.TOP_K)[1][0],
            len(queries), spec.get("repeats", 1))
        os.sched_setaffinity(0, previous)

        faiss.omp_set_num_threads(cores)
        batch_qps = common.time_batches(
            lambda rows: index.search(rows, common.TOP_K), queries,
            spec.get("repeats", 1))
        sweep.append({"param": f"ef_search {ef}", "qps": single_qps,
                      "batch_qps": batch_qps,
                      "ids": [[int(i) for i in row] for row in found]})

    index_path = os.path.join(spec["work_dir"], "faiss.index")
    faiss.write_index(index, index_path)
    common.write_library_out(
        out_path, "FAISS", "python3-faiss",
        f"IndexHNSWFlat m {spec['m']}, "
        f"ef_construction {spec['ef_construction']}",
        build_seconds, index_path, sweep)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
