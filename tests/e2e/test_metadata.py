"""Point metadata at and past its limits, and its round trip.

The rules under test: metadata is a google.protobuf.Struct of at most 1 MiB
(1,048,576 bytes) serialized, nested at most 32 levels of structs and lists,
whose numbers are finite. A point that breaks a rule rejects its whole batch
with INVALID_ARGUMENT naming the point's position and id. Accepted metadata
comes back unchanged from Get and from Search with include_metadata, also
after a restart.
"""

import math
import unittest

import grpc

from harness import (FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS, ServerTestCase,
                     point, struct, vecdb_pb2)
# The harness keeps its wire-format encoder private; it is needed here to
# build nesting far deeper than Python protobuf serializes.
from harness import length_delimited_field

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT

MAX_DEPTH = 32
MAX_METADATA_BYTES = 1 << 20


def nested_structs(depth):
    """Return a dict whose leaf number sits `depth` structs deep."""
    value = {"leaf": depth}
    for level in range(depth - 1, 0, -1):
        value = {f"level{level}": value}
    return value


def nested_lists(depth):
    """Return {"list": [[...[1]...]]}, whose 1 sits `depth` levels deep."""
    value = 1
    for _ in range(depth - 1):
        value = [value]
    return {"list": value}


def deeply_nested_struct_bytes(depth):
    """Encode a Struct nested `depth` levels deep as raw bytes."""
    encoded = b""
    for _ in range(depth):
        value = length_delimited_field(5, encoded)
        entry = length_delimited_field(1, b"k") + length_delimited_field(
            2, value)
        encoded = length_delimited_field(1, entry)
    return encoded


def metadata_of_size(total_bytes):
    """Return a Struct of one string field that serializes to total_bytes."""
    metadata = struct({"text": ""})
    # The length prefix grows by a byte at a few sizes, so adjust until the
    # serialized size is exact.
    length = total_bytes - metadata.ByteSize()
    while True:
        metadata["text"] = "x" * length
        excess = metadata.ByteSize() - total_bytes
        if excess == 0:
            return metadata
        length -= excess


class MetadataTestCase(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.create("docs", 2, L2, FLAT)

    def assertRoundTrips(self, point_id, metadata):
        """Assert that Get and Search return metadata exactly as written."""
        found = self.get("docs", [point_id])
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0].metadata, metadata)
        hits = self.search("docs", list(found[0].vector), 1,
                           include_metadata=True)
        self.assertEqual([h.id for h in hits], [point_id])
        self.assertEqual(hits[0].metadata, metadata)

    def assertBatchRejected(self, bad_point):
        """Upsert bad_point at position 2 of a batch, assert that nothing is
        written and return the rejection message."""
        batch = [point(f"good{i}", [i + 1, 0]) for i in range(4)]
        batch[2] = bad_point
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Upsert,
            vecdb_pb2.UpsertRequest(collection="docs", points=batch))
        self.assertIn("points[2]", message)
        self.assertIn(bad_point.id, message)
        self.assertEqual(self.count("docs"), 0)
        self.assertEqual(self.get("docs", [p.id for p in batch]), [])
        return message


class NestingTest(MetadataTestCase):

    def test_structs_at_depth_limit_round_trip(self):
        metadata = struct(nested_structs(MAX_DEPTH))
        self.upsert("docs", [point("deep", [1, 2], nested_structs(MAX_DEPTH))])

        self.assertRoundTrips("deep", metadata)

    def test_lists_at_depth_limit_round_trip(self):
        metadata = struct(nested_lists(MAX_DEPTH))
        self.upsert("docs", [point("deep", [1, 2], nested_lists(MAX_DEPTH))])

        self.assertRoundTrips("deep", metadata)

    def test_structs_past_depth_limit_rejected(self):
        for depth in (MAX_DEPTH + 1, MAX_DEPTH + 2, 40, 60):
            with self.subTest(depth=depth):
                message = self.assertBatchRejected(
                    point("too-deep", [5, 5], nested_structs(depth)))
                self.assertIn(str(MAX_DEPTH), message,
                              "the message states the nesting limit")
        self.assertServing()

    def test_lists_past_depth_limit_rejected(self):
        for depth in (MAX_DEPTH + 1, 60):
            with self.subTest(depth=depth):
                message = self.assertBatchRejected(
                    point("too-deep", [5, 5], nested_lists(depth)))
                self.assertIn(str(MAX_DEPTH), message)
        self.assertServing()

    def test_extreme_nesting_rejected_without_crash(self):
        # Thousands of levels would overflow the stack of a recursive
        # parser or validator that had no depth limit of its own.
        upsert = self.server.channel().unary_unary(
            "/vecdb.v1.VectorDB/Upsert", request_serializer=None,
            response_deserializer=vecdb_pb2.UpsertResponse.FromString)
        for depth in (1000, 5000):
            with self.subTest(depth=depth):
                bad = (length_delimited_field(1, b"abyss") +
                       vecdb_pb2.Point(vector=[1, 1]).SerializeToString() +
                       length_delimited_field(
                           3, deeply_nested_struct_bytes(depth)))
                request = (vecdb_pb2.UpsertRequest(
                    collection="docs").SerializeToString() +
                    length_delimited_field(2, bad))
                message = self.assertRejected(INVALID_ARGUMENT, upsert,
                                              request)
                self.assertIn("abyss", message)
                self.assertIn(str(MAX_DEPTH), message)
        self.assertServing()
        self.assertEqual(self.count("docs"), 0)


class NumberTest(MetadataTestCase):

    def test_non_finite_numbers_rejected(self):
        for name, value in (("NaN", math.nan), ("Infinity", math.inf),
                            ("-Infinity", -math.inf)):
            places = {
                "top level": (["score"], "score"),
                "nested struct": (["outer", "inner"], "outer.inner"),
                "list item": (["tags", 1], "tags[1]"),
            }
            for place, (path, shown_path) in places.items():
                with self.subTest(value=name, place=place):
                    bad = point("non-finite", [5, 5], {
                        "score": 1, "outer": {"inner": 2},
                        "tags": ["a", 3]})
                    self.set_number(bad.metadata, path, value)

                    message = self.assertBatchRejected(bad)

                    self.assertIn(shown_path, message)
        self.assertServing()

    def set_number(self, metadata, path, value):
        """Set the number at path (keys and list indexes) to value."""
        container = metadata
        for step in path[:-1]:
            container = container[step]
        last = path[-1]
        if isinstance(last, int):
            container.values[last].number_value = value
        else:
            container.fields[last].number_value = value

    def test_extreme_finite_numbers_round_trip(self):
        metadata = struct({"max": 1.7976931348623157e308,
                           "min_normal": 2.2250738585072014e-308,
                           "subnormal": 5e-324,
                           "negative_zero": -0.0,
                           "past_2_53": 2.0 ** 53 + 2,
                           "third": 1 / 3})
        self.stub.Upsert(vecdb_pb2.UpsertRequest(
            collection="docs",
            points=[vecdb_pb2.Point(id="numbers", vector=[1, 2],
                                    metadata=metadata)]),
            timeout=RPC_TIMEOUT_SECONDS)

        self.assertRoundTrips("numbers", metadata)
        stored = self.get("docs", ["numbers"])[0].metadata
        self.assertEqual(math.copysign(1, stored["negative_zero"]), -1,
                         "the sign of -0.0 is kept")


class SizeTest(MetadataTestCase):

    def test_metadata_at_size_limit_accepted(self):
        metadata = metadata_of_size(MAX_METADATA_BYTES)
        self.assertEqual(metadata.ByteSize(), MAX_METADATA_BYTES)

        self.stub.Upsert(vecdb_pb2.UpsertRequest(
            collection="docs",
            points=[vecdb_pb2.Point(id="large", vector=[1, 2],
                                    metadata=metadata)]),
            timeout=RPC_TIMEOUT_SECONDS)

        self.assertRoundTrips("large", metadata)

    def test_metadata_over_size_limit_rejected(self):
        metadata = metadata_of_size(MAX_METADATA_BYTES + 1)
        bad = vecdb_pb2.Point(id="too-large", vector=[5, 5],
                              metadata=metadata)

        message = self.assertBatchRejected(bad)

        self.assertIn(str(MAX_METADATA_BYTES + 1), message)
        self.assertIn(str(MAX_METADATA_BYTES), message)
        self.assertServing()

    def test_many_points_near_size_limit_accepted(self):
        # Eight points of almost 1 MiB each make an 8 MiB request, inside
        # the default 64 MiB message limit.
        metadata = metadata_of_size(MAX_METADATA_BYTES - 10)
        points = [vecdb_pb2.Point(id=f"large{i}", vector=[i, 1],
                                  metadata=metadata) for i in range(8)]

        self.assertEqual(self.upsert("docs", points), 8)

        found = self.get("docs", [p.id for p in points])
        self.assertEqual([p.metadata for p in found], [metadata] * 8)
        hits = self.search("docs", [0, 1], 8, include_metadata=True)
        self.assertEqual(len(hits), 8)
        self.assertEqual([h.metadata for h in hits], [metadata] * 8)


class UnicodeTest(MetadataTestCase):

    METADATA = {
        "名前": "ベクトル",
        "emoji 😀": "🚀",
        "cafe\u0301": "combining accent",
        "caf\u00e9": "precomposed",
        "": "empty key",
        "a.b": "dot in a key",
        "nul\u0000inside": "value with \u0000 nul",
        "rtl": "\u05e9\u05dc\u05d5\u05dd",
        "nested": {"κλειδί": ["ключ", "🔑", {"鍵": True}]},
        "long key " + "k" * 1000: "x",
    }

    def test_unicode_keys_and_values_round_trip(self):
        expected = struct(self.METADATA)
        for kind in (FLAT, HNSW):
            with self.subTest(kind=vecdb_pb2.IndexKind.Name(kind)):
                name = f"unicode_{vecdb_pb2.IndexKind.Name(kind)}"
                self.create(name, 2, L2, kind)
                self.upsert(name, [point("texts", [3, 4], self.METADATA)])

                found = self.get(name, ["texts"])[0].metadata
                self.assertEqual(found, expected)
                # Both spellings of "café" stay two different keys.
                self.assertEqual(found["cafe\u0301"], "combining accent")
                self.assertEqual(found["caf\u00e9"], "precomposed")
                hits = self.search(name, [3, 4], 1, include_metadata=True,
                                   include_vectors=True)
                self.assertEqual(hits[0].metadata, expected)

    def test_metadata_survives_restart(self):
        written = {
            "unicode": self.METADATA,
            "deep": nested_structs(MAX_DEPTH),
            "deep_list": nested_lists(MAX_DEPTH),
        }
        self.upsert("docs", [point(point_id, [i + 1, 1], metadata)
                             for i, (point_id, metadata)
                             in enumerate(written.items())])
        large = metadata_of_size(MAX_METADATA_BYTES)
        self.stub.Upsert(vecdb_pb2.UpsertRequest(
            collection="docs",
            points=[vecdb_pb2.Point(id="large", vector=[9, 9],
                                    metadata=large)]),
            timeout=RPC_TIMEOUT_SECONDS)

        self.crash_and_restart()

        for point_id, metadata in written.items():
            with self.subTest(point=point_id):
                self.assertRoundTrips(point_id, struct(metadata))
        self.assertRoundTrips("large", large)


if __name__ == "__main__":
    unittest.main()
