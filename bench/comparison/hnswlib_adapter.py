#!/usr/bin/python3
"""Benchmark hnswlib (Debian's python3-hnswlib) in-process.

Usage: hnswlib_adapter.py SPEC.json OUT.json (formats in bench/compare.py).

The build adds the base vectors in chunks of 10,000 with one thread per
core. Single queries run one at a time on CPU 0 with num_threads=1;
batches of 100 use one thread per core. hnswlib's "l2" space ranks by the
squared distance, which gives the same order as L2, and its "cosine" space
normalises the vectors itself. The disk size is that of save_index.
"""

import os
import sys
import time

import hnswlib

import common


def build(spec, progress, cores):
    index = hnswlib.Index(space="cosine" if spec["metric"] == "cosine"
                          else "l2", dim=spec["dim"])
    index.init_index(max_elements=spec["base_count"], M=spec["m"],
                     ef_construction=spec["ef_construction"])
    progress(f"build of {spec['base_count']} points")
    began = time.perf_counter()
    for first, rows in common.row_chunks(spec["base"], spec["dim"],
                                         spec["base_count"]):
        index.add_items(rows, range(first, first + len(rows)),
                        num_threads=cores)
    return index, time.perf_counter() - began


def main(spec_path, out_path):
    spec = common.read_spec(spec_path)
    progress = common.Progress(spec, "hnswlib")
    cores = os.cpu_count()
    index, build_seconds = build(spec, progress, cores)

    queries = common.read_rows(spec["queries"], spec["dim"], 0,
                               spec["query_count"])
    sweep = []
    for ef in spec["ef_search"]:
        progress(f"ef_search {ef}")
        index.set_ef(ef)

        previous = common.pin_current_thread(0)
        found, single_qps = common.time_single_queries(
            lambda i: index.knn_query(queries[i], common.TOP_K,
                                      num_threads=1)[0][0],
            len(queries), spec.get("repeats", 1))
        os.sched_setaffinity(0, previous)

        batch_qps = common.time_batches(
            lambda rows: index.knn_query(rows, common.TOP_K,
                                         num_threads=cores), queries,
            spec.get("repeats", 1))
        sweep.append({"param": f"ef_search {ef}", "qps": single_qps,
                      "batch_qps": batch_qps,
                      "ids": [[int(i) for i in row] for row in found]})

    index_path = os.path.join(spec["work_dir"], "hnswlib.index")
    index.save_index(index_path)
    common.write_library_out(
        out_path, "hnswlib", "python3-hnswlib",
        f"HNSW M {spec['m']}, "
        f"ef_construction {spec['ef_construction']}",
        build_seconds, index_path, sweep)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
