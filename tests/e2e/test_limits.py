"""Each --max_* flag sets a limit that requests over it break with a clear
error, and a limit out of its range stops the server at start.
"""

import shutil
import subprocess
import tempfile
import unittest

import grpc

from harness import (COSINE, SERVER_BINARY, ServerTestCase, point,
                     vecdb_pb2)

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


class ConfiguredLimitsTest(ServerTestCase):
    """A server started with small limits applies each of them."""

    server_args = ("--max_top_k", "5", "--max_batch_points", "3",
                   "--max_point_id_bytes", "8", "--max_metadata_depth", "2",
                   "--max_metadata_bytes", "200", "--max_dimension", "8",
                   "--max_collections", "2",
                   "--max_collection_name_bytes", "6")

    def setUp(self):
        super().setUp()
        self.create("docs", 2, COSINE)

    def upsert_request(self, points):
        return vecdb_pb2.UpsertRequest(collection="docs", points=points)

    def test_top_k_over_limit(self):
        self.upsert("docs", [point("a", [1, 0])])
        self.assertEqual(len(self.search("docs", [1, 0], 5)), 1)
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.Search,
            self.search_request("docs", [1, 0], 6))
        self.assertIn("top_k is 6, it must be 1 to 5", message)
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.SearchBatch,
            vecdb_pb2.SearchBatchRequest(
                collection="docs",
                searches=[self.search_request("docs", [1, 0], 1),
                          self.search_request("docs", [1, 0], 6)]))
        self.assertIn("searches[1]: top_k is 6", message)

    def test_batch_over_limit_writes_nothing(self):
        points = [point(str(i), [1, i]) for i in range(4)]
        message = self.assertRejected(INVALID_ARGUMENT, self.stub.Upsert,
                                      self.upsert_request(points))
        self.assertIn("4 points, the limit is 3", message)
        self.assertEqual(self.count("docs"), 0)
        self.assertEqual(self.upsert("docs", points[:3]), 3)

    def test_id_over_limit_names_point(self):
        points = [point("ok", [1, 0]), point("ééééé", [0, 1])]
        message = self.assertRejected(INVALID_ARGUMENT, self.stub.Upsert,
                                      self.upsert_request(points))
        self.assertIn("points[1]", message)
        self.assertIn("id is 10 bytes, the limit is 8 bytes", message)
        self.assertEqual(self.count("docs"), 0)

    def test_metadata_over_limits(self):
        deep = point("deep", [1, 0], {"a": {"b": {"c": 1}}})
        message = self.assertRejected(INVALID_ARGUMENT, self.stub.Upsert,
                                      self.upsert_request([deep]))
        self.assertIn("nested deeper than 2 levels", message)
        large = point("large", [1, 0], {"text": "x" * 300})
        message = self.assertRejected(INVALID_ARGUMENT, self.stub.Upsert,
                                      self.upsert_request([large]))
        self.assertIn("the limit is 200", message)
        self.upsert("docs", [point("fine", [1, 0], {"a": {"b": 1}})])
        self.assertEqual(self.count("docs"), 1)

    def test_collection_limits(self):
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.CreateCollection,
            vecdb_pb2.CreateCollectionRequest(name="wide", dimension=9,
                                              metric=COSINE))
        self.assertIn("dimension is 9, it must be 1 to 8", message)
        message = self.assertRejected(
            INVALID_ARGUMENT, self.stub.CreateCollection,
            vecdb_pb2.CreateCollectionRequest(name="toolong", dimension=2,
                                              metric=COSINE))
        self.assertIn("7 bytes, the limit is 6", message)
        self.create("second", 2, COSINE)
        message = self.assertRejected(
            RESOURCE_EXHAUSTED, self.stub.CreateCollection,
            vecdb_pb2.CreateCollectionRequest(name="third", dimension=2,
                                              metric=COSINE))
        self.assertIn("2 collections, the limit", message)


class LimitFlagRangeTest(unittest.TestCase):
    """A limit flag outside its range stops the server before it listens."""

    def run_server(self, *args):
        data_dir = tempfile.mkdtemp(prefix="vecdb-e2e-data-")
        self.addCleanup(shutil.rmtree, data_dir, ignore_errors=True)
        return subprocess.run(
            [SERVER_BINARY, "--data_dir", data_dir,
             "--listen", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)

    def test_out_of_range_limits_exit(self):
        cases = [
            (("--max_top_k", "0"), "max_top_k is 0; it must be 1 to 10000"),
            (("--max_top_k", "10001"), "max_top_k is 10001"),
            (("--max_point_id_bytes", "257"), "max_point_id_bytes is 257"),
            (("--max_metadata_depth", "33"), "max_metadata_depth is 33"),
            (("--max_batch_points", "-1"), "max_batch_points is 0"),
            (("--max_response_bytes", "100"), "--max_response_bytes is 100"),
        ]
        for args, expected in cases:
            with self.subTest(args=args):
                result = self.run_server(*args)
                output = (result.stdout + result.stderr).decode()
                self.assertEqual(result.returncode, 2, output)
                self.assertIn(expected, output)


if __name__ == "__main__":
    unittest.main()
