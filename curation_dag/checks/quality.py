"""Checks on quality_signals and quality_scores: every value in its valid range."""

from pathlib import Path

import dagster as dg

from curation_dag.checks.sql import sql_check
from curation_dag.steps.quality.rules import SIGNAL_RANGES
from curation_dag.store.layout import QUALITY_SCORES, QUALITY_SIGNALS

SIGNALS_SPECS = [
    dg.AssetCheckSpec(
        "signals_within_valid_ranges",
        asset=QUALITY_SIGNALS,
        blocking=True,
        description="No signal is null or NaN, fractions lie in [0, 1], counts and lengths are >= 0.",
    )
]
SCORES_SPECS = [
    dg.AssetCheckSpec(
        "scores_within_valid_ranges",
        asset=QUALITY_SCORES,
        blocking=True,
        description="Prototypicality in [0, 2] for every clustered document; cluster complexity finite and >= 0.",
    )
]


def _range_violations(table: str) -> str:
    """SQL: one row per signal value that is null, NaN or outside its valid range."""
    queries = []
    for signal, (low, high) in SIGNAL_RANGES.items():
        bad = [f"{signal} IS NULL", f"isnan({signal}::DOUBLE)", f"{signal} < {low}"]
        bad += [f"{signal} > {high}"] if high is not None else []
        queries.append(
            f"SELECT doc_id, '{signal}' AS signal, {signal}::DOUBLE AS value FROM {table} WHERE {' OR '.join(bad)}"
        )
    queries.append(f"SELECT doc_id, 'language' AS signal, NULL AS value FROM {table} WHERE language IS NULL")
    return "\nUNION ALL\n".join(queries)


def signals_checks(signals: Path) -> list[dg.AssetCheckResult]:
    return [
        sql_check(QUALITY_SIGNALS, "signals_within_valid_ranges", _range_violations("signals"), signals=str(signals))
    ]


def scores_checks(scores: list[Path], complexity: Path) -> list[dg.AssetCheckResult]:
    return [
        sql_check(
            QUALITY_SCORES,
            "scores_within_valid_ranges",
            "SELECT 'document' AS kind, doc_id AS id, prototypicality AS value FROM scores "
            "WHERE cluster IS NOT NULL AND (prototypicality IS NULL OR prototypicality < 0 OR prototypicality > 2) "
            "UNION ALL SELECT 'cluster', cluster::VARCHAR, complexity FROM complexity "
            "WHERE complexity IS NULL OR isnan(complexity) OR complexity < 0",
            scores=[str(path) for path in scores],
            complexity=str(complexity),
        )
    ]
