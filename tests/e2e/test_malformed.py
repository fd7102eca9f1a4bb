"""Raw request bytes that are not a valid request get INVALID_ARGUMENT.

Python protobuf will not serialize a string field holding invalid UTF-8, so
these tests encode the faulty fields by hand and send the bytes through
channels built with request_serializer=None. Every rejected request must
leave the stored data unchanged and the server serving, and no malformed
request may ever end in INTERNAL or UNKNOWN.
"""

import os
import socket
import unittest

import grpc

from harness import (FLAT, L2, RPC_TIMEOUT_SECONDS, ServerTestCase, point,
                     vecdb_pb2)
# The harness keeps its wire-format encoder private; these tests need it to
# place invalid UTF-8 in fields that Python protobuf would refuse to encode.
from harness import length_delimited_field
from harness import _varint as varint

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND

# Every unary method of vecdb.v1.VectorDB and its response type.
UNARY_METHODS = {
    "CreateCollection": vecdb_pb2.CollectionInfo,
    "GetCollection": vecdb_pb2.CollectionInfo,
    "ListCollections": vecdb_pb2.ListCollectionsResponse,
    "DropCollection": vecdb_pb2.DropCollectionResponse,
    "Upsert": vecdb_pb2.UpsertResponse,
    "Get": vecdb_pb2.GetResponse,
    "Delete": vecdb_pb2.DeleteResponse,
    "Search": vecdb_pb2.SearchResponse,
    "SearchBatch": vecdb_pb2.SearchBatchResponse,
}

# Byte strings that no protobuf parser accepts as any message.
UNPARSABLE_PAYLOADS = {
    "tag bytes 0xff": b"\xff\xff\xff\xff",
    "field number 0": b"\x02\x00",
    "length past the end": b"\x0a\x10abc",
    "length of 2^62": b"\x0a" + varint(1 << 62),
    "truncated varint": b"\x10\xff",
    "start group without end": b"\x0b",
    "end group without start": b"\x0c",
    "reserved wire type 6": b"\x0e",
}

# Collection names that are not valid UTF-8.
INVALID_UTF8_NAMES = {
    "stray continuation byte": b"docs\x80",
    "truncated sequence": b"docs\xc3",
    "overlong encoding": b"docs\xc0\xaf",
    "encoded surrogate": b"docs\xed\xa0\x80",
}

DIMENSION = 2
SEED_VECTOR = [1.0, 2.0]


def string_field(field_number, raw):
    return length_delimited_field(field_number, raw)


def string_value(raw):
    """Encode a google.protobuf.Value whose string_value is raw bytes."""
    return string_field(3, raw)


def struct_value(struct_bytes):
    return length_delimited_field(5, struct_bytes)


def list_value(*value_bytes):
    items = b"".join(length_delimited_field(1, v) for v in value_bytes)
    return length_delimited_field(6, items)


def struct_bytes(raw_key, value_bytes):
    """Encode a google.protobuf.Struct of one field, key given as bytes."""
    entry = string_field(1, raw_key) + length_delimited_field(2, value_bytes)
    return length_delimited_field(1, entry)


def point_bytes(raw_id, vector, metadata=b""):
    """Encode a Point whose id and serialized metadata are raw bytes."""
    encoded = (string_field(1, raw_id) +
               vecdb_pb2.Point(vector=vector).SerializeToString())
    if metadata:
        encoded += length_delimited_field(3, metadata)
    return encoded


def upsert_bytes(raw_collection, *points):
    encoded = string_field(1, raw_collection)
    for encoded_point in points:
        encoded += length_delimited_field(2, encoded_point)
    return encoded


def good_point_bytes(index):
    return point_bytes(f"good{index}".encode(), [index + 1.0, 1.0])


class RawRequestTestCase(ServerTestCase):
    """A server with collection "docs" holding the single point "seed"."""

    def setUp(self):
        super().setUp()
        self.create("docs", DIMENSION, L2, FLAT)
        self.upsert("docs", [point("seed", SEED_VECTOR, {"kept": True})])

    def raw_unary(self, method):
        return self.server.channel().unary_unary(
            f"/vecdb.v1.VectorDB/{method}", request_serializer=None,
            response_deserializer=UNARY_METHODS[method].FromString)

    def raw_import(self):
        return self.server.channel().stream_unary(
            "/vecdb.v1.VectorDB/Import", request_serializer=None,
            response_deserializer=vecdb_pb2.ImportResponse.FromString)

    def assertRejectedCleanly(self, code, rpc, request):
        """Assert rejection with code and a non-empty message, and return
        the message."""
        message = self.assertRejected(code, rpc, request)
        self.assertTrue(message, "the error has no message")
        return message

    def assertDataUnchanged(self):
        collections = self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections
        self.assertEqual([c.name for c in collections], ["docs"])
        self.assertEqual(self.count("docs"), 1)
        seed = self.get("docs", ["seed"])
        self.assertEqual(len(seed), 1)
        self.assertEqual(list(seed[0].vector), SEED_VECTOR)
        self.assertServing()


class UnparsableRequestTest(RawRequestTestCase):

    def test_unary_rpcs_reject_unparsable_bytes(self):
        for method in UNARY_METHODS:
            rpc = self.raw_unary(method)
            for case, payload in UNPARSABLE_PAYLOADS.items():
                with self.subTest(method=method, payload=case):
                    message = self.assertRejectedCleanly(INVALID_ARGUMENT, rpc,
                                                         payload)
                    self.assertIn(method, message)
        self.assertDataUnchanged()

    def test_import_rejects_unparsable_first_request(self):
        for case, payload in UNPARSABLE_PAYLOADS.items():
            with self.subTest(payload=case):
                self.assertRejectedCleanly(INVALID_ARGUMENT, self.raw_import(),
                                           iter([payload]))
        self.assertDataUnchanged()

    def test_truncated_valid_request_rejected(self):
        request = vecdb_pb2.UpsertRequest(
            collection="docs",
            points=[point("cut", [3.0, 4.0], {"title": "truncated"})])
        encoded = request.SerializeToString()
        upsert = self.raw_unary("Upsert")

        # Cutting inside the point leaves a length prefix that runs past the
        # end, which no parser can accept.
        for cut in range(len(b"\x0a\x04docs") + 1, len(encoded)):
            with self.subTest(cut=cut):
                self.assertRejectedCleanly(INVALID_ARGUMENT, upsert,
                                           encoded[:cut])
        self.assertEqual(self.get("docs", ["cut"]), [])
        self.assertDataUnchanged()

    def test_unknown_fields_ignored(self):
        # Proto3 parsers skip unknown fields, so a newer client's additions
        # do not break an older server.
        unknown = (string_field(99, b"from a newer client") +
                   varint(100 << 3) + varint(7))
        upsert = vecdb_pb2.UpsertRequest(
            collection="docs", points=[point("extra", [5.0, 6.0])])
        search = self.search_request("docs", [5.0, 6.0], 1)

        response = self.raw_unary("Upsert")(
            upsert.SerializeToString() + unknown, timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(response.upserted, 1)
        hits = self.raw_unary("Search")(
            search.SerializeToString() + unknown,
            timeout=RPC_TIMEOUT_SECONDS).hits
        self.assertEqual([h.id for h in hits], ["extra"])


class InvalidUtf8Test(RawRequestTestCase):

    def requests_naming(self, raw_name):
        """Return (method, request bytes) for every RPC, naming raw_name.

        The rest of each request is valid, so the name is the only fault.
        """
        search = self.search_request("", SEED_VECTOR, 1)
        remainders = {
            "CreateCollection": vecdb_pb2.CreateCollectionRequest(
                dimension=DIMENSION, metric=L2),
            "GetCollection": vecdb_pb2.GetCollectionRequest(),
            "DropCollection": vecdb_pb2.DropCollectionRequest(),
            "Upsert": vecdb_pb2.UpsertRequest(
                points=[point("new", [7.0, 8.0])]),
            "Get": vecdb_pb2.GetRequest(ids=["seed"]),
            "Delete": vecdb_pb2.DeleteRequest(ids=["seed"]),
            "Search": search,
            "SearchBatch": vecdb_pb2.SearchBatchRequest(searches=[search]),
        }
        return [(method, string_field(1, raw_name) + rest.SerializeToString())
                for method, rest in remainders.items()]

    def test_invalid_utf8_collection_name_rejected(self):
        for case, raw_name in INVALID_UTF8_NAMES.items():
            for method, request in self.requests_naming(raw_name):
                with self.subTest(name=case, method=method):
                    self.assertRejectedCleanly(
                        INVALID_ARGUMENT, self.raw_unary(method), request)
            with self.subTest(name=case, method="Import"):
                request = upsert_bytes(raw_name, good_point_bytes(0))
                self.assertRejectedCleanly(INVALID_ARGUMENT, self.raw_import(),
                                           iter([request]))
        self.assertEqual(self.get("docs", ["new", "good0"]), [])
        self.assertDataUnchanged()

    def test_get_delete_reject_invalid_utf8_ids(self):
        for case, raw_id in INVALID_UTF8_NAMES.items():
            # "seed" followed by a bad byte sequence must not match "seed".
            raw_id = b"seed" + raw_id[len(b"docs"):]
            with self.subTest(id=case):
                get = string_field(1, b"docs") + string_field(2, raw_id)
                delete = (string_field(1, b"docs") + string_field(2, b"seed") +
                          string_field(2, raw_id))
                self.assertRejectedCleanly(INVALID_ARGUMENT,
                                           self.raw_unary("Get"), get)
                self.assertRejectedCleanly(INVALID_ARGUMENT,
                                           self.raw_unary("Delete"), delete)
        self.assertDataUnchanged()

    def test_invalid_utf8_in_metadata_rejects_batch(self):
        bad_metadata = {
            "key": struct_bytes(b"title\xff", string_value(b"ok")),
            "string value": struct_bytes(b"title", string_value(b"caf\xc3")),
            "string in a list": struct_bytes(
                b"tags", list_value(string_value(b"ok"),
                                    string_value(b"\xed\xa0\x80"))),
            "key of a nested struct": struct_bytes(
                b"outer", struct_value(struct_bytes(b"\xc0\xaf",
                                                    string_value(b"ok")))),
        }
        upsert = self.raw_unary("Upsert")
        for case, metadata in bad_metadata.items():
            with self.subTest(metadata=case):
                bad = point_bytes(b"bad-metadata", [9.0, 9.0], metadata)
                request = upsert_bytes(b"docs", good_point_bytes(0),
                                       good_point_bytes(1), bad,
                                       good_point_bytes(3))

                message = self.assertRejectedCleanly(INVALID_ARGUMENT, upsert,
                                                     request)

                self.assertIn("points[2]", message)
                self.assertIn("bad-metadata", message)
                self.assertIn("metadata", message)
        self.assertEqual(self.get("docs", ["good0", "good1", "bad-metadata",
                                           "good3"]), [])
        self.assertDataUnchanged()

    def test_invalid_utf8_inside_batched_search_rejected(self):
        # The collection field of a search inside a batch is ignored, but it
        # must still be valid UTF-8 for the request to parse.
        search = self.search_request("", SEED_VECTOR, 1).SerializeToString()
        bad_search = string_field(1, b"docs\xff") + search
        request = (string_field(1, b"docs") +
                   length_delimited_field(2, search) +
                   length_delimited_field(2, bad_search))

        self.assertRejectedCleanly(INVALID_ARGUMENT,
                                   self.raw_unary("SearchBatch"), request)
        self.assertServing()


class EmptyCollectionNameTest(RawRequestTestCase):
    """An empty collection name is invalid, so it is INVALID_ARGUMENT.

    An invalid collection name is INVALID_ARGUMENT in every request, not only
    in CreateCollection. No collection can have an empty name, so NOT_FOUND
    would hide the client's mistake.
    """

    def test_empty_collection_name_rejected(self):
        search = self.search_request("", SEED_VECTOR, 1)
        calls = [
            ("GetCollection", self.stub.GetCollection,
             vecdb_pb2.GetCollectionRequest(name="")),
            ("DropCollection", self.stub.DropCollection,
             vecdb_pb2.DropCollectionRequest(name="")),
            ("Upsert", self.stub.Upsert,
             vecdb_pb2.UpsertRequest(points=[point("new", [7.0, 8.0])])),
            ("Import", self.stub.Import,
             iter([vecdb_pb2.UpsertRequest(
                 points=[point("new", [7.0, 8.0])])])),
            ("Get", self.stub.Get, vecdb_pb2.GetRequest(ids=["seed"])),
            ("Delete", self.stub.Delete,
             vecdb_pb2.DeleteRequest(ids=["seed"])),
            ("Search", self.stub.Search, search),
            ("SearchBatch", self.stub.SearchBatch,
             vecdb_pb2.SearchBatchRequest(searches=[search])),
        ]
        for method, rpc, request in calls:
            with self.subTest(method=method):
                message = self.assertRejectedCleanly(INVALID_ARGUMENT, rpc,
                                                     request)
                self.assertIn("collection name", message)
        self.assertDataUnchanged()


class PointIdInRequestTest(RawRequestTestCase):
    """Get and Delete apply the same id rules as Upsert."""

    def test_get_delete_reject_invalid_ids(self):
        invalid_ids = {"empty id": "", "id of 257 bytes": "x" * 257}
        for case, bad_id in invalid_ids.items():
            for method, rpc, request in [
                    ("Get", self.stub.Get,
                     vecdb_pb2.GetRequest(collection="docs",
                                          ids=["seed", bad_id])),
                    ("Delete", self.stub.Delete,
                     vecdb_pb2.DeleteRequest(collection="docs",
                                             ids=["seed", bad_id]))]:
                with self.subTest(id=case, method=method):
                    message = self.assertRejectedCleanly(INVALID_ARGUMENT,
                                                         rpc, request)
                    self.assertIn("ids[1]", message)
        self.assertDataUnchanged()


class ImportStreamFaultTest(RawRequestTestCase):
    """A faulty request stops an Import stream after the earlier ones."""

    POINTS_PER_REQUEST = 3

    def good_request(self, position):
        points = [point_bytes(f"r{position}-{i}".encode(),
                              [position + 1.0, i + 1.0])
                  for i in range(self.POINTS_PER_REQUEST)]
        return upsert_bytes(b"docs", *points)

    def ids_of_request(self, position):
        return [f"r{position}-{i}" for i in range(self.POINTS_PER_REQUEST)]

    def assertStoppedAt(self, code, bad_request, bad_position=2,
                        total_requests=5):
        requests = [self.good_request(i) for i in range(total_requests)]
        requests[bad_position] = bad_request

        message = self.assertRejectedCleanly(code, self.raw_import(),
                                             iter(requests))

        stored_before = bad_position * self.POINTS_PER_REQUEST
        self.assertRegex(message, rf"\b{bad_position}\b",
                         "the message names the failing request")
        self.assertRegex(message, rf"\b{stored_before}\b.*stored",
                         "the message counts the points stored")
        for position in range(total_requests):
            found = [p.id for p in self.get("docs",
                                            self.ids_of_request(position))]
            if position < bad_position:
                self.assertEqual(found, self.ids_of_request(position),
                                 f"request {position} came before the fault")
            else:
                self.assertEqual(found, [],
                                 f"request {position} came after the fault")
        self.assertEqual(self.count("docs"), 1 + stored_before)
        self.assertServing()

    def test_unparsable_request_mid_stream(self):
        self.assertStoppedAt(INVALID_ARGUMENT, b"\x0a\x04docs\x12\xff")

    def test_invalid_utf8_id_mid_stream(self):
        bad = upsert_bytes(b"docs", good_point_bytes(0),
                           point_bytes(b"bad\xff", [1.0, 1.0]))
        self.assertStoppedAt(INVALID_ARGUMENT, bad)

    def test_invalid_utf8_metadata_mid_stream(self):
        metadata = struct_bytes(b"title", string_value(b"\xff"))
        bad = upsert_bytes(b"docs",
                           point_bytes(b"bad", [1.0, 1.0], metadata))
        self.assertStoppedAt(INVALID_ARGUMENT, bad)

    def test_unknown_collection_mid_stream(self):
        bad = upsert_bytes(b"missing", good_point_bytes(0))
        self.assertStoppedAt(NOT_FOUND, bad)

    def test_fault_in_first_and_last_request(self):
        bad = b"\xff"
        self.assertStoppedAt(INVALID_ARGUMENT, bad, bad_position=0)
        self.assertStoppedAt(INVALID_ARGUMENT, bad, bad_position=4)

    def test_empty_stream_writes_nothing(self):
        response = self.raw_import()(iter([]), timeout=RPC_TIMEOUT_SECONDS)

        self.assertEqual(response.upserted, 0)
        self.assertDataUnchanged()


class RawConnectionTest(RawRequestTestCase):
    """Bytes on the TCP port that are not gRPC at all."""

    def send_raw(self, payload):
        """Send payload on a new TCP connection and read until it closes."""
        with socket.create_connection(("127.0.0.1", self.server.port),
                                      timeout=10) as connection:
            connection.sendall(payload)
            try:
                while connection.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass

    def test_non_grpc_bytes_leave_server_serving(self):
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        # An empty SETTINGS frame, then a HEADERS frame for stream 1 whose
        # header block is random bytes.
        settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        headers = b"\x00\x00\x40\x01\x04\x00\x00\x00\x01"
        payloads = {
            "HTTP/1.1 request": b"GET / HTTP/1.1\r\nHost: vecdb\r\n\r\n",
            "zero bytes": b"\x00" * 100,
            "random bytes": os.urandom(5000),
            "HTTP/2 preface then random bytes": preface + os.urandom(2000),
            "HTTP/2 headers of random bytes": (preface + settings + headers +
                                               os.urandom(64)),
        }
        for case, payload in payloads.items():
            with self.subTest(payload=case):
                self.send_raw(payload)
                self.assertServing()
        self.assertDataUnchanged()

    def test_unknown_method_unimplemented(self):
        for method in ("/vecdb.v1.VectorDB/Compact", "/vecdb.v2.VectorDB/Get",
                       "/not-a-path"):
            with self.subTest(method=method):
                rpc = self.server.channel().unary_unary(
                    method, request_serializer=None,
                    response_deserializer=None)
                self.assertRejected(grpc.StatusCode.UNIMPLEMENTED, rpc, b"")
        self.assertDataUnchanged()


if __name__ == "__main__":
    unittest.main()
