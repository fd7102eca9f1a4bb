"""Eight writers and eight readers over loopback for a fixed number of calls.

Writers upsert batches that mix ids every writer shares, written with
different metadata, and ids of their own. Each version of a point has a
vector computed from its metadata (writer and sequence number), so a reader
can tell a record that mixes two versions from one that some call wrote.
"""

import random
import threading
import unittest

import grpc
import numpy as np

from harness import (L2, HNSW, RPC_TIMEOUT_SECONDS, ServerTestCase, point,
                     vecdb_pb2)

WRITERS = 8
READERS = 8
CALLS_PER_THREAD = 400
POINTS_PER_BATCH = 6
SHARED_IDS = [f"shared-{i}" for i in range(24)]
DIMENSION = 8


def version_vector(writer, sequence):
    """Return the float32 vector that version (writer, sequence) carries."""
    seed = writer * 1_000_000 + sequence
    return (np.random.default_rng(seed).random(DIMENSION) + 0.1).astype(
        np.float32)


class StressTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.create("stress", DIMENSION, L2, HNSW)
        self.lock = threading.Lock()
        self.errors = []
        # id -> every (writer, sequence) version sent for it.
        self.sent_versions = {}
        self.acknowledged_ids = set()

    def record_error(self, where, error):
        with self.lock:
            self.errors.append(f"{where}: {error}")

    def write_loop(self, writer):
        stub = self.server.stub()
        rng = random.Random(writer)
        for call in range(CALLS_PER_THREAD):
            points = []
            for slot in range(POINTS_PER_BATCH):
                sequence = call * POINTS_PER_BATCH + slot
                if slot % 2 == 0:
                    point_id = rng.choice(SHARED_IDS)
                else:
                    point_id = f"own-{writer}-{sequence}"
                if any(p.id == point_id for p in points):
                    continue
                points.append(point(point_id, version_vector(writer, sequence),
                                    {"writer": writer, "sequence": sequence}))
            with self.lock:
                for p in points:
                    self.sent_versions.setdefault(p.id, set()).add(
                        (writer, int(p.metadata["sequence"])))
            try:
                stub.Upsert(vecdb_pb2.UpsertRequest(collection="stress",
                                                    points=points),
                            timeout=RPC_TIMEOUT_SECONDS)
            except grpc.RpcError as error:
                self.record_error(f"writer {writer} call {call}",
                                  error.details())
                continue
            with self.lock:
                self.acknowledged_ids.update(p.id for p in points)

    def check_record(self, stored, where):
        """Check that a stored point is one complete version that was sent."""
        writer = int(stored.metadata["writer"])
        sequence = int(stored.metadata["sequence"])
        expected = version_vector(writer, sequence)
        if not np.array_equal(np.asarray(stored.vector, np.float32), expected):
            self.record_error(where, f"{stored.id} has the vector of another "
                                     f"version than ({writer}, {sequence})")
        with self.lock:
            sent = (writer, sequence) in self.sent_versions.get(stored.id, ())
        if not sent:
            self.record_error(where, f"{stored.id} has version ({writer}, "
                                     f"{sequence}), which no call wrote")

    def read_loop(self, reader):
        stub = self.server.stub()
        rng = random.Random(1000 + reader)
        last_count = 0
        for call in range(CALLS_PER_THREAD):
            where = f"reader {reader} call {call}"
            try:
                if call % 3 == 0:
                    ids = rng.sample(SHARED_IDS, 4)
                    for stored in stub.Get(vecdb_pb2.GetRequest(
                            collection="stress", ids=ids),
                            timeout=RPC_TIMEOUT_SECONDS).points:
                        self.check_record(stored, where)
                elif call % 3 == 1:
                    query = np.random.default_rng(call).random(DIMENSION)
                    response = stub.Search(vecdb_pb2.SearchRequest(
                        collection="stress", vector=query.tolist(), top_k=10,
                        include_vectors=True, include_metadata=True),
                        timeout=RPC_TIMEOUT_SECONDS)
                    ids = [hit.id for hit in response.hits]
                    if len(ids) != len(set(ids)):
                        self.record_error(where, f"duplicate hits {ids}")
                    for hit in response.hits:
                        self.check_record(hit, where)
                else:
                    count = stub.Count(vecdb_pb2.CountRequest(
                        collection="stress"),
                        timeout=RPC_TIMEOUT_SECONDS).count
                    # Only new ids and replaces happen, so the count never
                    # falls.
                    if count < last_count:
                        self.record_error(where, f"count fell from "
                                                 f"{last_count} to {count}")
                    last_count = count
            except grpc.RpcError as error:
                self.record_error(where, error.details())

    def test_concurrent_writers_and_readers(self):
        threads = ([threading.Thread(target=self.write_loop, args=(w,))
                    for w in range(WRITERS)] +
                   [threading.Thread(target=self.read_loop, args=(r,))
                    for r in range(READERS)])
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        self.assertEqual(self.errors, [])
        self.assertTrue(self.server.running())
        ids = sorted(self.acknowledged_ids)
        self.assertEqual(self.count("stress"), len(ids))
        stored = self.get("stress", ids)
        self.assertEqual(sorted(p.id for p in stored), ids)
        for record in stored:
            self.check_record(record, "final Get")
        self.assertEqual(self.errors, [])


if __name__ == "__main__":
    unittest.main()
