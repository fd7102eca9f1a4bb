"""Rapid restarts, kills and shutdowns lose no acknowledged write.

The tests keep a model of what the server acknowledged and compare the
server against it after every restart. Stops use SIGTERM, which must end the
server with status 0 within its shutdown grace period, and crashes use
SIGKILL. A write that was in flight at a kill or shutdown may be stored or
not, but only whole: a request is all or nothing.
"""

import collections
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import grpc
import numpy as np

from harness import (COSINE, FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS,
                     SERVER_BINARY, STOP_TIMEOUT_SECONDS, ServerTestCase,
                     as_float32, point, struct, vecdb_pb2, vecdb_pb2_grpc)

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE

GRACE_SECONDS = 3
# Time allowed past the grace period for cancelling calls and closing
# RocksDB.
EXIT_MARGIN_SECONDS = 5

# One Upsert of a writer thread: the ids it sent, whether the server
# acknowledged it, and its status code.
Attempt = collections.namedtuple("Attempt", "ids acknowledged code")


class ModelTestCase(ServerTestCase):
    """A server and a model of every collection and point it acknowledged."""

    server_args = ("--shutdown_grace_seconds", str(GRACE_SECONDS))
    DIMENSION = 6

    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(31)
        # Collection name to {point id: (float32 vector, metadata dict)}.
        self.model = {}
        self.next_id = 0

    def client_stub(self):
        """Return a stub on a channel of its own to the current server.

        The harness closes its channel before it stops the server, which
        cancels that channel's calls from the client side. Calls that must
        meet the server's own shutdown go through this channel instead.
        """
        channel = grpc.insecure_channel(f"127.0.0.1:{self.server.port}")
        self.addCleanup(channel.close)
        return vecdb_pb2_grpc.VectorDBStub(channel)

    def stop_and_time(self):
        """Stop the server with SIGTERM and return the seconds it took."""
        started = time.monotonic()
        self.server.stop()
        return time.monotonic() - started

    def create_modelled(self, name, metric, kind):
        self.create(name, self.DIMENSION, metric, kind, m=8,
                    ef_construction=32)
        self.model[name] = {}

    def drop_modelled(self, name):
        self.stub.DropCollection(vecdb_pb2.DropCollectionRequest(name=name),
                                 timeout=RPC_TIMEOUT_SECONDS)
        del self.model[name]

    def write_round(self, round_number, new_points=20):
        """Insert, replace and delete points in every modelled collection."""
        for name, points in self.model.items():
            old_ids = sorted(points)
            written = {}
            for _ in range(new_points):
                written[f"id{self.next_id}"] = None
                self.next_id += 1
            for point_id in old_ids[:3]:
                written[point_id] = None
            for point_id in written:
                written[point_id] = (
                    as_float32(self.rng.standard_normal(self.DIMENSION)),
                    {"round": round_number, "id": point_id})
            self.upsert(name, [point(i, v, m)
                               for i, (v, m) in written.items()])
            points.update(written)

            deleted = old_ids[3:5]
            if deleted:
                self.stub.Delete(vecdb_pb2.DeleteRequest(collection=name,
                                                         ids=deleted),
                                 timeout=RPC_TIMEOUT_SECONDS)
                for point_id in deleted:
                    del points[point_id]

    def assertMatchesModel(self, context):
        names = [c.name for c in self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections]
        self.assertEqual(names, sorted(self.model), context)
        for name, points in self.model.items():
            ids = sorted(points)
            self.assertEqual(self.count(name), len(ids), f"{context}: {name}")
            found = self.get(name, ids + [f"id{self.next_id}"])
            self.assertEqual([p.id for p in found], ids, f"{context}: {name}")
            for stored in found:
                vector, metadata = points[stored.id]
                self.assertEqual(list(stored.vector), vector,
                                 f"{context}: {name}/{stored.id}")
                self.assertEqual(stored.metadata, struct(metadata),
                                 f"{context}: {name}/{stored.id}")
            # An exact search checks the rebuilt id map without depending
            # on how well the rebuilt HNSW graph approximates.
            for point_id in ids[::9]:
                hits = self.search(name, points[point_id][0], 1,
                                   params=vecdb_pb2.SearchParams(exact=True))
                self.assertEqual([h.id for h in hits], [point_id],
                                 f"{context}: {name}")


class RestartStormTest(ModelTestCase):

    def test_mixed_restart_storm(self):
        self.create_modelled("storm_hnsw", COSINE, HNSW)
        self.create_modelled("storm_flat", L2, FLAT)
        # How each cycle ends: a clean stop, a crash, or a crash straight
        # after the previous restart with no write in between.
        endings = ["sigterm", "sigkill", "sigkill", "sigterm", "idle sigkill",
                   "sigterm", "idle sigterm", "sigkill", "sigkill",
                   "sigterm", "idle sigkill", "sigkill"]
        for cycle, ending in enumerate(endings):
            if not ending.startswith("idle"):
                self.write_round(cycle)
            if cycle % 3 == 1:
                self.create_modelled(f"extra{cycle}", L2, HNSW)
                self.write_round(cycle, new_points=5)
            if cycle % 4 == 3:
                extras = sorted(n for n in self.model if n.startswith("extra"))
                if extras:
                    self.drop_modelled(extras[0])

            if ending.endswith("sigterm"):
                self.restart()
            else:
                self.crash_and_restart()

            self.assertMatchesModel(f"cycle {cycle} after {ending}")

    def test_crashes_before_any_request(self):
        self.create_modelled("docs", L2, HNSW)
        self.write_round(0, new_points=200)

        for _ in range(5):
            self.server.kill9()
            self.server.start(self.server.data_dir)
        self.stub = self.server.stub()

        self.assertMatchesModel("after five crashes in a row")


class KillDuringStartupTest(ModelTestCase):
    """Signals that arrive while the server rebuilds its indexes."""

    DIMENSION = 64
    POINT_COUNT = 20000

    def setUp(self):
        super().setUp()
        self.create_modelled("big", L2, HNSW)
        vectors = as_float32(self.rng.standard_normal(
            (self.POINT_COUNT, self.DIMENSION)))
        for start in range(0, self.POINT_COUNT, 2000):
            batch = {f"p{i}": (vectors[i], {"i": i})
                     for i in range(start, start + 2000)}
            self.upsert("big", [point(i, v, m) for i, (v, m) in batch.items()])
            self.model["big"].update(batch)
        self.server.stop()

    def start_without_waiting(self):
        """Start a server on the same data dir and return it and its port
        file.

        Unlike the harness, this does not wait until the server serves, so
        a signal can reach it while it still loads its data. The index
        checkpoints are removed first, so that the server rebuilds its
        indexes from storage, which takes long enough to be interrupted.
        """
        index_dir = os.path.join(self.server.data_dir, "indexes")
        for name in os.listdir(index_dir):
            os.remove(os.path.join(index_dir, name))
        run_dir = tempfile.mkdtemp(prefix="vecdb-e2e-startup-")
        self.addCleanup(shutil.rmtree, run_dir, ignore_errors=True)
        port_file = os.path.join(run_dir, "port")
        log = open(os.path.join(run_dir, "server.log"), "wb")
        self.addCleanup(log.close)
        process = subprocess.Popen(
            [SERVER_BINARY, "--data_dir", self.server.data_dir,
             "--listen", "127.0.0.1:0", "--port_file", port_file],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.addCleanup(self.reap, process)
        return process, port_file

    def reap(self, process):
        if process.poll() is None:
            process.kill()
            process.wait()

    def wait_until_loading(self, process):
        """Give the server time to open RocksDB and start the rebuild.

        The rebuild of POINT_COUNT points takes over a second, so 0.3 s
        lands inside it. Callers check that the port file is still absent.
        """
        time.sleep(0.3)
        self.assertIsNone(process.poll(), "the server exited while loading")

    def test_sigkill_while_loading(self):
        for _ in range(3):
            process, port_file = self.start_without_waiting()
            self.wait_until_loading(process)
            served_already = os.path.exists(port_file)

            process.kill()
            process.wait()

            self.assertFalse(served_already,
                             "the rebuild ended before the kill; raise "
                             "POINT_COUNT so the kill lands while loading")

        self.server.start(self.server.data_dir)
        self.stub = self.server.stub()
        self.assertMatchesModel("after kills while loading")

    def test_sigterm_while_loading_exits_cleanly(self):
        process, port_file = self.start_without_waiting()
        self.wait_until_loading(process)
        self.assertFalse(os.path.exists(port_file))

        process.terminate()
        status = process.wait(timeout=STOP_TIMEOUT_SECONDS)

        self.server.start(self.server.data_dir)
        self.stub = self.server.stub()
        self.assertMatchesModel("after SIGTERM while loading")
        self.assertEqual(status, 0, "SIGTERM during the index rebuild must "
                         "be handled like any other, not end the process")


class ShutdownDuringImportTest(ModelTestCase):
    """SIGTERM while an Import stream is open on its own channel."""

    DIMENSION = 64
    POINTS_PER_REQUEST = 200

    def setUp(self):
        super().setUp()
        self.create_modelled("bulk", L2, HNSW)
        self.sent_requests = 0
        self.release_stream = threading.Event()
        self.addCleanup(self.release_stream.set)

    def request_ids(self, position):
        return [f"r{position}-{i}" for i in range(self.POINTS_PER_REQUEST)]

    def import_requests(self, total, pause_after=None):
        """Yield `total` requests, pausing after `pause_after` of them until
        release_stream is set (at most RPC_TIMEOUT_SECONDS)."""
        rng = np.random.default_rng(41)
        for position in range(total):
            if position == pause_after:
                self.release_stream.wait(timeout=RPC_TIMEOUT_SECONDS)
            vectors = rng.standard_normal(
                (self.POINTS_PER_REQUEST, self.DIMENSION))
            self.sent_requests = position + 1
            yield vecdb_pb2.UpsertRequest(
                collection="bulk",
                points=[point(point_id, vectors[i])
                        for i, point_id in enumerate(
                            self.request_ids(position))])

    def start_import(self, requests):
        """Run Import in a thread on a separate channel.

        Returns a dict that contains "upserted" or "error" once the call
        ends, and the thread.
        """
        stub = self.client_stub()
        result = {}

        def run():
            try:
                result["upserted"] = stub.Import(
                    requests, timeout=RPC_TIMEOUT_SECONDS).upserted
            except grpc.RpcError as error:
                result["error"] = (error.code(), error.details())

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.addCleanup(thread.join, RPC_TIMEOUT_SECONDS)
        return result, thread

    def wait_for_requests(self, count):
        deadline = time.monotonic() + 30
        while self.sent_requests < count and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertGreaterEqual(self.sent_requests, count)

    def stored_requests(self, total):
        """Return how many leading requests are stored, asserting that
        every request is whole or absent and that no gap exists."""
        stored = []
        for position in range(total):
            ids = self.request_ids(position)
            found = [p.id for p in self.get("bulk", ids)]
            self.assertIn(found, ([], ids),
                          f"request {position} is partly stored")
            stored.append(bool(found))
        prefix = stored.index(False) if False in stored else total
        self.assertEqual(stored, [True] * prefix + [False] * (total - prefix),
                         "stored requests must be the first ones sent")
        self.assertEqual(self.count("bulk"), prefix * self.POINTS_PER_REQUEST)
        return prefix

    def test_large_import_cut_off_by_shutdown(self):
        total = 400
        result, thread = self.start_import(self.import_requests(total))
        self.wait_for_requests(10)

        elapsed = self.stop_and_time()

        self.assertLess(elapsed, GRACE_SECONDS + EXIT_MARGIN_SECONDS)
        thread.join(timeout=RPC_TIMEOUT_SECONDS)
        self.assertFalse(thread.is_alive())
        self.server.start(self.server.data_dir)
        self.stub = self.server.stub()
        prefix = self.stored_requests(total)
        if "upserted" in result:
            self.assertEqual(result["upserted"],
                             prefix * self.POINTS_PER_REQUEST)
            self.assertEqual(prefix, total)
        else:
            code, message = result["error"]
            self.assertEqual(code, UNAVAILABLE, message)
            self.assertLess(prefix, total)
            # A message that counts the stored points must count right.
            counted = re.search(r"(\d+) points? from earlier requests", message)
            if counted:
                self.assertEqual(int(counted.group(1)),
                                 prefix * self.POINTS_PER_REQUEST)

    def test_import_finishing_within_grace_is_stored(self):
        # 20 small requests finish well inside a 10 s grace period.
        self.server.stop()
        self.server.extra_args = ["--shutdown_grace_seconds", "10"]
        self.server.start(self.server.data_dir)
        self.stub = self.server.stub()
        total = 20
        result, thread = self.start_import(
            self.import_requests(total, pause_after=5))
        self.wait_for_requests(5)

        # The stream resumes only after SIGTERM, so the rest of it must be
        # served during the grace period.
        release = threading.Timer(0.5, self.release_stream.set)
        release.start()
        self.addCleanup(release.cancel)
        self.server.stop()

        thread.join(timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(result.get("upserted"),
                         total * self.POINTS_PER_REQUEST, result)
        self.server.start(self.server.data_dir)
        self.stub = self.server.stub()
        self.assertEqual(self.stored_requests(total), total)

    def test_idle_import_stream_allows_shutdown(self):
        result, thread = self.start_import(
            self.import_requests(10, pause_after=3))
        self.wait_for_requests(3)
        time.sleep(0.3)

        elapsed = self.stop_and_time()

        self.assertLess(elapsed, GRACE_SECONDS + EXIT_MARGIN_SECONDS)
        self.release_stream.set()
        thread.join(timeout=RPC_TIMEOUT_SECONDS)
        self.assertIn("error", result)
        self.assertEqual(result["error"][0], UNAVAILABLE, result["error"][1])
        self.server.start(self.server.data_dir)
        self.stub = self.server.stub()
        self.assertIn(self.stored_requests(10), (0, 1, 2, 3))


class ShutdownDuringWritesTest(ModelTestCase):
    """SIGTERM and SIGKILL while several clients upsert."""

    WRITERS = 3
    POINTS_PER_WRITE = 10

    def write_until_failure(self, stub, writer, cycle, log):
        """Upsert batches of new ids until a call fails, appending an Attempt
        to log for every call."""
        for batch in range(10000):
            ids = [f"c{cycle}-w{writer}-b{batch}-{i}"
                   for i in range(self.POINTS_PER_WRITE)]
            try:
                stub.Upsert(vecdb_pb2.UpsertRequest(
                    collection="busy",
                    points=[point(point_id, [writer, batch, i, cycle, 1, 1])
                            for i, point_id in enumerate(ids)]),
                    timeout=RPC_TIMEOUT_SECONDS)
            except grpc.RpcError as error:
                log.append(Attempt(ids, False, error.code()))
                return
            log.append(Attempt(ids, True, grpc.StatusCode.OK))

    def run_cycle(self, cycle, stop):
        log = []
        threads = [threading.Thread(target=self.write_until_failure,
                                    args=(self.client_stub(), w, cycle, log),
                                    daemon=True)
                   for w in range(self.WRITERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while (sum(1 for attempt in log if attempt.acknowledged) < 30 and
               time.monotonic() < deadline):
            time.sleep(0.01)
        stop()
        for thread in threads:
            thread.join(timeout=RPC_TIMEOUT_SECONDS)
        self.assertFalse(any(thread.is_alive() for thread in threads))
        return log

    def assertLogStored(self, log):
        """Assert acknowledged batches are stored and failed ones whole or
        absent, then add what is stored to the model."""
        for attempt in log:
            found = [p.id for p in self.get("busy", attempt.ids)]
            if attempt.acknowledged:
                self.assertEqual(found, attempt.ids,
                                 "an acknowledged batch is lost")
            else:
                self.assertIn(found, ([], attempt.ids),
                              "a batch is partly stored")
            for stored in self.get("busy", found):
                self.model["busy"][stored.id] = (list(stored.vector), {})

    def test_writes_survive_stop_and_kill_cycles(self):
        self.create_modelled("busy", L2, HNSW)
        stops = [("sigterm", self.server.stop), ("sigkill", self.server.kill9),
                 ("sigterm", self.server.stop), ("sigkill", self.server.kill9)]
        for cycle, (name, stop) in enumerate(stops):
            log = self.run_cycle(cycle, stop)
            failed = [a for a in log if not a.acknowledged]
            self.assertEqual(len(failed), self.WRITERS,
                             f"cycle {cycle} ({name})")

            self.server.start(self.server.data_dir)
            self.stub = self.server.stub()

            self.assertLogStored(log)
            self.assertMatchesModel(f"cycle {cycle} after {name}")

    def test_writes_during_shutdown_get_unavailable(self):
        # A write that meets a shutting-down server must fail with
        # UNAVAILABLE, which clients retry, never with CANCELLED, which
        # reads as if the client had given up.
        self.create_modelled("busy", L2, HNSW)

        log = self.run_cycle(0, self.server.stop)

        codes = [a.code for a in log if not a.acknowledged]
        self.assertEqual(codes, [UNAVAILABLE] * self.WRITERS)


class IdleConnectionShutdownTest(ModelTestCase):
    """SIGTERM with clients connected but no call in flight.

    Nothing needs the grace period then, so the server should exit about as
    fast as with no client at all. The default grace period of 30 s is kept
    so that a wait for idle connections shows up as a slow exit.
    """

    server_args = ()
    PROMPT_EXIT_SECONDS = 3

    def test_exit_with_idle_grpc_channel(self):
        self.create_modelled("docs", L2, FLAT)
        # A channel that made one call and stays open, as a pooled client
        # connection would.
        self.client_stub().ListCollections(vecdb_pb2.ListCollectionsRequest(),
                                           timeout=RPC_TIMEOUT_SECONDS)

        elapsed = self.stop_and_time()

        self.assertLess(elapsed, self.PROMPT_EXIT_SECONDS)

    def test_exit_with_silent_tcp_connection(self):
        # A client that connects and never sends its HTTP/2 preface.
        connection = socket.create_connection(("127.0.0.1", self.server.port))
        self.addCleanup(connection.close)

        elapsed = self.stop_and_time()

        self.assertLess(elapsed, self.PROMPT_EXIT_SECONDS)


if __name__ == "__main__":
    unittest.main()
