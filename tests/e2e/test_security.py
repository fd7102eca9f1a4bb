"""TLS, API keys and the rule that keeps a server without keys on loopback.

Certificates are made with the openssl command in a temporary folder: a
test certificate authority signs the server's certificate (valid for
127.0.0.1) and a client certificate for mutual TLS.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import grpc

from harness import (COSINE, FLAT, HEALTH_SERVING, RPC_TIMEOUT_SECONDS,
                     SERVER_BINARY, ServerTestCase, point, vecdb_pb2,
                     vecdb_pb2_grpc)

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE

READ_KEY = "reader-3f9c2a"
WRITE_KEY = "writer-81d7e0"
ADMIN_KEY = "admin-5b66c4"
KEYS_FILE_TEXT = f"""# keys for the end-to-end tests
{READ_KEY} read
{WRITE_KEY} write   # the import job
{ADMIN_KEY} admin
"""
# How long a connection attempt that must fail may take.
REJECTED_TIMEOUT_SECONDS = 5


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certificates(folder):
    """Write ca, server and client certificates and keys as PEM files."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=vecdb test CA", "-keyout", "ca.key",
            "-out", "ca.pem", cwd=folder)
    with open(os.path.join(folder, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, extensions in (("server", ["-extfile", "server.ext"]),
                             ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes",
                "-subj", f"/CN=vecdb test {name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=folder)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-out", f"{name}.pem", *extensions, cwd=folder)


def read_bytes(folder, name):
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


def run_server_expecting_exit(*args):
    """Run vecdb-server with args; return (exit status, its output)."""
    data_dir = tempfile.mkdtemp(prefix="vecdb-e2e-data-")
    try:
        result = subprocess.run(
            [SERVER_BINARY, "--data_dir", data_dir, *args],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result.returncode, (result.stdout + result.stderr).decode()


class TlsTest(ServerTestCase):
    """A server with --tls_cert and --tls_key accepts TLS clients only."""

    client_ca = False

    @classmethod
    def setUpClass(cls):
        cls.cert_dir = tempfile.mkdtemp(prefix="vecdb-e2e-tls-")
        make_certificates(cls.cert_dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.cert_dir, ignore_errors=True)

    def setUp(self):
        args = ["--tls_cert", os.path.join(self.cert_dir, "server.pem"),
                "--tls_key", os.path.join(self.cert_dir, "server.key")]
        if self.client_ca:
            args += ["--tls_client_ca", os.path.join(self.cert_dir, "ca.pem")]
        self.server = self.start_server(*args)

    def tls_stub(self, with_client_certificate):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read_bytes(self.cert_dir, "ca.pem"),
            private_key=(read_bytes(self.cert_dir, "client.key")
                         if with_client_certificate else None),
            certificate_chain=(read_bytes(self.cert_dir, "client.pem")
                               if with_client_certificate else None))
        channel = grpc.secure_channel(f"127.0.0.1:{self.server.port}",
                                      credentials)
        self.addCleanup(channel.close)
        return vecdb_pb2_grpc.VectorDBStub(channel)

    def assertConnectionRejected(self, stub):
        with self.assertRaises(grpc.RpcError) as raised:
            stub.ListCollections(vecdb_pb2.ListCollectionsRequest(),
                                 timeout=REJECTED_TIMEOUT_SECONDS)
        self.assertIn(raised.exception.code(),
                      (UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED))

    def test_tls_client_served(self):
        stub = self.tls_stub(with_client_certificate=False)
        stub.CreateCollection(vecdb_pb2.CreateCollectionRequest(
            name="docs", dimension=2, metric=COSINE,
            index=vecdb_pb2.IndexConfig(kind=FLAT)),
            timeout=RPC_TIMEOUT_SECONDS)
        names = [info.name for info in stub.ListCollections(
            vecdb_pb2.ListCollectionsRequest(),
            timeout=RPC_TIMEOUT_SECONDS).collections]
        self.assertEqual(names, ["docs"])

    def test_plaintext_client_rejected(self):
        self.assertConnectionRejected(self.server.stub())


class MutualTlsTest(TlsTest):
    """With --tls_client_ca a client must present a certificate."""

    client_ca = True

    def test_tls_client_served(self):
        stub = self.tls_stub(with_client_certificate=True)
        response = stub.ListCollections(vecdb_pb2.ListCollectionsRequest(),
                                        timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(list(response.collections), [])

    def test_client_without_certificate_rejected(self):
        self.assertConnectionRejected(self.tls_stub(with_client_certificate=False))


class ApiKeyTest(ServerTestCase):
    """Every VectorDB call needs a key with enough rights."""

    @classmethod
    def setUpClass(cls):
        cls.keys_dir = tempfile.mkdtemp(prefix="vecdb-e2e-keys-")
        cls.keys_path = os.path.join(cls.keys_dir, "keys.txt")
        with open(cls.keys_path, "w") as f:
            f.write(KEYS_FILE_TEXT)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keys_dir, ignore_errors=True)

    def setUp(self):
        self.server = self.start_server("--api_keys_file", self.keys_path)
        self.stub = self.server.stub()

    def call(self, method, request, key):
        """Call a unary method with key (None sends no metadata)."""
        metadata = None if key is None else [("authorization",
                                              f"Bearer {key}")]
        return getattr(self.stub, method)(request, metadata=metadata,
                                          timeout=RPC_TIMEOUT_SECONDS)

    def assertCallFails(self, code, method, request, key):
        with self.assertRaises(grpc.RpcError) as raised:
            self.call(method, request, key)
        self.assertEqual(raised.exception.code(), code,
                         raised.exception.details())
        return raised.exception.details()

    def create_request(self):
        return vecdb_pb2.CreateCollectionRequest(
            name="docs", dimension=2, metric=COSINE,
            index=vecdb_pb2.IndexConfig(kind=FLAT))

    def upsert_request(self):
        return vecdb_pb2.UpsertRequest(collection="docs",
                                       points=[point("a", [1, 0])])

    def search_request(self):
        return vecdb_pb2.SearchRequest(collection="docs", vector=[1, 0],
                                       top_k=1)

    def test_missing_key_unauthenticated(self):
        for method, request in (
                ("ListCollections", vecdb_pb2.ListCollectionsRequest()),
                ("Upsert", self.upsert_request()),
                ("CreateCollection", self.create_request())):
            with self.subTest(method=method):
                details = self.assertCallFails(UNAUTHENTICATED, method,
                                               request, None)
                self.assertIn("authorization", details)

    def test_unknown_key_unauthenticated(self):
        details = self.assertCallFails(
            UNAUTHENTICATED, "ListCollections",
            vecdb_pb2.ListCollectionsRequest(), ADMIN_KEY + "x")
        self.assertNotIn(ADMIN_KEY, details)

    def test_import_stream_needs_key(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.stub.Import(iter([self.upsert_request()]),
                             timeout=RPC_TIMEOUT_SECONDS)
        self.assertEqual(raised.exception.code(), UNAUTHENTICATED)

    def test_rights_include_lower_rights(self):
        self.call("CreateCollection", self.create_request(), ADMIN_KEY)
        self.call("Upsert", self.upsert_request(), WRITE_KEY)
        self.call("Upsert", self.upsert_request(), ADMIN_KEY)
        for key in (READ_KEY, WRITE_KEY, ADMIN_KEY):
            with self.subTest(key=key):
                hits = self.call("Search", self.search_request(), key).hits
                self.assertEqual([hit.id for hit in hits], ["a"])

    def test_too_few_rights_permission_denied(self):
        self.call("CreateCollection", self.create_request(), ADMIN_KEY)
        details = self.assertCallFails(PERMISSION_DENIED, "Upsert",
                                       self.upsert_request(), READ_KEY)
        self.assertIn("write", details)
        self.assertCallFails(
            PERMISSION_DENIED, "Delete",
            vecdb_pb2.DeleteRequest(collection="docs", ids=["a"]), READ_KEY)
        for key in (READ_KEY, WRITE_KEY):
            with self.subTest(key=key):
                self.assertCallFails(
                    PERMISSION_DENIED, "DropCollection",
                    vecdb_pb2.DropCollectionRequest(name="docs"), key)
                self.assertCallFails(
                    PERMISSION_DENIED, "CreateSnapshot",
                    vecdb_pb2.CreateSnapshotRequest(), key)
        response = self.call("Count",
                             vecdb_pb2.CountRequest(collection="docs"),
                             READ_KEY)
        self.assertEqual(response.count, 0)

    def test_health_needs_no_key(self):
        self.assertEqual(self.server.health(), HEALTH_SERVING)

    def test_keys_never_logged(self):
        self.call("ListCollections", vecdb_pb2.ListCollectionsRequest(),
                  READ_KEY)
        with self.assertRaises(grpc.RpcError):
            self.call("ListCollections", vecdb_pb2.ListCollectionsRequest(),
                      "wrong-key-0000")
        self.server.stop()
        log = self.server.log()
        for key in (READ_KEY, WRITE_KEY, ADMIN_KEY, "wrong-key-0000"):
            self.assertNotIn(key, log)


class StartupRuleTest(unittest.TestCase):
    """Flags that would expose the server unsafely stop it at start."""

    def test_non_loopback_without_keys_exits(self):
        status, output = run_server_expecting_exit("--listen", "0.0.0.0:0")
        self.assertEqual(status, 2, output)
        self.assertIn("not a loopback address", output)
        self.assertIn("--allow_unauthenticated_remote", output)
        self.assertNotIn("listening", output)

    def test_malformed_keys_file_names_line(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "keys.txt")
            with open(path, "w") as f:
                f.write("good-key read\n# comment\nsecret-key superuser\n")
            status, output = run_server_expecting_exit(
                "--listen", "127.0.0.1:0", "--api_keys_file", path)
        self.assertEqual(status, 2, output)
        self.assertIn("keys.txt: line 3", output)
        self.assertNotIn("secret-key", output)

    def test_missing_keys_file_exits(self):
        status, output = run_server_expecting_exit(
            "--listen", "127.0.0.1:0", "--api_keys_file",
            "/nonexistent/vecdb-keys.txt")
        self.assertEqual(status, 2, output)
        self.assertIn("/nonexistent/vecdb-keys.txt", output)

    def test_tls_key_without_cert_exits(self):
        status, output = run_server_expecting_exit(
            "--listen", "127.0.0.1:0", "--tls_key", "/tmp/any.key")
        self.assertEqual(status, 2, output)
        self.assertIn("--tls_cert and --tls_key", output)


if __name__ == "__main__":
    unittest.main()
