"""Concurrent clients over gRPC: racing writes, reads, deletes and drops.

Each test runs a few client threads for a bounded number of calls against one
server. The threads never assert. They record every response, error and
inconsistency they see, and the test checks the records once all threads
have finished. Every point a writer sends names its own version in
its metadata, so a reader can tell whether a vector and its metadata come
from the same write.
"""

import collections
import os
import subprocess
import sys
import threading
import time
import unittest

import grpc
import numpy as np

from harness import (FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS, ServerTestCase,
                     point, vecdb_pb2, vecdb_pb2_grpc)

NOT_FOUND = grpc.StatusCode.NOT_FOUND
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS

# Upper bound on how long any group of client threads may run.
THREAD_DEADLINE_SECONDS = 40

# One Upsert call: what it sent, when it started and ended (time.monotonic()
# seconds) and its status.
Write = collections.namedtuple("Write", "versions start end")
Call = collections.namedtuple("Call", "writer ids start end code message")


def run_threads(targets):
    """Start one thread per callable, wait for all and return the stragglers.

    A thread still running after THREAD_DEADLINE_SECONDS is reported, not
    killed. Its calls carry RPC timeouts, so it ends soon after.
    """
    threads = [threading.Thread(target=target, daemon=True)
               for target in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + THREAD_DEADLINE_SECONDS
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return [thread.name for thread in threads if thread.is_alive()]


class Version:
    """One write of one point: who wrote it, and the vector it carried."""

    def __init__(self, point_id, writer, sequence, vector):
        self.point_id = point_id
        self.writer = writer
        self.sequence = sequence
        self.vector = np.asarray(vector, np.float32)

    def key(self):
        return (self.point_id, self.writer, self.sequence)

    def to_point(self):
        return point(self.point_id, self.vector,
                     {"id": self.point_id, "writer": self.writer,
                      "sequence": self.sequence})


def version_key_of(stored):
    """Return the (id, writer, sequence) a stored point's metadata names."""
    metadata = stored.metadata
    return (metadata["id"], int(metadata["writer"]),
            int(metadata["sequence"]))


class ConcurrentReplaceTest(ServerTestCase):
    """Writers replace the same ids while readers search and get them."""

    ID_COUNT = 40
    DIMENSION = 8
    WRITERS = 4
    WRITES_PER_WRITER = 150
    POINTS_PER_WRITE = 8

    def setUp(self):
        super().setUp()
        self.ids = [f"id{i}" for i in range(self.ID_COUNT)]
        # Every version ever sent, by key. A version is added before the
        # write that carries it is sent.
        self.versions = {}
        self.versions_lock = threading.Lock()
        # A Write for each acknowledged Upsert.
        self.acknowledged = []
        self.problems = []
        self.writers_done = threading.Event()
        self.read_rounds = []

    def new_version(self, point_id, writer, sequence, rng):
        version = Version(point_id, writer, sequence,
                          rng.standard_normal(self.DIMENSION))
        with self.versions_lock:
            self.versions[version.key()] = version
        return version

    def write_loop(self, writer):
        rng = np.random.default_rng(100 + writer)
        stub = self.server.stub()
        for sequence in range(self.WRITES_PER_WRITER):
            chosen = rng.choice(self.ids, self.POINTS_PER_WRITE,
                                replace=False)
            versions = [self.new_version(str(point_id), writer, sequence, rng)
                        for point_id in chosen]
            start = time.monotonic()
            try:
                stub.Upsert(vecdb_pb2.UpsertRequest(
                    collection=self.collection,
                    points=[v.to_point() for v in versions]),
                    timeout=RPC_TIMEOUT_SECONDS)
            except grpc.RpcError as error:
                self.problems.append(f"writer {writer}: Upsert failed with "
                                     f"{error.code()}: {error.details()}")
                return
            self.acknowledged.append(Write(versions, start, time.monotonic()))

    def read_loop(self, reader):
        rng = np.random.default_rng(200 + reader)
        stub = self.server.stub()
        deadline = time.monotonic() + THREAD_DEADLINE_SECONDS / 2
        rounds = 0
        while not self.writers_done.is_set() and time.monotonic() < deadline:
            rounds += 1
            try:
                self.check_search(stub, rng, top_k=10)
                self.check_search(stub, rng, top_k=self.ID_COUNT)
                self.check_get(stub)
                count = stub.GetCollection(
                    vecdb_pb2.GetCollectionRequest(name=self.collection),
                    timeout=RPC_TIMEOUT_SECONDS).point_count
                if count != self.ID_COUNT:
                    self.problems.append(f"point_count was {count}")
            except grpc.RpcError as error:
                self.problems.append(f"reader {reader}: {error.code()}: "
                                     f"{error.details()}")
                break
        self.read_rounds.append(rounds)

    def check_search(self, stub, rng, top_k):
        query = rng.standard_normal(self.DIMENSION)
        hits = stub.Search(vecdb_pb2.SearchRequest(
            collection=self.collection, vector=query.tolist(), top_k=top_k,
            include_vectors=True, include_metadata=True),
            timeout=RPC_TIMEOUT_SECONDS).hits
        ids = [h.id for h in hits]
        if len(ids) != top_k:
            self.problems.append(f"top_k {top_k} returned {len(ids)} hits")
        if len(set(ids)) != len(ids):
            self.problems.append(f"duplicate ids in one hit list: {ids}")
        scores = [h.score for h in hits]
        if not np.all(np.isfinite(scores)):
            self.problems.append(f"non-finite scores {scores}")
        if scores != sorted(scores):
            self.problems.append(f"scores out of order: {scores}")
        for hit in hits:
            self.check_version(hit, f"search hit {hit.id}")
            # The index's copy of the vector must be the stored one.
            distance = float(np.linalg.norm(
                np.asarray(hit.vector, np.float64) - query))
            if abs(distance - hit.score) > 1e-3 * max(1.0, distance):
                self.problems.append(
                    f"hit {hit.id} scored {hit.score}, but its returned "
                    f"vector is at distance {distance}")

    def check_get(self, stub):
        found = stub.Get(vecdb_pb2.GetRequest(collection=self.collection,
                                              ids=self.ids),
                         timeout=RPC_TIMEOUT_SECONDS).points
        if [p.id for p in found] != self.ids:
            self.problems.append(f"Get returned {len(found)} of "
                                 f"{self.ID_COUNT} points")
        for stored in found:
            self.check_version(stored, f"Get of {stored.id}")

    def check_version(self, stored, where):
        """Record a problem unless stored is one whole version sent."""
        try:
            key = version_key_of(stored)
        except (KeyError, ValueError) as error:
            self.problems.append(f"{where}: metadata {stored.metadata} "
                                 f"names no version ({error!r})")
            return
        with self.versions_lock:
            version = self.versions.get(key)
        if version is None or key[0] != stored.id:
            self.problems.append(f"{where}: metadata names {key}, a version "
                                 "no client sent for this id")
        elif list(stored.vector) != version.vector.tolist():
            self.problems.append(f"{where}: vector does not belong to the "
                                 f"metadata's version {key}")

    def assertFinalVersionsLinearizable(self, final):
        """Assert each id contains the newest version in real-time order.

        A write that started after another write was acknowledged must
        replace it. So the final version of an id cannot come from a write
        acknowledged before some other acknowledged write of that id began.
        """
        write_of_version = {version.key(): write
                            for write in self.acknowledged
                            for version in write.versions}
        for stored in final:
            key = version_key_of(stored)
            self.assertIn(key, write_of_version,
                          f"{stored.id} holds a version never acknowledged")
            final_write = write_of_version[key]
            later = [v.key() for write in self.acknowledged
                     if write.start > final_write.end
                     for v in write.versions if v.point_id == stored.id]
            self.assertEqual(later, [],
                             f"{stored.id} holds {key}, but these writes "
                             "began after it was acknowledged")

    def assertEveryIdFindsItself(self, final):
        for stored in final:
            for exact in (False, True):
                hits = self.search(self.collection, stored.vector, 1,
                                   params=vecdb_pb2.SearchParams(exact=exact))
                self.assertEqual([h.id for h in hits], [stored.id],
                                 f"exact={exact}")
                self.assertAlmostEqual(hits[0].score, 0.0, delta=1e-3)

    def run_replace_race(self, kind):
        self.collection = f"race_{vecdb_pb2.IndexKind.Name(kind)}"
        self.create(self.collection, self.DIMENSION, L2, kind, m=8,
                    ef_construction=32)
        rng = np.random.default_rng(1)
        seed = [self.new_version(point_id, -1, 0, rng)
                for point_id in self.ids]
        start = time.monotonic()
        self.upsert(self.collection, [v.to_point() for v in seed])
        self.acknowledged.append(Write(seed, start, time.monotonic()))

        writers = [lambda w=w: self.write_loop(w)
                   for w in range(self.WRITERS)]
        readers = [lambda r=r: self.read_loop(r) for r in range(2)]
        writer_group = threading.Thread(
            target=lambda: (run_threads(writers), self.writers_done.set()))
        writer_group.start()
        stragglers = run_threads(readers)
        writer_group.join(timeout=THREAD_DEADLINE_SECONDS)

        self.assertEqual(stragglers, [])
        self.assertFalse(writer_group.is_alive())
        self.assertEqual(self.problems, [])
        # Each reader must have overlapped the writers for a while.
        self.assertEqual(len(self.read_rounds), 2)
        self.assertGreaterEqual(min(self.read_rounds), 10)
        self.assertEqual(len(self.acknowledged),
                         1 + self.WRITERS * self.WRITES_PER_WRITER)

        final = self.get(self.collection, self.ids)
        self.assertEqual([p.id for p in final], self.ids)
        self.assertEqual(self.count(self.collection), self.ID_COUNT)
        for stored in final:
            self.check_version(stored, f"final Get of {stored.id}")
        self.assertEqual(self.problems, [])
        self.assertFinalVersionsLinearizable(final)
        self.assertEveryIdFindsItself(final)

        self.crash_and_restart()

        self.assertEqual(self.get(self.collection, self.ids), final)
        self.assertEqual(self.count(self.collection), self.ID_COUNT)
        self.assertEveryIdFindsItself(final)

    def test_replace_race_under_hnsw(self):
        self.run_replace_race(HNSW)

    def test_replace_race_under_flat(self):
        self.run_replace_race(FLAT)


class BatchSnapshotTest(ServerTestCase):
    """Every search of a SearchBatch sees the same state of the collection.

    A writer replaces all points in one Upsert per round, tagging each with
    the round. As a write becomes visible all at once, one search sees a
    single round, and as a batch reads one state, so do all its searches.
    """

    ID_COUNT = 40
    DIMENSION = 8
    ROUNDS = 150

    def test_batch_sees_one_round(self):
        self.create("rounds", self.DIMENSION, L2, HNSW, m=8,
                    ef_construction=32)
        ids = [f"id{i}" for i in range(self.ID_COUNT)]
        problems = []
        writing = threading.Event()
        writing.set()

        def write_rounds():
            rng = np.random.default_rng(81)
            stub = self.server.stub()
            try:
                for round_number in range(self.ROUNDS):
                    stub.Upsert(vecdb_pb2.UpsertRequest(
                        collection="rounds",
                        points=[point(i, rng.standard_normal(self.DIMENSION),
                                      {"round": round_number})
                                for i in ids]),
                        timeout=RPC_TIMEOUT_SECONDS)
            except grpc.RpcError as error:
                problems.append(f"Upsert: {error.code()}: {error.details()}")
            finally:
                writing.clear()

        def read_batches():
            rng = np.random.default_rng(82)
            stub = self.server.stub()
            # 25 graph searches share their options, so they reach FAISS as
            # one call; the exact searches form a second group.
            searches = [
                vecdb_pb2.SearchRequest(
                    vector=rng.standard_normal(self.DIMENSION).tolist(),
                    top_k=10, include_metadata=True,
                    params=vecdb_pb2.SearchParams(exact=i >= 25))
                for i in range(30)]
            batches = 0
            while writing.is_set() and batches < 2000:
                batches += 1
                try:
                    results = stub.SearchBatch(vecdb_pb2.SearchBatchRequest(
                        collection="rounds", searches=searches),
                        timeout=RPC_TIMEOUT_SECONDS).results
                except grpc.RpcError as error:
                    problems.append(f"SearchBatch: {error.code()}: "
                                    f"{error.details()}")
                    return
                rounds = {int(hit.metadata["round"])
                          for result in results for hit in result.hits}
                if len(rounds) > 1:
                    problems.append(f"one batch saw rounds {sorted(rounds)}")
            if batches < 10:
                problems.append(f"only {batches} batches overlapped writes")

        self.upsert("rounds", [point(i, np.ones(self.DIMENSION),
                                     {"round": -1}) for i in ids])
        stragglers = run_threads([write_rounds, read_batches, read_batches])

        self.assertEqual(stragglers, [])
        self.assertEqual(problems, [])


class UpsertDeleteRaceTest(ServerTestCase):
    """Upserts and deletes of the same ids race; the count stays exact."""

    def test_count_matches_points_after_race(self):
        ids = [f"id{i}" for i in range(30)]
        self.create("race", 4, L2, HNSW, m=8, ef_construction=32)
        problems = []

        def upsert_loop(seed):
            rng = np.random.default_rng(seed)
            stub = self.server.stub()
            for _ in range(60):
                chosen = rng.choice(ids, 5, replace=False)
                try:
                    stub.Upsert(vecdb_pb2.UpsertRequest(
                        collection="race",
                        points=[point(str(i), rng.standard_normal(4))
                                for i in chosen]),
                        timeout=RPC_TIMEOUT_SECONDS)
                except grpc.RpcError as error:
                    problems.append(f"Upsert: {error.code()}")

        def delete_loop(seed):
            rng = np.random.default_rng(seed)
            stub = self.server.stub()
            for _ in range(60):
                chosen = rng.choice(ids, 4, replace=False)
                try:
                    stub.Delete(vecdb_pb2.DeleteRequest(
                        collection="race", ids=[str(i) for i in chosen]),
                        timeout=RPC_TIMEOUT_SECONDS)
                except grpc.RpcError as error:
                    problems.append(f"Delete: {error.code()}")

        def search_loop():
            rng = np.random.default_rng(9)
            stub = self.server.stub()
            for _ in range(150):
                try:
                    # Hit payloads are read from storage, which a delete
                    # may have just changed.
                    hits = stub.Search(vecdb_pb2.SearchRequest(
                        collection="race",
                        vector=rng.standard_normal(4).tolist(), top_k=30,
                        include_vectors=True, include_metadata=True),
                        timeout=RPC_TIMEOUT_SECONDS).hits
                except grpc.RpcError as error:
                    problems.append(f"Search: {error.code()}: "
                                    f"{error.details()}")
                    return
                found = [h.id for h in hits]
                if len(set(found)) != len(found):
                    problems.append(f"duplicate ids in one hit list: {found}")
                if not set(found) <= set(ids):
                    problems.append(f"unknown ids in hits: {found}")
                if not np.all(np.isfinite([h.score for h in hits])):
                    problems.append("non-finite score")

        stragglers = run_threads([lambda: upsert_loop(1),
                                  lambda: upsert_loop(2),
                                  lambda: delete_loop(3),
                                  lambda: delete_loop(4), search_loop])

        self.assertEqual(stragglers, [])
        self.assertEqual(problems, [])
        self.assertConsistent(ids)
        expected = sorted(p.id for p in self.get("race", ids))
        self.crash_and_restart()
        self.assertConsistent(ids)
        self.assertEqual(sorted(p.id for p in self.get("race", ids)),
                         expected)

    def assertConsistent(self, ids):
        stored = sorted(p.id for p in self.get("race", ids))
        self.assertEqual(self.count("race"), len(stored))
        for exact in (False, True):
            hits = self.search("race", [0.1, 0.2, 0.3, 0.4], len(ids),
                               params=vecdb_pb2.SearchParams(exact=exact))
            self.assertEqual(sorted(h.id for h in hits), stored,
                             f"exact={exact}")


class DropWhileWritingTest(ServerTestCase):
    """Collections dropped, and created again, while clients write to them."""

    DIMENSION = 4
    POINTS_PER_WRITE = 5

    def setUp(self):
        super().setUp()
        self.calls = []  # A Call for every Upsert sent.
        self.calls_lock = threading.Lock()
        self.stop = threading.Event()

    def write_loop(self, writer, collection, stop_on_error, max_calls=400):
        """Upsert batches of new ids until self.stop is set, recording a
        Call for each."""
        stub = self.server.stub()
        for call in range(max_calls):
            if self.stop.is_set():
                return
            ids = [f"w{writer}-{call}-{i}"
                   for i in range(self.POINTS_PER_WRITE)]
            points = [point(point_id, [writer + 1, call + 1, i + 1, 1])
                      for i, point_id in enumerate(ids)]
            start = time.monotonic()
            try:
                stub.Upsert(vecdb_pb2.UpsertRequest(collection=collection,
                                                    points=points),
                            timeout=RPC_TIMEOUT_SECONDS)
                code, message = grpc.StatusCode.OK, ""
            except grpc.RpcError as error:
                code, message = error.code(), error.details()
            with self.calls_lock:
                self.calls.append(Call(writer, ids, start, time.monotonic(),
                                       code, message))
            if code != grpc.StatusCode.OK and stop_on_error:
                return

    def acknowledged_calls(self, writers):
        with self.calls_lock:
            return [c for c in self.calls
                    if c.writer in writers and c.code == grpc.StatusCode.OK]

    def wait_for_acknowledgements(self, writers, count, after=0.0):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done = [c for c in self.acknowledged_calls(writers)
                    if c.start > after]
            if len(done) >= count:
                return
            time.sleep(0.01)
        self.fail(f"writers {writers} were not acknowledged {count} times")

    def ids_of(self, calls):
        return [point_id for call in calls for point_id in call.ids]

    def test_drop_during_writes(self):
        self.create("victim", self.DIMENSION, L2, HNSW, m=8,
                    ef_construction=32)
        self.create("bystander", self.DIMENSION, L2, FLAT)
        victims = (0, 1, 2)
        read_errors = []

        def read_loop():
            # Reads until the drop makes them fail.
            stub = self.server.stub()
            deadline = time.monotonic() + THREAD_DEADLINE_SECONDS / 2
            while time.monotonic() < deadline:
                try:
                    stub.Search(self.search_request("victim", [1, 1, 1, 1], 5),
                                timeout=RPC_TIMEOUT_SECONDS)
                    stub.Get(vecdb_pb2.GetRequest(collection="victim",
                                                  ids=["w0-0-0"]),
                             timeout=RPC_TIMEOUT_SECONDS)
                except grpc.RpcError as error:
                    read_errors.append((error.code(), error.details()))
                    return

        threads = [threading.Thread(
            target=self.write_loop, args=(w, "victim", True))
            for w in victims]
        threads.append(threading.Thread(
            target=self.write_loop, args=(3, "bystander", False, 200)))
        threads.append(threading.Thread(target=read_loop))
        for thread in threads:
            thread.start()
        self.wait_for_acknowledgements(victims, 15)

        self.stub.DropCollection(
            vecdb_pb2.DropCollectionRequest(name="victim"),
            timeout=RPC_TIMEOUT_SECONDS)
        for thread in threads[:3] + threads[4:]:
            thread.join(timeout=THREAD_DEADLINE_SECONDS)
        self.stop.set()
        threads[3].join(timeout=THREAD_DEADLINE_SECONDS)
        self.assertFalse(any(thread.is_alive() for thread in threads))

        failures = [c for c in self.calls if c.code != grpc.StatusCode.OK]
        self.assertEqual(sorted(c.writer for c in failures), list(victims),
                         "each victim writer fails once, the bystander never")
        for failure in failures:
            self.assertEqual(failure.code, NOT_FOUND, failure.message)
            self.assertIn("victim", failure.message)
        self.assertEqual(len(read_errors), 1)
        self.assertEqual(read_errors[0][0], NOT_FOUND, read_errors[0][1])
        bystander_ids = self.ids_of(self.acknowledged_calls((3,)))
        victim_ids = self.ids_of(self.acknowledged_calls(victims))
        self.assertBystanderIntact(bystander_ids)

        self.crash_and_restart()

        self.assertEqual(self.list_names(), ["bystander"])
        self.assertRejected(NOT_FOUND, self.stub.GetCollection,
                            vecdb_pb2.GetCollectionRequest(name="victim"))
        self.assertBystanderIntact(bystander_ids)

        # The name starts empty when created again, also after a restart.
        self.create("victim", self.DIMENSION, L2, HNSW, m=8,
                    ef_construction=32)
        self.assertEqual(self.count("victim"), 0)
        self.assertEqual(self.get("victim", victim_ids), [])
        self.assertEqual(self.search("victim", [1, 1, 1, 1], 10), [])
        self.upsert("victim", [point(f"new{i}", [i + 1, 1, 1, 1])
                               for i in range(3)])
        self.restart()
        self.assertEqual(self.count("victim"), 3)
        self.assertEqual(sorted(h.id for h in self.search(
            "victim", [1, 1, 1, 1], 10)), ["new0", "new1", "new2"])
        self.assertEqual(self.get("victim", victim_ids), [])

    def test_recreate_during_writes(self):
        self.create("victim", self.DIMENSION, L2, HNSW, m=8,
                    ef_construction=32)
        writers = (0, 1, 2)
        threads = [threading.Thread(target=self.write_loop,
                                    args=(w, "victim", False))
                   for w in writers]
        for thread in threads:
            thread.start()
        self.wait_for_acknowledgements(writers, 10)

        drop_start = time.monotonic()
        self.stub.DropCollection(
            vecdb_pb2.DropCollectionRequest(name="victim"),
            timeout=RPC_TIMEOUT_SECONDS)
        self.create("victim", self.DIMENSION, L2, HNSW, m=8,
                    ef_construction=32)
        created = time.monotonic()
        self.wait_for_acknowledgements(writers, 10, after=created)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=THREAD_DEADLINE_SECONDS)
        self.assertFalse(any(thread.is_alive() for thread in threads))

        for call in self.calls:
            self.assertIn(call.code, (grpc.StatusCode.OK, NOT_FOUND),
                          call.message)
        self.assertWritesSortedByDrop(drop_start, created)
        present = sorted(p.id for p in self.get(
            "victim", self.ids_of(self.calls)))

        self.crash_and_restart()

        self.assertEqual(sorted(p.id for p in self.get(
            "victim", self.ids_of(self.calls))), present)
        self.assertEqual(self.count("victim"), len(present))
        hits = self.search("victim", [1, 1, 1, 1], 10000,
                           params=vecdb_pb2.SearchParams(exact=True))
        self.assertEqual(sorted(h.id for h in hits), present)

    def assertWritesSortedByDrop(self, drop_start, created):
        """Assert each write landed in the collection its timing allows.

        Writes acknowledged before the drop began went to the dropped
        collection. Acknowledged writes that began after the new one was
        created must be in it. Failed writes are nowhere. A write in between
        is in the new collection whole or not at all.
        """
        present_total = 0
        for call in self.calls:
            found = [p.id for p in self.get("victim", call.ids)]
            where = (f"write of {call.ids[0]}.. ({call.code}, "
                     f"{call.start:.3f}-{call.end:.3f} s)")
            if call.code != grpc.StatusCode.OK or call.end < drop_start:
                self.assertEqual(found, [], where)
            elif call.start > created:
                self.assertEqual(found, call.ids, where)
            else:
                self.assertIn(found, ([], call.ids), where)
            present_total += len(found)
        self.assertEqual(self.count("victim"), present_total)

    def assertBystanderIntact(self, ids):
        self.assertGreater(len(ids), 0)
        self.assertEqual(self.count("bystander"), len(ids))
        self.assertEqual([p.id for p in self.get("bystander", ids)], ids)

    def list_names(self):
        return [c.name for c in self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections]


class CollectionAdminRaceTest(ServerTestCase):

    THREADS = 6

    def race(self, call):
        """Run call(thread_index) on THREADS threads released together.

        Returns the status code each thread got, in thread order.
        """
        barrier = threading.Barrier(self.THREADS)
        codes = [None] * self.THREADS

        def run(index):
            stub = self.server.stub()
            barrier.wait(timeout=THREAD_DEADLINE_SECONDS)
            try:
                call(stub, index)
                codes[index] = grpc.StatusCode.OK
            except grpc.RpcError as error:
                codes[index] = error.code()

        stragglers = run_threads([lambda i=i: run(i)
                                  for i in range(self.THREADS)])
        self.assertEqual(stragglers, [])
        return codes

    def test_concurrent_create_has_one_winner(self):
        def create(stub, index):
            stub.CreateCollection(vecdb_pb2.CreateCollectionRequest(
                name="same", dimension=2 + index, metric=L2),
                timeout=RPC_TIMEOUT_SECONDS)

        codes = self.race(create)

        self.assertEqual(codes.count(grpc.StatusCode.OK), 1, codes)
        self.assertEqual(codes.count(ALREADY_EXISTS), self.THREADS - 1, codes)
        winner_dimension = 2 + codes.index(grpc.StatusCode.OK)
        self.restart()
        info = self.stub.GetCollection(
            vecdb_pb2.GetCollectionRequest(name="same"),
            timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(info.dimension, winner_dimension)

    def test_concurrent_drop_has_one_winner(self):
        self.create("same", 2, L2, HNSW)
        self.upsert("same", [point(f"p{i}", [i, 1]) for i in range(50)])

        def drop(stub, index):
            stub.DropCollection(vecdb_pb2.DropCollectionRequest(name="same"),
                                timeout=RPC_TIMEOUT_SECONDS)

        codes = self.race(drop)

        self.assertEqual(codes.count(grpc.StatusCode.OK), 1, codes)
        self.assertEqual(codes.count(NOT_FOUND), self.THREADS - 1, codes)
        self.crash_and_restart()
        self.assertRejected(NOT_FOUND, self.stub.GetCollection,
                            vecdb_pb2.GetCollectionRequest(name="same"))

    def test_create_write_drop_cycles_in_parallel(self):
        problems = []

        def cycle(stub, index):
            name = f"cycle{index}"
            for round_number in range(8):
                try:
                    stub.CreateCollection(vecdb_pb2.CreateCollectionRequest(
                        name=name, dimension=3, metric=L2,
                        index=vecdb_pb2.IndexConfig(kind=HNSW, m=4)),
                        timeout=RPC_TIMEOUT_SECONDS)
                    count = stub.GetCollection(
                        vecdb_pb2.GetCollectionRequest(name=name),
                        timeout=RPC_TIMEOUT_SECONDS).point_count
                    if count != 0:
                        problems.append(f"{name} round {round_number} "
                                        f"started with {count} points")
                    stub.Upsert(vecdb_pb2.UpsertRequest(
                        collection=name,
                        points=[point(f"r{round_number}-{i}", [i, 1, 1])
                                for i in range(20)]),
                        timeout=RPC_TIMEOUT_SECONDS)
                    stub.ListCollections(vecdb_pb2.ListCollectionsRequest(),
                                         timeout=RPC_TIMEOUT_SECONDS)
                    if round_number < 7:
                        stub.DropCollection(
                            vecdb_pb2.DropCollectionRequest(name=name),
                            timeout=RPC_TIMEOUT_SECONDS)
                except grpc.RpcError as error:
                    problems.append(f"{name} round {round_number}: "
                                    f"{error.code()}: {error.details()}")
                    return

        codes = self.race(cycle)

        self.assertEqual(problems, [])
        self.assertEqual(codes, [grpc.StatusCode.OK] * self.THREADS)
        self.crash_and_restart()
        for index in range(self.THREADS):
            name = f"cycle{index}"
            self.assertEqual(self.count(name), 20, name)
            self.assertEqual(sorted(h.id for h in self.search(
                name, [1, 1, 1], 100)),
                sorted(f"r7-{i}" for i in range(20)), name)


class ConcurrentImportTest(ServerTestCase):

    def test_parallel_imports_all_stored(self):
        self.create("bulk", 16, L2, HNSW, m=8, ef_construction=32)
        streams = 3
        requests_per_stream = 10
        points_per_request = 50
        responses = [None] * streams

        def stream_requests(stream):
            rng = np.random.default_rng(stream)
            for request in range(requests_per_stream):
                yield vecdb_pb2.UpsertRequest(
                    collection="bulk",
                    points=[point(f"s{stream}-{request}-{i}",
                                  rng.standard_normal(16))
                            for i in range(points_per_request)])

        def run(stream):
            try:
                responses[stream] = self.server.stub().Import(
                    stream_requests(stream),
                    timeout=RPC_TIMEOUT_SECONDS).upserted
            except grpc.RpcError as error:
                responses[stream] = f"{error.code()}: {error.details()}"

        stragglers = run_threads([lambda s=s: run(s) for s in range(streams)])

        self.assertEqual(stragglers, [])
        per_stream = requests_per_stream * points_per_request
        self.assertEqual(responses, [per_stream] * streams)
        self.assertEqual(self.count("bulk"), streams * per_stream)
        self.crash_and_restart()
        self.assertEqual(self.count("bulk"), streams * per_stream)


class ClientGivesUpTest(ServerTestCase):
    """Clients that cancel, time out or vanish in the middle of a call."""

    DIMENSION = 16
    POINTS_PER_REQUEST = 100

    def setUp(self):
        super().setUp()
        self.create("docs", self.DIMENSION, L2, HNSW, m=8, ef_construction=32)
        self.resume = threading.Event()
        self.addCleanup(self.resume.set)

    def paused_requests(self, prefix, pause_after, total=20):
        """Yield total requests, waiting for self.resume after pause_after."""
        rng = np.random.default_rng(61)
        for position in range(total):
            if position == pause_after:
                self.resume.wait(timeout=RPC_TIMEOUT_SECONDS)
            yield vecdb_pb2.UpsertRequest(
                collection="docs",
                points=[point(f"{prefix}{position}-{i}",
                              rng.standard_normal(self.DIMENSION))
                        for i in range(self.POINTS_PER_REQUEST)])

    def stored_prefix(self, prefix, total=20):
        """Return how many leading requests are stored, each whole."""
        stored = []
        for position in range(total):
            ids = [f"{prefix}{position}-{i}"
                   for i in range(self.POINTS_PER_REQUEST)]
            found = [p.id for p in self.get("docs", ids)]
            self.assertIn(found, ([], ids), f"request {position} is partial")
            stored.append(bool(found))
        leading = stored.index(False) if False in stored else total
        self.assertEqual(stored,
                         [True] * leading + [False] * (total - leading))
        return leading

    def test_cancelled_import_keeps_earlier_requests(self):
        call = self.stub.Import.future(
            self.paused_requests("c", pause_after=5),
            timeout=RPC_TIMEOUT_SECONDS)
        self.wait_for_count(5 * self.POINTS_PER_REQUEST)

        call.cancel()
        self.resume.set()

        self.assertTrue(call.cancelled())
        self.assertServing()
        self.assertEqual(self.stored_prefix("c"), 5)
        self.assertEqual(self.count("docs"), 5 * self.POINTS_PER_REQUEST)

    def test_closed_channel_mid_import(self):
        channel = grpc.insecure_channel(f"127.0.0.1:{self.server.port}")
        stub = vecdb_pb2_grpc.VectorDBStub(channel)
        call = stub.Import.future(self.paused_requests("x", pause_after=3),
                                  timeout=RPC_TIMEOUT_SECONDS)
        self.wait_for_count(3 * self.POINTS_PER_REQUEST)

        channel.close()
        self.resume.set()

        self.assertEqual(call.exception().code(), grpc.StatusCode.CANCELLED)
        self.assertServing()
        self.assertEqual(self.stored_prefix("x"), 3)
        self.crash_and_restart()
        self.assertEqual(self.stored_prefix("x"), 3)

    def test_expired_deadlines_write_whole_batches(self):
        rng = np.random.default_rng(62)
        batches = [[f"d{b}-{i}" for i in range(500)] for b in range(20)]
        expired = 0
        for ids in batches:
            try:
                self.stub.Upsert(vecdb_pb2.UpsertRequest(
                    collection="docs",
                    points=[point(i, rng.standard_normal(self.DIMENSION))
                            for i in ids]), timeout=0.001)
            except grpc.RpcError as error:
                self.assertEqual(error.code(),
                                 grpc.StatusCode.DEADLINE_EXCEEDED)
                expired += 1
        self.assertGreater(expired, 0, "no deadline expired; shorten it")

        # A write whose deadline expired may still be applied, but whole.
        time.sleep(1)
        stored = 0
        for ids in batches:
            found = [p.id for p in self.get("docs", ids)]
            self.assertIn(found, ([], ids))
            stored += len(found)
        self.assertEqual(self.count("docs"), stored)
        self.assertServing()

    def wait_for_count(self, count):
        deadline = time.monotonic() + 20
        while self.count("docs") < count and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.count("docs"), count)


def run_import_load(port, streams, requests_per_stream, points_per_request,
                    dimension):
    """Run Import streams in parallel against 127.0.0.1:port and print the
    count each one upserted.

    ResponsivenessTest runs this in a child process, so that building the
    requests does not compete for the interpreter lock of the process that
    measures latency.
    """
    rng = np.random.default_rng(71)
    vectors = rng.standard_normal((points_per_request, dimension))

    def stream_requests(stream):
        for request in range(requests_per_stream):
            yield vecdb_pb2.UpsertRequest(
                collection="bulk",
                points=[point(f"s{stream}-{request}-{i}", vector)
                        for i, vector in enumerate(vectors)])

    def run(stream):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            upserted = vecdb_pb2_grpc.VectorDBStub(channel).Import(
                stream_requests(stream), timeout=RPC_TIMEOUT_SECONDS).upserted
        print(upserted, flush=True)

    run_threads([lambda s=s: run(s) for s in range(streams)])


class ResponsivenessTest(ServerTestCase):
    """Small calls return within a second while Import streams load data.

    The load runs one stream more than the machine has cores, from a child
    process. Neither a health check nor a Search of an unrelated one-point
    collection shares a lock with the imports, so only a server that stops
    taking calls while it writes could make them slow.
    """

    STREAMS = (os.cpu_count() or 1) + 1
    REQUESTS_PER_STREAM = 6
    POINTS_PER_REQUEST = 500
    DIMENSION = 128
    MAX_LATENCY_SECONDS = 1.0

    def start_import_load(self):
        command = (
            "import test_concurrency; test_concurrency.run_import_load("
            f"{self.server.port}, {self.STREAMS}, {self.REQUESTS_PER_STREAM}, "
            f"{self.POINTS_PER_REQUEST}, {self.DIMENSION})")
        load = subprocess.Popen([sys.executable, "-c", command],
                                cwd=os.path.dirname(os.path.abspath(__file__)),
                                stdout=subprocess.PIPE, text=True)
        self.addCleanup(self.reap, load)
        return load

    def reap(self, process):
        if process.poll() is None:
            process.kill()
        process.communicate()

    def test_health_check_during_imports(self):
        self.create("bulk", self.DIMENSION, L2, HNSW)
        self.create("small", 4, L2, FLAT)
        self.upsert("small", [point("a", [1, 2, 3, 4])])
        latencies = {"health": [], "search": []}
        calls = {"health": self.server.health,
                 "search": lambda: self.search("small", [1, 2, 3, 4], 1)}

        load = self.start_import_load()
        deadline = time.monotonic() + THREAD_DEADLINE_SECONDS
        while load.poll() is None and time.monotonic() < deadline:
            for name, call in calls.items():
                started = time.monotonic()
                call()
                latencies[name].append(time.monotonic() - started)
            time.sleep(0.05)
        output, _ = load.communicate(timeout=RPC_TIMEOUT_SECONDS)

        per_stream = self.REQUESTS_PER_STREAM * self.POINTS_PER_REQUEST
        self.assertEqual(load.returncode, 0)
        self.assertEqual(output.split(), [str(per_stream)] * self.STREAMS)
        self.assertGreaterEqual(len(latencies["health"]), 5)
        for name, values in latencies.items():
            median = sorted(values)[len(values) // 2]
            with self.subTest(call=name):
                self.assertLess(max(values), self.MAX_LATENCY_SECONDS,
                                f"slowest {name} call during the imports; "
                                f"median {median:.3f} s")


if __name__ == "__main__":
    unittest.main()
