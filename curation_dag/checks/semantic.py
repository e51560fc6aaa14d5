"""Checks on semantic_clusters and semantic_duplicates, run on what each materialization absorbs."""

import dagster as dg
import polars as pl

from curation_dag.checks.sql import sql_check
from curation_dag.steps.semantic.absorb import GIANT_FACTOR, Clustered
from curation_dag.store.layout import SEMANTIC_CLUSTERS, SEMANTIC_DUPLICATES

CLUSTERS_SPECS = [
    dg.AssetCheckSpec("one_cluster_per_document", asset=SEMANTIC_CLUSTERS, blocking=True),
    dg.AssetCheckSpec("drift_within_limit", asset=SEMANTIC_CLUSTERS, description="A warning: refit when it fails."),
    dg.AssetCheckSpec(
        "no_empty_or_giant_clusters",
        asset=SEMANTIC_CLUSTERS,
        description=f"A warning: every centroid has members, none more than {GIANT_FACTOR}x the mean.",
    ),
]
DUPLICATES_SPECS = [dg.AssetCheckSpec("no_self_duplicates", asset=SEMANTIC_DUPLICATES, blocking=True)]


def clusters_checks(clustered: Clustered, drift_share: float) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            asset_key=SEMANTIC_CLUSTERS,
            check_name="one_cluster_per_document",
            passed=clustered.assigned == clustered.embedded,
            metadata={"embedded": clustered.embedded, "assigned": clustered.assigned},
        ),
        dg.AssetCheckResult(
            asset_key=SEMANTIC_CLUSTERS,
            check_name="no_empty_or_giant_clusters",
            passed=not clustered.empty and not clustered.giant,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"empty": clustered.empty, "giant": dg.MetadataValue.json(clustered.giant)},
        ),
        sql_check(
            SEMANTIC_CLUSTERS,
            "drift_within_limit",
            f"SELECT * FROM drift WHERE beyond_p95 > {drift_share}",
            severity=dg.AssetCheckSeverity.WARN,
            drift=clustered.drift,
        ),
    ]


def duplicates_checks(decided: pl.DataFrame) -> list[dg.AssetCheckResult]:
    return [
        sql_check(
            SEMANTIC_DUPLICATES,
            "no_self_duplicates",
            "SELECT doc_id FROM decided WHERE semantic_duplicate_of = doc_id",
            decided=decided.select("doc_id", "semantic_duplicate_of"),
        )
    ]
