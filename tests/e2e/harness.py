"""Shared fixtures for the end-to-end tests of the real vecdb-server binary.

Two environment variables, which ctest sets, locate what the tests need:

  VECDB_SERVER        path of the vecdb-server binary
  VECDB_PYTHON_STUBS  folder that contains the generated vecdb/v1 stubs

Every server listens on 127.0.0.1 only, on a port it picks itself, and keeps
its data in a temporary folder that the test removes at the end.
"""

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import grpc
import numpy as np
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import struct_pb2


def _required_env(name, example):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set. ctest sets it. To run a test by hand, "
            f"export {name}={example}")
    return value


SERVER_BINARY = _required_env("VECDB_SERVER", "build/rpc/vecdb-server")
sys.path.insert(0, _required_env("VECDB_PYTHON_STUBS", "build/python"))

from vecdb.v1 import vecdb_pb2  # noqa: E402
from vecdb.v1 import vecdb_pb2_grpc  # noqa: E402

COSINE = vecdb_pb2.COSINE
DOT_PRODUCT = vecdb_pb2.DOT_PRODUCT
L2 = vecdb_pb2.L2
FLAT = vecdb_pb2.FLAT
HNSW = vecdb_pb2.HNSW

START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 30
RPC_TIMEOUT_SECONDS = 60
# The client accepts large replies, so that only the server's limit is tested.
CLIENT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def _build_health_messages():
    """Build grpc.health.v1 request and response classes at run time.

    Debian ships no Python health-checking package, so the two messages of
    grpc/health/v1/health.proto are declared here by field number.
    """
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="vecdb_e2e/grpc_health_v1.proto",
        package="grpc.health.v1",
        syntax="proto3")
    request = file_proto.message_type.add(name="HealthCheckRequest")
    request.field.add(name="service", number=1,
                      type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    response = file_proto.message_type.add(name="HealthCheckResponse")
    serving_status = response.enum_type.add(name="ServingStatus")
    for number, name in enumerate(
            ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"]):
        serving_status.value.add(name=name, number=number)
    response.field.add(
        name="status", number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
        type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    factory = message_factory.MessageFactory(pool)
    return (
        factory.GetPrototype(
            pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest")),
        factory.GetPrototype(
            pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")))


HealthCheckRequest, HealthCheckResponse = _build_health_messages()
HEALTH_SERVING = HealthCheckResponse.DESCRIPTOR.enum_values_by_name[
    "SERVING"].number


def _read_port(port_file):
    """Return the port in port_file, or None until a full line is written."""
    try:
        with open(port_file) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    if not text.endswith("\n"):
        return None
    return int(text)


class ServerProcess:
    """One vecdb-server child process on 127.0.0.1 and a channel to it.

    The process is only ever signalled through its own pid.
    """

    def __init__(self, extra_args=()):
        self.extra_args = list(extra_args)
        self.data_dir = None
        self.process = None
        self.port = None
        self._channel = None
        self._run_dir = tempfile.mkdtemp(prefix="vecdb-e2e-run-")
        self._start_count = 0
        self._log_path = None

    def start(self, data_dir):
        """Start the server on data_dir and wait until it serves.

        Raises AssertionError with the server's log when the process exits
        before it writes its port file, or when that takes longer than
        START_TIMEOUT_SECONDS.
        """
        self.data_dir = data_dir
        self._start_count += 1
        port_file = os.path.join(self._run_dir, f"port-{self._start_count}")
        self._log_path = os.path.join(self._run_dir,
                                      f"server-{self._start_count}.log")
        command = [SERVER_BINARY, "--data_dir", data_dir,
                   "--listen", "127.0.0.1:0", "--port_file", port_file,
                   *self.extra_args]
        with open(self._log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log)

        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (port := _read_port(port_file)) is None:
            status = self.process.poll()
            if status is not None:
                raise AssertionError(
                    f"vecdb-server exited with status {status} before it "
                    f"served; command: {command}\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill9()
                raise AssertionError(
                    f"vecdb-server wrote no port file within "
                    f"{START_TIMEOUT_SECONDS} s; command: {command}\n"
                    f"{self.log()}")
            time.sleep(0.02)

        self.port = port
        self._channel = grpc.insecure_channel(
            f"127.0.0.1:{port}",
            options=[("grpc.max_receive_message_length",
                      CLIENT_MAX_MESSAGE_BYTES)])

    def running(self):
        return self.process is not None and self.process.poll() is None

    def channel(self):
        return self._channel

    def stub(self):
        return vecdb_pb2_grpc.VectorDBStub(self._channel)

    def health(self, service=""):
        """Return the grpc.health.v1 serving status number for service."""
        check = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=HealthCheckRequest.SerializeToString,
            response_deserializer=HealthCheckResponse.FromString)
        response = check(HealthCheckRequest(service=service),
                         timeout=RPC_TIMEOUT_SECONDS)
        return response.status

    def stop(self):
        """Send SIGTERM and assert that the server exits with status 0."""
        self._close_channel()
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"vecdb-server did not exit within {STOP_TIMEOUT_SECONDS} s "
                f"of SIGTERM and was killed\n{self.log()}")
        if status != 0:
            raise AssertionError(
                f"vecdb-server exited with status {status} after SIGTERM, "
                f"expected 0\n{self.log()}")

    def kill9(self):
        """Kill the server with SIGKILL, as a crash would, and reap it."""
        self.process.kill()
        self.process.wait()
        self._close_channel()

    def restart(self):
        """Stop the server cleanly and start it again on the same data dir."""
        self.stop()
        self.start(self.data_dir)

    def crash_and_restart(self):
        """Kill the server with SIGKILL and start it again on its data dir."""
        self.kill9()
        self.start(self.data_dir)

    def close(self):
        """Stop the server if it still runs, without checking its exit status.

        Used as a test cleanup, so a failed test never leaves a process behind.
        """
        self._close_channel()
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self._run_dir, ignore_errors=True)

    def log(self):
        """Return the server's stdout and stderr from its latest start."""
        if self._log_path is None:
            return ""
        with open(self._log_path, "rb") as f:
            return "--- vecdb-server log ---\n" + f.read().decode(
                "utf-8", "replace")

    def _close_channel(self):
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def as_float32(values):
    """Return values rounded to float32, as the server stores them."""
    return np.asarray(values, dtype=np.float32).tolist()


def point(point_id, vector, metadata=None):
    """Build a Point from an id, a vector and an optional metadata dict."""
    result = vecdb_pb2.Point(id=point_id,
                             vector=np.asarray(vector, np.float64).tolist())
    if metadata is not None:
        result.metadata.update(metadata)
    return result


def struct(values):
    result = struct_pb2.Struct()
    result.update(values)
    return result


def _varint(value):
    encoded = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            encoded.append(byte | 0x80)
        else:
            encoded.append(byte)
            return bytes(encoded)


def length_delimited_field(field_number, payload):
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def encode_upsert_with_raw_id(collection, raw_id, vector):
    """Serialize an UpsertRequest of one point whose id is raw_id bytes.

    Python protobuf rejects invalid UTF-8 in string fields, so the id field
    (Point field 1) and the point (UpsertRequest field 2) are encoded by hand.
    """
    point_bytes = (length_delimited_field(1, raw_id) +
                   point("", vector).SerializeToString())
    return (vecdb_pb2.UpsertRequest(collection=collection).SerializeToString()
            + length_delimited_field(2, point_bytes))


class ServerTestCase(unittest.TestCase):
    """Starts a fresh server on an empty data dir for every test.

    Subclasses set server_args to pass extra flags. The helper verbs below
    keep tests short: create, upsert, get, search, count and assertRejected.
    """

    server_args = ()

    def setUp(self):
        self.server = self.start_server(*self.server_args)
        self.stub = self.server.stub()

    def start_server(self, *extra_args):
        """Start a server on a fresh data dir and register their cleanup."""
        data_dir = tempfile.mkdtemp(prefix="vecdb-e2e-data-")
        self.addCleanup(shutil.rmtree, data_dir, ignore_errors=True)
        server = ServerProcess(extra_args)
        self.addCleanup(server.close)
        server.start(data_dir)
        return server

    def restart(self):
        self.server.restart()
        self.stub = self.server.stub()

    def crash_and_restart(self):
        self.server.crash_and_restart()
        self.stub = self.server.stub()

    def create(self, name, dimension, metric=COSINE, kind=FLAT, **index):
        """Create a collection. index sets m, ef_construction or ef_search."""
        return self.stub.CreateCollection(
            vecdb_pb2.CreateCollectionRequest(
                name=name, dimension=dimension, metric=metric,
                index=vecdb_pb2.IndexConfig(kind=kind, **index)),
            timeout=RPC_TIMEOUT_SECONDS)

    def upsert(self, collection, points):
        """Upsert points in one request and return the count written."""
        response = self.stub.Upsert(
            vecdb_pb2.UpsertRequest(collection=collection, points=points),
            timeout=RPC_TIMEOUT_SECONDS)
        return response.upserted

    def get(self, collection, ids):
        return list(self.stub.Get(
            vecdb_pb2.GetRequest(collection=collection, ids=ids),
            timeout=RPC_TIMEOUT_SECONDS).points)

    def count(self, collection):
        return self.stub.GetCollection(
            vecdb_pb2.GetCollectionRequest(name=collection),
            timeout=RPC_TIMEOUT_SECONDS).point_count

    def search_request(self, collection, vector, top_k, **fields):
        return vecdb_pb2.SearchRequest(
            collection=collection,
            vector=np.asarray(vector, np.float64).tolist(),
            top_k=top_k, **fields)

    def search(self, collection, vector, top_k, **fields):
        """Run one search and return its hits, asserting every score is finite.

        fields are further SearchRequest fields, such as params or
        include_vectors.
        """
        response = self.stub.Search(
            self.search_request(collection, vector, top_k, **fields),
            timeout=RPC_TIMEOUT_SECONDS)
        self.assertFiniteScores(response)
        return list(response.hits)

    def search_batch(self, collection, searches):
        """Run a SearchBatch and return each result's hits."""
        response = self.stub.SearchBatch(
            vecdb_pb2.SearchBatchRequest(collection=collection,
                                         searches=searches),
            timeout=RPC_TIMEOUT_SECONDS)
        for result in response.results:
            self.assertFiniteScores(result)
        return [list(result.hits) for result in response.results]

    def assertFiniteScores(self, response):
        for hit in response.hits:
            self.assertTrue(math.isfinite(hit.score),
                            f"hit {hit.id!r} has score {hit.score}")

    def assertRejected(self, code, rpc, request):
        """Assert that rpc(request) fails with code and return its message."""
        with self.assertRaises(grpc.RpcError) as raised:
            rpc(request, timeout=RPC_TIMEOUT_SECONDS)
        error = raised.exception
        self.assertEqual(error.code(), code,
                         f"message: {error.details()!r}")
        return error.details() or ""

    def assertServing(self):
        self.assertEqual(self.server.health(), HEALTH_SERVING)

    def wait_until_indexed(self, collection, timeout_seconds=120):
        """Wait until the collection has no points waiting for its graph."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            info = self.stub.GetCollection(
                vecdb_pb2.GetCollectionRequest(name=collection),
                timeout=RPC_TIMEOUT_SECONDS)
            if info.unindexed_points == 0:
                return
            if time.monotonic() > deadline:
                self.fail(f"{info.unindexed_points} points of {collection} "
                          f"still wait for the graph after "
                          f"{timeout_seconds} s")
            time.sleep(0.1)
