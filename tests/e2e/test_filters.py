"""Metadata filters over the real server: Search, SearchBatch, Count, Scroll,
Delete by filter, CreateFieldIndex, errors with their paths, and restarts.
"""

import unittest

import grpc
from google.protobuf import struct_pb2

from harness import (FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS, ServerTestCase,
                     point, vecdb_pb2)

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT


def value(python_value):
    """Return python_value as a google.protobuf.Value."""
    result = struct_pb2.Value()
    if isinstance(python_value, bool):
        result.bool_value = python_value
    elif isinstance(python_value, (int, float)):
        result.number_value = python_value
    else:
        result.string_value = python_value
    return result


def match(key, python_value):
    return vecdb_pb2.Condition(field=vecdb_pb2.FieldCondition(
        key=key, match=value(python_value)))


def any_of(key, values):
    values_list = struct_pb2.ListValue()
    values_list.extend(values)
    return vecdb_pb2.Condition(field=vecdb_pb2.FieldCondition(
        key=key, any=values_list))


def in_range(key, **bounds):
    return vecdb_pb2.Condition(field=vecdb_pb2.FieldCondition(
        key=key, range=vecdb_pb2.Range(**bounds)))


def has_id(*ids):
    return vecdb_pb2.Condition(has_id=vecdb_pb2.HasId(ids=ids))


BOOKS = [
    ("dune", [1, 0], {"genre": "scifi", "year": 1965,
                      "author": {"name": "Herbert"}, "tags": ["desert"]}),
    ("neuromancer", [0.9, 0.1], {"genre": "scifi", "year": 1984.0,
                                 "author": {"name": "Gibson"},
                                 "tags": ["cyber", "ai"]}),
    ("emma", [0, 1], {"genre": "classic", "year": 1815,
                      "author": {"name": "Austen"}, "tags": []}),
    ("hamlet", [0.1, 0.9], {"genre": "classic", "year": None,
                            "author": {"name": "Shakespeare"}}),
    ("untitled", [0.5, 0.5], None),
]


class FilterTestCase(ServerTestCase):

    def setUp(self):
        super().setUp()

    def load_books(self, kind=FLAT):
        self.create("books", 2, L2, kind)
        self.upsert("books", [point(book_id, vector, metadata)
                              for book_id, vector, metadata in BOOKS])

    def search_ids(self, collection, vector, top_k, filter_message, **fields):
        hits = self.search(collection, vector, top_k, filter=filter_message,
                           **fields)
        return [hit.id for hit in hits]

    def count_matching(self, collection, filter_message=None):
        request = vecdb_pb2.CountRequest(collection=collection)
        if filter_message is not None:
            request.filter.CopyFrom(filter_message)
        return self.stub.Count(request, timeout=RPC_TIMEOUT_SECONDS).count

    def scroll_ids(self, collection, filter_message=None, limit=2):
        """Page through Scroll and return every id in order."""
        ids = []
        cursor = ""
        while True:
            request = vecdb_pb2.ScrollRequest(collection=collection,
                                              limit=limit, cursor=cursor)
            if filter_message is not None:
                request.filter.CopyFrom(filter_message)
            page = self.stub.Scroll(request, timeout=RPC_TIMEOUT_SECONDS)
            self.assertLessEqual(len(page.points), limit)
            ids.extend(p.id for p in page.points)
            cursor = page.next_cursor
            if not cursor:
                return ids


class SearchFilterTest(FilterTestCase):

    def test_filtered_search_returns_only_matches(self):
        for kind in (FLAT, HNSW):
            with self.subTest(kind=vecdb_pb2.IndexKind.Name(kind)):
                self.load_books(kind)
                scifi = vecdb_pb2.Filter(must=[match("genre", "scifi")])
                self.assertEqual(
                    self.search_ids("books", [0, 1], 10, scifi),
                    ["neuromancer", "dune"])
                self.stub.DropCollection(
                    vecdb_pb2.DropCollectionRequest(name="books"))

    def test_condition_kinds(self):
        self.load_books()
        cases = {
            "number compares by value": (
                vecdb_pb2.Filter(must=[match("year", 1984)]),
                {"neuromancer"}),
            "nested key": (
                vecdb_pb2.Filter(must=[match("author.name", "Austen")]),
                {"emma"}),
            "list element": (
                vecdb_pb2.Filter(must=[match("tags", "ai")]), {"neuromancer"}),
            "any": (
                vecdb_pb2.Filter(must=[any_of("author.name",
                                              ["Austen", "Herbert"])]),
                {"emma", "dune"}),
            "range": (
                vecdb_pb2.Filter(must=[in_range("year", gte=1900)]),
                {"dune", "neuromancer"}),
            "is_null": (
                vecdb_pb2.Filter(must=[vecdb_pb2.Condition(
                    field=vecdb_pb2.FieldCondition(key="year",
                                                   is_null=True))]),
                {"hamlet"}),
            "missing": (
                vecdb_pb2.Filter(must=[vecdb_pb2.Condition(
                    field=vecdb_pb2.FieldCondition(key="year",
                                                   exists=False))]),
                {"untitled"}),
            "should and must_not": (
                vecdb_pb2.Filter(
                    should=[match("genre", "classic"), match("year", 1965)],
                    must_not=[has_id("hamlet")]),
                {"emma", "dune"}),
            "nested filter": (
                vecdb_pb2.Filter(must_not=[vecdb_pb2.Condition(
                    filter=vecdb_pb2.Filter(must=[match("genre", "scifi")]))]),
                {"emma", "hamlet", "untitled"}),
        }
        for name, (filter_message, expected) in cases.items():
            with self.subTest(name):
                self.assertEqual(
                    set(self.search_ids("books", [0, 0], 10, filter_message)),
                    expected)
                self.assertEqual(self.count_matching("books", filter_message),
                                 len(expected))

    def test_no_match_returns_no_hits(self):
        self.load_books(HNSW)
        self.assertEqual(self.search_ids(
            "books", [1, 0], 3,
            vecdb_pb2.Filter(must=[match("genre", "poetry")])), [])

    def test_batch_filters_apply_per_search(self):
        self.load_books()
        searches = [
            self.search_request("books", [1, 0], 5,
                                filter=vecdb_pb2.Filter(
                                    must=[match("genre", "classic")])),
            self.search_request("books", [1, 0], 1),
        ]
        classic, unfiltered = self.search_batch("books", searches)
        self.assertEqual([h.id for h in classic], ["hamlet", "emma"])
        self.assertEqual([h.id for h in unfiltered], ["dune"])


class ErrorTest(FilterTestCase):

    def test_bad_filters_name_their_path(self):
        self.load_books()
        cases = {
            "filter.must[1]: condition is empty": vecdb_pb2.Filter(
                must=[match("genre", "scifi"), vecdb_pb2.Condition()]),
            "filter.should[0].field.range: no bound": vecdb_pb2.Filter(
                should=[in_range("year")]),
            "filter.must[0].field.key is empty": vecdb_pb2.Filter(
                must=[match("", "x")]),
            "filter.must[0].field.any[1]: value is a number":
                vecdb_pb2.Filter(must=[any_of("genre", ["scifi", 3])]),
            "filter.must_not[0].filter.must[0].field: no operator":
                vecdb_pb2.Filter(must_not=[vecdb_pb2.Condition(
                    filter=vecdb_pb2.Filter(must=[vecdb_pb2.Condition(
                        field=vecdb_pb2.FieldCondition(key="a"))]))]),
        }
        for expected, filter_message in cases.items():
            with self.subTest(expected):
                message = self.assertRejected(
                    INVALID_ARGUMENT, self.stub.Search,
                    self.search_request("books", [1, 0], 3,
                                        filter=filter_message))
                self.assertIn(expected, message)
                message = self.assertRejected(
                    INVALID_ARGUMENT, self.stub.Count,
                    vecdb_pb2.CountRequest(collection="books",
                                           filter=filter_message))
                self.assertIn(expected, message)

    def test_match_with_list_rejected(self):
        self.load_books()
        list_value = struct_pb2.Value()
        list_value.list_value.extend(["a"])
        bad = vecdb_pb2.Filter(must=[vecdb_pb2.Condition(
            field=vecdb_pb2.FieldCondition(key="genre", match=list_value))])
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Count,
            vecdb_pb2.CountRequest(collection="books", filter=bad))
        self.assertIn("filter.must[0].field.match: value is a list", message)

    def test_type_mismatch_with_field_index_rejected(self):
        self.load_books()
        self.stub.CreateFieldIndex(vecdb_pb2.CreateFieldIndexRequest(
            collection="books", key="genre", type=vecdb_pb2.KEYWORD),
            timeout=RPC_TIMEOUT_SECONDS)
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Count,
            vecdb_pb2.CountRequest(collection="books", filter=vecdb_pb2.Filter(
                must=[in_range("genre", gt=1)])))
        self.assertIn("filter.must[0].field.range: key 'genre' is indexed as "
                      "KEYWORD", message)

    def test_bad_batch_filter_names_its_search(self):
        self.load_books()
        searches = [
            self.search_request("books", [1, 0], 1),
            self.search_request("books", [1, 0], 1, filter=vecdb_pb2.Filter(
                should=[vecdb_pb2.Condition()])),
        ]
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.SearchBatch,
            vecdb_pb2.SearchBatchRequest(collection="books",
                                         searches=searches))
        self.assertIn("searches[1].filter.should[0]: condition is empty",
                      message)

    def test_bad_delete_filter_deletes_nothing(self):
        self.load_books()
        bad = vecdb_pb2.Filter(must=[match("genre", "scifi"),
                                     in_range("year", gt=1, gte=2)])
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Delete,
            vecdb_pb2.DeleteRequest(collection="books", filter=bad))
        self.assertIn("filter.must[1].field.range: both gt and gte", message)
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Delete,
            vecdb_pb2.DeleteRequest(collection="books",
                                    filter=vecdb_pb2.Filter()))
        self.assertIn("would delete every point", message)
        self.assertEqual(self.count("books"), len(BOOKS))


class CountScrollDeleteTest(FilterTestCase):

    def test_count(self):
        self.load_books()
        self.assertEqual(self.count_matching("books"), len(BOOKS))
        self.assertEqual(self.count_matching(
            "books", vecdb_pb2.Filter(must=[match("genre", "classic")])), 2)

    def test_scroll_pages_in_id_order(self):
        self.load_books()
        self.assertEqual(self.scroll_ids("books"),
                         sorted(book[0] for book in BOOKS))
        self.assertEqual(
            self.scroll_ids("books",
                            vecdb_pb2.Filter(must=[match("genre", "scifi")]),
                            limit=1),
            ["dune", "neuromancer"])

    def test_scroll_returns_payload_on_request(self):
        self.load_books()
        page = self.stub.Scroll(vecdb_pb2.ScrollRequest(
            collection="books", limit=1, include_vectors=True,
            include_metadata=True), timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(page.points[0].id, "dune")
        self.assertEqual(list(page.points[0].vector), [1, 0])
        self.assertEqual(page.points[0].metadata["genre"], "scifi")
        bare = self.stub.Scroll(vecdb_pb2.ScrollRequest(
            collection="books", limit=1), timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(list(bare.points[0].vector), [])
        self.assertFalse(bare.points[0].HasField("metadata"))

    def test_scroll_rejects_forged_cursor(self):
        self.load_books()
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Scroll,
            vecdb_pb2.ScrollRequest(collection="books", cursor="abc"))
        self.assertIn("cursor is invalid", message)

    def test_delete_by_filter(self):
        self.load_books(HNSW)
        response = self.stub.Delete(vecdb_pb2.DeleteRequest(
            collection="books",
            filter=vecdb_pb2.Filter(must=[match("genre", "scifi")])),
            timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(response.deleted, 2)
        self.assertEqual(self.count("books"), 3)
        self.assertEqual(self.get("books", ["dune", "neuromancer"]), [])

    def test_delete_by_ids_and_filter_deletes_intersection(self):
        self.load_books()
        response = self.stub.Delete(vecdb_pb2.DeleteRequest(
            collection="books", ids=["dune", "emma"],
            filter=vecdb_pb2.Filter(must=[match("genre", "scifi")])),
            timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(response.deleted, 1)
        self.assertEqual([p.id for p in self.get("books", ["dune", "emma"])],
                         ["emma"])

    def test_empty_delete_deletes_nothing(self):
        self.load_books()
        response = self.stub.Delete(
            vecdb_pb2.DeleteRequest(collection="books"),
            timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(response.deleted, 0)
        self.assertEqual(self.count("books"), len(BOOKS))


class FieldIndexTest(FilterTestCase):

    def create_index(self, key, index_type):
        return self.stub.CreateFieldIndex(vecdb_pb2.CreateFieldIndexRequest(
            collection="books", key=key, type=index_type),
            timeout=RPC_TIMEOUT_SECONDS).collection

    def test_index_listed_and_kept_after_restart(self):
        self.load_books()
        info = self.create_index("author.name", vecdb_pb2.KEYWORD)
        self.assertEqual([(i.key, i.type) for i in info.field_indexes],
                         [("author.name", vecdb_pb2.KEYWORD)])
        self.create_index("year", vecdb_pb2.INTEGER)
        austen = vecdb_pb2.Filter(must=[match("author.name", "Austen")])
        modern = vecdb_pb2.Filter(must=[in_range("year", gt=1900)])
        self.assertEqual(self.count_matching("books", austen), 1)
        self.assertEqual(self.count_matching("books", modern), 2)

        self.upsert("books", [point("persuasion", [0, 0.8],
                                    {"author": {"name": "Austen"},
                                     "year": 1817})])
        self.upsert("books", [point("dune", [1, 0], {"year": 1800})])
        self.crash_and_restart()

        info = self.stub.GetCollection(
            vecdb_pb2.GetCollectionRequest(name="books"),
            timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual([i.key for i in info.field_indexes],
                         ["author.name", "year"])
        self.assertEqual(self.count_matching("books", austen), 2)
        self.assertEqual(self.count_matching("books", modern), 1)
        self.assertEqual(self.search_ids("books", [0, 1], 5, austen),
                         ["emma", "persuasion"])

    def test_other_type_on_indexed_key_rejected(self):
        self.load_books()
        self.create_index("year", vecdb_pb2.INTEGER)
        message = self.assertRejected(
            grpc.StatusCode.ALREADY_EXISTS, self.stub.CreateFieldIndex,
            vecdb_pb2.CreateFieldIndexRequest(collection="books", key="year",
                                              type=vecdb_pb2.FLOAT))
        self.assertIn("already indexed as INTEGER", message)

    def test_unknown_collection(self):
        self.assertRejected(
            grpc.StatusCode.NOT_FOUND, self.stub.CreateFieldIndex,
            vecdb_pb2.CreateFieldIndexRequest(collection="none", key="a",
                                              type=vecdb_pb2.KEYWORD))


if __name__ == "__main__":
    unittest.main()
