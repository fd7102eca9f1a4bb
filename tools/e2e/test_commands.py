"""The `vecdb collections` and `vecdb search` commands."""

import json
import unittest

from harness import vecdb_pb2
from tool_harness import ToolTestCase


class CollectionsCommandTest(ToolTestCase):

    def test_create_list_describe_drop(self):
        created = self.run_tool("collections", "create", "docs",
                                "--dimension", "16", "--metric", "cosine",
                                "--index", "hnsw", "--m", "12")
        self.assertSucceeded(created)
        self.assertIn("hnsw (m 12, ef_construction 100, ef_search 64)",
                      created.stdout)

        listed = self.run_tool("collections", "list")
        self.assertSucceeded(listed)
        self.assertRegex(listed.stdout, r"\ndocs +16 cosine +hnsw +0 ")

        described = self.run_tool("collections", "describe", "docs", "--json")
        self.assertSucceeded(described)
        info = json.loads(described.stdout)
        self.assertEqual(info["dimension"], 16)
        self.assertEqual(info["metric"], "COSINE")
        self.assertEqual(info["point_count"], "0")

        dropped = self.run_tool("collections", "drop", "docs")
        self.assertSucceeded(dropped)
        self.assertFalse(self.collection_exists("docs"))

    def test_list_as_json(self):
        self.create("a", 2)
        self.create("b", 3)

        result = self.run_tool("collections", "list", "--json")

        self.assertSucceeded(result)
        names = [c["name"] for c in json.loads(result.stdout)["collections"]]
        self.assertEqual(names, ["a", "b"])

    def test_help_explains_every_update_option(self):
        result = self.run_tool("collections", "update", "--help",
                               server=False)

        self.assertSucceeded(result)
        self.assertIn("rebuilds the index", result.stdout)
        for option in ["--index", "--m", "--ef_construction", "--ef_search",
                       "--nlist", "--nprobe", "--pq_m", "--pq_bits",
                       "--json", "--server"]:
            self.assertIn(option, result.stdout)

    def test_errors_show_grpc_status(self):
        missing = self.run_tool("collections", "describe", "absent")
        self.assertFailedWith(missing, "GetCollection failed: NOT_FOUND: ")

        self.create("docs", 2)
        twice = self.run_tool("collections", "create", "docs",
                              "--dimension", "2", "--metric", "l2")
        self.assertFailedWith(twice, "CreateCollection failed: "
                              "ALREADY_EXISTS: ")

    def test_help_explains_every_import_option(self):
        result = self.run_tool("import", "--help", server=False)

        self.assertSucceeded(result)
        for option in ["--server", "--collection", "--ids", "--metadata",
                       "--create", "--metric", "--index", "--m",
                       "--ef_construction", "--ef_search", "--nlist",
                       "--nprobe", "--pq_m", "--pq_bits", "--batch_size",
                       "--max_message_bytes", "--streams", "--id_prefix",
                       "--id_start", "--resume", "--dry-run",
                       "--progress_interval"]:
            self.assertIn(option, result.stdout)


class SearchCommandTest(ToolTestCase):

    def setUp(self):
        super().setUp()
        self.vectors_array = self.vectors(200, 8)
        self.npy = self.save_npy("v.npy", self.vectors_array)
        self.metadata = self.save_jsonl(
            "meta.jsonl", [{"n": i} for i in range(200)])
        self.assertSucceeded(self.run_tool(
            "import", self.npy, "--collection", "docs", "--create",
            "--metric", "l2", "--index", "flat", "--id_prefix", "p",
            "--metadata", self.metadata))

    def search_json(self, *args):
        result = self.run_tool("search", "--collection", "docs", "--json",
                               *args)
        self.assertSucceeded(result)
        return json.loads(result.stdout)["hits"]

    def test_query_from_npy_row(self):
        hits = self.search_json(self.npy, "--row", "17", "--top_k", "3")

        self.assertEqual(len(hits), 3)
        self.assertEqual(hits[0]["id"], "p17")
        self.assertEqual(hits[0]["score"], 0)
        self.assertEqual(hits[0]["metadata"], {"n": 17})

    def test_query_from_fvecs_row(self):
        fvecs = self.save_fvecs("q.fvecs", self.vectors_array[40:42])

        hits = self.search_json(fvecs, "--row", "1", "--top_k", "1")

        self.assertEqual(hits[0]["id"], "p41")

    def test_query_from_json_file_and_inline(self):
        vector = self.vectors_array[5].tolist()
        path = self.path("q.json")
        with open(path, "w") as f:
            json.dump(vector, f)

        from_file = self.search_json(path, "--top_k", "1")
        inline = self.search_json("--vector", json.dumps(vector), "--top_k",
                                  "1", "--exact")

        self.assertEqual(from_file[0]["id"], "p5")
        self.assertEqual(inline[0]["id"], "p5")

    def test_query_by_stored_id(self):
        hits = self.search_json("--id", "p99", "--top_k", "2",
                                "--include_vectors")

        self.assertEqual(hits[0]["id"], "p99")
        self.assertEqual(len(hits[0]["vector"]), 8)

    def test_table_output(self):
        result = self.run_tool("search", "--collection", "docs", "--id", "p3",
                               "--top_k", "2")

        self.assertSucceeded(result)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["RANK", "ID", "SCORE", "METADATA"])
        self.assertEqual(lines[1].split(), ["1", "p3", "0.000000", '{"n":3}'])
        self.assertEqual(len(lines), 3)

    def test_unknown_id(self):
        result = self.run_tool("search", "--collection", "docs", "--id", "x")

        self.assertFailedWith(result, "no point with id 'x' in collection "
                              "'docs'")

    def test_query_of_wrong_dimension(self):
        result = self.run_tool("search", "--collection", "docs", "--vector",
                               "[1, 2]")

        self.assertFailedWith(result, "Search failed: INVALID_ARGUMENT: ")

    def test_needs_exactly_one_query(self):
        result = self.run_tool("search", "--collection", "docs", self.npy,
                               "--id", "p1")

        self.assertFailedWith(result, "give exactly one query")


if __name__ == "__main__":
    unittest.main()
