"""Acknowledged writes survive SIGKILL at random moments.

Client threads upsert, replace and delete points while the server is
killed with SIGKILL, over several rounds. The server saves index
checkpoints and compacts its indexes often, so kills land before, during
and after those too. After each restart an acknowledged upsert is present
with its vector and metadata and an acknowledged delete is absent. Only the
writes cut off by the kill may have gone either way. Searches must find
exactly the points that Get finds.

VECDB_CRASH_ROUNDS sets the number of kills (default 8).
"""

import os
import random
import threading
import time
import unittest

import grpc
import numpy as np

from harness import (COSINE, FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS,
                     ServerTestCase, point, vecdb_pb2)

DIMENSION = 16
THREADS = 4
IDS_PER_THREAD = 120
ROUNDS = int(os.environ.get("VECDB_CRASH_ROUNDS", "8"))
# Collection name, metric and index kind.
COLLECTIONS = [("graph", L2, HNSW), ("exact", COSINE, FLAT)]
ABSENT = None


class CrashTest(ServerTestCase):

    # Small thresholds, so that checkpoints and compactions run all the
    # time.
    server_args = ("--checkpoint_changes=200", "--checkpoint_seconds=1",
                   "--compact_min_deleted=50",
                   "--compact_deleted_fraction=0.1")

    def setUp(self):
        super().setUp()
        for name, metric, kind in COLLECTIONS:
            self.create(name, DIMENSION, metric, kind, m=8,
                        ef_construction=32)
        # For each (collection, id), the states a restart may show: ABSENT
        # or a (version, vector) pair. One state once acknowledged; more
        # while a write to it was cut off by a kill.
        self.allowed = {(name, f"t{t}-{i}"): {ABSENT}
                        for name, _, _ in COLLECTIONS
                        for t in range(THREADS)
                        for i in range(IDS_PER_THREAD)}
        self.acknowledged = 0
        self.checked = 0
        self.graph_sampled = 0
        self.graph_found = 0
        self.unexpected = []
        self.lock = threading.Lock()

    def writer(self, stub, thread, seed, killed):
        """Write to this thread's own ids until a call fails."""
        rng = random.Random(seed)
        version = seed * 1000000
        while True:
            name = rng.choice(COLLECTIONS)[0]
            ids = rng.sample([f"t{thread}-{i}" for i in range(IDS_PER_THREAD)],
                             rng.randint(1, 8))
            if rng.random() < 0.3:
                new_states = {point_id: ABSENT for point_id in ids}
                call = lambda: stub.Delete(
                    vecdb_pb2.DeleteRequest(collection=name, ids=ids),
                    timeout=RPC_TIMEOUT_SECONDS)
            else:
                new_states = {}
                points = []
                for point_id in ids:
                    version += 1
                    vector = np.float32(
                        np.random.default_rng(version).standard_normal(
                            DIMENSION))
                    new_states[point_id] = (version, tuple(vector.tolist()))
                    points.append(point(point_id, vector,
                                        {"version": version}))
                call = lambda: stub.Upsert(
                    vecdb_pb2.UpsertRequest(collection=name, points=points),
                    timeout=RPC_TIMEOUT_SECONDS)
            try:
                call()
            except grpc.RpcError as error:
                with self.lock:
                    for point_id, state in new_states.items():
                        self.allowed[(name, point_id)].add(state)
                    if not killed.is_set():
                        self.unexpected.append(f"{error.code()}: "
                                               f"{error.details()}")
                return
            with self.lock:
                for point_id, state in new_states.items():
                    self.allowed[(name, point_id)] = {state}
                self.acknowledged += 1

    def verify(self, round_number):
        """Check every point against what was acknowledged, then accept the
        state found as the only one allowed from now on."""
        for name, _, _ in COLLECTIONS:
            ids = sorted(point_id for (collection, point_id) in self.allowed
                         if collection == name)
            found = {p.id: p for p in self.get(name, ids)}
            for point_id in ids:
                stored = found.get(point_id)
                state = ABSENT if stored is None else (
                    int(stored.metadata["version"]), tuple(stored.vector))
                self.assertIn(
                    state, self.allowed[(name, point_id)],
                    f"round {round_number}: {name}/{point_id} is "
                    f"{'absent' if state is ABSENT else 'version %d' % state[0]}"
                    f", which no write left it in")
                self.allowed[(name, point_id)] = {state}
                self.checked += 1

            # A search over every point returns exactly the stored ones.
            hits = self.search(name, np.ones(DIMENSION), len(ids) + 10)
            self.assertEqual(sorted(h.id for h in hits), sorted(found),
                             f"round {round_number}: {name}")
            # An exact scan of the index finds each stored point by its own
            # vector, so the index contains every stored vector. A graph
            # search nearly always does too. Under heavy replacement HNSW
            # can leave a few nodes that no search reaches until the next
            # compaction rebuilds the graph.
            sample = list(found.values())[::5]
            graph_found = 0
            for stored in sample:
                top = self.search(name, stored.vector, 1,
                                  params=vecdb_pb2.SearchParams(exact=True))
                self.assertEqual([h.id for h in top], [stored.id],
                                 f"round {round_number}: {name}")
                top = self.search(name, stored.vector, 1,
                                  params=vecdb_pb2.SearchParams(
                                      ef_search=1000))
                graph_found += [h.id for h in top] == [stored.id]
            self.graph_sampled += len(sample)
            self.graph_found += graph_found
            self.assertGreaterEqual(graph_found, 0.9 * len(sample),
                                    f"round {round_number}: {name}")

    def test_acknowledged_writes_survive_sigkill(self):
        rng = random.Random(5)
        for round_number in range(ROUNDS):
            killed = threading.Event()
            stub = self.server.stub()
            threads = [threading.Thread(
                target=self.writer,
                args=(stub, t, round_number * THREADS + t + 1, killed))
                for t in range(THREADS)]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.5, 2.5))
            killed.set()
            # Kill first and close the channel only after the writers' calls
            # failed, so that no writer fails before it sends its call.
            self.server.process.kill()
            self.server.process.wait()
            for thread in threads:
                thread.join()
            self.server.kill9()
            self.assertEqual(self.unexpected, [])

            self.server.start(self.server.data_dir)
            self.stub = self.server.stub()
            self.verify(round_number)

        print(f"\n{self.acknowledged} acknowledged writes over {ROUNDS} "
              f"kills; {self.checked} point states checked; graph search "
              f"found {self.graph_found} of {self.graph_sampled} sampled "
              f"points by their own vector")
        self.assertGreater(self.acknowledged, ROUNDS * THREADS)


if __name__ == "__main__":
    unittest.main()
