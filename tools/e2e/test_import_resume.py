"""--resume finishes an import later without duplicates, also after the
server was killed in the middle of it."""

import subprocess
import time
import unittest

from tool_harness import (CLI_BINARY, TOOL_TIMEOUT_SECONDS, ToolTestCase,
                          imported_count)


class ImportResumeTest(ToolTestCase):

    def test_resume_skips_points_already_stored(self):
        vectors = self.vectors(3000, 8)
        ids = [f"p{i}" for i in range(3000)]
        first_part = self.save_npy("first.npy", vectors[:1000])
        whole = self.save_npy("whole.npy", vectors)
        self.assertSucceeded(self.run_tool(
            "import", first_part, "--collection", "docs", "--create",
            "--metric", "l2", "--id_prefix", "p"))

        result = self.run_tool("import", whole, "--collection", "docs",
                               "--resume", "--id_prefix", "p")

        self.assertSucceeded(result)
        self.assertEqual(imported_count(result.stdout), 2000)
        self.assertIn("1000 skipped as already present", result.stdout)
        self.assertStoredExactly("docs", ids, vectors)

    def test_dry_run_with_resume_counts_present_points(self):
        vectors = self.vectors(300, 4)
        self.assertSucceeded(self.run_tool(
            "import", self.save_npy("first.npy", vectors[:120]),
            "--collection", "docs", "--create", "--metric", "l2"))

        result = self.run_tool("import", self.save_npy("all.npy", vectors),
                               "--collection", "docs", "--resume", "--dry-run")

        self.assertSucceeded(result)
        self.assertIn("120 points are already present", result.stdout)
        self.assertIn("would import 180 points", result.stdout)
        self.assertEqual(self.count("docs"), 120)

    def test_resume_after_server_killed_mid_import(self):
        total = 40000
        vectors = self.vectors(total, 64)
        ids = [f"v{i}" for i in range(total)]
        path = self.save_npy("v.npy", vectors)
        import_args = ["import", path, "--collection", "docs",
                       "--id_prefix", "v", "--batch_size", "200",
                       "--server", self.address()]
        tool = subprocess.Popen(
            [CLI_BINARY, *import_args, "--create", "--metric", "l2",
             "--index", "hnsw"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(tool.kill)

        # Kill the server once some points are stored but the import still
        # runs.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and tool.poll() is None:
            try:
                if self.count("docs") >= 2000:
                    break
            except Exception:  # the collection does not exist yet
                pass
            time.sleep(0.02)
        still_running = tool.poll() is None
        self.server.kill9()
        stdout, stderr = tool.communicate(timeout=TOOL_TIMEOUT_SECONDS)

        self.assertTrue(still_running, "the import ended before the kill; "
                        "raise `total` so the kill lands mid-import")
        self.assertNotEqual(tool.returncode, 0, stdout)
        self.assertIn("run the same command with --resume", stderr)
        acknowledged = imported_count(stdout)
        self.assertIsNotNone(acknowledged, stdout + stderr)
        self.assertLess(acknowledged, total)

        self.server.start(self.server.data_dir)
        self.stub = self.server.stub()
        stored_after_crash = self.count("docs")
        # Every acknowledged point survived the kill.
        self.assertGreaterEqual(stored_after_crash, acknowledged)

        result = self.run_tool(*import_args[:-2], "--resume")

        self.assertSucceeded(result)
        self.assertEqual(imported_count(result.stdout),
                         total - stored_after_crash)
        self.assertIn(f"{stored_after_crash} skipped as already present",
                      result.stdout)
        self.assertStoredExactly("docs", ids, vectors)


if __name__ == "__main__":
    unittest.main()
