"""Pruning policies over per-document cluster scores: prototypes, concept complexity, D4, long files.

Every keep function returns one row per input row, in input order, with `keep` and a `reason`
(null for kept rows) plus the numbers behind the decision, so each removal can be explained.
The cluster scores are what `semantic_clusters` writes: `doc_id`, `cluster` (k-means) and
`distance`, the cosine distance 1 - cos to the cluster's unit-norm centroid.

- Sorscher et al. 2022, "Beyond neural scaling laws" (arXiv 2206.14486): the self-supervised
  prototype metric is that distance. With abundant data keep the hardest (farthest) examples;
  with scarce data keep the easiest.
- Abbas et al. 2024, "Effective pruning of web-scale datasets based on complexity of concept
  clusters" (ICLR 2024, arXiv 2401.04578), Density-Based Pruning: each cluster's complexity is
  d_intra * d_inter. It keeps a softmax(complexity / temperature) share of the total, taking
  the hardest documents within each cluster. Reference code: github.com/amro-kamal/effective_pruning.
- Tirumala et al. 2023, "D4: Improving LLM pretraining via document de-duplication and
  diversification" (NeurIPS 2023, arXiv 2308.12284): SemDeDup, then prototype pruning.
- Singh et al. 2024, "Brevity is the soul of wit: pruning long files for code generation"
  (arXiv 2407.00434): drop the longest code files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

# d_inter averages the cosine distance to this many nearest other centroids: `--num_NNs` default
# in compute_centroid_distances.py of Abbas et al.'s reference code (we could not check the paper's
# own text for the value).
DBP_NEIGHBOURS = 20
# Softmax temperature over cluster complexity: `--temperature` default in prune.py of Abbas et
# al.'s reference code. We could not confirm which value the paper's reported runs used. The
# right value depends on the embedder's distance scale, so tune it.
DBP_TEMPERATURE = 0.5

SCORE_COLUMNS = ("doc_id", "cluster", "distance")


def _require(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it needs {list(columns)}, has {frame.columns}")


def _documents_to_keep(total: int | float, available: int) -> int:
    """An int is a number of documents; a float in (0, 1] a fraction of `available`, rounded half up."""
    if isinstance(total, bool) or not isinstance(total, int | float | np.integer | np.floating):
        raise ValueError(f"total must be a number of documents (int) or a fraction in (0, 1] (float), got {total!r}")
    if isinstance(total, float | np.floating):
        if not 0 < total <= 1:
            raise ValueError(f"a fractional total must lie in (0, 1], got {total}; pass an int for a document count")
        return math.floor(total * available + 0.5)
    if total < 0:
        raise ValueError(f"total must be at least 0 documents, got {total}")
    if total > available:
        raise ValueError(f"cannot keep {total} documents: the clusters hold only {available}")
    return int(total)


def cluster_complexity(scores: pl.DataFrame, centroids: np.ndarray, neighbours: int = DBP_NEIGHBOURS) -> pl.DataFrame:
    """Per cluster present in `scores`: size, d_intra, d_inter and complexity = d_intra * d_inter.

    Abbas et al. 2024 (Density-Based Pruning) define d_intra as the mean cosine distance of a
    cluster's members to its centroid. They define d_inter as the mean cosine distance from the
    centroid to its `neighbours` nearest other centroids (capped at k - 1). A small d_intra
    marks a dense, redundant concept. A small d_inter marks a concept close to others. Both
    mean a simple concept. d_inter is measured against all k `centroids` (unit-norm rows), also
    those with no documents in `scores`. A one-document cluster is its own centroid, so its
    d_intra and complexity are about 0. It gets the smallest share, but it has only one document.
    """
    _require(scores, SCORE_COLUMNS, "scores")
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    if centroids.ndim != 2 or len(centroids) < 2:
        raise ValueError(f"d_inter needs a (k, d) array of at least 2 centroids, got shape {centroids.shape}")
    if neighbours < 1:
        raise ValueError(f"neighbours must be at least 1, got {neighbours}")
    per_cluster = (
        scores.group_by("cluster")
        .agg(size=pl.len().cast(pl.Int64), d_intra=pl.col("distance").cast(pl.Float64).mean())
        .sort("cluster")
    )
    clusters = per_cluster["cluster"].to_numpy()
    if len(clusters) and (clusters.min() < 0 or clusters.max() >= len(centroids)):
        raise ValueError(
            f"scores name clusters {clusters.min()}..{clusters.max()}, "
            f"but there are only {len(centroids)} centroids (0..{len(centroids) - 1})"
        )
    import faiss

    nearest = min(neighbours, len(centroids) - 1)
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    similarity, found = index.search(centroids[clusters], nearest + 1)
    # Drop each centroid's own hit (moved last by a stable sort), or the farthest hit if a twin outranked it.
    order = np.argsort(found == clusters[:, None], axis=1, kind="stable")[:, :nearest]
    d_inter = (1.0 - np.take_along_axis(similarity, order, axis=1).astype(np.float64)).mean(axis=1)
    return per_cluster.with_columns(d_inter=pl.Series(d_inter, dtype=pl.Float64)).with_columns(
        complexity=pl.col("d_intra") * pl.col("d_inter")
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    if not len(logits):
        return logits
    weights = np.exp(logits - logits.max())  # shifted: no overflow, and the largest weight is 1
    return weights / weights.sum()


def _water_fill(logits: np.ndarray, capacity: np.ndarray, total: int) -> np.ndarray:
    """Real-valued shares of `total`, proportional to softmax(logits) and never above `capacity`.

    A cluster whose share exceeds its capacity is filled to capacity. The rest of the total is
    shared again among the others by the same softmax, renormalized over them. This repeats until
    no share exceeds its capacity, at most once per cluster.
    """
    shares = np.zeros(len(logits))
    full = np.zeros(len(logits), dtype=bool)
    remaining = float(total)
    while not full.all():
        free = np.flatnonzero(~full)
        proposed = remaining * _softmax(logits[free])
        over = proposed > capacity[free]
        if not over.any():
            shares[free] = proposed
            break
        filled = free[over]
        full[filled] = True
        shares[filled] = capacity[filled]
        remaining -= float(capacity[filled].sum())
    return shares


def _round_to_total(shares: np.ndarray, capacity: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing exactly to `total`: floors, then one more to the largest remainders.

    This is largest-remainder (Hamilton) rounding. Equal remainders go to the earlier row.
    Clusters already at capacity get nothing more.
    """
    counts = np.minimum(np.floor(shares), capacity).astype(np.int64)
    remainders = np.where(counts < capacity, shares - counts, -1.0)
    extra = total - int(counts.sum())
    counts[np.lexsort((np.arange(len(shares)), -remainders))[:extra]] += 1
    return counts


def concept_keep_counts(
    complexity: pl.DataFrame, total: int | float, temperature: float = DBP_TEMPERATURE
) -> pl.DataFrame:
    """How many documents each cluster keeps under Density-Based Pruning (Abbas et al. 2024).

    `complexity` is `cluster_complexity`'s frame. `total` is a number of documents (int), or a
    fraction of all of them (float in (0, 1], rounded half up). Cluster j wants
    total * softmax(complexity / temperature)_j documents, whatever its size. That number is
    `wanted`. A cluster that wants more than it holds keeps all it holds. Its excess is shared
    among the other clusters by the same softmax (water-filling). Largest-remainder rounding then
    makes the integer `keep` counts sum exactly to the total, with ties going to the lower
    cluster id.

    The reference code does this differently. It solves a quadratic program,
    min ||keep - wanted||^2 with sum(keep) = total and bounds per cluster, and then rounds with
    np.rint, so its sum is only approximate. It also gives every cluster a lower bound, by
    default half an even share (`--cls-bal-ratio 0.5`). The quadratic program moves excess to
    the other clusters in equal amounts, not in proportion to their weights. We set no lower
    bound.
    """
    _require(complexity, ("cluster", "size", "complexity"), "complexity")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    frame = complexity.select("cluster", "size", "complexity").sort("cluster")
    if frame["complexity"].null_count() or not np.isfinite(frame["complexity"].to_numpy()).all():
        raise ValueError("complexity holds null or non-finite values; recompute it with cluster_complexity")
    sizes = frame["size"].to_numpy().astype(np.int64)
    wanted_total = _documents_to_keep(total, int(sizes.sum()))
    logits = frame["complexity"].to_numpy().astype(np.float64) / temperature
    weights = _softmax(logits)
    keep = _round_to_total(_water_fill(logits, sizes, wanted_total), sizes, wanted_total)
    return frame.with_columns(
        weight=pl.Series(weights, dtype=pl.Float64),
        wanted=pl.Series(weights * wanted_total, dtype=pl.Float64),
        keep=pl.Series(keep, dtype=pl.Int64),
    )


def _keep_per_cluster(scores: pl.DataFrame, counts: pl.DataFrame, hardest: bool, policy: str) -> pl.DataFrame:
    """Within each cluster keep its `keep` count of the farthest (hardest) or closest documents.

    Ties in distance go to the smaller doc_id. The result is in input order, with the rank in
    the cluster (1 = kept first), the cluster's size and count, the cut (the distance of the
    last kept document), `keep` and a `reason`.
    """
    _require(scores, SCORE_COLUMNS, "scores")
    _require(counts, ("cluster", "keep"), "counts")
    if counts["cluster"].is_duplicated().any():
        raise ValueError("counts list a cluster more than once")
    if scores["distance"].null_count() or scores["distance"].is_nan().any():
        raise ValueError("distance holds nulls or NaNs; every document needs its distance to its centroid")
    sizes = scores.group_by("cluster").agg(cluster_size=pl.len().cast(pl.Int64))
    checked = sizes.join(counts.select("cluster", cluster_keep="keep"), on="cluster", how="left")
    missing = checked.filter(pl.col("cluster_keep").is_null())["cluster"].sort().to_list()
    if missing:
        raise ValueError(f"counts have no row for cluster(s) {missing[:10]} of the scores")
    impossible = checked.filter((pl.col("cluster_keep") < 0) | (pl.col("cluster_keep") > pl.col("cluster_size")))
    if impossible.height:
        cluster, size, keep = impossible.sort("cluster").select("cluster", "cluster_size", "cluster_keep").row(0)
        raise ValueError(f"counts ask cluster {cluster} to keep {keep} documents, but it has {size}")
    kept_end = "farthest" if hardest else "closest"
    side = "below" if hardest else "above"
    distance = pl.col("distance").cast(pl.Float64).round(6)
    ranked = (
        scores.select(SCORE_COLUMNS)
        .with_row_index("_row")
        .sort(["cluster", "distance", "doc_id"], descending=[False, hardest, False], maintain_order=True)
        .with_columns(rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("cluster"))
        .join(checked, on="cluster", how="left")
        .with_columns(keep=pl.col("rank") <= pl.col("cluster_keep"))
        .with_columns(
            cut=pl.when(pl.col("rank") == pl.col("cluster_keep")).then(pl.col("distance")).max().over("cluster")
        )
    )
    standing = pl.format("rank {} of {}, the {} {} are kept", "rank", "cluster_size", "cluster_keep", pl.lit(kept_end))
    reason = (
        pl.when(pl.col("keep"))
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("cluster_keep") == 0)
        .then(pl.format("{}: cluster {} keeps none of its {} documents", pl.lit(policy), "cluster", "cluster_size"))
        .when(pl.col("distance") == pl.col("cut"))
        .then(
            pl.format(
                "{}: distance {} ties cluster {}'s cut, after it by doc_id; {}",
                pl.lit(policy),
                distance,
                "cluster",
                standing,
            )
        )
        .otherwise(
            pl.format(
                "{}: distance {} {} cluster {}'s cut {}; {}",
                pl.lit(policy),
                distance,
                pl.lit(side),
                "cluster",
                pl.col("cut").cast(pl.Float64).round(6),
                standing,
            )
        )
    )
    return (
        ranked.with_columns(reason=reason)
        .sort("_row")
        .select(*SCORE_COLUMNS, "rank", "cluster_size", "cluster_keep", "cut", "keep", "reason")
    )


def _proportional_counts(scores: pl.DataFrame, fraction: float) -> pl.DataFrame:
    """The same `fraction` of every cluster, rounded so the kept total is exactly round(fraction * N)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    sizes = scores.group_by("cluster").agg(size=pl.len().cast(pl.Int64)).sort("cluster")
    size = sizes["size"].to_numpy().astype(np.int64)
    total = math.floor(fraction * int(size.sum()) + 0.5)
    shares = total * size / max(int(size.sum()), 1)
    return sizes.with_columns(keep=pl.Series(_round_to_total(shares, size, total), dtype=pl.Int64))


def keep_by_prototypicality(scores: pl.DataFrame, fraction: float, hardest: bool = True) -> pl.DataFrame:
    """Self-supervised prototype pruning (Sorscher et al. 2022): keep `fraction` of each cluster.

    Each cluster keeps the `fraction` of its documents farthest from the centroid (`hardest`, for
    abundant data) or closest to it (for scarce data). Per-cluster counts are rounded so the
    total is exactly round(fraction * N); ties in distance go to the smaller doc_id. Returns one
    row per input row (see `keep_concept_specific`), `reason` starting with "prototype:".
    """
    _require(scores, SCORE_COLUMNS, "scores")
    return _keep_per_cluster(scores, _proportional_counts(scores, fraction), hardest, "prototype")


def keep_concept_specific(scores: pl.DataFrame, counts: pl.DataFrame, hardest: bool = True) -> pl.DataFrame:
    """Density-Based Pruning's second step: each cluster keeps its `counts` row's `keep` documents.

    Abbas et al. 2024 keep the hardest, the farthest from the centroid, within each cluster, as
    SSP-Pruning does. Their reference code also offers easy and random choices. Ties in
    distance go to the smaller doc_id. Returns one row per input row, in input order: doc_id,
    cluster, distance, rank (1 = first kept), cluster_size, cluster_keep, cut (the distance of
    the cluster's last kept document, null if none) and keep. The last column, reason, starts
    with "concept:" and is null for kept rows.
    """
    return _keep_per_cluster(scores, counts, hardest, "concept")


def d4(scores: pl.DataFrame, fraction: float, duplicate_column: str = "semantic_duplicate") -> pl.DataFrame:
    """D4 (Tirumala et al. 2023): drop semantic duplicates, then keep the hardest `fraction` of the rest.

    Rows whose boolean `duplicate_column` is true were marked by SemDeDup and are removed, with
    reason "semdedup: ...". The others go through `keep_by_prototypicality(fraction,
    hardest=True)`, so `fraction` applies to the documents left after SemDeDup, and the share of
    all documents kept is `fraction` times the share SemDeDup left. Deviation: D4 runs k-means again on the deduplicated
    set before prototype pruning. Here the existing clusters and distances are reused, which is
    cheaper and keeps the clusters stable across drops. The prototype metric therefore refers to
    centroids that were fitted with the duplicates present.
    """
    _require(scores, (*SCORE_COLUMNS, duplicate_column), "scores")
    if scores[duplicate_column].dtype != pl.Boolean or scores[duplicate_column].null_count():
        raise ValueError(f"{duplicate_column} must be a boolean column without nulls")
    rows = scores.with_row_index("_d4_row")
    unique = rows.filter(~pl.col(duplicate_column))
    pruned = keep_by_prototypicality(unique, fraction, hardest=True).with_columns(unique["_d4_row"])
    duplicates = rows.filter(pl.col(duplicate_column)).select(
        "_d4_row",
        *SCORE_COLUMNS,
        keep=pl.lit(False),
        reason=pl.lit("semdedup: a semantic duplicate, removed before prototype pruning"),
    )
    return pl.concat([pruned, duplicates], how="diagonal_relaxed").sort("_d4_row").drop("_d4_row")


def long_file_cut(
    chars: pl.Series | np.ndarray | Sequence[int], max_chars: int | None = None, quantile: float | None = None
) -> pl.DataFrame:
    """Long-file pruning for code (Singh et al. 2024): keep files no longer than the cut.

    The cut is `max_chars`, or the `quantile` of these lengths (inverted CDF: 0.98 keeps the
    ceil(0.98 n) shortest files, plus any that tie with the longest of them), or the lower of
    the two when both are given. There is no default. Singh et al. show that in The Stack's
    Python the longest 2% of files hold about 20% of the tokens (their Fig. 1), but the cut is
    tuned per corpus. Returns one row per length: chars, keep, and reason (null when kept).
    """
    if max_chars is None and quantile is None:
        raise ValueError("long_file_cut needs max_chars, quantile or both")
    if max_chars is not None and max_chars < 0:
        raise ValueError(f"max_chars must be at least 0, got {max_chars}")
    if quantile is not None and not 0 < quantile <= 1:
        raise ValueError(f"quantile must lie in (0, 1], got {quantile}")
    lengths = pl.Series("chars", chars).cast(pl.Int64)
    if lengths.null_count():
        raise ValueError("chars holds nulls; every file needs a length")
    cuts = [] if max_chars is None else [(int(max_chars), f"max_chars {max_chars}")]
    if quantile is not None and len(lengths):
        value = int(np.quantile(lengths.to_numpy(), quantile, method="inverted_cdf"))
        cuts.append((value, f"the {quantile} length quantile of {len(lengths)} files"))
    if not cuts:  # a quantile of no files: nothing to cut
        return pl.DataFrame({"chars": lengths}).with_columns(keep=pl.lit(True), reason=pl.lit(None, dtype=pl.String))
    cut, label = min(cuts)
    keep = lengths <= cut
    return pl.DataFrame({"chars": lengths, "keep": keep}).with_columns(
        reason=pl.when(pl.col("keep"))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.format("long file: {} chars above the cut {} ({})", "chars", pl.lit(cut), pl.lit(label)))
    )
