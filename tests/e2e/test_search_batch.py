"""SearchBatch at its edges: empty, faulty, large and tiny collections.

A batch is all or nothing: one bad search rejects it with INVALID_ARGUMENT
naming the search's position, and no result comes back. Each result must
equal what the same search returns alone. A reply over the message limit
fails with RESOURCE_EXHAUSTED instead of hanging.
"""

import math
import time
import unittest

import grpc
import numpy as np

from harness import (COSINE, FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS,
                     ServerTestCase, point, vecdb_pb2)

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED

DIMENSION = 8
INDEX_KINDS = (FLAT, HNSW)
# A batch may compute scores another way than a single search, because FAISS
# 1.7.3 switches to BLAS at 20 queries (distance_compute_blas_threshold). So
# float32 scores may differ in the last bits.
SCORE_TOLERANCE = 1e-5


def kind_name(kind):
    return vecdb_pb2.IndexKind.Name(kind)


class SearchBatchTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(51)
        self.vectors = self.rng.standard_normal((300, DIMENSION))
        for kind in INDEX_KINDS:
            self.create(kind_name(kind), DIMENSION, COSINE, kind, m=8,
                        ef_construction=64)
            self.upsert(kind_name(kind),
                        [point(f"p{i}", v, {"i": i})
                         for i, v in enumerate(self.vectors)])

    def assertSameHits(self, batch_hits, single_hits, context):
        """Assert equal hits, with scores equal within SCORE_TOLERANCE."""
        self.assertEqual([h.id for h in batch_hits],
                         [h.id for h in single_hits], context)
        for batch_hit, single_hit in zip(batch_hits, single_hits):
            self.assertAlmostEqual(batch_hit.score, single_hit.score,
                                   delta=SCORE_TOLERANCE, msg=context)
            self.assertEqual(list(batch_hit.vector), list(single_hit.vector),
                             context)
            self.assertEqual(batch_hit.metadata, single_hit.metadata, context)

    def batch_request(self, collection, searches):
        return vecdb_pb2.SearchBatchRequest(collection=collection,
                                            searches=searches)

    def test_empty_batch_returns_no_results(self):
        for kind in INDEX_KINDS:
            with self.subTest(kind=kind_name(kind)):
                self.assertEqual(self.search_batch(kind_name(kind), []), [])

    def test_empty_batch_unknown_collection(self):
        message = self.assertRejected(NOT_FOUND, self.stub.SearchBatch,
                                      self.batch_request("missing", []))

        self.assertIn("missing", message)

    def test_bad_search_named_by_position(self):
        good = self.search_request("", self.vectors[0], 5)
        bad_searches = {
            "short vector": self.search_request("", [1, 2, 3], 5),
            "NaN component": self.search_request(
                "", [math.nan] + [1] * (DIMENSION - 1), 5),
            "zero vector under cosine": self.search_request(
                "", [0] * DIMENSION, 5),
            "top_k zero": self.search_request("", self.vectors[1], 0),
            "top_k over the limit": self.search_request(
                "", self.vectors[1], 10001),
            "ef_search over the limit": self.search_request(
                "", self.vectors[1], 5,
                params=vecdb_pb2.SearchParams(ef_search=10001)),
            "NaN score_threshold": self.search_request(
                "", self.vectors[1], 5, score_threshold=math.nan),
        }
        for kind in INDEX_KINDS:
            for case, bad in bad_searches.items():
                for position in (0, 3, 6):
                    with self.subTest(kind=kind_name(kind), case=case,
                                      position=position):
                        searches = [good] * 7
                        searches[position] = bad
                        message = self.assertRejected(
                            INVALID_ARGUMENT, self.stub.SearchBatch,
                            self.batch_request(kind_name(kind), searches))
                        self.assertIn(f"searches[{position}]", message)
        self.assertServing()

    def test_mixed_options_match_single_searches(self):
        # (query row, top_k, further SearchRequest fields) of each search.
        options = [
            (0, 1, {}),
            (1, 300, {"include_vectors": True}),
            (2, 7, {"include_metadata": True, "score_threshold": 0.2}),
            (3, 10, {"params": vecdb_pb2.SearchParams(exact=True)}),
            (4, 10, {"params": vecdb_pb2.SearchParams(ef_search=200)}),
            (5, 10000, {"score_threshold": 2.0}),
        ]
        for kind in INDEX_KINDS:
            with self.subTest(kind=kind_name(kind)):
                name = kind_name(kind)
                searches = [self.search_request("", self.vectors[row], top_k,
                                                **fields)
                            for row, top_k, fields in options]

                results = self.search_batch(name, searches)

                self.assertEqual(len(results), len(options))
                for position, (row, top_k, fields) in enumerate(options):
                    single = self.search(name, self.vectors[row], top_k,
                                         **fields)
                    self.assertSameHits(results[position], single,
                                        f"searches[{position}]")
                self.assertEqual(len(results[1]), 300)
                self.assertEqual(results[5], [],
                                 "no cosine similarity reaches 2.0")

    def test_large_batch_matches_single_searches(self):
        queries = self.rng.standard_normal((500, DIMENSION))
        searches = [self.search_request("", q, 10) for q in queries]

        results = self.search_batch("FLAT", searches)

        self.assertEqual(len(results), 500)
        for hits in results:
            self.assertEqual(len(hits), 10)
            self.assertEqual(len({h.id for h in hits}), 10)
        for position in (0, 137, 499):
            self.assertSameHits(results[position],
                                self.search("FLAT", queries[position], 10),
                                f"searches[{position}]")

    def test_batch_skips_deleted_points(self):
        # Deleted labels stay in FAISS and are filtered out. A batch that
        # mixes graph walks, exact scans and k equal to the live count must
        # still return only live points, top_k of them for every query.
        name = kind_name(HNSW)
        deleted = [f"p{i}" for i in range(0, 300, 3)] + [
            f"p{i}" for i in range(1, 300, 3)]
        self.stub.Delete(vecdb_pb2.DeleteRequest(collection=name, ids=deleted),
                         timeout=RPC_TIMEOUT_SECONDS)
        live = 300 - len(deleted)
        self.assertEqual(self.count(name), live)
        queries = self.rng.standard_normal((60, DIMENSION))
        # (top_k, further fields) per group of 20 queries.
        groups = [(live, {}), (10, {}),
                  (10, {"params": vecdb_pb2.SearchParams(exact=True)})]
        searches = [self.search_request("", q, top_k, **fields)
                    for (top_k, fields), chunk in zip(
                        groups, np.split(queries, len(groups)))
                    for q in chunk]

        results = self.search_batch(name, searches)

        self.assertEqual(len(results), len(searches))
        for position, (search, hits) in enumerate(zip(searches, results)):
            ids = [h.id for h in hits]
            self.assertEqual(len(ids), search.top_k, f"searches[{position}]")
            self.assertEqual(len(set(ids)), len(ids), f"searches[{position}]")
            self.assertFalse(set(ids) & set(deleted), f"searches[{position}]")
            single = self.search(name, search.vector, search.top_k,
                                 params=search.params)
            self.assertSameHits(hits, single, f"searches[{position}]")

    def test_single_point_collection_in_batches(self):
        # FAISS pads a short result with label -1, and the results of an
        # index with one vector are almost all padding, none of which may
        # become a hit.
        for kind in INDEX_KINDS:
            name = f"single_{kind_name(kind)}"
            self.create(name, DIMENSION, L2, kind)
            self.upsert(name, [point("only", self.vectors[0])])
            for batch_size in (1, 19, 20, 100):
                with self.subTest(kind=kind_name(kind),
                                  batch_size=batch_size):
                    searches = [
                        self.search_request("", q, 5)
                        for q in self.rng.standard_normal(
                            (batch_size, DIMENSION))]

                    results = self.search_batch(name, searches)

                    self.assertEqual(len(results), batch_size)
                    self.assertEqual([[h.id for h in hits]
                                      for hits in results],
                                     [["only"]] * batch_size)

    def test_vectors_at_norm_limit_score_finitely(self):
        # Under L2 and DOT_PRODUCT a vector's squared norm may reach a
        # quarter of the largest float32. Two such vectors pointing in
        # opposite directions are the extreme case, and batches of 20 or more
        # queries take FAISS's BLAS path, which computes distances from norms.
        limit = float(np.finfo(np.float32).max) / 4
        component = np.float32(math.sqrt(limit / DIMENSION))
        while float(component) ** 2 * DIMENSION > limit:
            component = np.nextafter(component, np.float32(0))
        extreme = [float(component)] * DIMENSION
        opposite = [-float(component)] * DIMENSION
        for metric in (L2, vecdb_pb2.DOT_PRODUCT):
            for kind in INDEX_KINDS:
                with self.subTest(metric=vecdb_pb2.Metric.Name(metric),
                                  kind=kind_name(kind)):
                    name = f"extreme_{metric}_{kind_name(kind)}"
                    self.create(name, DIMENSION, metric, kind)
                    self.upsert(name, [point("plus", extreme),
                                       point("minus", opposite)])

                    for batch_size in (1, 25):
                        searches = [self.search_request(
                            "", extreme if i % 2 else opposite, 2)
                            for i in range(batch_size)]
                        # search_batch asserts that every score is finite.
                        results = self.search_batch(name, searches)
                        self.assertEqual([len(hits) for hits in results],
                                         [2] * batch_size)


class ReplyLimitTest(ServerTestCase):
    """A server whose messages, replies included, are limited to 1 MiB."""

    LIMIT = 1 << 20
    server_args = ("--max_message_bytes", str(LIMIT))

    def setUp(self):
        super().setUp()
        self.vectors = np.random.default_rng(52).standard_normal((3000, 64))
        self.create("docs", 64, L2, FLAT)
        for start in range(0, 3000, 1000):
            self.upsert("docs", [point(f"p{i}", self.vectors[i],
                                       {"text": "x" * 100})
                                 for i in range(start, start + 1000)])

    def assertReplyTooLarge(self, rpc, request):
        started = time.monotonic()
        message = self.assertRejected(RESOURCE_EXHAUSTED, rpc, request)
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn(str(self.LIMIT), message)
        self.assertServing()

    def test_search_reply_over_limit(self):
        self.assertReplyTooLarge(
            self.stub.Search,
            self.search_request("docs", self.vectors[0], 3000,
                                include_vectors=True, include_metadata=True))

    def test_search_batch_reply_over_limit(self):
        searches = [self.search_request("", self.vectors[i], 1000,
                                        include_vectors=True)
                    for i in range(10)]
        self.assertReplyTooLarge(
            self.stub.SearchBatch,
            vecdb_pb2.SearchBatchRequest(collection="docs",
                                         searches=searches))

        # The same searches without vectors fit and still work.
        for search in searches:
            search.include_vectors = False
        results = self.search_batch("docs", searches)
        self.assertEqual([len(hits) for hits in results], [1000] * 10)

    def test_get_reply_over_limit(self):
        self.assertReplyTooLarge(
            self.stub.Get,
            vecdb_pb2.GetRequest(collection="docs",
                                 ids=[f"p{i}" for i in range(3000)]))
        self.assertEqual(len(self.get("docs", ["p0", "p2999"])), 2)


if __name__ == "__main__":
    unittest.main()
