"""Imports of every input format through the `vecdb` tool."""

import os
import pty
import subprocess
import unittest

import numpy as np
from google.protobuf import json_format

from harness import RPC_TIMEOUT_SECONDS, vecdb_pb2
from tool_harness import (CLI_BINARY, TOOL_TIMEOUT_SECONDS, ToolTestCase,
                          imported_count)


class ImportFormatsTest(ToolTestCase):

    def test_npy_float32_with_ids_and_metadata(self):
        vectors = self.vectors(300, 8)
        ids = [f"doc-{i}" for i in range(300)]
        npy = self.save_npy("v.npy", vectors)
        id_file = self.save_lines("ids.txt", ids)
        metadata = self.save_jsonl(
            "meta.jsonl", [{"n": i, "tag": f"t{i % 3}"} for i in range(300)])

        result = self.run_tool("import", npy, "--collection", "docs",
                               "--create", "--metric", "l2", "--index", "flat",
                               "--ids", id_file, "--metadata", metadata)

        self.assertSucceeded(result)
        self.assertEqual(imported_count(result.stdout), 300)
        self.assertIn("0 rejected", result.stdout)
        self.assertStoredExactly("docs", ids, vectors)
        point = self.stored("docs", ["doc-17"])["doc-17"]
        self.assertEqual(point.metadata["n"], 17)
        self.assertEqual(point.metadata["tag"], "t2")

    def test_npy_float64_is_rounded_to_float32(self):
        vectors = self.rng.standard_normal((50, 4))
        npy = self.save_npy("v.npy", vectors)

        result = self.run_tool("import", npy, "--collection", "docs",
                               "--create", "--metric", "cosine",
                               "--id_prefix", "p")

        self.assertSucceeded(result)
        self.assertStoredExactly("docs", [f"p{i}" for i in range(50)],
                                 vectors.astype(np.float32))

    def test_fvecs_with_generated_ids(self):
        vectors = self.vectors(120, 6)
        fvecs = self.save_fvecs("v.fvecs", vectors)

        result = self.run_tool("import", fvecs, "--collection", "docs",
                               "--create", "--metric", "dot",
                               "--id_prefix", "row-", "--id_start=1000")

        self.assertSucceeded(result)
        self.assertStoredExactly(
            "docs", [f"row-{1000 + i}" for i in range(120)], vectors)

    def test_jsonl_with_metadata_object_and_integer_ids(self):
        vectors = self.vectors(40, 3)
        jsonl = self.save_jsonl("points.jsonl", [
            {"id": i, "vector": v.tolist(), "metadata": {"even": i % 2 == 0}}
            for i, v in enumerate(vectors)])

        result = self.run_tool("import", jsonl, "--collection", "docs",
                               "--create", "--metric", "l2")

        self.assertSucceeded(result)
        self.assertStoredExactly("docs", [str(i) for i in range(40)], vectors)
        self.assertTrue(self.stored("docs", ["4"])["4"].metadata["even"])

    def test_jsonl_other_fields_become_metadata(self):
        jsonl = self.save_jsonl("points.jsonl", [
            {"id": "a", "vector": [1, 0], "title": "first", "tags": ["x"]},
            {"id": "b", "vector": [0, 1], "title": "second", "n": None}])

        result = self.run_tool("import", jsonl, "--collection", "docs",
                               "--create", "--metric", "cosine")

        self.assertSucceeded(result)
        stored = self.stored("docs", ["a", "b"])
        self.assertEqual(json_format.MessageToDict(stored["a"].metadata),
                         {"title": "first", "tags": ["x"]})
        self.assertEqual(stored["b"].metadata["title"], "second")
        self.assertNotIn("vector", stored["a"].metadata)

    def test_jsonl_without_ids_gets_generated_ids(self):
        jsonl = self.save_jsonl("points.jsonl",
                                [{"vector": [i, 1.0]} for i in range(5)])

        result = self.run_tool("import", jsonl, "--collection", "docs",
                               "--create", "--metric", "l2",
                               "--id_prefix", "line")

        self.assertSucceeded(result)
        self.assertEqual(sorted(self.stored("docs", [f"line{i}" for i in
                                                     range(5)])),
                         [f"line{i}" for i in range(5)])

    def test_create_sets_hnsw_parameters(self):
        npy = self.save_npy("v.npy", self.vectors(200, 16))

        result = self.run_tool("import", npy, "--collection", "docs",
                               "--create", "--metric", "l2", "--index", "hnsw",
                               "--m", "8", "--ef_construction=40")

        self.assertSucceeded(result)
        info = self.stub.GetCollection(
            vecdb_pb2.GetCollectionRequest(name="docs"),
            timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(info.dimension, 16)
        self.assertEqual(info.metric, vecdb_pb2.L2)
        self.assertEqual(info.index.kind, vecdb_pb2.HNSW)
        self.assertEqual(info.index.m, 8)
        self.assertEqual(info.index.ef_construction, 40)
        self.assertEqual(info.point_count, 200)

    def test_defer_index_builds_graph_after_load(self):
        vectors = self.vectors(3000, 16)
        npy = self.save_npy("v.npy", vectors)

        result = self.run_tool("import", npy, "--collection", "docs",
                               "--create", "--metric", "l2", "--index", "hnsw",
                               "--id_prefix", "p", "--defer_index")

        self.assertSucceeded(result)
        self.assertEqual(imported_count(result.stdout), 3000)
        # Searches find every point at once, before and after the server
        # moves them into the graph.
        for row in (0, 1234, 2999):
            hits = self.search("docs", vectors[row], 1)
            self.assertEqual([h.id for h in hits], [f"p{row}"])
        self.wait_until_indexed("docs")
        for row in (0, 1234, 2999):
            hits = self.search("docs", vectors[row], 1)
            self.assertEqual([h.id for h in hits], [f"p{row}"])

    def test_existing_collection_needs_no_create(self):
        self.create("docs", 4, vecdb_pb2.L2)
        npy = self.save_npy("v.npy", self.vectors(10, 4))

        result = self.run_tool("import", npy, "--collection", "docs")

        self.assertSucceeded(result)
        self.assertEqual(self.count("docs"), 10)

    def test_requests_stay_below_message_limit(self):
        # The server takes messages of at most 64 KiB, so 1,000 points of
        # 512 floats (2 MB) must be split into many requests.
        self.server.stop()
        self.server.extra_args = ["--max_message_bytes", "65536"]
        self.server.start(self.server.data_dir)
        self.stub = self.server.stub()
        vectors = self.vectors(1000, 512)
        npy = self.save_npy("v.npy", vectors)

        result = self.run_tool("import", npy, "--collection", "wide",
                               "--create", "--metric", "l2", "--index", "flat",
                               "--batch_size", "1000",
                               "--max_message_bytes", "65536")

        self.assertSucceeded(result)
        self.assertEqual(imported_count(result.stdout), 1000)
        self.assertStoredExactly("wide", [f"{i}" for i in range(1000)],
                                 vectors)

    def test_parallel_streams(self):
        vectors = self.vectors(5000, 8)
        npy = self.save_npy("v.npy", vectors)

        result = self.run_tool("import", npy, "--collection", "docs",
                               "--create", "--metric", "l2", "--index", "flat",
                               "--batch_size", "100", "--streams", "4",
                               "--requests_per_stream", "3")

        self.assertSucceeded(result)
        self.assertEqual(imported_count(result.stdout), 5000)
        self.assertStoredExactly("docs", [str(i) for i in range(5000)],
                                 vectors)

    def test_plain_progress_lines_without_terminal(self):
        npy = self.save_npy("v.npy", self.vectors(4000, 32))

        result = self.run_tool("import", npy, "--collection", "docs",
                               "--create", "--metric", "l2", "--index", "hnsw",
                               "--batch_size", "100",
                               "--progress_interval", "0.01")

        self.assertSucceeded(result)
        self.assertRegex(result.stderr,
                         r"import: \d+ of 4000 points \([\d.]+%\), \d+ "
                         r"points/s, .* left\n")
        self.assertNotIn("\r", result.stderr)

    def test_progress_bar_on_terminal(self):
        npy = self.save_npy("v.npy", self.vectors(2000, 32))
        controller, terminal = pty.openpty()
        with open(controller, "rb", buffering=0) as output:
            process = subprocess.Popen(
                [CLI_BINARY, "import", npy, "--collection", "docs",
                 "--create", "--metric", "l2", "--server", self.address()],
                stdout=subprocess.PIPE, stderr=terminal)
            os.close(terminal)
            shown = b""
            while True:
                try:
                    chunk = output.read(4096)
                except OSError:  # the terminal closed with the process
                    break
                if not chunk:
                    break
                shown += chunk
            stdout, _ = process.communicate(timeout=TOOL_TIMEOUT_SECONDS)

        self.assertEqual(process.returncode, 0, shown)
        self.assertEqual(imported_count(stdout.decode()), 2000)
        self.assertRegex(shown.decode(),
                         r"\r\[#+\] 100\.0%  2000/2000 points  \d+ points/s  "
                         r"elapsed ")


if __name__ == "__main__":
    unittest.main()
