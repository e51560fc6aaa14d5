"""What the dedup ledgers say, as tables: duplicate rates by drop and by source, and the largest groups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from curation_dag.store.files import scan_parquet
from curation_dag.store.ledger import Ledger

RATES = {"documents": pl.Int64, "duplicates": pl.Int64, "rate": pl.Float64}
DECISION_KEYS = {"doc_id": pl.String, "ordinal": pl.Int64, "drop": pl.String, "duplicate_of": pl.String}


def newly_absorbed(absorbed: list[pl.DataFrame]) -> pl.DataFrame:
    """The decisions of the drops absorbed in this run, as one frame (empty when none was)."""
    return pl.concat(absorbed) if absorbed else pl.DataFrame(schema=DECISION_KEYS)


def rates_by_drop(ledger: Ledger) -> pl.DataFrame:
    rows = [
        {
            "drop": e["key"],
            "documents": e["documents"],
            "duplicates": e["duplicates"],
            "rate": round(e["duplicates"] / e["documents"], 4) if e["documents"] else 0.0,
        }
        for e in ledger.drops
    ]
    return pl.DataFrame(rows, schema={"drop": pl.String, **RATES})


def rates_by_source(ledger: Ledger) -> pl.DataFrame:
    by_source: dict[str, list[int]] = {}
    for entry in ledger.drops:
        for source, (documents, duplicates) in entry["by_source"].items():
            totals = by_source.setdefault(source, [0, 0])
            totals[0] += documents
            totals[1] += duplicates
    rows = [
        {"source": s, "documents": n, "duplicates": d, "rate": round(d / n, 4)}
        for s, (n, d) in sorted(by_source.items())
    ]
    return pl.DataFrame(rows, schema={"source": pl.String, **RATES})


def largest_groups(decisions: list[str], documents_of: Callable[[str], Path], count: int) -> pl.DataFrame:
    """The `count` kept documents with the most duplicates, with the start of their text; `documents_of`
    names a drop's raw_documents file."""
    groups = (
        scan_parquet(decisions)
        .filter(pl.col("duplicate_of").is_not_null())
        .group_by("duplicate_of", "duplicate_of_drop")
        .agg(pl.len().alias("duplicates"))
        .sort("duplicates", "duplicate_of", descending=[True, False])
        .head(count)
        .collect()
    )
    previews = []
    for doc_id, drop in groups.select("duplicate_of", "duplicate_of_drop").iter_rows():
        text = scan_parquet(documents_of(drop)).filter(pl.col("doc_id") == doc_id).select("text").collect()
        previews.append(text["text"][0][:100] if text.height else "")
    return groups.select("duplicate_of", "duplicates").with_columns(pl.Series("preview", previews, dtype=pl.String))
