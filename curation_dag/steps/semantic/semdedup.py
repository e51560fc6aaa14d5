"""Semantic clusters (spherical k-means with faiss) and SemDeDup within clusters.

k-means: faiss (Johnson et al. 2019) on a bounded sample; later documents are assigned to the
existing centroids, so clusters stay comparable across drops until an explicit refit.
SemDeDup (Abbas et al., arXiv 2303.09540): inside each cluster, documents whose cosine similarity
is at least 1 - eps are duplicates; which one of a pair is kept is a policy. Where the clusters come
from fast vectors, those only propose candidates, at a looser cosine, and the transformer's vectors
of the candidates decide, as in retrieve-then-rerank.
"""

from __future__ import annotations

import numpy as np

from curation_dag.steps.semantic.config import KMeansConfig


def fit_centroids(vectors: np.ndarray, config: KMeansConfig) -> tuple[np.ndarray, str]:
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


def candidates(
    vectors: np.ndarray,
    clusters: np.ndarray,
    earlier_vectors: np.ndarray,
    earlier_clusters: np.ndarray,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Which new vectors, and which earlier ones, have another new or earlier vector of their cluster at
    cosine >= `threshold`: the documents a second, more faithful model must look at, and no others."""
    new = np.zeros(len(vectors), dtype=bool)
    earlier = np.zeros(len(earlier_vectors), dtype=bool)
    for cluster in np.unique(clusters):
        members = np.flatnonzero(clusters == cluster)
        within = vectors[members] @ vectors[members].T >= threshold
        np.fill_diagonal(within, False)
        new[members] |= within.any(axis=1)
        before = np.flatnonzero(earlier_clusters == cluster)
        if len(before):
            across = vectors[members] @ earlier_vectors[before].T >= threshold
            new[members] |= across.any(axis=1)
            earlier[before] |= across.any(axis=0)
    return new, earlier
