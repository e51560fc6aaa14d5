"""SQL checks: a query that returns the violating rows becomes an asset check; no rows means passed."""

import dagster as dg
import duckdb
import polars as pl

from curation_dag.metadata import markdown_table
from curation_dag.steps.recipes.sandbox import sandboxed

EXAMPLES = 5


def sql_check(
    asset: str,
    name: str,
    query: str,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    **tables: pl.DataFrame | str | list[str],
) -> dg.AssetCheckResult:
    """Run `query` over `tables` (frames, or Parquet files: a path or a list, by name) in a DuckDB that
    can read nothing else, since recipe tests are queries people write."""
    try:
        with sandboxed(tables) as connection:
            violations = pl.from_arrow(connection.sql(query).to_arrow_table())
    except duckdb.Error as error:  # a recipe test that reads what it may not, or fails at run time
        return dg.AssetCheckResult(asset_key=asset, check_name=name, passed=False, severity=severity,
                                   metadata={"error": f"the check's query failed: {error}"})  # fmt: skip
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=violations.height == 0,
        severity=severity,
        metadata={
            "violations": violations.height,
            "examples": dg.MetadataValue.md(markdown_table(violations.head(EXAMPLES))),
        },
    )
