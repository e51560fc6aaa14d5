"""Quality scores, absorbed drop by drop: each drop's signals joined with its cluster and its distance
to the centroid (prototypicality), and every cluster's complexity over all absorbed drops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from curation_dag.steps.quality.pruning import cluster_complexity
from curation_dag.store.files import load_array, read_parquet
from curation_dag.store.ledger import Entry, Ledger, write_parquet


class ScoreEntry(Entry):
    documents: int
    clustered: int  # documents with a cluster (exact and near duplicates have none)
    fit: str  # the clusters' fit the prototypicality was measured in
    quality: str  # the digest of the thresholds the verdicts were judged by


def absorb_scores(
    ledger: Ledger, clusters: Ledger, keys: list[str], signals_of: Callable[[str], Path], fit: str, quality: str
) -> None:
    """Score each drop of `keys` (signals and clusters both absorbed) and commit it with the fit and the
    thresholds' digest its scores depend on."""
    for key in keys:
        signals = read_parquet(signals_of(key))
        assigned = read_parquet(clusters.committed(key), columns=["doc_id", "cluster", "distance"])
        scores = signals.join(assigned, on="doc_id", how="left", maintain_order="left").select(
            "doc_id",
            pl.lit(key).alias("drop"),
            pl.col("doc_id").str.split("/").list.first().alias("source"),
            "cluster",
            pl.col("distance").alias("prototypicality"),
            pl.exclude("doc_id", "cluster", "distance"),
        )
        write_parquet(scores, ledger.decision_file(key))
        clustered = int(scores["cluster"].is_not_null().sum())
        ledger.commit(ScoreEntry(key=key, documents=scores.height, clustered=clustered, fit=fit, quality=quality))


def write_complexity(scored: pl.DataFrame, centroids: Path, out: Path) -> pl.DataFrame:
    """Every cluster's complexity over the clustered documents of `scored`, written to `out`."""
    complexity = cluster_complexity(
        scored.filter(pl.col("cluster").is_not_null()).select("doc_id", "cluster", distance="prototypicality"),
        load_array(centroids),
    )
    write_parquet(complexity, out)
    return complexity
