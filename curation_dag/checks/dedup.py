"""Checks on exact_duplicates and near_duplicates, run on the drops each materialization absorbs."""

import dagster as dg
import polars as pl

from curation_dag.checks.sql import sql_check
from curation_dag.steps.dedup.config import RateBand

# Violations: a duplicate whose duplicate_of is unknown, itself a duplicate, or not earlier.
KEPT_AND_EARLIER = """
SELECT d.doc_id, d.duplicate_of FROM new d LEFT JOIN decisions k ON k.doc_id = d.duplicate_of
WHERE d.duplicate_of IS NOT NULL AND (k.doc_id IS NULL OR k.duplicate_of IS NOT NULL OR k.ordinal >= d.ordinal)
"""


def duplicate_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "duplicate_of_is_kept_and_earlier",
            asset=asset,
            blocking=True,
            description="Every duplicate_of names a kept document that arrived earlier.",
        ),
        dg.AssetCheckSpec(
            "no_self_duplicates", asset=asset, blocking=True, description="No document duplicates itself."
        ),
        dg.AssetCheckSpec(
            "duplicate_rate_within_band",
            asset=asset,
            description="Each new drop's duplicate rate is inside the band of dedup.yml (a warning).",
        ),
    ]


def duplicate_checks(
    asset: str, new: pl.DataFrame, decisions: list[str], new_rates: pl.DataFrame, band: RateBand
) -> list[dg.AssetCheckResult]:
    """The checks of `duplicate_check_specs` on the new decisions, against every decision file."""
    return [
        sql_check(asset, "duplicate_of_is_kept_and_earlier", KEPT_AND_EARLIER, new=new, decisions=decisions),
        sql_check(asset, "no_self_duplicates", "SELECT doc_id FROM new WHERE duplicate_of = doc_id", new=new),
        sql_check(
            asset,
            "duplicate_rate_within_band",
            f"SELECT * FROM rates WHERE rate < {band.low} OR rate > {band.high}",
            severity=dg.AssetCheckSeverity.WARN,
            rates=new_rates,
        ),
    ]
