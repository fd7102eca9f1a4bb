"""Bad requests get the documented gRPC status and write nothing.

The rules under test: a vector has the collection's dimension and finite
components, and it is not all zeros under COSINE. An id is 1 to 256 bytes of
UTF-8. A collection name is 1 to 128 ASCII letters, digits, '_' or '-', and
does not start with '-'. top_k is 1 to 10000. A batch is all or nothing, and
its error message names the position and id of the first bad point.
"""

import math
import unittest

import grpc
import numpy as np

from harness import (COSINE, DOT_PRODUCT, HNSW, L2, RPC_TIMEOUT_SECONDS,
                     ServerTestCase, point, vecdb_pb2)

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED

MAX_ID_BYTES = 256
MAX_TOP_K = 10000
DIMENSION = 4


class BadPointTest(ServerTestCase):
    """Each bad point is rejected alone and inside a batch of good ones."""

    def setUp(self):
        super().setUp()
        self.create("docs", DIMENSION, COSINE)
        self.upsert("docs", [point("seed", [1, 2, 3, 4])])

    def bad_points(self):
        """Return (case name, bad point, whether its id fits in a message)."""
        nan, inf = math.nan, math.inf
        return [
            ("short vector", point("bad-short", [1, 2, 3]), True),
            ("long vector", point("bad-long", [1, 2, 3, 4, 5]), True),
            ("empty vector", point("bad-empty", []), True),
            ("NaN component", point("bad-nan", [1, nan, 3, 4]), True),
            ("positive infinity", point("bad-inf", [inf, 1, 1, 1]), True),
            ("negative infinity", point("bad-neginf", [1, 1, 1, -inf]),
             True),
            ("zero vector under cosine", point("bad-zero", [0, 0, 0, 0]),
             True),
            ("empty id", point("", [1, 1, 1, 1]), False),
            ("over-long id", point("x" * (MAX_ID_BYTES + 1), [1, 1, 1, 1]),
             False),
        ]

    def assertNothingWritten(self, ids):
        self.assertEqual(self.count("docs"), 1)
        # Get rejects ids that break the id rules, so only valid ones are
        # looked up.
        valid_ids = [i for i in ids
                     if i and len(i.encode("utf-8")) <= MAX_ID_BYTES]
        self.assertEqual(self.get("docs", valid_ids), [])
        self.assertEqual(list(self.get("docs", ["seed"])[0].vector),
                         [1, 2, 3, 4])

    def test_bad_point_alone_rejected(self):
        for case, bad, _ in self.bad_points():
            with self.subTest(case=case):
                self.assertRejected(
                    INVALID_ARGUMENT, self.stub.Upsert,
                    vecdb_pb2.UpsertRequest(collection="docs", points=[bad]))
                self.assertNothingWritten([bad.id])

    def test_bad_point_rejects_whole_batch(self):
        for case, bad, id_in_message in self.bad_points():
            with self.subTest(case=case):
                # Position 6 matches no dimension, component index or size
                # that the message may also give.
                batch = [point(f"good{i}", [i + 1, 1, 1, 1]) for i in range(8)]
                batch[6] = bad
                message = self.assertRejected(
                    INVALID_ARGUMENT, self.stub.Upsert,
                    vecdb_pb2.UpsertRequest(collection="docs", points=batch))

                self.assertRegex(message, r"\b6\b")
                if id_in_message:
                    self.assertIn(bad.id, message)
                self.assertNothingWritten([p.id for p in batch])

    def test_bad_batch_keeps_replaced_point(self):
        batch = [point("seed", [9, 9, 9, 9]),
                 point("nan", [math.nan, 1, 1, 1])]

        self.assertRejected(INVALID_ARGUMENT, self.stub.Upsert,
                            vecdb_pb2.UpsertRequest(collection="docs",
                                                    points=batch))

        self.assertNothingWritten(["nan"])

    def test_wrong_dimension_message_names_both_dimensions(self):
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Upsert,
            vecdb_pb2.UpsertRequest(collection="docs",
                                    points=[point("bad-short", [1, 2, 3])]))

        self.assertRegex(message, r"\b3\b")
        self.assertRegex(message, r"\b4\b")

    def test_over_long_id_message_counts_bytes(self):
        # 129 two-byte characters: 258 bytes but only 129 characters.
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Upsert,
            vecdb_pb2.UpsertRequest(collection="docs",
                                    points=[point("é" * 129, [1, 1, 1, 1])]))

        self.assertIn("258", message)
        self.assertIn("256", message)
        self.assertIn("bytes", message)

    def test_import_stops_at_first_bad_request(self):
        requests = [
            vecdb_pb2.UpsertRequest(collection="docs",
                                    points=[point("first", [1, 0, 0, 0])]),
            vecdb_pb2.UpsertRequest(collection="docs",
                                    points=[point("second", [0, 1, 0, 0])]),
            vecdb_pb2.UpsertRequest(
                collection="docs",
                points=[point("good", [0, 0, 1, 0]),
                        point("bad-import", [math.nan, 0, 0, 0])]),
            vecdb_pb2.UpsertRequest(collection="docs",
                                    points=[point("after", [0, 0, 0, 1])]),
        ]

        message = self.assertRejected(INVALID_ARGUMENT, self.stub.Import,
                                      iter(requests))

        self.assertIn("bad-import", message)
        self.assertEqual(self.count("docs"), 3)
        self.assertEqual([p.id for p in self.get(
            "docs", ["first", "second", "good", "bad-import", "after"])],
            ["first", "second"])


class BadQueryTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.create("docs", DIMENSION, COSINE, HNSW)
        self.upsert("docs", [point("a", [1, 2, 3, 4]),
                             point("b", [4, 3, 2, 1])])

    def bad_queries(self):
        return [
            ("short vector", [1, 2, 3], 1),
            ("long vector", [1, 2, 3, 4, 5], 1),
            ("empty vector", [], 1),
            ("NaN component", [1, math.nan, 1, 1], 1),
            ("infinite component", [1, 1, math.inf, 1], 1),
            ("zero vector under cosine", [0, 0, 0, 0], 1),
            ("top_k zero", [1, 1, 1, 1], 0),
            ("top_k over the limit", [1, 1, 1, 1], MAX_TOP_K + 1),
        ]

    def test_bad_search_rejected(self):
        for case, vector, top_k in self.bad_queries():
            with self.subTest(case=case):
                self.assertRejected(
                    INVALID_ARGUMENT, self.stub.Search,
                    self.search_request("docs", vector, top_k))
        self.assertServing()

    def test_bad_search_in_batch_rejected(self):
        for case, vector, top_k in self.bad_queries():
            with self.subTest(case=case):
                searches = [self.search_request("", [1, 1, 1, 1], 2),
                            self.search_request("", vector, top_k)]
                self.assertRejected(
                    INVALID_ARGUMENT, self.stub.SearchBatch,
                    vecdb_pb2.SearchBatchRequest(collection="docs",
                                                 searches=searches))
        self.assertServing()

    def test_top_k_at_the_limit_accepted(self):
        hits = self.search("docs", [1, 1, 1, 1], MAX_TOP_K)

        self.assertEqual(len(hits), 2)


class CollectionNameTest(ServerTestCase):

    def list_names(self):
        return [c.name for c in self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections]

    def test_invalid_names_rejected(self):
        invalid = ["", "a/b", "..", ".", "a b", "trailing.", "-leading",
                   "名前", "x" * 129, "tab\tname", "a\\b", "dot.name"]
        for name in invalid:
            with self.subTest(name=name):
                self.assertRejected(
                    INVALID_ARGUMENT, self.stub.CreateCollection,
                    vecdb_pb2.CreateCollectionRequest(
                        name=name, dimension=4, metric=COSINE))
        self.assertEqual(self.list_names(), [])

    def test_valid_names_accepted(self):
        valid = ["a", "_hidden", "9lives", "snake_case", "kebab-case",
                 "MixedCase", "x" * 128]
        for name in valid:
            with self.subTest(name=name):
                self.assertEqual(self.create(name, 4).name, name)
        self.assertEqual(self.list_names(), sorted(valid))

    def test_existing_name_already_exists(self):
        self.create("docs", 4, L2)
        self.upsert("docs", [point("a", [1, 2, 3, 4])])

        self.assertRejected(
            ALREADY_EXISTS, self.stub.CreateCollection,
            vecdb_pb2.CreateCollectionRequest(name="docs", dimension=8,
                                              metric=COSINE))

        info = self.stub.GetCollection(
            vecdb_pb2.GetCollectionRequest(name="docs"),
            timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(info.dimension, 4)
        self.assertEqual(info.metric, L2)
        self.assertEqual(info.point_count, 1)

    def test_invalid_collection_parameters_rejected(self):
        cases = [
            ("dimension zero", dict(dimension=0)),
            ("dimension over 65536", dict(dimension=65537)),
            ("m of one", dict(index=vecdb_pb2.IndexConfig(kind=HNSW, m=1))),
            ("m over 256",
             dict(index=vecdb_pb2.IndexConfig(kind=HNSW, m=257))),
            ("ef_construction over 4096",
             dict(index=vecdb_pb2.IndexConfig(kind=HNSW,
                                              ef_construction=4097))),
            ("ef_search over 10000",
             dict(index=vecdb_pb2.IndexConfig(kind=HNSW, ef_search=10001))),
        ]
        for case, fields in cases:
            with self.subTest(case=case):
                request = vecdb_pb2.CreateCollectionRequest(
                    **{"name": "docs", "dimension": 4, "metric": L2,
                       **fields})
                self.assertRejected(INVALID_ARGUMENT,
                                    self.stub.CreateCollection, request)
        self.assertEqual(self.list_names(), [])


class UnknownCollectionTest(ServerTestCase):

    def test_every_rpc_reports_not_found(self):
        self.create("other", 2, L2)
        name = "missing"
        calls = [
            ("GetCollection", self.stub.GetCollection,
             vecdb_pb2.GetCollectionRequest(name=name)),
            ("DropCollection", self.stub.DropCollection,
             vecdb_pb2.DropCollectionRequest(name=name)),
            ("Upsert", self.stub.Upsert,
             vecdb_pb2.UpsertRequest(collection=name,
                                     points=[point("a", [1, 2])])),
            ("Import", self.stub.Import,
             iter([vecdb_pb2.UpsertRequest(collection=name,
                                           points=[point("a", [1, 2])])])),
            ("Get", self.stub.Get,
             vecdb_pb2.GetRequest(collection=name, ids=["a"])),
            ("Delete", self.stub.Delete,
             vecdb_pb2.DeleteRequest(collection=name, ids=["a"])),
            ("Search", self.stub.Search,
             self.search_request(name, [1, 2], 1)),
            ("SearchBatch", self.stub.SearchBatch,
             vecdb_pb2.SearchBatchRequest(
                 collection=name,
                 searches=[self.search_request("", [1, 2], 1)])),
        ]
        for rpc_name, rpc, request in calls:
            with self.subTest(rpc=rpc_name):
                message = self.assertRejected(NOT_FOUND, rpc, request)
                self.assertIn(name, message)

        listed = self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections
        self.assertEqual([c.name for c in listed], ["other"])
        self.assertEqual(self.count("other"), 0)


class MessageLimitTest(ServerTestCase):
    """A server started with a 1 MiB message limit."""

    LIMIT = 1024 * 1024
    server_args = ("--max_message_bytes", str(LIMIT))

    def points_of_size(self, total_bytes, dimension=1024):
        count = total_bytes // (4 * dimension)
        rng = np.random.default_rng(8)
        vectors = rng.standard_normal((count, dimension)).astype(np.float32)
        return [point(f"p{i}", vectors[i]) for i in range(count)]

    def test_upsert_over_limit_resource_exhausted(self):
        self.create("docs", 1024, DOT_PRODUCT)
        request = vecdb_pb2.UpsertRequest(
            collection="docs", points=self.points_of_size(2 * self.LIMIT))
        self.assertGreater(request.ByteSize(), self.LIMIT)

        message = self.assertRejected(RESOURCE_EXHAUSTED, self.stub.Upsert,
                                      request)

        self.assertIn(str(self.LIMIT), message)
        self.assertEqual(self.count("docs"), 0)
        self.assertServing()

    def test_import_over_limit_resource_exhausted(self):
        self.create("docs", 1024, DOT_PRODUCT)
        small = vecdb_pb2.UpsertRequest(
            collection="docs", points=[point("small", np.ones(1024))])
        large = vecdb_pb2.UpsertRequest(
            collection="docs", points=self.points_of_size(2 * self.LIMIT))

        self.assertRejected(RESOURCE_EXHAUSTED, self.stub.Import,
                            iter([small, large]))

        self.assertEqual(self.get("docs", ["p0"]), [])
        self.assertServing()

    def test_upsert_under_limit_accepted(self):
        self.create("docs", 1024, DOT_PRODUCT)
        points = self.points_of_size(self.LIMIT * 3 // 4)
        request = vecdb_pb2.UpsertRequest(collection="docs", points=points)
        self.assertLess(request.ByteSize(), self.LIMIT)

        self.assertEqual(self.upsert("docs", points), len(points))
        self.assertEqual(self.count("docs"), len(points))


if __name__ == "__main__":
    unittest.main()
