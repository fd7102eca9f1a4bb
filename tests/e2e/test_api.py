"""Every RPC of vecdb.v1.VectorDB against a real server, on valid input."""

import unittest

import grpc
import numpy as np

from harness import (COSINE, DOT_PRODUCT, FLAT, HEALTH_SERVING, HNSW, L2,
                     RPC_TIMEOUT_SECONDS, ServerTestCase, as_float32, point,
                     struct, vecdb_pb2)


def random_points(count, dimension, seed, prefix="p"):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dimension)).astype(np.float32)
    return [point(f"{prefix}{i}", vectors[i]) for i in range(count)], vectors


class CollectionTest(ServerTestCase):

    def test_create_fills_hnsw_defaults(self):
        info = self.stub.CreateCollection(
            vecdb_pb2.CreateCollectionRequest(name="docs", dimension=8,
                                              metric=COSINE),
            timeout=RPC_TIMEOUT_SECONDS)

        self.assertEqual(info.name, "docs")
        self.assertEqual(info.dimension, 8)
        self.assertEqual(info.metric, COSINE)
        self.assertEqual(info.index.kind, HNSW)
        self.assertEqual(info.index.m, 16)
        self.assertEqual(info.index.ef_construction, 100)
        self.assertEqual(info.index.ef_search, 64)
        self.assertEqual(info.point_count, 0)

    def test_create_keeps_given_index_parameters(self):
        hnsw = self.create("hnsw", 4, L2, HNSW, m=8, ef_construction=40,
                           ef_search=24)
        flat = self.create("flat", 3, DOT_PRODUCT, FLAT)

        self.assertEqual(hnsw.index.kind, HNSW)
        self.assertEqual(hnsw.index.m, 8)
        self.assertEqual(hnsw.index.ef_construction, 40)
        self.assertEqual(hnsw.index.ef_search, 24)
        self.assertEqual(hnsw.metric, L2)
        self.assertEqual(flat.index.kind, FLAT)
        self.assertEqual(flat.metric, DOT_PRODUCT)
        self.assertEqual(flat.dimension, 3)

    def test_get_collection_matches_create(self):
        created = self.create("docs", 5, L2, HNSW, m=12)
        fetched = self.stub.GetCollection(
            vecdb_pb2.GetCollectionRequest(name="docs"),
            timeout=RPC_TIMEOUT_SECONDS)

        self.assertEqual(fetched.name, created.name)
        self.assertEqual(fetched.dimension, created.dimension)
        self.assertEqual(fetched.metric, created.metric)
        self.assertEqual(fetched.index, created.index)

    def test_get_collection_counts_live_points(self):
        self.create("docs", 4)
        points, _ = random_points(5, 4, seed=1)
        self.upsert("docs", points)
        self.stub.Delete(vecdb_pb2.DeleteRequest(collection="docs",
                                                 ids=["p0", "p1"]),
                         timeout=RPC_TIMEOUT_SECONDS)

        info = self.stub.GetCollection(
            vecdb_pb2.GetCollectionRequest(name="docs"),
            timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(info.point_count, 3)
        self.assertGreater(info.memory_bytes, 0)

    def test_list_collections_sorted_by_name(self):
        self.create("beta", 2)
        self.create("alpha", 3, L2)
        self.create("gamma", 4, DOT_PRODUCT, HNSW)

        listed = self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections
        self.assertEqual([c.name for c in listed], ["alpha", "beta", "gamma"])
        self.assertEqual([c.dimension for c in listed], [3, 2, 4])
        self.assertEqual([c.metric for c in listed], [L2, COSINE, DOT_PRODUCT])
        self.assertEqual([c.index.kind for c in listed], [FLAT, FLAT, HNSW])

    def test_list_collections_empty_at_start(self):
        listed = self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections
        self.assertEqual(list(listed), [])

    def test_drop_removes_collection(self):
        self.create("keep", 2)
        self.create("gone", 2)
        self.stub.DropCollection(vecdb_pb2.DropCollectionRequest(name="gone"),
                                 timeout=RPC_TIMEOUT_SECONDS)

        listed = self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections
        self.assertEqual([c.name for c in listed], ["keep"])
        self.assertRejected(grpc.StatusCode.NOT_FOUND,
                            self.stub.GetCollection,
                            vecdb_pb2.GetCollectionRequest(name="gone"))

    def test_recreated_collection_starts_empty(self):
        self.create("docs", 4, L2, HNSW)
        points, vectors = random_points(20, 4, seed=2)
        self.upsert("docs", points)
        self.stub.DropCollection(vecdb_pb2.DropCollectionRequest(name="docs"),
                                 timeout=RPC_TIMEOUT_SECONDS)

        info = self.create("docs", 4, COSINE, FLAT)
        self.assertEqual(info.point_count, 0)
        self.assertEqual(self.get("docs", [p.id for p in points]), [])
        self.assertEqual(self.search("docs", vectors[0], 10), [])


class PointTest(ServerTestCase):

    def test_get_returns_vectors_as_written(self):
        # Under COSINE the index contains normalised vectors, but Get must
        # return the stored vector itself.
        self.create("docs", 3, COSINE)
        written = [point("a", [0.1, -2.5, 3e-7], {"title": "first"}),
                   point("b", [1000.0, 0.0, 1.0])]
        self.upsert("docs", written)

        found = self.get("docs", ["a", "b"])
        self.assertEqual([p.id for p in found], ["a", "b"])
        self.assertEqual(list(found[0].vector), as_float32([0.1, -2.5, 3e-7]))
        self.assertEqual(list(found[1].vector), as_float32([1000, 0, 1]))
        self.assertEqual(found[0].metadata, struct({"title": "first"}))

    def test_get_keeps_request_order_and_skips_missing(self):
        self.create("docs", 2, L2)
        self.upsert("docs", [point("a", [1, 0]), point("b", [0, 1]),
                             point("c", [1, 1])])

        found = self.get("docs", ["c", "missing", "a", "b"])
        self.assertEqual([p.id for p in found], ["c", "a", "b"])
        self.assertEqual(self.get("docs", ["missing"]), [])

    def test_metadata_round_trips(self):
        self.create("docs", 2, L2)
        metadata = {"title": "vecdb", "year": 2024, "score": 0.25,
                    "draft": False, "missing": None,
                    "tags": ["a", 1, True], "nested": {"page": 3, "x": [1.5]}}
        self.upsert("docs", [point("a", [1, 2], metadata)])

        self.assertEqual(self.get("docs", ["a"])[0].metadata, struct(metadata))

    def test_upsert_reports_points_written(self):
        self.create("docs", 4)
        points, _ = random_points(7, 4, seed=3)

        self.assertEqual(self.upsert("docs", points), 7)
        self.assertEqual(self.count("docs"), 7)

    def test_import_applies_every_streamed_request(self):
        self.create("docs", 8, L2, HNSW)
        points, vectors = random_points(100, 8, seed=4)
        requests = [vecdb_pb2.UpsertRequest(collection="docs",
                                            points=points[i:i + 20])
                    for i in range(0, 100, 20)]

        response = self.stub.Import(iter(requests),
                                    timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(response.upserted, 100)
        self.assertEqual(self.count("docs"), 100)
        found = self.get("docs", ["p0", "p57", "p99"])
        self.assertEqual([list(p.vector) for p in found],
                         [vectors[i].tolist() for i in (0, 57, 99)])

    def test_replace_hides_old_vector(self):
        for kind in (FLAT, HNSW):
            with self.subTest(kind=vecdb_pb2.IndexKind.Name(kind)):
                name = f"docs_{kind}"
                self.create(name, 2, L2, kind)
                self.upsert(name, [point("a", [0, 0], {"version": 1}),
                                   point("b", [10, 10]),
                                   point("c", [-10, 10])])

                self.assertEqual(
                    self.upsert(name, [point("a", [5, -5], {"new": True})]), 1)

                self.assertEqual(self.count(name), 3)
                replaced = self.get(name, ["a"])[0]
                self.assertEqual(list(replaced.vector), [5.0, -5.0])
                self.assertEqual(replaced.metadata, struct({"new": True}))
                # A search at the old position must score "a" by its new
                # vector, at distance sqrt(50), and list it once.
                hits = self.search(name, [0, 0], 3)
                self.assertEqual(sorted(h.id for h in hits), ["a", "b", "c"])
                score_of_a = {h.id: h.score for h in hits}["a"]
                self.assertAlmostEqual(score_of_a, 50 ** 0.5, places=4)
                self.assertEqual(self.search(name, [5, -5], 1)[0].id, "a")

    def test_delete_returns_count_of_existing_points(self):
        self.create("docs", 2, L2)
        self.upsert("docs", [point("a", [1, 0]), point("b", [0, 1]),
                             point("c", [1, 1])])

        deleted = self.stub.Delete(
            vecdb_pb2.DeleteRequest(collection="docs",
                                    ids=["a", "missing", "c"]),
            timeout=RPC_TIMEOUT_SECONDS).deleted
        self.assertEqual(deleted, 2)
        again = self.stub.Delete(
            vecdb_pb2.DeleteRequest(collection="docs", ids=["a", "c"]),
            timeout=RPC_TIMEOUT_SECONDS).deleted
        self.assertEqual(again, 0)
        self.assertEqual(self.count("docs"), 1)

    def test_deleted_point_never_returned(self):
        for kind in (FLAT, HNSW):
            with self.subTest(kind=vecdb_pb2.IndexKind.Name(kind)):
                name = f"docs_{kind}"
                self.create(name, 8, COSINE, kind)
                points, vectors = random_points(50, 8, seed=5)
                self.upsert(name, points)

                self.stub.Delete(vecdb_pb2.DeleteRequest(
                    collection=name, ids=["p7", "p8"]),
                    timeout=RPC_TIMEOUT_SECONDS)

                self.assertEqual(self.get(name, ["p7", "p8"]), [])
                for exact in (False, True):
                    hits = self.search(
                        name, vectors[7], 50,
                        params=vecdb_pb2.SearchParams(exact=exact))
                    ids = [h.id for h in hits]
                    self.assertEqual(len(ids), 48)
                    self.assertNotIn("p7", ids)
                    self.assertNotIn("p8", ids)

    def test_upsert_after_delete_restores_point(self):
        self.create("docs", 2, L2, HNSW)
        self.upsert("docs", [point("a", [1, 0]), point("b", [0, 1])])
        self.stub.Delete(vecdb_pb2.DeleteRequest(collection="docs",
                                                 ids=["a"]),
                         timeout=RPC_TIMEOUT_SECONDS)

        self.upsert("docs", [point("a", [3, 3])])

        self.assertEqual(self.count("docs"), 2)
        self.assertEqual(list(self.get("docs", ["a"])[0].vector), [3.0, 3.0])
        hits = self.search("docs", [3, 3], 2)
        self.assertEqual([h.id for h in hits], ["a", "b"])


    def test_deferred_points_searchable_before_and_after_indexing(self):
        self.create("c", 8, L2, HNSW)
        rng = np.random.default_rng(8)
        vectors = rng.standard_normal((2000, 8))
        self.stub.Upsert(vecdb_pb2.UpsertRequest(
            collection="c", defer_index=True,
            points=[point(f"p{i}", v) for i, v in enumerate(vectors)]),
            timeout=RPC_TIMEOUT_SECONDS)
        # Replaces and deletes of waiting points take effect too.
        vectors[5] = rng.standard_normal(8)
        self.upsert("c", [point("p5", vectors[5])])
        self.stub.Delete(vecdb_pb2.DeleteRequest(collection="c", ids=["p6"]),
                         timeout=RPC_TIMEOUT_SECONDS)

        def check():
            for row in (0, 5, 1999):
                hits = self.search("c", vectors[row], 1)
                self.assertEqual([h.id for h in hits], [f"p{row}"])
            hits = self.search("c", vectors[6], 3000)
            self.assertEqual(len(hits), 1999)
            self.assertNotIn("p6", [h.id for h in hits])

        check()
        self.wait_until_indexed("c")
        check()
        self.crash_and_restart()
        check()


class SearchTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        # Four points on a line: distances from the origin are 1, 2, 3, 4.
        self.create("line", 2, L2)
        self.upsert("line", [point("d3", [3, 0], {"n": 3}),
                             point("d1", [1, 0], {"n": 1}),
                             point("d4", [0, 4], {"n": 4}),
                             point("d2", [0, -2], {"n": 2})])

    def test_search_returns_nearest_first(self):
        hits = self.search("line", [0, 0], 3)

        self.assertEqual([h.id for h in hits], ["d1", "d2", "d3"])
        np.testing.assert_allclose([h.score for h in hits], [1, 2, 3],
                                   rtol=1e-6)

    def test_hits_omit_vector_and_metadata_by_default(self):
        hits = self.search("line", [0, 0], 4)

        for hit in hits:
            self.assertEqual(list(hit.vector), [])
            self.assertEqual(len(hit.metadata.fields), 0)

    def test_include_vectors_and_metadata(self):
        with_vectors = self.search("line", [0, 0], 2, include_vectors=True)
        with_metadata = self.search("line", [0, 0], 2, include_metadata=True)
        with_both = self.search("line", [0, 0], 2, include_vectors=True,
                                include_metadata=True)

        self.assertEqual([list(h.vector) for h in with_vectors],
                         [[1, 0], [0, -2]])
        self.assertEqual(len(with_vectors[0].metadata.fields), 0)
        self.assertEqual([h.metadata for h in with_metadata],
                         [struct({"n": 1}), struct({"n": 2})])
        self.assertEqual(list(with_metadata[0].vector), [])
        self.assertEqual([list(h.vector) for h in with_both],
                         [[1, 0], [0, -2]])
        self.assertEqual([h.metadata for h in with_both],
                         [struct({"n": 1}), struct({"n": 2})])

    def test_score_threshold_under_l2(self):
        hits = self.search("line", [0, 0], 4, score_threshold=2.5)

        self.assertEqual([h.id for h in hits], ["d1", "d2"])

    def test_score_threshold_under_cosine(self):
        self.create("angles", 2, COSINE)
        # Cosine similarities with [1, 0]: 1, 0.6, 0 and -1.
        self.upsert("angles", [point("same", [2, 0]), point("near", [3, 4]),
                               point("right", [0, 1]),
                               point("opposite", [-1, 0])])

        hits = self.search("angles", [1, 0], 4, score_threshold=0.5)

        self.assertEqual([h.id for h in hits], ["same", "near"])
        np.testing.assert_allclose([h.score for h in hits], [1.0, 0.6],
                                   rtol=1e-6)

    def test_score_threshold_under_dot_product(self):
        self.create("dot", 2, DOT_PRODUCT)
        self.upsert("dot", [point("big", [4, 0]), point("small", [1, 0]),
                            point("negative", [-3, 0])])

        hits = self.search("dot", [1, 0], 3, score_threshold=0.5)

        self.assertEqual([h.id for h in hits], ["big", "small"])
        np.testing.assert_allclose([h.score for h in hits], [4, 1],
                                   rtol=1e-6)

    def test_search_batch_matches_single_searches(self):
        queries = [[0, 0], [3, 1], [0, 5], [-1, -1]]
        searches = [self.search_request("", q, 2, include_metadata=True)
                    for q in queries]

        results = self.search_batch("line", searches)

        self.assertEqual(len(results), len(queries))
        for query, hits in zip(queries, results):
            single = self.search("line", query, 2, include_metadata=True)
            self.assertEqual(hits, single)

    def test_search_batch_keeps_per_search_top_k(self):
        searches = [self.search_request("", [0, 0], k) for k in (1, 4, 2)]

        results = self.search_batch("line", searches)

        self.assertEqual([len(hits) for hits in results], [1, 4, 2])

    def test_exact_and_ef_search_params_under_hnsw(self):
        self.create("graph", 16, L2, HNSW, m=8, ef_construction=64)
        points, vectors = random_points(300, 16, seed=6)
        self.upsert("graph", points)
        query = np.random.default_rng(7).standard_normal(16)
        distances = np.linalg.norm(vectors.astype(np.float64) - query, axis=1)
        expected_ids = [f"p{i}" for i in np.argsort(distances)[:10]]

        exact = self.search("graph", query, 10,
                            params=vecdb_pb2.SearchParams(exact=True))
        self.assertEqual([h.id for h in exact], expected_ids)
        np.testing.assert_allclose([h.score for h in exact],
                                   np.sort(distances)[:10], rtol=1e-4)
        for ef_search in (1, 10, 64, 500):
            with self.subTest(ef_search=ef_search):
                hits = self.search(
                    "graph", query, 10,
                    params=vecdb_pb2.SearchParams(ef_search=ef_search))
                self.assertEqual(len(hits), 10)
                self.assertEqual(len({h.id for h in hits}), 10)
        wide = self.search("graph", query, 10,
                           params=vecdb_pb2.SearchParams(ef_search=500))
        self.assertEqual([h.id for h in wide], expected_ids)


class ServerLifecycleTest(ServerTestCase):

    def test_health_check_reports_serving(self):
        self.assertEqual(self.server.health(), HEALTH_SERVING)

    def test_sigterm_exits_with_status_zero(self):
        self.create("docs", 2, L2)
        self.upsert("docs", [point("a", [1, 2])])

        self.server.stop()

        self.assertFalse(self.server.running())


if __name__ == "__main__":
    unittest.main()
