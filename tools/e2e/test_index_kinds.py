"""The index kinds through the `vecdb` tool: create, describe, update and
search, and every option that does not fit the kind.

Collections are small (16 dimensions, 8 inverted lists), so the kinds that
need training train within seconds of the import.
"""

import json
import time
import unittest

import numpy as np

from harness import L2, RPC_TIMEOUT_SECONDS, vecdb_pb2
from tool_harness import ToolTestCase

READY_TIMEOUT_SECONDS = 120
DIMENSION = 16
# IVF training waits for max(40 * nlist, 1000) points, and for 40 *
# 2^pq_bits under IVF_PQ; SQ8 and HNSW_SQ8 wait for 2000.
TRAINED_POINTS = 3000

# Per kind: the parameters that the tests give and the description of the
# index that the tool prints for them, with the server's defaults filled in.
KINDS = {
    "flat": ([], "flat"),
    "hnsw": (["--m", "8", "--ef_construction", "40", "--ef_search", "20"],
             "hnsw (m 8, ef_construction 40, ef_search 20)"),
    "ivf_flat": (["--nlist", "8", "--nprobe", "4"],
                 "ivf_flat (nlist 8, nprobe 4)"),
    "ivf_pq": (["--nlist", "8", "--nprobe", "4", "--pq_m", "4",
                "--pq_bits", "6"],
               "ivf_pq (nlist 8, nprobe 4, pq_m 4, pq_bits 6)"),
    "sq8": ([], "sq8"),
    "hnsw_sq8": (["--m", "8", "--ef_search", "20"],
                 "hnsw_sq8 (m 8, ef_construction 100, ef_search 20)"),
}

# Per index parameter: a valid value and the kinds it applies to, as the
# tool names them in its messages.
PARAMETERS = {
    "m": ("8", ["hnsw", "hnsw_sq8"]),
    "ef_construction": ("40", ["hnsw", "hnsw_sq8"]),
    "ef_search": ("20", ["hnsw", "hnsw_sq8"]),
    "nlist": ("8", ["ivf_flat", "ivf_pq"]),
    "nprobe": ("4", ["ivf_flat", "ivf_pq"]),
    "pq_m": ("4", ["ivf_pq"]),
    "pq_bits": ("6", ["ivf_pq"]),
}


def kinds_phrase(kinds):
    """Return "ivf_pq" or "hnsw and hnsw_sq8", as the tool joins kinds."""
    return kinds[0] if len(kinds) == 1 else " and ".join(kinds)


def misplaced_combinations():
    """Yield (kind, parameter, value, message) for each parameter given to
    a kind it does not apply to."""
    for kind in KINDS:
        for parameter, (value, kinds) in PARAMETERS.items():
            if kind not in kinds:
                yield (kind, parameter, value,
                       f"--{parameter} does not apply to index {kind} "
                       f"(only to {kinds_phrase(kinds)})")


class IndexKindTestCase(ToolTestCase):
    """Helpers to load points with the tool and wait for training."""

    def info(self, name):
        return self.stub.GetCollection(
            vecdb_pb2.GetCollectionRequest(name=name),
            timeout=RPC_TIMEOUT_SECONDS)

    def import_new(self, name, vectors, kind, *parameters):
        path = self.save_npy(f"{name}.npy", vectors)
        result = self.run_tool("import", path, "--collection", name,
                               "--create", "--metric", "l2", "--index", kind,
                               "--id_prefix", "p", *parameters)
        self.assertSucceeded(result)
        return result

    def wait_until_ready(self, name):
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            info = self.info(name)
            if (info.index_state == vecdb_pb2.READY
                    and info.unindexed_points == 0):
                return info
            if time.monotonic() > deadline:
                self.fail(f"{name} is {info.index_state} after "
                          f"{READY_TIMEOUT_SECONDS} s\n{self.server.log()}")
            time.sleep(0.2)

    def describe(self, name):
        result = self.run_tool("collections", "describe", name)
        self.assertSucceeded(result)
        return result.stdout

    def describe_line(self, name, label):
        """Return the text after "label:" in the describe output."""
        for line in self.describe(name).splitlines():
            if line.startswith(label + ":"):
                return line[len(label) + 1:].strip()
        self.fail(f"no line '{label}:' in the description of {name}")


class CreateTest(IndexKindTestCase):

    def test_create_every_kind_with_its_parameters(self):
        for kind, (parameters, description) in KINDS.items():
            result = self.run_tool("collections", "create", kind,
                                   "--dimension", str(DIMENSION),
                                   "--metric", "l2", "--index", kind,
                                   *parameters)

            self.assertSucceeded(result)
            self.assertIn(f"index:              {description}\n",
                          result.stdout)
            self.assertEqual(
                vecdb_pb2.IndexKind.Name(self.info(kind).index.kind),
                kind.upper())

    def test_kind_names_ignore_case(self):
        result = self.run_tool("collections", "create", "docs",
                               "--dimension", "8", "--metric", "l2",
                               "--index", "IVF_PQ", "--pq_m", "2")

        self.assertSucceeded(result)
        self.assertEqual(self.info("docs").index.kind, vecdb_pb2.IVF_PQ)
        self.assertEqual(self.info("docs").index.pq_m, 2)

    def test_create_rejects_every_misplaced_parameter(self):
        for kind, parameter, value, message in misplaced_combinations():
            result = self.run_tool("collections", "create", "docs",
                                   "--dimension", str(DIMENSION),
                                   "--metric", "l2", "--index", kind,
                                   f"--{parameter}", value)

            self.assertFailedWith(result, message)
        self.assertFalse(self.collection_exists("docs"))

    def test_import_create_rejects_every_misplaced_parameter(self):
        path = self.save_npy("v.npy", self.vectors(5, DIMENSION))
        for kind, parameter, value, message in misplaced_combinations():
            result = self.run_tool("import", path, "--collection", "docs",
                                   "--create", "--metric", "l2", "--index",
                                   kind, f"--{parameter}", value)

            self.assertFailedWith(result, message)
        self.assertFalse(self.collection_exists("docs"))

    def test_default_kind_is_hnsw(self):
        # Without --index the kind is hnsw.
        result = self.run_tool("collections", "create", "docs",
                               "--dimension", "8", "--metric", "l2",
                               "--nprobe", "4")

        self.assertFailedWith(result, "--nprobe does not apply to index hnsw")

    def test_every_misplaced_parameter_is_named_at_once(self):
        result = self.run_tool("collections", "create", "docs",
                               "--dimension", "8", "--metric", "l2",
                               "--index", "sq8", "--m", "8", "--nlist", "4",
                               "--pq_bits", "6")

        self.assertFailedWith(result, "--m does not apply", "--nlist does not "
                              "apply", "--pq_bits does not apply")

    def test_unknown_kind_lists_the_kinds(self):
        result = self.run_tool("collections", "create", "docs",
                               "--dimension", "8", "--metric", "l2",
                               "--index", "ivf")

        self.assertFailedWith(result, "--index: ivf not in "
                              "{flat,hnsw,ivf_flat,ivf_pq,sq8,hnsw_sq8}")

    def test_server_checks_pq_m_against_dimension(self):
        result = self.run_tool("collections", "create", "docs",
                               "--dimension", "10", "--metric", "l2",
                               "--index", "ivf_pq", "--pq_m", "4")

        self.assertFailedWith(result, "CreateCollection failed: "
                              "INVALID_ARGUMENT: ", "pq_m")

    def test_index_options_need_create(self):
        path = self.save_npy("v.npy", self.vectors(5, DIMENSION))
        self.create("docs", DIMENSION, metric=L2)

        result = self.run_tool("import", path, "--collection", "docs",
                               "--nlist", "8")

        self.assertFailedWith(result, "apply only with --create",
                              "vecdb collections update")
        self.assertEqual(self.count("docs"), 0)

    def test_import_create_keeps_existing_index(self):
        path = self.save_npy("v.npy", self.vectors(5, DIMENSION))
        self.create("docs", DIMENSION, metric=L2)

        result = self.run_tool("import", path, "--collection", "docs",
                               "--create", "--metric", "l2", "--index",
                               "sq8", "--id_prefix", "p")

        self.assertSucceeded(result)
        self.assertIn("collection 'docs' exists, so --index and its "
                      "parameters are not applied", result.stderr)
        self.assertEqual(self.info("docs").index.kind, vecdb_pb2.FLAT)

    def test_dry_run_shows_the_index_it_would_create(self):
        path = self.save_npy("v.npy", self.vectors(5, DIMENSION))

        result = self.run_tool("import", path, "--collection", "docs",
                               "--create", "--metric", "l2", "--index",
                               "ivf_flat", "--nlist", "8", "--dry-run")

        self.assertSucceeded(result)
        self.assertIn("would create collection 'docs' (dimension 16, l2, "
                      "ivf_flat (nlist 8))", result.stdout)
        self.assertFalse(self.collection_exists("docs"))


class DescribeTest(IndexKindTestCase):

    def test_training_kind_goes_from_exact_to_ready(self):
        vectors = self.vectors(TRAINED_POINTS, DIMENSION)
        self.import_new("docs", vectors[:200], "ivf_pq", "--nlist", "8",
                        "--pq_m", "4", "--pq_bits", "6")

        self.assertEqual(
            self.describe_line("docs", "index state"),
            "exact: searches scan every vector until the collection has "
            "2560 points to train the ivf_pq index on (it has 200)")
        self.assertEqual(self.describe_line("docs", "training threshold"),
                         "2560 points")
        self.assertEqual(self.describe_line("docs", "code size"),
                         "3 bytes per vector (pq_m 4 x pq_bits 6, rounded "
                         "up to whole bytes)")

        path = self.save_npy("rest.npy", vectors[200:])
        self.assertSucceeded(self.run_tool(
            "import", path, "--collection", "docs", "--id_prefix", "p",
            "--id_start", "200"))
        info = self.wait_until_ready("docs")

        self.assertEqual(self.describe_line("docs", "index state"),
                         "ready: the ivf_pq index serves searches")
        self.assertRegex(
            self.describe_line("docs", "index memory"),
            rf"^[\d.]+ (B|KiB|MiB) \({info.index_memory_bytes} bytes, "
            r"estimate\)$")
        self.assertGreater(info.index_memory_bytes, 0)
        self.assertRegex(self.describe_line("docs", "index builds"),
                         r"^[1-9]\d* since the server started$")

    def test_kinds_without_training_say_so(self):
        self.create("docs", DIMENSION, metric=L2, kind=vecdb_pb2.HNSW)

        self.assertEqual(self.describe_line("docs", "training threshold"),
                         "none, hnsw needs no training")
        self.assertEqual(self.describe_line("docs", "index state"),
                         "ready: the hnsw index serves searches")

    def test_list_shows_kind_state_training_and_parameters(self):
        self.create("graph", DIMENSION, metric=L2, kind=vecdb_pb2.HNSW_SQ8)
        self.create("lists", DIMENSION, metric=L2, kind=vecdb_pb2.IVF_FLAT,
                    nlist=8)

        result = self.run_tool("collections", "list")

        self.assertSucceeded(result)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0].split(), [
            "NAME", "DIMENSION", "METRIC", "INDEX", "POINTS", "STATE",
            "INDEX_MEMORY", "MEMORY", "DISK", "TRAINING_POINTS",
            "PARAMETERS"])
        self.assertRegex(
            lines[1], r"^graph +16 l2 +hnsw_sq8 +0 exact +[\d.]+ \S+ +"
            r"[\d.]+ \S+ +[\d.]+ \S+ +2000  m=16 ef_construction=100 "
            r"ef_search=64$")
        self.assertRegex(
            lines[2], r"^lists +16 l2 +ivf_flat +0 exact .* 1000  nlist=8 "
            r"nprobe=16$")

    def test_json_has_every_field(self):
        self.create("docs", DIMENSION, metric=L2, kind=vecdb_pb2.SQ8)

        result = self.run_tool("collections", "describe", "docs", "--json")

        self.assertSucceeded(result)
        info = json.loads(result.stdout)
        self.assertEqual(info["index"]["kind"], "SQ8")
        self.assertEqual(info["index_state"], "EXACT")
        self.assertEqual(info["training_threshold"], "2000")
        self.assertIn("index_memory_bytes", info)


class UpdateTest(IndexKindTestCase):

    def setUp(self):
        super().setUp()
        self.vectors_array = self.vectors(TRAINED_POINTS, DIMENSION)
        self.import_new("docs", self.vectors_array, "hnsw")

    def update(self, *args):
        return self.run_tool("collections", "update", "docs", *args)

    def test_new_kind_is_built_in_the_background(self):
        result = self.update("--index", "ivf_pq", "--nlist", "8",
                             "--pq_m", "4", "--pq_bits", "4")

        self.assertSucceeded(result)
        self.assertIn("updated collection 'docs': index ivf_pq (nlist 8, "
                      "nprobe 16, pq_m 4, pq_bits 4)", result.stdout)
        self.assertIn("rebuilt in the background", result.stdout)
        info = self.wait_until_ready("docs")
        self.assertEqual(info.index.kind, vecdb_pb2.IVF_PQ)
        self.assertEqual(info.point_count, TRAINED_POINTS)

        search = self.run_tool("search", "--collection", "docs", "--json",
                               "--id", "p42", "--top_k", "1", "--rerank",
                               "--oversampling", "50")
        self.assertSucceeded(search)
        hits = json.loads(search.stdout)["hits"]
        self.assertEqual(hits[0]["id"], "p42")
        self.assertEqual(hits[0]["score"], 0)

    def test_search_parameter_needs_no_rebuild(self):
        result = self.update("--ef_search", "99")

        self.assertSucceeded(result)
        self.assertIn("no rebuild needed", result.stdout)
        info = self.info("docs")
        self.assertEqual(info.index.ef_search, 99)
        self.assertEqual(info.index.m, 16)
        self.assertEqual(info.index_state, vecdb_pb2.READY)

    def test_same_kind_keeps_parameters_not_given(self):
        self.assertSucceeded(self.update("--index", "hnsw", "--m", "8"))
        self.wait_until_ready("docs")

        self.assertSucceeded(self.update("--ef_construction", "50"))

        info = self.wait_until_ready("docs")
        self.assertEqual(info.index.m, 8)
        self.assertEqual(info.index.ef_construction, 50)

    def test_parameter_of_another_kind_is_rejected(self):
        # Checked against the current kind, hnsw.
        result = self.update("--nprobe", "4")

        self.assertFailedWith(result, "--nprobe does not apply to index hnsw "
                              "(only to ivf_flat and ivf_pq)")
        self.assertEqual(self.info("docs").index.kind, vecdb_pb2.HNSW)

    def test_update_rejects_every_misplaced_parameter(self):
        for kind, parameter, value, message in misplaced_combinations():
            result = self.update("--index", kind, f"--{parameter}", value)

            self.assertFailedWith(result, message)
        self.assertEqual(self.info("docs").index.kind, vecdb_pb2.HNSW)
        self.assertEqual(self.info("docs").index_builds, 0)

    def test_nothing_to_change(self):
        self.assertFailedWith(self.update(), "nothing to change")

    def test_unknown_collection(self):
        result = self.run_tool("collections", "update", "absent",
                               "--ef_search", "10")

        self.assertFailedWith(result, "GetCollection failed: NOT_FOUND: ")

    def test_json_output(self):
        result = self.update("--index", "flat", "--json")

        self.assertSucceeded(result)
        self.assertEqual(json.loads(result.stdout)["index"]["kind"], "FLAT")


class SearchTest(IndexKindTestCase):

    def setUp(self):
        super().setUp()
        self.vectors_array = self.vectors(TRAINED_POINTS, DIMENSION)
        self.import_new("pq", self.vectors_array, "ivf_pq", "--nlist", "8",
                        "--nprobe", "1", "--pq_m", "4", "--pq_bits", "4")
        self.wait_until_ready("pq")

    def search_json(self, collection, *args):
        result = self.run_tool("search", "--collection", collection, "--json",
                               *args)
        self.assertSucceeded(result)
        return json.loads(result.stdout)["hits"]

    def test_rerank_with_every_list_finds_the_exact_neighbours(self):
        query = self.vectors_array[7]
        distances = np.sqrt(((self.vectors_array - query) ** 2).sum(1))
        expected = [f"p{i}" for i in np.argsort(distances)[:5]]

        hits = self.search_json("pq", "--id", "p7", "--top_k", "5",
                                "--nprobe", "8", "--rerank",
                                "--oversampling", "100")

        self.assertEqual([hit["id"] for hit in hits], expected)
        for hit, point_id in zip(hits, expected):
            self.assertAlmostEqual(hit["score"],
                                   distances[int(point_id[1:])], places=4)

    def test_search_options_of_other_kinds_are_rejected(self):
        self.create("graph", DIMENSION, metric=L2, kind=vecdb_pb2.HNSW)
        self.create("lists", DIMENSION, metric=L2, kind=vecdb_pb2.IVF_FLAT)
        self.create("exact", DIMENSION, metric=L2, kind=vecdb_pb2.FLAT)
        vector = json.dumps([0.5] * DIMENSION)
        cases = [
            ("pq", ["--ef_search", "10"],
             "--ef_search does not apply to collection 'pq', whose index is "
             "ivf_pq (only to hnsw and hnsw_sq8)"),
            ("graph", ["--nprobe", "2"],
             "--nprobe does not apply to collection 'graph', whose index is "
             "hnsw (only to ivf_flat and ivf_pq)"),
            ("graph", ["--rerank"],
             "--rerank does not apply to collection 'graph', whose index is "
             "hnsw (only to ivf_pq, sq8 and hnsw_sq8), because its scores "
             "are exact already"),
            ("lists", ["--rerank"], "--rerank does not apply to collection "
             "'lists', whose index is ivf_flat"),
            ("exact", ["--nprobe", "2"], "--nprobe does not apply to "
             "collection 'exact', whose index is flat"),
            ("exact", ["--ef_search", "2"], "--ef_search does not apply to "
             "collection 'exact', whose index is flat"),
            ("pq", ["--oversampling", "8"],
             "--oversampling sets the candidates per hit that --rerank "
             "scores; add --rerank"),
        ]
        for collection, options, message in cases:
            result = self.run_tool("search", "--collection", collection,
                                   "--vector", vector, *options)

            self.assertFailedWith(result, message)

    def test_oversampling_out_of_range(self):
        result = self.run_tool("search", "--collection", "pq", "--id", "p1",
                               "--rerank", "--oversampling", "101")

        self.assertFailedWith(result, "--oversampling: Value 101 not in "
                              "range 0 to 100")

    def test_help_explains_the_search_options(self):
        result = self.run_tool("search", "--help", server=False)

        self.assertSucceeded(result)
        for option in ["--nprobe", "--rerank", "--oversampling",
                       "--ef_search", "--exact"]:
            self.assertIn(option, result.stdout)


if __name__ == "__main__":
    unittest.main()
