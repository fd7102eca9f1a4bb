"""Collections and acknowledged points survive clean restarts and kill -9.

Each test records what ListCollections, Get and exact searches return,
restarts the server on the same data dir (after SIGTERM or SIGKILL) and checks
that they return the same again.
"""

import threading
import time
import unittest

import grpc
import numpy as np

from harness import (COSINE, DOT_PRODUCT, FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS,
                     ServerTestCase, point, vecdb_pb2)

DIMENSION = 8
# Collection name, metric and index kind of the collections every test fills.
COLLECTIONS = [("cosine_hnsw", COSINE, HNSW),
               ("dot_flat", DOT_PRODUCT, FLAT),
               ("l2_hnsw", L2, HNSW)]


class PersistenceTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(21)
        # Ids of the points each collection should contain.
        self.live_ids = {name: set() for name, _, _ in COLLECTIONS}
        self.next_id = 0
        for name, metric, kind in COLLECTIONS:
            self.create(name, DIMENSION, metric, kind, m=8, ef_construction=32)

    def write_round(self, points_per_collection=60):
        """Insert new points, replace some old ones and delete a few.

        Every write is acknowledged before this returns.
        """
        for name, _, _ in COLLECTIONS:
            live = sorted(self.live_ids[name])
            new_ids = [f"id{self.next_id + i}"
                       for i in range(points_per_collection)]
            self.next_id += points_per_collection
            replaced = live[:5]
            points = [point(point_id, self.rng.standard_normal(DIMENSION),
                            {"id": point_id, "round": self.next_id})
                      for point_id in new_ids + replaced]
            self.upsert(name, points)
            self.live_ids[name].update(new_ids)

            deleted = live[5:8]
            self.stub.Delete(vecdb_pb2.DeleteRequest(collection=name,
                                                     ids=deleted),
                             timeout=RPC_TIMEOUT_SECONDS)
            self.live_ids[name].difference_update(deleted)

    def snapshot(self):
        """Return the results of every read that must not change on restart."""
        collections = self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections
        state = {"collections": [
            (c.name, c.dimension, c.metric, c.index, c.point_count)
            for c in collections]}
        queries = np.random.default_rng(22).standard_normal((5, DIMENSION))
        for name, _, _ in COLLECTIONS:
            ids = sorted(self.live_ids[name]) + ["id-never-written"]
            state[name] = self.get(name, ids)
            # Exact searches do not depend on how the HNSW graph was rebuilt.
            state[name + " exact"] = [
                [(h.id, h.score) for h in self.search(
                    name, q, 10, params=vecdb_pb2.SearchParams(exact=True))]
                for q in queries]
        return state

    def assertMatchesSnapshot(self, expected):
        actual = self.snapshot()
        self.assertEqual(actual["collections"], expected["collections"])
        for name, _, _ in COLLECTIONS:
            self.assertEqual(len(actual[name]), len(self.live_ids[name]))
            self.assertEqual(actual[name], expected[name], name)
            self.assertEqual(actual[name + " exact"],
                             expected[name + " exact"], name)
            self.assertEqual(self.count(name), len(self.live_ids[name]))

    def assertEveryPointFindsItself(self):
        """Search with stored vectors through the approximate index.

        Under DOT_PRODUCT a longer vector can outscore the query's own point,
        so only the COSINE and L2 collections are checked.
        """
        for name, metric, _ in COLLECTIONS:
            if metric == DOT_PRODUCT:
                continue
            sample = sorted(self.live_ids[name])[::7]
            for stored in self.get(name, sample):
                hits = self.search(name, stored.vector, 1)
                self.assertEqual([h.id for h in hits], [stored.id], name)

    def test_clean_restart_keeps_everything(self):
        self.write_round()
        self.write_round()
        expected = self.snapshot()

        self.restart()

        self.assertMatchesSnapshot(expected)
        self.assertEveryPointFindsItself()

    def test_kill9_keeps_acknowledged_writes(self):
        self.write_round()
        self.write_round()
        expected = self.snapshot()

        self.crash_and_restart()

        self.assertMatchesSnapshot(expected)
        self.assertEveryPointFindsItself()

    def test_writes_after_crash_recovery_survive(self):
        self.write_round()
        self.crash_and_restart()
        self.write_round()
        self.write_round()
        expected = self.snapshot()

        self.restart()

        self.assertMatchesSnapshot(expected)
        self.assertEveryPointFindsItself()

        self.write_round()
        expected = self.snapshot()
        self.crash_and_restart()
        self.assertMatchesSnapshot(expected)

    def test_repeated_crashes_lose_nothing(self):
        for _ in range(3):
            self.write_round(points_per_collection=30)
            expected = self.snapshot()
            self.crash_and_restart()
            self.assertMatchesSnapshot(expected)
        self.assertEveryPointFindsItself()

    def test_dropped_and_new_collections_survive_restart(self):
        self.write_round()
        self.stub.DropCollection(
            vecdb_pb2.DropCollectionRequest(name="dot_flat"),
            timeout=RPC_TIMEOUT_SECONDS)
        self.create("created_late", 3, L2, FLAT)
        self.upsert("created_late", [point("a", [1, 2, 3])])

        self.crash_and_restart()

        names = [c.name for c in self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections]
        self.assertEqual(names, ["cosine_hnsw", "created_late", "l2_hnsw"])
        self.assertEqual(list(self.get("created_late", ["a"])[0].vector),
                         [1, 2, 3])

        # The dropped name starts empty when created again.
        self.create("dot_flat", DIMENSION, DOT_PRODUCT, FLAT)
        self.restart()
        self.assertEqual(self.count("dot_flat"), 0)

    def test_import_survives_kill9(self):
        points = [point(f"imported{i}", self.rng.standard_normal(DIMENSION))
                  for i in range(500)]
        requests = [vecdb_pb2.UpsertRequest(collection="l2_hnsw",
                                            points=points[i:i + 100])
                    for i in range(0, 500, 100)]
        response = self.stub.Import(iter(requests),
                                    timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(response.upserted, 500)

        self.crash_and_restart()

        self.assertEqual(self.count("l2_hnsw"), 500)
        found = self.get("l2_hnsw", [p.id for p in points])
        self.assertEqual([(p.id, list(p.vector)) for p in found],
                         [(p.id, list(p.vector)) for p in points])

    def test_kill9_during_writes_keeps_acknowledged_batches(self):
        stub = self.stub
        acknowledged = []
        failures = []
        batch_size = 20

        def write_until_killed():
            batch_number = 0
            while True:
                points = [point(f"b{batch_number}-{i}",
                                np.full(DIMENSION, batch_number + i + 1.0))
                          for i in range(batch_size)]
                try:
                    stub.Upsert(vecdb_pb2.UpsertRequest(
                        collection="l2_hnsw", points=points),
                        timeout=RPC_TIMEOUT_SECONDS)
                except grpc.RpcError as error:
                    failures.append((batch_number, error.code()))
                    return
                acknowledged.append(batch_number)
                batch_number += 1

        writer = threading.Thread(target=write_until_killed)
        writer.start()
        deadline = time.monotonic() + 10
        while len(acknowledged) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.server.kill9()
        writer.join(timeout=RPC_TIMEOUT_SECONDS)
        self.assertFalse(writer.is_alive())
        self.assertGreaterEqual(len(acknowledged), 20)
        self.assertEqual(len(failures), 1)

        self.server.start(self.server.data_dir)
        self.stub = self.server.stub()

        for batch_number in acknowledged:
            ids = [f"b{batch_number}-{i}" for i in range(batch_size)]
            self.assertEqual(len(self.get("l2_hnsw", ids)), batch_size,
                             f"acknowledged batch {batch_number}")
        # The batch in flight at the kill is either whole or absent.
        in_flight = failures[0][0]
        found = self.get("l2_hnsw",
                         [f"b{in_flight}-{i}" for i in range(batch_size)])
        self.assertIn(len(found), (0, batch_size))
        self.assertEqual(self.count("l2_hnsw"),
                         batch_size * len(acknowledged) + len(found))


class UnsyncedWritesTest(PersistenceTest):
    """The same checks with --sync_writes=false.

    Unsynced writes still survive a crash of the server process, because
    the operating system already has them. Only a power loss or a crash
    of the machine can lose the last ones, which these tests cannot cause.
    """

    server_args = ("--sync_writes=false",)


class FrequentCheckpointsTest(PersistenceTest):
    """The same checks with index checkpoints saved after nearly every write.

    Restarts then load a checkpoint and replay the writes after it instead
    of rebuilding, and kills land before, during and after saves.
    """

    server_args = ("--checkpoint_changes=1", "--checkpoint_seconds=1")


if __name__ == "__main__":
    unittest.main()
