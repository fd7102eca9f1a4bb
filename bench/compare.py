#!/usr/bin/python3
"""Compare vecdb's search speed and memory with raw FAISS and its peers.

One run builds the same HNSW index (m 16, ef_construction 100) on the same
data in vecdb (through gRPC), raw FAISS and hnswlib (in-process), and runs
the Node adapters in bench/peers/, which do the same with LanceDB and
Chroma.
Every system then searches the same queries at ef_search 16 to 512, and
this script measures recall@10 against exact ground truth from the ids
each returns. It writes bench/results/compare.md (compare-quick.md with
--quick), PNG plots beside it, and prints the goal ratios on Fashion-MNIST
with L2.

Data sets (--datasets, all by default):
  fashion-l2, fashion-cosine  Fashion-MNIST, 60,000 x 784, test images as
                              queries
  fiori-cosine                778 x 384 Fiori documentation embeddings,
                              each its own query
  synthetic-l2                1,000,000 x 128 clustered vectors from
                              bench/clustered.py (200,000 with --quick)

Systems (--systems, all by default): vecdb, faiss, hnswlib, lancedb,
chroma. Each runs as an adapter process, PROGRAM SPEC.json OUT.json:
bench/comparison/{vecdb,faiss,hnswlib}_adapter.py and
`node bench/peers/NAME.mjs`. SPEC.json contains
  dim, metric ("l2" or "cosine"), k (10), base and queries (paths of raw
  little-endian float32 row-major files), base_count, query_count,
  ef_search (list), concurrency (list of client counts), work_dir (an
  empty folder the adapter may use), m, ef_construction,
  latency_ef_search (the ef_search at which vecdb measured latency, for
  the peers; absent for vecdb itself), latency_requests (Search calls per
  concurrency level), repeats (passes over the queries per measurement,
  of which the fastest counts) and label (for progress lines).
The ids of the points are their row numbers, as decimal strings where a
system needs strings. OUT.json contains
  system, version, index, ingest_seconds, disk_bytes, peak_rss_bytes (or
  null), sweep (a list of {param, qps, ids: per query the row ids of its
  top k}, and optionally batch_qps), latency (a list of {clients, p50_ms,
  p99_ms, qps}) and error (null, or a message on failure).
"qps" is queries per second with one query at a time. A peer that fails
to install or run is reported as failed in the results.

Runs on a shared machine are noisy: the results record the load average
before and after.

Usage (after scripts/build.sh and scripts/fetch-data.sh; scripts/bench.sh
does all of it):
  /usr/bin/python3 bench/compare.py [--quick] [--datasets LIST]
      [--systems LIST] [--cache-dir DIR]
"""

import argparse
import collections
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, os.path.join(BENCH_DIR, "comparison"))

import common  # noqa: E402
import datasets  # noqa: E402
import report  # noqa: E402

EF_SEARCH = [16, 32, 64, 128, 256, 512]
CONCURRENCY = [1, 4, 16]
M = 16
EF_CONSTRUCTION = 100
SYSTEMS = ["vecdb", "faiss", "hnswlib", "lancedb", "chroma"]
NODE_PEERS = {"lancedb": "LanceDB", "chroma": "Chroma"}
PYTHON_SYSTEMS = {"vecdb": "vecdb", "faiss": "FAISS", "hnswlib": "hnswlib"}
ADAPTER_TIMEOUT_SECONDS = 6 * 3600
STARTED = time.monotonic()


def option_defaults(quick):
    """Return the default of each option that shown_command may print."""
    return {"datasets": ",".join(datasets.DATASETS),
            "systems": ",".join(SYSTEMS), "repeats": 3,
            "queries": 300 if quick else 1000,
            "latency_requests": 600 if quick else 2000}


def parse_args():
    defaults = option_defaults(quick=False)
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="use the 200,000-row synthetic subset and at "
                        "most 300 queries per data set")

    parser.add_argument("--datasets", default=defaults["datasets"],
                        help="comma-separated data sets "
                        "(default: %(default)s)")
    parser.add_argument("--systems", default=defaults["systems"],
                        help="comma-separated systems (default: %(default)s)")

    default_cache = os.environ.get("VECDB_CACHE_DIR",
                                   os.path.join(REPO, ".cache"))
    parser.add_argument("--cache-dir",
                        default=os.path.join(default_cache, "bench-compare"),
                        help="folder for the vector files and ground truth "
                        "(default: %(default)s)")
    parser.add_argument("--fiori-cache-dir", default=default_cache,
                        help="folder into which scripts/fetch-data.sh "
                        "unpacked the Fiori corpus (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=None,
                        help="queries per data set (default: 1000, or 300 "
                        "with --quick; Fiori uses its 778 vectors at most)")
    parser.add_argument("--latency-requests", type=int, default=None,
                        help="Search calls per concurrency level (default: "
                        "2000, or 600 with --quick)")

    parser.add_argument("--repeats", type=int, default=defaults["repeats"],
                        help="passes over the queries for each q/s figure; "
                        "the fastest counts (default: %(default)s)")
    parser.add_argument("--server-binary",
                        default=os.path.join(REPO, "build", "rpc",
                                             "vecdb-server"),
                        help="vecdb-server to start (default: %(default)s)")
    parser.add_argument("--search-client",
                        default=os.path.join(REPO, "build", "bench",
                                             "search_client"),
                        help="C++ Search client that measures vecdb a second "
                        "time without Python's per-call cost; skipped when "
                        "missing (default: %(default)s)")
    parser.add_argument("--python-stubs",
                        default=os.path.join(REPO, "build", "python"),
                        help="folder of the generated vecdb/v1 Python stubs "
                        "(default: %(default)s)")
    parser.add_argument("--peers-dir", default=os.path.join(BENCH_DIR,
                                                            "peers"),
                        help="folder of install.sh and the NAME.mjs "
                        "adapters (default: %(default)s)")
    parser.add_argument("--output", default=None,
                        help="Markdown results file (default: "
                        "bench/results/compare.md, or compare-quick.md with "
                        "--quick); plots go beside it")

    args = parser.parse_args()
    for name in args.datasets.split(","):
        if name not in datasets.DATASETS:
            parser.error(f"unknown data set {name!r}; choose from "
                         f"{', '.join(datasets.DATASETS)}")
    for name in args.systems.split(","):
        if name not in SYSTEMS:
            parser.error(f"unknown system {name!r}; choose from "
                         f"{', '.join(SYSTEMS)}")
    counts = option_defaults(args.quick)
    if args.queries is None:
        args.queries = counts["queries"]
    if args.latency_requests is None:
        args.latency_requests = counts["latency_requests"]
    args.custom_output = args.output is not None
    if args.output is None:
        args.output = os.path.join(BENCH_DIR, "results",
                                   "compare-quick.md" if args.quick
                                   else "compare.md")
    return args


def log(message):
    print(f"[{time.monotonic() - STARTED:7.0f} s] {message}", flush=True)


def load_average():
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def install_peers(peers_dir):
    """Run the peers' install.sh; return None or the reason it failed."""
    script = os.path.join(peers_dir, "install.sh")
    if not os.path.exists(script):
        return f"{script} does not exist"
    log(f"installing the Node peers with {script}")
    result = subprocess.run(["bash", script], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())
        return (f"install.sh exited with status {result.returncode}: "
                f"{output[-500:]}")
    return None


def run_adapter(command, spec, name):
    """Run an adapter on spec; return its OUT.json, with error on failure.

    The adapter's output is echoed as it comes (its progress lines), and
    its last lines go into the error when it fails.
    """
    work_dir = tempfile.mkdtemp(prefix=f"vecdb-compare-{name}-")
    spec = dict(spec, work_dir=os.path.join(work_dir, "work"))
    os.makedirs(spec["work_dir"])
    spec_path = os.path.join(work_dir, "spec.json")
    out_path = os.path.join(work_dir, "out.json")
    with open(spec_path, "w") as file:
        json.dump(spec, file)
    failure = {"system": name, "sweep": [], "latency": []}
    tail = collections.deque(maxlen=4)
    try:
        process = subprocess.Popen(command + [spec_path, out_path],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            print(line, end="", flush=True)
            # Stack frames and blank lines would crowd out the message.
            if line.strip() and not line.strip().startswith("at "):
                tail.append(line.strip())
        status = process.wait(timeout=ADAPTER_TIMEOUT_SECONDS)
        if status != 0:
            return dict(failure, error=f"exited with status {status}: "
                        + " / ".join(tail))
        if not os.path.exists(out_path):
            return dict(failure, error="wrote no OUT.json")
        with open(out_path) as file:
            out = json.load(file)
        if out.get("error"):
            return dict(failure, **{key: value for key, value in out.items()
                                    if key == "system"},
                        error=out["error"])
        return out
    except (OSError, ValueError, subprocess.TimeoutExpired) as error:
        return dict(failure, error=f"{type(error).__name__}: {error}")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def adapter_command(system, args):
    if system in PYTHON_SYSTEMS:
        return ["/usr/bin/python3", os.path.join(
            BENCH_DIR, "comparison", f"{system}_adapter.py")]
    return ["node", os.path.join(args.peers_dir, f"{system}.mjs")]


def run_dataset(dataset, systems, args, peer_install_error):
    """Run every system on one data set; return their results."""
    spec = {"dim": dataset.dim, "metric": dataset.metric, "k": common.TOP_K,
            "base": dataset.base, "base_count": dataset.base_count,
            "queries": dataset.queries, "query_count": dataset.query_count,
            "ef_search": EF_SEARCH, "concurrency": CONCURRENCY,
            "m": M, "ef_construction": EF_CONSTRUCTION,
            "label": dataset.name,
            "latency_requests": args.latency_requests,
            "repeats": args.repeats}
    results = []
    for system in systems:
        display = PYTHON_SYSTEMS.get(system) or NODE_PEERS[system]
        log(f"{dataset.name}: {display}")
        adapter = adapter_command(system, args)
        system_spec = dict(spec)
        if system == "vecdb":
            system_spec.update(server_binary=args.server_binary,
                               python_stubs=args.python_stubs,
                               truth=dataset.truth_path)
            if os.path.exists(args.search_client):
                system_spec["search_client"] = args.search_client
            else:
                log(f"{args.search_client} not found: vecdb is measured "
                    f"from Python only")
        if system in NODE_PEERS and peer_install_error:
            out = {"system": display, "sweep": [], "latency": [],
                   "error": f"not installed: {peer_install_error}"}
        elif system in NODE_PEERS and not os.path.exists(adapter[1]):
            out = {"system": display, "sweep": [], "latency": [],
                   "error": f"adapter {adapter[1]} does not exist"}
        else:
            out = run_adapter(adapter, system_spec, display)
        out["system"] = display
        if system == "vecdb" and out.get("latency"):
            spec["latency_ef_search"] = out["latency"][0].get("ef_search")
        if out.get("error"):
            log(f"{dataset.name}: {display} failed: {out['error']}")
        # A variant is the same server measured from another client: it
        # shares the ingest, memory, disk and batch figures.
        variants = out.pop("variants", None) or []
        results.append(out)
        for variant in variants:
            batch = {entry["param"]: entry.get("batch_qps")
                     for entry in out.get("sweep") or []}
            sweep = [dict(entry, batch_qps=batch.get(entry["param"]))
                     for entry in variant["sweep"]]
            results.append(dict(out, system=f"{display} ({variant['client']})",
                                sweep=sweep, latency=variant["latency"]))
        for result in results[-1 - len(variants):]:
            for entry in result.get("sweep") or []:
                if "ids" in entry:
                    entry["recall"] = common.recall_at_k(entry.pop("ids"),
                                                         dataset.truth)
    return results


def machine_description():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{os.cpu_count()} cores ({model}), {memory / 2**30:.0f} GiB"


def shown_command(args):
    """Return the command line of this run without the default paths."""
    words = ["bench/compare.py"]
    defaults = option_defaults(args.quick)
    if args.quick:
        words.append("--quick")
    for option in ("datasets", "systems", "queries", "latency_requests",
                   "repeats"):
        value = getattr(args, option)
        if value != defaults[option]:
            words.append(f"--{option.replace('_', '-')} {value}")
    if args.custom_output:
        output = os.path.abspath(args.output)
        inside = os.path.relpath(output, REPO)
        shown = output if inside.startswith("..") else inside
        words.append(f"--output {shown}")
    return " ".join(words)


def main():
    args = parse_args()
    systems = [name for name in SYSTEMS if name in args.systems.split(",")]
    names = args.datasets.split(",")
    began = datetime.datetime.now(datetime.timezone.utc)
    load_before = load_average()
    log(f"load average {load_before}; data sets {', '.join(names)}; "
        f"systems {', '.join(systems)}")

    peer_install_error = None
    if any(system in NODE_PEERS for system in systems):
        peer_install_error = install_peers(args.peers_dir)
        if peer_install_error:
            log(f"the Node peers are not installed: {peer_install_error}")

    prepared, results = [], {}
    for name in names:
        log(f"{name}: preparing the data and ground truth")
        dataset = datasets.prepare(
            name, args.cache_dir, args.fiori_cache_dir, args.quick,
            args.queries, lambda message: log(f"{name}: {message}"))
        prepared.append(dataset)
        results[name] = run_dataset(dataset, systems, args,
                                    peer_install_error)

    load_after = load_average()
    command = shown_command(args)
    header = [
        "# vecdb beside raw FAISS, hnswlib, LanceDB and Chroma", "",
        f"Produced by `{command.strip()}` (`scripts/bench.sh` runs it), "
        f"started {began:%Y-%m-%d %H:%M} UTC, "
        f"{(time.monotonic() - STARTED) / 60:.0f} minutes. Machine: "
        f"{machine_description()}, Debian 12. The machine was shared with "
        f"other builds and benchmarks: load average (1, 5, 15 minutes) "
        f"{load_before} before the run and {load_after} after it, so "
        "figures vary between runs.", "",
        f"Every system builds HNSW with m {M} and ef_construction "
        f"{EF_CONSTRUCTION} and sweeps ef_search over "
        f"{', '.join(map(str, EF_SEARCH))}. \"q/s single\" is one query "
        "at a time: vecdb's server pinned to CPU 0 and its Python gRPC "
        "client to CPU 1 (taskset), FAISS and hnswlib in one thread on "
        "CPU 0. \"q/s batch\" is batches of 100 queries on both cores "
        f"(vecdb SearchBatch). Each q/s figure is the fastest of "
        f"{args.repeats} passes over the queries, the one least disturbed "
        "by other work; the ids of the first pass give the recall. "
        "vecdb's client is Python, so its per-call cost is part of "
        "vecdb's single q/s; \"vecdb (C++ client)\" is the same server "
        "measured from bench/search_client, whose latency clients are "
        "threads of one process. vecdb's ingest is two Import streams of "
        "1,000-point requests, timed until every point is in the graph; "
        "FAISS and hnswlib time adding the vectors in chunks of 10,000 on "
        "both cores. Peak RSS is the process's VmHWM: vecdb's server, or "
        "the adapter process for the in-process libraries, which reads "
        "its input in chunks. Disk is vecdb's data dir after a clean stop "
        "or the library's saved index. Latency is measured with separate "
        "Python client processes calling Search, which share the two "
        "cores with the server, so with 16 clients the clients' own "
        "scheduling is part of the tail. recall@10 is measured against "
        "exact search (FAISS flat).", ""]
    goals = report.write(args.output, header, [vars(d) for d in prepared],
                         results)
    summary = os.path.splitext(args.output)[0] + ".json"
    with open(summary, "w") as file:
        json.dump({"command": command, "load_before": load_before,
                   "load_after": load_after, "results": results}, file,
                  indent=1)
    log(f"wrote {args.output}; load average {load_after}")
    if goals:
        print("\nGoal ratios on Fashion-MNIST, L2 (each system at its "
              "first ef_search with recall@10 >= 0.95):")
        for name, value, goal, note in goals:
            shown = "n/a" if value is None else f"{value:.2f}"
            print(f"  {name}: {shown} (goal {goal}; {note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
