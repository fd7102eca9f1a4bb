"""The /metrics endpoint, and health while the database opens.

With --metrics_listen the server serves GET /metrics in the Prometheus text
format. While it opens its database, it already listens: the health service
reports NOT_SERVING and VectorDB calls fail with UNAVAILABLE.
"""

import os
import socket
import threading
import time
import unittest
import urllib.error
import urllib.request

import grpc
import numpy as np

from harness import (COSINE, FLAT, HEALTH_SERVING, HealthCheckRequest,
                     HealthCheckResponse, RPC_TIMEOUT_SECONDS, ServerTestCase,
                     point, vecdb_pb2, vecdb_pb2_grpc)

HEALTH_NOT_SERVING = HealthCheckResponse.DESCRIPTOR.enum_values_by_name[
    "NOT_SERVING"].number


def free_port():
    """Return a port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def parse_metrics(text):
    """Return {'name{labels}': value} for every sample line of text."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


# Debian's civetweb 1.15 runs requests on threads with a small fixed stack,
# which its printf-style formatting overflows in a server built with
# AddressSanitizer, so the endpoint cannot be tested in that build.
@unittest.skipIf("address" in os.environ.get("VECDB_SANITIZE", ""),
                 "civetweb's worker stack overflows under AddressSanitizer")
class MetricsTest(ServerTestCase):

    def setUp(self):
        self.metrics_port = free_port()
        self.server = self.start_server(
            "--metrics_listen", f"127.0.0.1:{self.metrics_port}")
        self.stub = self.server.stub()

    def fetch(self, path="/metrics"):
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        with urllib.request.urlopen(url, timeout=RPC_TIMEOUT_SECONDS) as reply:
            self.assertIn("text/plain", reply.headers["Content-Type"])
            return reply.read().decode()

    def test_counts_requests_and_points(self):
        self.create("docs", 2, COSINE, FLAT)
        self.upsert("docs", [point(str(i), [1, i]) for i in range(3)])
        self.search("docs", [1, 0], 2)
        self.assertRejected(grpc.StatusCode.INVALID_ARGUMENT, self.stub.Search,
                            self.search_request("docs", [0, 0], 2))

        samples = parse_metrics(self.fetch())
        self.assertEqual(
            samples['vecdb_requests_total{method="Search",code="OK"}'], 1)
        self.assertEqual(samples['vecdb_requests_total{method="Search",'
                                 'code="INVALID_ARGUMENT"}'], 1)
        self.assertEqual(
            samples['vecdb_requests_total{method="Upsert",code="OK"}'], 1)
        self.assertEqual(
            samples['vecdb_request_duration_seconds_count{method="Search"}'],
            2)
        self.assertEqual(samples['vecdb_request_duration_seconds_bucket'
                                 '{method="Search",le="+Inf"}'], 2)
        self.assertEqual(
            samples['vecdb_collection_points{collection="docs"}'], 3)
        self.assertGreater(
            samples['vecdb_collection_memory_bytes{collection="docs"}'], 0)
        # A new collection's index was never rebuilt.
        self.assertEqual(samples['vecdb_collection_index_builds_total'
                                 '{collection="docs"}'], 0)
        self.assertEqual(samples["vecdb_database_open"], 1)

    def test_reports_checkpoint_age(self):
        self.create("docs", 2, COSINE, FLAT)
        age = 'vecdb_collection_checkpoint_age_seconds{collection="docs"}'
        self.assertNotIn(age, parse_metrics(self.fetch()))
        self.upsert("docs", [point("a", [1, 0])])
        # A snapshot writes a checkpoint of every collection first.
        self.stub.CreateSnapshot(vecdb_pb2.CreateSnapshotRequest(),
                                 timeout=RPC_TIMEOUT_SECONDS)
        samples = parse_metrics(self.fetch())
        self.assertGreaterEqual(samples[age], 0)
        self.assertLess(samples[age], 60)

    def test_other_paths_not_found(self):
        with self.assertRaises(urllib.error.HTTPError) as raised:
            self.fetch("/secrets")
        self.assertEqual(raised.exception.code, 404)


class OpeningTest(ServerTestCase):
    """A restart that must reload many points shows the opening phase."""

    POINTS = 60000
    DIMENSION = 256

    def setUp(self):
        # Checkpoints are pushed far out, so that the restart after the kill
        # reads every vector back from RocksDB.
        self.port = free_port()
        self.server = self.start_server(
            "--listen", f"127.0.0.1:{self.port}",
            "--checkpoint_changes", "100000000", "--checkpoint_seconds",
            "3600")
        self.stub = self.server.stub()

    def poll_until_serving(self, health_statuses, call_codes, stop):
        """Record health and ListCollections results until SERVING.

        Each attempt opens a new channel, so that no reconnect backoff
        hides the moment when the server starts to listen.
        """
        while not stop.is_set():
            with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                check = channel.unary_unary(
                    "/grpc.health.v1.Health/Check",
                    request_serializer=HealthCheckRequest.SerializeToString,
                    response_deserializer=HealthCheckResponse.FromString)
                try:
                    status = check(HealthCheckRequest(), timeout=1).status
                except grpc.RpcError:
                    time.sleep(0.005)
                    continue  # Not listening yet.
                health_statuses.append(status)
                try:
                    vecdb_pb2_grpc.VectorDBStub(channel).ListCollections(
                        vecdb_pb2.ListCollectionsRequest(), timeout=1)
                    call_codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as error:
                    call_codes.append(error.code())
            if status == HEALTH_SERVING:
                return

    def test_not_serving_while_opening(self):
        self.create("docs", self.DIMENSION, COSINE, FLAT)
        rng = np.random.default_rng(7)
        for start in range(0, self.POINTS, 2000):
            vectors = rng.random((2000, self.DIMENSION), dtype=np.float32)
            self.upsert("docs", [vecdb_pb2.Point(id=str(start + i),
                                                 vector=vector.tolist())
                                 for i, vector in enumerate(vectors)])

        self.server.kill9()
        health_statuses = []
        call_codes = []
        stop = threading.Event()
        poller = threading.Thread(target=self.poll_until_serving,
                                  args=(health_statuses, call_codes, stop))
        poller.start()
        try:
            self.server.start(self.server.data_dir)
            poller.join(timeout=30)
        finally:
            stop.set()
            poller.join()
        self.stub = self.server.stub()

        # Health goes from NOT_SERVING to SERVING once, and calls from
        # UNAVAILABLE to OK once. The two switch a moment apart, so each
        # sequence is checked on its own.
        seen = f"health {health_statuses}, calls {call_codes}"
        self.assertIn(HEALTH_NOT_SERVING, health_statuses, seen)
        self.assertEqual(health_statuses[-1], HEALTH_SERVING, seen)
        first_serving = health_statuses.index(HEALTH_SERVING)
        self.assertEqual(set(health_statuses[:first_serving]),
                         {HEALTH_NOT_SERVING}, seen)
        self.assertEqual(set(health_statuses[first_serving:]),
                         {HEALTH_SERVING}, seen)
        self.assertIn(grpc.StatusCode.UNAVAILABLE, call_codes, seen)
        self.assertEqual(call_codes[-1], grpc.StatusCode.OK, seen)
        first_ok = call_codes.index(grpc.StatusCode.OK)
        self.assertEqual(set(call_codes[:first_ok]),
                         {grpc.StatusCode.UNAVAILABLE}, seen)
        self.assertEqual(set(call_codes[first_ok:]), {grpc.StatusCode.OK},
                         seen)
        self.assertEqual(self.count("docs"), self.POINTS)
        log = self.server.log()
        self.assertLess(log.index("opening the database"),
                        log.index("serving on"))


if __name__ == "__main__":
    unittest.main()
