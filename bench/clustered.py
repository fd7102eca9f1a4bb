"""Seeded synthetic clustered vectors, shared by the benchmarks in bench/.

The points lie around 1,000 random centres. Each point spreads in a
16-dimensional subspace of its own cluster, plus small noise in every
dimension, much as embeddings spread near a low-dimensional surface.
"""

import numpy as np


def clustered_vectors(count, queries, dimension=128, centres=1000, spread=16,
                      seed=5):
    """Return (base, queries) float32 arrays from the seeded generator.

    base has count rows and queries has queries rows, drawn from the same
    clusters. The same arguments always give the same vectors.
    """
    random = np.random.default_rng(seed)
    centre_vectors = random.normal(0, 1, (centres, dimension))
    bases = random.normal(0, 0.1, (centres, spread, dimension))
    total = count + queries
    assignment = random.integers(0, centres, total)
    offsets = random.normal(0, 1, (total, spread))
    vectors = np.empty((total, dimension), dtype=np.float32)
    for first in range(0, total, 100000):
        last = min(first + 100000, total)
        chosen = assignment[first:last]
        vectors[first:last] = (
            centre_vectors[chosen]
            + np.einsum("ns,nsd->nd", offsets[first:last], bases[chosen])
            + random.normal(0, 0.05, (last - first, dimension)))
    return vectors[:count], vectors[count:]
