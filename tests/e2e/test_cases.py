"""Small inputs that have broken vector databases and ANN libraries before.

Every search helper also asserts that no hit carries a NaN or infinite score.
"""

import math
import os
import unittest

import grpc
import numpy as np

from harness import (COSINE, DOT_PRODUCT, FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS,
                     ServerTestCase, as_float32, encode_upsert_with_raw_id,
                     length_delimited_field, point, struct, vecdb_pb2)

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
INDEX_KINDS = (FLAT, HNSW)


def kind_name(kind):
    return vecdb_pb2.IndexKind.Name(kind)


class BadInputTest(ServerTestCase):

    def test_zero_vector_rejected_under_cosine(self):
        small_integers = [i % 7 - 3 for i in range(50)]
        for kind in INDEX_KINDS:
            with self.subTest(kind=kind_name(kind)):
                name = f"docs_{kind_name(kind)}"
                self.create(name, 50, COSINE, kind)

                self.assertRejected(
                    INVALID_ARGUMENT, self.stub.Upsert,
                    vecdb_pb2.UpsertRequest(collection=name, points=[
                        point("zero", [0] * 50),
                        point("integers", small_integers)]))
                self.assertEqual(self.count(name), 0)
                self.assertEqual(self.get(name, ["zero", "integers"]), [])

                self.upsert(name, [point("integers", small_integers)])
                hits = self.search(name, small_integers, 2)
                self.assertEqual([h.id for h in hits], ["integers"])
                self.assertAlmostEqual(hits[0].score, 1.0, delta=1e-6)

    def test_zero_query_rejected_under_cosine(self):
        for kind in INDEX_KINDS:
            with self.subTest(kind=kind_name(kind)):
                name = f"docs_{kind_name(kind)}"
                self.create(name, 3, COSINE, kind)
                self.upsert(name, [point("a", [3, 0, 6]),
                                   point("b", [0, 1, 0])])

                self.assertRejected(
                    INVALID_ARGUMENT, self.stub.Search,
                    self.search_request(name, [0, 0, 0], 2))
                self.assertServing()

                hits = self.search(name, [1, 0, 0], 2)
                self.assertEqual([h.id for h in hits], ["a", "b"])
                self.assertAlmostEqual(hits[0].score, 1 / math.sqrt(5),
                                       delta=1e-6)
                self.assertAlmostEqual(hits[1].score, 0.0, delta=1e-6)

    def test_non_finite_batch_names_first_bad_point(self):
        self.create("docs", 4, COSINE)
        batch = [point("p0", [math.nan, 0.1, 0.2, 0.3]),
                 point("p1", [math.inf, 1, 1, 1]),
                 point("p2", [1e30] * 4),
                 point("p3", [1, 0, 0, 0]),
                 point("p4", [0, 1, 0, 0])]

        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Upsert,
            vecdb_pb2.UpsertRequest(collection="docs", points=batch))

        self.assertIn("p0", message)
        self.assertNotIn("p1", message)
        self.assertIn("nan", message.lower())
        self.assertEqual(self.count("docs"), 0)
        self.assertEqual(self.get("docs", [p.id for p in batch]), [])

    def test_huge_vector_normalised_without_overflow(self):
        # The squared norm of [1e30] * 4 is 4e60, past float32's maximum of
        # 3.4e38, so only a norm computed in double gives the cosine 0.5.
        self.create("docs", 4, COSINE)
        self.upsert("docs", [point("huge", [1e30] * 4)])
        self.upsert("docs", [point("axis", [0, 1, 0, 0])])

        hits = self.search("docs", [1, 0, 0, 0], 2)
        self.assertEqual([h.id for h in hits], ["huge", "axis"])
        self.assertAlmostEqual(hits[0].score, 0.5, delta=1e-6)
        self.assertAlmostEqual(hits[1].score, 0.0, delta=1e-6)
        self.assertEqual(list(self.get("docs", ["huge"])[0].vector),
                         as_float32([1e30] * 4))

        huge_query = self.search("docs", [1e30] * 4, 1)
        self.assertEqual(huge_query[0].id, "huge")
        self.assertAlmostEqual(huge_query[0].score, 1.0, delta=1e-6)

    def test_non_finite_query_rejected(self):
        self.create("docs", 4, COSINE)
        self.upsert("docs", [point("a", [1, 0, 0, 0])])

        for query in ([math.nan, 0, 0, 0], [0, 0, math.inf, 0],
                      [-math.inf, 1, 1, 1]):
            with self.subTest(query=query):
                self.assertRejected(INVALID_ARGUMENT, self.stub.Search,
                                    self.search_request("docs", query, 1))
        self.assertServing()

    def test_wrong_dimension_rejected_before_write(self):
        self.create("docs", 4, COSINE)

        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Upsert,
            vecdb_pb2.UpsertRequest(collection="docs",
                                    points=[point("a", [0.1, 0.2, 0.3])]))
        self.assertRegex(message, r"\b3\b")
        self.assertRegex(message, r"\b4\b")
        self.assertEqual(self.count("docs"), 0)

        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Import,
            iter([vecdb_pb2.UpsertRequest(
                collection="docs", points=[point("a", [0.1, 0.2, 0.3])])]))
        self.assertRegex(message, r"\b3\b")
        self.assertRegex(message, r"\b4\b")
        self.assertEqual(self.count("docs"), 0)
        self.assertEqual(self.get("docs", ["a"]), [])

    def test_almost_unit_vectors_accepted(self):
        rng = np.random.default_rng(11)
        vectors = rng.standard_normal((20, 1024)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = (vectors * np.float32(1.0002)).astype(np.float32)
        points = [point(f"v{i}", vectors[i]) for i in range(20)]
        self.create("dot", 1024, DOT_PRODUCT)
        self.create("cosine", 1024, COSINE)
        self.upsert("dot", points)
        self.upsert("cosine", points)

        for i in (0, 7, 19):
            squared_norm = float(np.dot(vectors[i].astype(np.float64),
                                        vectors[i].astype(np.float64)))
            self.assertAlmostEqual(squared_norm, 1.0004, delta=1e-5)

            dot_hit = self.search("dot", vectors[i], 1)[0]
            self.assertEqual(dot_hit.id, f"v{i}")
            self.assertAlmostEqual(dot_hit.score, squared_norm, delta=1e-5)

            cosine_hit = self.search("cosine", vectors[i], 1)[0]
            self.assertEqual(cosine_hit.id, f"v{i}")
            self.assertAlmostEqual(cosine_hit.score, 1.0, delta=1e-6)

    def test_id_limit_counted_in_utf8_bytes(self):
        self.create("docs", 2, L2)
        at_limit = ["é" * 128, "€" * 85 + "a", "😀" * 64]
        for point_id in at_limit:
            self.assertEqual(len(point_id.encode("utf-8")), 256)
        self.upsert("docs", [point(point_id, [i, 0])
                             for i, point_id in enumerate(at_limit)])

        found = self.get("docs", at_limit)
        self.assertEqual([p.id.encode("utf-8") for p in found],
                         [i.encode("utf-8") for i in at_limit])
        self.assertEqual(self.search("docs", [0, 0], 1)[0].id, "é" * 128)

        over_limit = "é" * 128 + "a"
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Upsert,
            vecdb_pb2.UpsertRequest(collection="docs",
                                    points=[point(over_limit, [9, 9])]))
        self.assertIn("257", message)
        self.assertIn("256", message)
        self.assertIn("bytes", message)
        self.assertEqual(self.count("docs"), 3)

    def test_invalid_utf8_id_rejected(self):
        self.create("docs", 2, L2)
        upsert_raw = self.server.channel().unary_unary(
            "/vecdb.v1.VectorDB/Upsert",
            request_serializer=None,
            response_deserializer=vecdb_pb2.UpsertResponse.FromString)
        # A valid id sent the same way shows that the encoding is sound.
        upsert_raw(encode_upsert_with_raw_id("docs", b"caf\xc3\xa9", [1, 2]),
                   timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual([p.id for p in self.get("docs", ["caf\u00e9"])],
                         ["caf\u00e9"])

        invalid_ids = {
            "stray continuation byte": b"id-\x80",
            "truncated sequence": b"id-\xc3",
            "overlong encoding of '/'": b"id-\xc0\xaf",
            "encoded surrogate": b"id-\xed\xa0\x80",
            "byte 0xff": b"id-\xff",
        }
        for case, raw_id in invalid_ids.items():
            with self.subTest(case=case):
                request = encode_upsert_with_raw_id("docs", raw_id, [1, 2])
                self.assertRejected(INVALID_ARGUMENT, upsert_raw, request)
        self.assertEqual(self.count("docs"), 1)
        self.assertServing()

    def test_precomposed_and_combining_accent_ids_differ(self):
        precomposed = "caf\u00e9"
        combining = "cafe\u0301"
        self.create("docs", 2, L2)
        self.upsert("docs", [point(precomposed, [1, 0]),
                             point(combining, [0, 1])])

        self.assertEqual(self.count("docs"), 2)
        self.assertEqual(list(self.get("docs", [precomposed])[0].vector),
                         [1, 0])
        self.assertEqual(list(self.get("docs", [combining])[0].vector),
                         [0, 1])

        deleted = self.stub.Delete(
            vecdb_pb2.DeleteRequest(collection="docs", ids=[precomposed]),
            timeout=RPC_TIMEOUT_SECONDS).deleted
        self.assertEqual(deleted, 1)
        self.assertEqual([p.id for p in self.get(
            "docs", [precomposed, combining])], [combining])


class WritesAndCountsTest(ServerTestCase):

    def test_later_duplicate_in_batch_wins(self):
        first = {str(i): [float(i), 0.0] for i in range(10)}
        second = {str(i): [float(i), 10.0] for i in range(10)}
        batch = ([point(i, first[i], {"tag": 0}) for i in first] +
                 [point(i, second[i], {"tag": 1}) for i in second])
        for kind in INDEX_KINDS:
            with self.subTest(kind=kind_name(kind)):
                name = f"docs_{kind_name(kind)}"
                self.create(name, 2, L2, kind)

                self.assertEqual(self.upsert(name, batch), 10)

                self.assertEqual(self.count(name), 10)
                found = self.get(name, list(second))
                self.assertEqual([list(p.vector) for p in found],
                                 list(second.values()))
                self.assertEqual([p.metadata for p in found],
                                 [struct({"tag": 1})] * 10)
                for point_id, vector in first.items():
                    hits = self.search(name, vector, 20)
                    self.assertEqual(len(hits), 10)
                    self.assertEqual(len({h.id for h in hits}), 10)
                    # Every id is scored by its second vector, so none sits
                    # at distance 0 from a first vector.
                    for hit in hits:
                        expected = math.dist(vector, second[hit.id])
                        self.assertAlmostEqual(hit.score, expected, delta=1e-4)

    def test_replacing_never_inflates_count(self):
        rng = np.random.default_rng(12)
        for kind in INDEX_KINDS:
            with self.subTest(kind=kind_name(kind)):
                name = f"docs_{kind_name(kind)}"
                self.create(name, 4, L2, kind)
                vectors = rng.standard_normal((10, 4)).astype(np.float32)
                self.upsert(name, [point(str(i), vectors[i])
                                   for i in range(10)])
                history = [vectors[3]]

                for _ in range(20):
                    latest = rng.standard_normal(4).astype(np.float32)
                    self.upsert(name, [point("3", latest)])
                    history.append(latest)

                    self.assertEqual(self.count(name), 10)
                    self.assertLatestVectorScoresPointThree(name, history)

    def assertLatestVectorScoresPointThree(self, name, history):
        """Search with every vector "3" ever had and check how "3" scores."""
        latest = history[-1].astype(np.float64)
        searches = [self.search_request("", vector, 10)
                    for vector in history]
        for vector, hits in zip(history, self.search_batch(name, searches)):
            ids = [h.id for h in hits]
            self.assertEqual(len(ids), 10)
            self.assertEqual(ids.count("3"), 1)
            score = hits[ids.index("3")].score
            expected = float(
                np.linalg.norm(vector.astype(np.float64) - latest))
            self.assertAlmostEqual(score, expected, delta=1e-3)
        self.assertEqual(self.search(name, history[-1], 1)[0].id, "3")


class ResultSizeTest(ServerTestCase):

    def test_top_k_above_count_returns_every_point(self):
        rng = np.random.default_rng(13)
        for kind in INDEX_KINDS:
            with self.subTest(kind=kind_name(kind)):
                name = f"docs_{kind_name(kind)}"
                self.create(name, 3, L2, kind)
                vectors = rng.standard_normal((10, 3)).astype(np.float32)
                points = [point(f"p{i}", vectors[i]) for i in range(10)]

                self.upsert(name, points[:1])
                hits = self.search(name, [0, 0, 0], 4)
                self.assertEqual([h.id for h in hits], ["p0"])

                self.upsert(name, points[1:7])
                query = rng.standard_normal(3)
                distances = np.linalg.norm(
                    vectors[:7].astype(np.float64) - query, axis=1)
                hits = self.search(name, query, 100)
                self.assertEqual([h.id for h in hits],
                                 [f"p{i}" for i in np.argsort(distances)])

                self.upsert(name, points[7:])
                self.stub.Delete(vecdb_pb2.DeleteRequest(
                    collection=name, ids=["p1", "p4", "p8"]),
                    timeout=RPC_TIMEOUT_SECONDS)
                hits = self.search(name, query, 10)
                self.assertEqual(sorted(h.id for h in hits),
                                 sorted(f"p{i}" for i in
                                        (0, 2, 3, 5, 6, 7, 9)))

    def test_empty_collection_returns_no_hits(self):
        rng = np.random.default_rng(14)
        for kind in INDEX_KINDS:
            for metric in (COSINE, DOT_PRODUCT, L2):
                with self.subTest(kind=kind_name(kind),
                                  metric=vecdb_pb2.Metric.Name(metric)):
                    name = (f"docs_{kind_name(kind)}_"
                            f"{vecdb_pb2.Metric.Name(metric)}")
                    self.create(name, 8, metric, kind)
                    self.assertEveryQueryFindsNothing(name, rng)

                    # A collection emptied by deletes must behave the same.
                    self.upsert(name, [point(f"p{i}", rng.standard_normal(8))
                                       for i in range(5)])
                    self.stub.Delete(vecdb_pb2.DeleteRequest(
                        collection=name, ids=[f"p{i}" for i in range(5)]),
                        timeout=RPC_TIMEOUT_SECONDS)
                    self.assertEveryQueryFindsNothing(name, rng)

    def assertEveryQueryFindsNothing(self, name, rng):
        self.assertEqual(self.search(name, rng.standard_normal(8), 10), [])
        for batch_size in (1, 19, 20, 100):
            searches = [self.search_request("", rng.standard_normal(8), 10)
                        for _ in range(batch_size)]
            results = self.search_batch(name, searches)
            self.assertEqual(len(results), batch_size)
            self.assertEqual(results, [[]] * batch_size,
                             f"batch of {batch_size} queries")


    def test_top_k_equal_to_count_under_hnsw(self):
        rng = np.random.default_rng(11)
        self.create("graph", 16, L2, HNSW, m=48, ef_construction=500)
        vectors = rng.standard_normal((2000, 16)).astype(np.float32)
        for start in range(0, 2000, 500):
            self.upsert("graph", [point(str(i), vectors[i])
                                  for i in range(start, start + 500)])
        for attempt in range(50):
            query = rng.standard_normal(16)
            hits = self.search("graph", query, 2000)
            ids = [hit.id for hit in hits]
            self.assertEqual(len(ids), 2000, f"attempt {attempt}")
            self.assertEqual(len(set(ids)), 2000, f"attempt {attempt}")
            scores = [hit.score for hit in hits]
            self.assertEqual(scores, sorted(scores), f"attempt {attempt}")

    def test_large_top_k_returns_k_hits(self):
        rng = np.random.default_rng(12)
        # Small graph parameters keep the build of 200,000 points short; the
        # case is about the size of the response, not its recall.
        self.create("large", 128, L2, HNSW, m=8, ef_construction=16)
        for start in range(0, 200000, 5000):
            vectors = rng.standard_normal((5000, 128)).astype(np.float32)
            self.upsert("large", [vecdb_pb2.Point(id=str(start + i),
                                                  vector=vector.tolist())
                                  for i, vector in enumerate(vectors)])
        self.assertEqual(self.count("large"), 200000)
        for top_k in (1000, 5000, 10000):
            with self.subTest(top_k=top_k):
                hits = self.search("large", rng.standard_normal(128), top_k)
                self.assertEqual(len(hits), top_k)
                self.assertEqual(len({hit.id for hit in hits}), top_k)
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Search,
            self.search_request("large", rng.standard_normal(128), 10001))
        self.assertIn("top_k is 10001, it must be 1 to 10000", message)



def encode_upsert(collection, vectors):
    """Serialize an UpsertRequest of one point per row of vectors.

    Encoding by hand from the float32 bytes is far faster than building
    millions of floats into Point messages in Python.
    """
    parts = [vecdb_pb2.UpsertRequest(collection=collection).SerializeToString()]
    for i, vector in enumerate(np.asarray(vectors, np.float32)):
        point_bytes = (length_delimited_field(1, str(i).encode()) +
                       length_delimited_field(2, vector.tobytes()))
        parts.append(length_delimited_field(2, point_bytes))
    return b"".join(parts)


class LimitsAndNamesTest(ServerTestCase):

    def test_request_over_message_limit_rejected_whole(self):
        self.create("wide", 1024, DOT_PRODUCT, FLAT)
        vectors = np.random.default_rng(13).random((25000, 1024), np.float32)
        request = encode_upsert("wide", vectors)
        self.assertGreater(len(request), 100 * 1000 * 1000)
        upsert = self.server.channel().unary_unary(
            "/vecdb.v1.VectorDB/Upsert",
            request_serializer=lambda raw: raw,
            response_deserializer=vecdb_pb2.UpsertResponse.FromString)
        with self.assertRaises(grpc.RpcError) as raised:
            upsert(request, timeout=RPC_TIMEOUT_SECONDS)
        error = raised.exception
        self.assertEqual(error.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn(str(64 * 1024 * 1024), error.details())
        self.assertIn(str(len(request)), error.details())
        self.assertEqual(self.count("wide"), 0)
        self.assertServing()

    def test_search_response_over_limit_fails(self):
        server = self.start_server("--max_response_bytes", "65536")
        stub = server.stub()
        stub.CreateCollection(vecdb_pb2.CreateCollectionRequest(
            name="wide", dimension=1024, metric=DOT_PRODUCT,
            index=vecdb_pb2.IndexConfig(kind=FLAT)),
            timeout=RPC_TIMEOUT_SECONDS)
        vectors = np.random.default_rng(14).random((100, 1024), np.float32)
        stub.Upsert(vecdb_pb2.UpsertRequest(
            collection="wide",
            points=[point(str(i), vector) for i, vector in enumerate(vectors)]),
            timeout=RPC_TIMEOUT_SECONDS)
        request = self.search_request("wide", vectors[0], 100,
                                      include_vectors=True)
        with self.assertRaises(grpc.RpcError) as raised:
            stub.Search(request, timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(raised.exception.code(),
                         grpc.StatusCode.RESOURCE_EXHAUSTED)
        request.include_vectors = False
        self.assertEqual(
            len(stub.Search(request, timeout=RPC_TIMEOUT_SECONDS).hits), 100)

    def test_collection_names_checked(self):
        # The rule: 1 to 128 ASCII letters, digits, '_' or '-', not starting
        # with '-'. Names never become file names: files are named by a
        # collection's number, so reserved device names such as "con" are
        # fine.
        rejected = ["a/b", "..", ".", "", "x" * 256, "名前", "a b",
                    "trailing."]
        for name in rejected:
            with self.subTest(name=name):
                self.assertRejected(
                    INVALID_ARGUMENT, self.stub.CreateCollection,
                    vecdb_pb2.CreateCollectionRequest(name=name, dimension=2,
                                                      metric=COSINE))
        accepted = ["con", "x" * 128, "a-b_c"]
        for i, name in enumerate(accepted):
            self.create(name, 2, COSINE)
            self.upsert(name, [point(f"p{i}", [1, i + 1])])

        self.restart()
        names = [info.name for info in self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections]
        self.assertEqual(sorted(names), sorted(accepted))
        for i, name in enumerate(accepted):
            stored = self.get(name, [f"p{i}"])
            self.assertEqual(len(stored), 1, name)
            self.assertEqual(list(stored[0].vector), [1, i + 1])
        # No name became a path beside the data dir. The parent is shared
        # with other programs, so only the names under test are looked for.
        parent = os.path.dirname(self.server.data_dir)
        for name in rejected + accepted + ["a"]:
            if name in ("", ".", ".."):
                continue
            self.assertFalse(os.path.exists(os.path.join(parent, name)), name)


if __name__ == "__main__":
    unittest.main()
