"""CreateSnapshot writes a data dir that serves exactly the state it saw.

A test takes a snapshot, writes more, starts a second server on a copy of
the snapshot directory and checks that it shows the snapshot's state and
none of the later writes.
"""

import os
import shutil
import tempfile
import unittest

import numpy as np

from harness import (COSINE, FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS,
                     ServerProcess, ServerTestCase, point, vecdb_pb2)

DIMENSION = 8


class SnapshotTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(3)
        self.create("graph", DIMENSION, L2, HNSW, m=8, ef_construction=32)
        self.create("exact", DIMENSION, COSINE, FLAT)
        for name in ("graph", "exact"):
            self.upsert(name, [point(f"p{i}", self.rng.standard_normal(
                DIMENSION), {"i": i}) for i in range(300)])
            self.stub.Delete(vecdb_pb2.DeleteRequest(
                collection=name, ids=[f"p{i}" for i in range(20)]),
                timeout=RPC_TIMEOUT_SECONDS)

    def state(self, stub):
        """Collections, every point, and exact and graph search results."""
        collections = stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections
        result = {"collections": [(c.name, c.point_count)
                                  for c in collections]}
        queries = np.random.default_rng(4).standard_normal((5, DIMENSION))
        for c in collections:
            result[c.name] = list(stub.Get(vecdb_pb2.GetRequest(
                collection=c.name, ids=[f"p{i}" for i in range(400)]),
                timeout=RPC_TIMEOUT_SECONDS).points)
            result[c.name + " search"] = [
                [(h.id, h.score) for h in stub.Search(
                    self.search_request(c.name, q, 10),
                    timeout=RPC_TIMEOUT_SECONDS).hits]
                for q in queries]
        return result

    def snapshot(self):
        response = self.stub.CreateSnapshot(
            vecdb_pb2.CreateSnapshotRequest(), timeout=RPC_TIMEOUT_SECONDS)
        return response.path

    def serve_copy_of(self, snapshot_path):
        """Copy the snapshot to a new data dir and start a server on it."""
        copy = os.path.join(tempfile.mkdtemp(prefix="vecdb-e2e-copy-"),
                            "data")
        self.addCleanup(shutil.rmtree, os.path.dirname(copy),
                        ignore_errors=True)
        shutil.copytree(snapshot_path, copy)
        server = ServerProcess()
        self.addCleanup(server.close)
        server.start(copy)
        return server

    def test_copy_of_snapshot_serves_the_snapshot_state(self):
        expected = self.state(self.stub)
        path = self.snapshot()
        self.assertTrue(os.path.isabs(path))
        self.assertEqual(os.path.dirname(path),
                         os.path.join(os.path.realpath(self.server.data_dir),
                                      "snapshots"))

        # Writes after the snapshot must not show in it.
        self.upsert("graph", [point(f"p{i}", np.ones(DIMENSION))
                              for i in range(0, 400, 3)])
        self.stub.Delete(vecdb_pb2.DeleteRequest(
            collection="exact", ids=[f"p{i}" for i in range(100, 200)]),
            timeout=RPC_TIMEOUT_SECONDS)
        self.stub.DropCollection(vecdb_pb2.DropCollectionRequest(
            name="exact"), timeout=RPC_TIMEOUT_SECONDS)
        self.create("later", DIMENSION, L2, FLAT)
        self.assertNotEqual(self.state(self.stub), expected)

        copy = self.serve_copy_of(path)
        self.assertEqual(self.state(copy.stub()), expected)
        # The copy is a data dir like any other: it takes writes and
        # survives a restart.
        copy_stub = copy.stub()
        copy_stub.Upsert(vecdb_pb2.UpsertRequest(
            collection="exact", points=[point("new", np.ones(DIMENSION))]),
            timeout=RPC_TIMEOUT_SECONDS)
        copy.restart()
        self.assertEqual(len(copy.stub().Get(vecdb_pb2.GetRequest(
            collection="exact", ids=["new"]),
            timeout=RPC_TIMEOUT_SECONDS).points), 1)

    def test_snapshot_taken_right_after_writes_without_checkpoint(self):
        # No checkpoint has been saved yet; the snapshot saves its own.
        self.upsert("graph", [point("late", np.full(DIMENSION, 2.0))])
        expected = self.state(self.stub)
        copy = self.serve_copy_of(self.snapshot())
        self.assertEqual(self.state(copy.stub()), expected)

    def test_two_snapshots_get_distinct_directories(self):
        first = self.snapshot()
        second = self.snapshot()
        self.assertNotEqual(first, second)
        self.assertTrue(os.path.isdir(os.path.join(first, "rocksdb")))
        self.assertTrue(os.path.isdir(os.path.join(second, "indexes")))

    def test_snapshot_survives_server_restart(self):
        expected = self.state(self.stub)
        path = self.snapshot()
        self.restart()
        self.upsert("graph", [point("after", np.ones(DIMENSION))])
        self.assertEqual(self.state(self.serve_copy_of(path).stub()),
                         expected)


if __name__ == "__main__":
    unittest.main()
