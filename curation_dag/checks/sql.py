"""SQL checks: a query that returns the violating rows becomes an asset check; no rows means passed."""

import dagster as dg
import duckdb
import polars as pl

from curation_dag.assets.metadata import markdown_table

EXAMPLES = 5


def sql_check(
    asset: str,
    name: str,
    query: str,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    **tables: pl.DataFrame | str | list[str],
) -> dg.AssetCheckResult:
    """Run `query` in DuckDB over `tables`: frames, or Parquet files (a path, glob or list), by name."""
    with duckdb.connect() as connection:
        for table_name, table in tables.items():
            if isinstance(table, pl.DataFrame):
                connection.register(table_name, table.to_arrow())
            else:
                connection.execute(f"CREATE VIEW {table_name} AS SELECT * FROM read_parquet({table!r})")
        violations = pl.from_arrow(connection.sql(query).to_arrow_table())
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
