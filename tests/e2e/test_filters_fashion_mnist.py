"""Filtered search on Fashion-MNIST at 0.1%, 1%, 10%, 50% and 100%
selectivity, against ground truth that numpy computes.

The 60,000 training images go into a FLAT and an HNSW collection (L2), each
with a generated "bucket" from 0 to 999, spread evenly at random, so that
the filter "bucket < b" matches b/1000 of the points. Each search must
return exactly min(top_k, matching points) hits, all matching; FLAT hits
must have the exact distances, and HNSW's recall@10 must be at least 0.95 at
every selectivity, without and with a field index on "bucket". A subset of
the test images keeps the run to about a minute on two cores.

Needs Debian's dataset-fashion-mnist; the test is skipped without it.
"""

import gzip
import os
import struct
import unittest

import numpy as np
from google.protobuf import struct_pb2

from harness import (FLAT, HNSW, L2, RPC_TIMEOUT_SECONDS, ServerTestCase,
                     vecdb_pb2)

DATA_DIR = "/usr/share/datasets/fashion-mnist"
TRAIN = os.path.join(DATA_DIR, "train-images-idx3-ubyte.gz")
TEST = os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz")
TOP_K = 10
FLAT_QUERIES = 30
HNSW_QUERIES = 100
# Bucket bounds for 0.1%, 1%, 10%, 50% and 100% of the points.
BOUNDS = (1, 10, 100, 500, 1000)
MIN_RECALL = 0.95


def read_images(path):
    """Read an IDX3 file of uint8 images as an (n, 784) float32 array."""
    with gzip.open(path, "rb") as file:
        _, count, rows, cols = struct.unpack(">4I", file.read(16))
        pixels = np.frombuffer(file.read(), dtype=np.uint8)
    return pixels.reshape(count, rows * cols).astype(np.float32)


def bucket_below(bound):
    return vecdb_pb2.Filter(must=[vecdb_pb2.Condition(
        field=vecdb_pb2.FieldCondition(key="bucket",
                                       range=vecdb_pb2.Range(lt=bound)))])


@unittest.skipUnless(os.path.exists(TRAIN) and os.path.exists(TEST),
                     f"Fashion-MNIST is not in {DATA_DIR}")
class FashionMnistFilterTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        cls.base = read_images(TRAIN)
        cls.queries = read_images(TEST)[:HNSW_QUERIES]
        random = np.random.default_rng(11)
        cls.buckets = random.permutation(np.arange(len(cls.base)) % 1000)
        # Squared distances from every query to every image, in float64.
        base = cls.base.astype(np.float64)
        queries = cls.queries.astype(np.float64)
        cls.squared = ((queries ** 2).sum(1)[:, None] - 2 * queries @ base.T
                       + (base ** 2).sum(1)[None, :])

    def load(self, name, kind):
        self.create(name, self.base.shape[1], L2, kind)
        batch = []
        for index, (vector, bucket) in enumerate(zip(self.base,
                                                     self.buckets)):
            point = vecdb_pb2.Point(id=str(index), vector=vector.tolist())
            point.metadata.update({"bucket": int(bucket)})
            batch.append(point)
            if len(batch) == 1000 or index == len(self.base) - 1:
                self.upsert(name, batch)
                batch = []

    def truth(self, query_number, bound):
        """Return the exact top-k ids and distances among bucket < bound."""
        matching = np.flatnonzero(self.buckets < bound)
        squared = self.squared[query_number, matching]
        order = np.argsort(squared, kind="stable")[:TOP_K]
        return matching[order], np.sqrt(np.maximum(squared[order], 0))

    def filtered_search(self, name, query_number, bound):
        response = self.stub.Search(vecdb_pb2.SearchRequest(
            collection=name, vector=self.queries[query_number].tolist(),
            top_k=TOP_K, filter=bucket_below(bound)),
            timeout=RPC_TIMEOUT_SECONDS)
        return list(response.hits)

    def assertHitsMatch(self, hits, bound):
        expected_count = min(TOP_K, int((self.buckets < bound).sum()))
        self.assertEqual(len(hits), expected_count)
        for hit in hits:
            self.assertLess(self.buckets[int(hit.id)], bound, hit.id)

    def recall(self, name, bound):
        found = 0
        for number in range(HNSW_QUERIES):
            hits = self.filtered_search(name, number, bound)
            self.assertHitsMatch(hits, bound)
            expected_ids, _ = self.truth(number, bound)
            found += len({int(hit.id) for hit in hits} & set(expected_ids))
        return found / (HNSW_QUERIES * TOP_K)

    def test_flat_filtered_search_is_exact(self):
        self.load("fmnist_flat", FLAT)
        for bound in BOUNDS:
            with self.subTest(selectivity=bound / 1000):
                for number in range(FLAT_QUERIES):
                    hits = self.filtered_search("fmnist_flat", number, bound)
                    self.assertHitsMatch(hits, bound)
                    _, distances = self.truth(number, bound)
                    np.testing.assert_allclose(
                        [hit.score for hit in hits], distances, rtol=1e-4,
                        atol=1e-2)

    def test_hnsw_filtered_recall(self):
        self.load("fmnist_hnsw", HNSW)
        for indexed in (False, True):
            if indexed:
                self.stub.CreateFieldIndex(vecdb_pb2.CreateFieldIndexRequest(
                    collection="fmnist_hnsw", key="bucket",
                    type=vecdb_pb2.INTEGER), timeout=RPC_TIMEOUT_SECONDS)
            for bound in BOUNDS:
                with self.subTest(selectivity=bound / 1000, indexed=indexed):
                    count = self.stub.Count(vecdb_pb2.CountRequest(
                        collection="fmnist_hnsw", filter=bucket_below(bound)),
                        timeout=RPC_TIMEOUT_SECONDS).count
                    self.assertEqual(count, 60 * bound)
                    recall = self.recall("fmnist_hnsw", bound)
                    self.assertGreaterEqual(
                        recall, MIN_RECALL,
                        f"recall@{TOP_K} at bucket < {bound}")


if __name__ == "__main__":
    unittest.main()
