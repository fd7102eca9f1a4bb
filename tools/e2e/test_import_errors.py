"""Bad input and server errors stop an import with a message that names the
file and line or row, and a non-zero exit status."""

import json
import unittest

import numpy as np

from harness import vecdb_pb2
from tool_harness import ToolTestCase, imported_count


class ImportErrorsTest(ToolTestCase):

    def import_new(self, path, *extra):
        """Import `path` into a new L2 collection "docs"."""
        return self.run_tool("import", path, "--collection", "docs",
                             "--create", "--metric", "l2", *extra)

    def assertNothingWritten(self, result):
        self.assertIn("nothing was imported", result.stderr)
        self.assertFalse(self.collection_exists("docs"),
                         "the collection was created for bad input")

    def good_lines(self, count, dimension=3):
        return [json.dumps({"id": f"p{i}", "vector": [float(i + 1)] *
                            dimension}) for i in range(count)]

    def test_malformed_jsonl_line(self):
        lines = self.good_lines(5)
        lines[2] = '{"id": "p2", "vector": [1, 2, 3'
        path = self.save_lines("points.jsonl", lines)

        result = self.import_new(path)

        self.assertFailedWith(result, "points.jsonl: line 3: invalid JSON")
        self.assertNothingWritten(result)

    def test_jsonl_vector_of_wrong_dimension(self):
        lines = self.good_lines(5)
        lines[3] = json.dumps({"id": "p3", "vector": [1.0, 2.0]})
        path = self.save_lines("points.jsonl", lines)

        result = self.import_new(path)

        self.assertFailedWith(
            result, "points.jsonl: line 4: 'vector' has dimension 2, "
            "expected 3")
        self.assertNothingWritten(result)

    def test_file_dimension_differs_from_collection(self):
        self.create("docs", 4, vecdb_pb2.L2)
        path = self.save_npy("v.npy", self.vectors(10, 8))

        result = self.run_tool("import", path, "--collection", "docs")

        self.assertFailedWith(
            result, "v.npy: row 0: the vector has dimension 8, the "
            "collection 4")
        self.assertEqual(self.count("docs"), 0)

    def test_nan_in_npy_row(self):
        vectors = self.vectors(10, 4)
        vectors[6, 2] = np.nan
        path = self.save_npy("v.npy", vectors)

        result = self.import_new(path)

        self.assertFailedWith(result, "v.npy: row 6: component 2 is nan")
        self.assertNothingWritten(result)

    def test_infinity_in_fvecs_row(self):
        vectors = self.vectors(10, 4)
        vectors[9, 0] = np.inf
        path = self.save_fvecs("v.fvecs", vectors)

        result = self.import_new(path)

        self.assertFailedWith(result, "v.fvecs: row 9: component 0 is inf")
        self.assertNothingWritten(result)

    def test_nan_in_jsonl(self):
        lines = self.good_lines(4)
        # Python writes NaN as a bare word, which is not JSON.
        lines[1] = json.dumps({"id": "p1", "vector": [1.0, float("nan"), 2]})
        path = self.save_lines("points.jsonl", lines)

        result = self.import_new(path)

        self.assertFailedWith(result, "points.jsonl: line 2: invalid JSON",
                              "NaN and Infinity are not JSON numbers")
        self.assertNothingWritten(result)

    def test_duplicate_id_in_jsonl(self):
        lines = self.good_lines(6)
        lines[4] = json.dumps({"id": "p1", "vector": [5.0, 5.0, 5.0]})
        path = self.save_lines("points.jsonl", lines)

        result = self.import_new(path)

        self.assertFailedWith(
            result, 'points.jsonl: line 5: duplicate id "p1", first seen at ',
            "points.jsonl: line 2")
        self.assertNothingWritten(result)

    def test_duplicate_id_in_ids_file(self):
        path = self.save_npy("v.npy", self.vectors(4, 2))
        ids = self.save_lines("ids.txt", ["a", "b", "c", "b"])

        result = self.import_new(path, "--ids", ids)

        self.assertFailedWith(result, 'ids.txt: line 4: duplicate id "b"',
                              "ids.txt: line 2")
        self.assertNothingWritten(result)

    def test_ids_file_shorter_than_vectors(self):
        path = self.save_npy("v.npy", self.vectors(4, 2))
        ids = self.save_lines("ids.txt", ["a", "b", "c"])

        result = self.import_new(path, "--ids", ids)

        self.assertFailedWith(result, "ids.txt has 3 lines but ",
                              "v.npy has 4 rows")
        self.assertFalse(self.collection_exists("docs"))

    def test_metadata_line_is_not_an_object(self):
        path = self.save_npy("v.npy", self.vectors(3, 2))
        metadata = self.save_lines("meta.jsonl", ["{}", "[1]", "{}"])

        result = self.import_new(path, "--metadata", metadata)

        self.assertFailedWith(
            result, "meta.jsonl: line 2: expected a JSON object, found array")
        self.assertNothingWritten(result)

    def test_fortran_order_npy(self):
        path = self.save_npy("v.npy", np.asfortranarray(self.vectors(5, 3)))

        result = self.import_new(path)

        self.assertFailedWith(result, "v.npy: the array is in Fortran order")
        self.assertFalse(self.collection_exists("docs"))

    def test_integer_npy(self):
        path = self.save_npy("v.npy", np.ones((5, 3), dtype=np.int32))

        result = self.import_new(path)

        self.assertFailedWith(result, "v.npy: unsupported dtype '<i4'")
        self.assertFalse(self.collection_exists("docs"))

    def test_one_dimensional_npy(self):
        path = self.save_npy("v.npy", np.ones(5, dtype=np.float32))

        result = self.import_new(path)

        self.assertFailedWith(result, "v.npy: the array has shape (5,)")

    def test_zero_vector_in_cosine_collection(self):
        vectors = self.vectors(5, 3)
        vectors[3] = 0
        path = self.save_npy("v.npy", vectors)

        result = self.run_tool("import", path, "--collection", "docs",
                               "--create", "--metric", "cosine")

        self.assertFailedWith(result, "v.npy: row 3: the vector is all zeros")
        self.assertNothingWritten(result)

    def test_missing_collection_without_create(self):
        path = self.save_npy("v.npy", self.vectors(5, 3))

        result = self.run_tool("import", path, "--collection", "docs")

        self.assertFailedWith(result,
                              "collection 'docs' not found; add --create")

    def test_create_without_metric(self):
        path = self.save_npy("v.npy", self.vectors(5, 3))

        result = self.run_tool("import", path, "--collection", "docs",
                               "--create")

        self.assertFailedWith(result, "needs --metric cosine, dot or l2")

    def test_server_rejection_shows_grpc_status(self):
        path = self.save_npy("v.npy", self.vectors(5, 3))

        result = self.import_new(path, "--index", "hnsw", "--m", "1000")

        self.assertFailedWith(result,
                              "CreateCollection failed: INVALID_ARGUMENT: ")

    def test_request_over_server_limit_counts_nothing_imported(self):
        # The client believes in a 4 MiB limit but the server takes 64 KiB,
        # so the server rejects the first request of each stream.
        self.server.stop()
        self.server.extra_args = ["--max_message_bytes", "65536"]
        self.server.start(self.server.data_dir)
        self.stub = self.server.stub()
        path = self.save_npy("v.npy", self.vectors(2000, 64))

        result = self.import_new(path, "--max_message_bytes", "4194304")

        self.assertFailedWith(result, "Import failed: RESOURCE_EXHAUSTED: ",
                              "run the same command with --resume")
        self.assertEqual(imported_count(result.stdout), 0)
        self.assertEqual(self.count("docs"), 0)

    def test_unreachable_server(self):
        path = self.save_npy("v.npy", self.vectors(5, 3))
        self.server.stop()

        result = self.import_new(path)

        self.assertFailedWith(result, "GetCollection failed: UNAVAILABLE: ")

    def test_dry_run_reports_and_writes_nothing(self):
        path = self.save_npy("v.npy", self.vectors(25, 3))

        result = self.import_new(path, "--dry-run")

        self.assertSucceeded(result)
        self.assertIn("25 points of dimension 3", result.stdout)
        self.assertIn("would create collection 'docs' (dimension 3, l2, hnsw)",
                      result.stdout)
        self.assertIn("would import 25 points into 'docs'; nothing was "
                      "written", result.stdout)
        self.assertFalse(self.collection_exists("docs"))

    def test_dry_run_finds_bad_input(self):
        lines = self.good_lines(3)
        lines[2] = "not json"
        path = self.save_lines("points.jsonl", lines)

        result = self.import_new(path, "--dry_run")

        self.assertFailedWith(result, "points.jsonl: line 3: invalid JSON")


if __name__ == "__main__":
    unittest.main()
