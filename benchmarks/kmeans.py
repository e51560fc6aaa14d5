"""faiss k-means: fit and assignment times for 100k x d unit vectors at k = 100 and 1000.

Vectors are random mixtures around 2,000 centres, unit-normalized, as sentence embeddings are.
The fit runs `curation_dag.steps.semantic.semdedup.fit_centroids` (spherical k-means, 20 iterations);
assignment runs `assign` (exact inner-product search) over all 100k vectors.

    python benchmarks/kmeans.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from curation_dag.steps.semantic.config import KMeansConfig
from curation_dag.steps.semantic.semdedup import assign, fit_centroids


def vectors(count: int, dimension: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dimension)).astype(np.float32)
    points = centres[rng.integers(0, 2000, count)] + 0.5 * rng.standard_normal((count, dimension)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"100,000 vectors; median of {args.repeats}\n")
    print("| d | k | fit s | assign s | assign vectors/s |")
    print("|---:|---:|---:|---:|---:|")
    for dimension in (256, 384):
        data = vectors(100_000, dimension)
        for k in (100, 1000):
            config = KMeansConfig(clusters=k)
            fits, assigns = [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                centroids, _ = fit_centroids(data, config)
                fits.append(time.perf_counter() - started)
                started = time.perf_counter()
                assign(data, centroids)
                assigns.append(time.perf_counter() - started)
            fit, assigned = statistics.median(fits), statistics.median(assigns)
            print(f"| {dimension} | {k} | {fit:.1f} | {assigned:.2f} | {100_000 / assigned:,.0f} |")


if __name__ == "__main__":
    main()
