"""Concurrent Search clients that measure vecdb's latency.

Each client is a separate process (Python threads would share one
interpreter lock and measure the client rather than the server) with its own
gRPC channel. The requests are serialized SearchRequest messages, so the
clients spend no time building them.
"""

import multiprocessing
import time

import grpc

SEARCH_METHOD = "/vecdb.v1.VectorDB/Search"
WARM_UP_REQUESTS = 5
RESULT_TIMEOUT_SECONDS = 3600


def run_client(address, requests, barrier, results):
    """Send requests one after another; put (start, end, latencies)."""
    with grpc.insecure_channel(address) as channel:
        search = channel.unary_unary(SEARCH_METHOD)
        for request in requests[:WARM_UP_REQUESTS]:
            search(request)
        barrier.wait()
        latencies = []
        began = time.monotonic()
        for request in requests:
            sent = time.perf_counter()
            search(request)
            latencies.append(time.perf_counter() - sent)
        results.put((began, time.monotonic(), latencies))


def measure(address, requests, clients):
    """Split requests over clients processes that start together.

    Returns a dict with the clients, the 50th and 99th percentile latency
    in milliseconds and the total queries per second.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(clients)
    results = context.Queue()
    processes = [
        context.Process(target=run_client,
                        args=(address, requests[i::clients], barrier,
                              results))
        for i in range(clients)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=RESULT_TIMEOUT_SECONDS)
                for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a latency client exited with status "
                               f"{process.exitcode}")

    latencies = sorted(value for _, _, values in outcomes for value in values)
    seconds = (max(end for _, end, _ in outcomes) -
               min(start for start, _, _ in outcomes))

    def percentile(share):
        return 1000 * latencies[min(len(latencies) - 1,
                                    int(share * len(latencies)))]

    return {"clients": clients, "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99), "qps": len(latencies) / seconds}
