"""Scores and order against a brute-force numpy computation, per metric.

COSINE and DOT_PRODUCT scores are similarities, highest first. L2 scores are
Euclidean distances, not squared, lowest first. FLAT must return the exact
neighbours, and HNSW must reach a recall@10 of at least 0.95.
"""

import unittest

import numpy as np

from harness import (COSINE, DOT_PRODUCT, FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS,
                     ServerTestCase, point, vecdb_pb2)

POINT_COUNT = 500
QUERY_COUNT = 50
DIMENSION = 16
TOP_K = 10
METRICS = (COSINE, DOT_PRODUCT, L2)
MIN_RECALL = 0.95
# Tolerances for the server's float32 scores against float64 ones here.
SCORE_RTOL = 1e-4
SCORE_ATOL = 1e-5


def metric_name(metric):
    return vecdb_pb2.Metric.Name(metric)


def brute_force_scores(metric, queries, vectors):
    """Return the (len(queries), len(vectors)) score matrix in float64."""
    queries = queries.astype(np.float64)
    vectors = vectors.astype(np.float64)
    if metric == COSINE:
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return queries @ vectors.T
    if metric == DOT_PRODUCT:
        return queries @ vectors.T
    return np.linalg.norm(queries[:, None, :] - vectors[None, :, :], axis=2)


def best_first(metric, scores):
    """Return the column indexes of each row of scores, best first."""
    if metric == L2:
        return np.argsort(scores, axis=1, kind="stable")
    return np.argsort(-scores, axis=1, kind="stable")


def recall(results, expected_ids):
    """Return the fraction of expected ids found, over all queries."""
    found = sum(len({h.id for h in hits} & set(ids))
                for hits, ids in zip(results, expected_ids))
    return found / sum(len(ids) for ids in expected_ids)


class ScoreTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(31)
        self.vectors = rng.standard_normal(
            (POINT_COUNT, DIMENSION)).astype(np.float32)
        self.queries = rng.standard_normal(
            (QUERY_COUNT, DIMENSION)).astype(np.float32)
        self.ids = [f"p{i}" for i in range(POINT_COUNT)]

    def load(self, metric, kind, **index):
        """Create a collection of every point and return its name."""
        name = f"{metric_name(metric)}_{vecdb_pb2.IndexKind.Name(kind)}"
        self.create(name, DIMENSION, metric, kind, **index)
        points = [point(point_id, vector)
                  for point_id, vector in zip(self.ids, self.vectors)]
        self.upsert(name, points)
        return name

    def search_every_query(self, name, top_k=TOP_K, params=None):
        searches = [self.search_request("", query, top_k, params=params)
                    for query in self.queries]
        return self.search_batch(name, searches)

    def expected(self, metric, top_k=TOP_K):
        """Return the brute-force ids and scores of each query, best first."""
        scores = brute_force_scores(metric, self.queries, self.vectors)
        order = best_first(metric, scores)[:, :top_k]
        ids = [[self.ids[i] for i in row] for row in order]
        return ids, np.take_along_axis(scores, order, axis=1), scores

    def assertBestFirst(self, metric, hits):
        scores = [h.score for h in hits]
        if metric == L2:
            self.assertEqual(scores, sorted(scores))
        else:
            self.assertEqual(scores, sorted(scores, reverse=True))

    def assertScoresMatch(self, metric, results, all_scores):
        """Check each hit's score against the brute-force score of its id."""
        for query_index, hits in enumerate(results):
            self.assertBestFirst(metric, hits)
            self.assertEqual(len({h.id for h in hits}), len(hits))
            expected = [all_scores[query_index, int(h.id[1:])] for h in hits]
            np.testing.assert_allclose([h.score for h in hits], expected,
                                       rtol=SCORE_RTOL, atol=SCORE_ATOL)

    def test_flat_matches_brute_force(self):
        for metric in METRICS:
            with self.subTest(metric=metric_name(metric)):
                name = self.load(metric, FLAT)
                expected_ids, expected_scores, _ = self.expected(metric)

                results = self.search_every_query(name)

                self.assertEqual([[h.id for h in hits] for hits in results],
                                 expected_ids)
                np.testing.assert_allclose(
                    [[h.score for h in hits] for hits in results],
                    expected_scores, rtol=SCORE_RTOL, atol=SCORE_ATOL)

    def test_exact_search_under_hnsw_matches_brute_force(self):
        for metric in METRICS:
            with self.subTest(metric=metric_name(metric)):
                name = self.load(metric, HNSW)
                expected_ids, expected_scores, _ = self.expected(metric)

                results = self.search_every_query(
                    name, params=vecdb_pb2.SearchParams(exact=True))

                self.assertEqual([[h.id for h in hits] for hits in results],
                                 expected_ids)
                np.testing.assert_allclose(
                    [[h.score for h in hits] for hits in results],
                    expected_scores, rtol=SCORE_RTOL, atol=SCORE_ATOL)

    def test_hnsw_recall_and_scores(self):
        for metric in METRICS:
            with self.subTest(metric=metric_name(metric)):
                name = self.load(metric, HNSW)
                expected_ids, _, all_scores = self.expected(metric)

                results = self.search_every_query(name)

                self.assertEqual([len(hits) for hits in results],
                                 [TOP_K] * QUERY_COUNT)
                self.assertScoresMatch(metric, results, all_scores)
                self.assertGreaterEqual(recall(results, expected_ids),
                                        MIN_RECALL)

    def test_hnsw_recall_grows_with_ef_search(self):
        for metric in METRICS:
            with self.subTest(metric=metric_name(metric)):
                # A sparse graph (m 4), so that a small ef_search misses some.
                name = self.load(metric, HNSW, m=4, ef_construction=16)
                expected_ids, _, all_scores = self.expected(metric)

                recalls = []
                for ef_search in (16, 64, 256):
                    results = self.search_every_query(
                        name, params=vecdb_pb2.SearchParams(
                            ef_search=ef_search))
                    self.assertScoresMatch(metric, results, all_scores)
                    recalls.append(recall(results, expected_ids))

                self.assertEqual(recalls, sorted(recalls),
                                 "recall at ef_search 16, 64, 256")
                self.assertGreaterEqual(recalls[-1], MIN_RECALL)

    def test_top_k_above_count_returns_every_live_point(self):
        for kind in (FLAT, HNSW):
            for metric in METRICS:
                with self.subTest(kind=vecdb_pb2.IndexKind.Name(kind),
                                  metric=metric_name(metric)):
                    name = self.load(metric, kind)
                    query = self.queries[:1]
                    scores = brute_force_scores(metric, query, self.vectors)

                    hits = self.search(name, query[0], POINT_COUNT + 100)
                    self.assertEqual(sorted(h.id for h in hits),
                                     sorted(self.ids))
                    self.assertScoresMatch(metric, [hits], scores)

                    deleted = self.ids[:100]
                    self.stub.Delete(vecdb_pb2.DeleteRequest(
                        collection=name, ids=deleted),
                        timeout=RPC_TIMEOUT_SECONDS)
                    hits = self.search(name, query[0], POINT_COUNT)
                    self.assertEqual(sorted(h.id for h in hits),
                                     sorted(self.ids[100:]))
                    self.assertScoresMatch(metric, [hits], scores)

    def test_top_k_below_count_returns_top_k(self):
        for kind in (FLAT, HNSW):
            with self.subTest(kind=vecdb_pb2.IndexKind.Name(kind)):
                name = self.load(L2, kind)
                for top_k in (1, 2, 50, POINT_COUNT - 1, POINT_COUNT):
                    hits = self.search(name, self.queries[0], top_k)
                    self.assertEqual(len(hits), top_k)
                    self.assertEqual(len({h.id for h in hits}), top_k)


if __name__ == "__main__":
    unittest.main()
