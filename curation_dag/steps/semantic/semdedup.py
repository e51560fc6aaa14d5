"""Semantic clusters (spherical k-means with faiss) and SemDeDup within clusters.

k-means: faiss (Johnson et al. 2019) on a bounded sample; later documents are assigned to the
existing centroids, so clusters stay comparable across drops until an explicit refit.
SemDeDup (Abbas et al., arXiv 2303.09540): inside each cluster, documents whose cosine similarity
is at least 1 - eps are duplicates; which one of a pair is kept is a policy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curation_dag.steps.recipes.files import build, read_yaml


class SemanticConfig(BaseModel):
    """Clustering and SemDeDup settings, from `dbt_like_recipes/semantic.yml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clusters: int | None = Field(
        None, ge=1, description="k; default about sqrt(N) of the fit sample, a common rule of thumb for k-means."
    )
    fit_sample: int = Field(100_000, ge=1, description="Most vectors the centroids are fitted on.")
    iterations: int = Field(20, ge=1, description="k-means iterations (faiss's default is 25; 20 converges here).")
    seed: int = Field(1, ge=0)
    eps: float = Field(
        0.05, gt=0, lt=1, description="Duplicates have cosine >= 1 - eps; SemDeDup's experiments span 0.01-0.1."
    )
    keep: Literal["earliest", "closest", "farthest"] = Field(
        "farthest",
        description="Within a duplicate group, keep the earliest document, or the one closest to / farthest from "
        "its centroid (SemDeDup keeps the farthest: the least prototypical).",
    )
    drift_share: float = Field(
        0.2, gt=0, le=1, description="Warn when more than this share of a drop lies beyond the fit's 95th percentile."
    )

    def k_for(self, size: int) -> int:
        return max(1, min(size, self.clusters or round(math.sqrt(size))))


def fit_centroids(vectors: np.ndarray, config: SemanticConfig) -> tuple[np.ndarray, str]:
    """Unit-norm centroids fitted on (a seeded sample of) `vectors`, and the faiss device used."""
    import faiss

    rng = np.random.default_rng(config.seed)
    sample = (
        vectors
        if len(vectors) <= config.fit_sample
        else vectors[rng.choice(len(vectors), config.fit_sample, replace=False)]
    )
    k = config.k_for(len(sample))
    use_gpu = faiss.get_num_gpus() > 0 if hasattr(faiss, "get_num_gpus") else False
    kmeans = faiss.Kmeans(
        sample.shape[1],
        k,
        niter=config.iterations,
        seed=config.seed,
        spherical=True,
        gpu=use_gpu,
        verbose=False,
        min_points_per_centroid=1,  # small drops are fine to cluster; faiss would only warn
    )
    kmeans.train(np.ascontiguousarray(sample, dtype=np.float32))
    centroids = kmeans.centroids / np.linalg.norm(kmeans.centroids, axis=1, keepdims=True)
    return centroids.astype(np.float32), "gpu" if use_gpu else "cpu"


def assign(vectors: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of each vector, and its cosine distance (1 - cosine similarity) to it, in [0, 2]
    (float32 rounding would otherwise give a vector equal to its centroid a distance of -1e-7)."""
    import faiss

    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    similarity, nearest = index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
    return nearest[:, 0].astype(np.int64), np.clip(1.0 - similarity[:, 0], 0.0, 2.0).astype(np.float32)


def find_semantic_duplicates(
    vectors: np.ndarray,
    clusters: np.ndarray,
    distances: np.ndarray,
    earlier_vectors: np.ndarray,
    earlier_clusters: np.ndarray,
    eps: float,
    keep: str,
) -> tuple[np.ndarray, np.ndarray]:
    """For each new vector, the index of the earlier or new vector it duplicates, and their cosine.

    Returns (match, cosine): `match` is -1 for a kept vector, i for new vector i, or -(2 + j) for
    earlier vector j. Earlier vectors are all kept and never change. Within a cluster, new
    vectors are visited in `keep` order (by arrival, or by distance to the centroid, ascending for
    'closest' and descending for 'farthest'); each one is a duplicate of the first kept or earlier
    vector with cosine >= 1 - eps, else it is kept.
    """
    match = np.full(len(vectors), -1, dtype=np.int64)
    cosine = np.full(len(vectors), np.nan, dtype=np.float32)
    order = {"earliest": np.arange(len(vectors)), "closest": np.argsort(distances, kind="stable")}
    order["farthest"] = np.argsort(-distances, kind="stable")
    visit = order[keep]
    for cluster in np.unique(clusters):
        members = visit[clusters[visit] == cluster]
        earlier = np.flatnonzero(earlier_clusters == cluster)
        similar_earlier = vectors[members] @ earlier_vectors[earlier].T if len(earlier) else None
        similar_new = vectors[members] @ vectors[members].T
        kept: list[int] = []
        for position, member in enumerate(members):
            if similar_earlier is not None and similar_earlier[position].max() >= 1 - eps:
                best = int(similar_earlier[position].argmax())
                match[member], cosine[member] = -(2 + int(earlier[best])), similar_earlier[position, best]
                continue
            if kept:
                scores = similar_new[position, kept]
                best = int(scores.argmax())
                if scores[best] >= 1 - eps:
                    match[member], cosine[member] = members[kept[best]], scores[best]
                    continue
            kept.append(position)
    return match, cosine


def load_semantic_config(path: Path) -> SemanticConfig:
    """Read `semantic.yml`; a missing file means every default."""
    if not Path(path).exists():
        return SemanticConfig()
    return build(SemanticConfig, read_yaml(path, "semantic settings"), path, "semantic settings")
