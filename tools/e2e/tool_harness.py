"""Shared helpers for the end-to-end tests of the `vecdb` command-line tool.

Besides the variables of tests/e2e/harness.py, which ctest puts on
PYTHONPATH, the tests read VECDB_CLI, the path of the `vecdb` binary. Input
files are written with numpy into a temporary folder per test.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

from harness import RPC_TIMEOUT_SECONDS, ServerTestCase, vecdb_pb2

CLI_BINARY = os.environ.get("VECDB_CLI")
if not CLI_BINARY:
    raise RuntimeError("VECDB_CLI is not set. ctest sets it. To run a test "
                       "by hand, export VECDB_CLI=build/rpc/vecdb")

TOOL_TIMEOUT_SECONDS = 120
SUMMARY = re.compile(
    r"imported (\d+) points into '[^']*' in [\d.]+ s \(\d+ points/s\), "
    r"(\d+) rejected")


def imported_count(stdout):
    """Return the imported count of the tool's summary line, or None."""
    match = SUMMARY.search(stdout)
    return int(match.group(1)) if match else None


class ToolTestCase(ServerTestCase):
    """A fresh server per test, a work folder and helpers to run the tool."""

    def setUp(self):
        super().setUp()
        self.work = tempfile.mkdtemp(prefix="vecdb-tool-e2e-")
        self.addCleanup(shutil.rmtree, self.work, ignore_errors=True)
        self.rng = np.random.default_rng(7)

    def path(self, name):
        return os.path.join(self.work, name)

    def address(self):
        return f"127.0.0.1:{self.server.port}"

    def run_tool(self, *args, server=True):
        """Run `vecdb ARGS --server ADDRESS` and return the finished process.

        stdout and stderr are captured as text.
        """
        command = [CLI_BINARY, *args]
        if server:
            command += ["--server", self.address()]
        return subprocess.run(command, capture_output=True, text=True,
                              timeout=TOOL_TIMEOUT_SECONDS)

    def assertSucceeded(self, result):
        self.assertEqual(result.returncode, 0,
                         f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")

    def assertFailedWith(self, result, *fragments):
        """Assert a non-zero exit and that stderr contains every fragment."""
        self.assertNotEqual(result.returncode, 0, result.stdout)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)

    # Input files.

    def vectors(self, rows, dimension):
        return self.rng.standard_normal((rows, dimension)).astype(np.float32)

    def save_npy(self, name, array):
        path = self.path(name)
        np.save(path, array)
        return path

    def save_fvecs(self, name, array):
        array = np.asarray(array, dtype=np.float32)
        rows, dimension = array.shape
        records = np.empty((rows, dimension + 1), dtype=np.float32)
        records[:, 0] = np.array([dimension], dtype=np.int32).view(np.float32)
        records[:, 1:] = array
        path = self.path(name)
        records.tofile(path)
        return path

    def save_lines(self, name, lines):
        path = self.path(name)
        with open(path, "w") as f:
            for line in lines:
                f.write(line + "\n")
        return path

    def save_jsonl(self, name, objects):
        return self.save_lines(name, [json.dumps(o) for o in objects])

    # Checks of what the server stores.

    def collection_exists(self, name):
        response = self.stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(), timeout=RPC_TIMEOUT_SECONDS)
        return name in [c.name for c in response.collections]

    def stored(self, collection, ids, batch=500):
        """Return {id: Point} for the ids the collection contains."""
        found = {}
        for start in range(0, len(ids), batch):
            for p in self.get(collection, list(ids[start:start + batch])):
                found[p.id] = p
        return found

    def assertStoredExactly(self, collection, ids, vectors):
        """Assert the collection contains exactly these points and vectors."""
        self.assertEqual(self.count(collection), len(ids))
        # Small enough batches that a reply fits a server limit of 64 KiB.
        batch = max(1, 40000 // (np.asarray(vectors).shape[1] * 4 + 64))
        found = self.stored(collection, ids, batch)
        self.assertEqual(len(found), len(ids))
        for point_id, vector in zip(ids, vectors):
            np.testing.assert_array_equal(
                np.asarray(found[point_id].vector, dtype=np.float32),
                np.asarray(vector, dtype=np.float32), err_msg=point_id)
