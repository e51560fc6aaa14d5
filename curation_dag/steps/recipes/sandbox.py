"""DuckDB for recipe SQL: one SELECT, on a connection that reaches only the tables it is given.

Recipe SQL (models, their `expression` tests, mixture `filters.sql`) is written by people, not by
this code, so it runs with DuckDB's file system access turned off (`enable_external_access`) after
the input views exist, `allowed_paths` listing exactly their Parquet files, and the configuration
locked, so that no statement can turn it back on. Reading another file (`read_text('/etc/passwd')`),
writing one (`COPY ... TO`), `ATTACH` and `INSTALL` then fail with DuckDB's permission error. Files
on object storage are registered as Arrow datasets (store/files.py), which DuckDB reads without any
file system access of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from upath import UPath

from curation_dag.store.files import dataset, is_local

Table = pl.DataFrame | str | list[str]
# DuckDB may take 80% of the machine's memory per connection: whatever runs recipe SQL (recipe models,
# mixtures, and the takedowns that rewrite the files they read) shares one pool, limited in dagster.yaml,
# so that two of them never run at once.
DUCKDB_POOL = "duckdb"


@contextmanager
def sandboxed(tables: Mapping[str, Table], writable: list[str | Path] = ()):
    """An in-memory connection whose views are `tables` (frames, or Parquet files: a path or a list)
    and that may touch no other file but `writable`."""
    with duckdb.connect() as connection:
        connection.execute("SET preserve_insertion_order = true; SET enable_progress_bar = false")
        files: list[str] = [str(path) for path in writable]
        for name, table in tables.items():
            if isinstance(table, pl.DataFrame):
                connection.register(name, table.to_arrow())
                continue
            paths = [table] if isinstance(table, str) else list(table)
            if not all(map(is_local, map(UPath, paths))):  # object storage: read as Arrow, through fsspec
                connection.register(name, dataset([UPath(path) for path in paths]))
                continue
            files += paths
            connection.execute(
                f"CREATE VIEW {identifier(name)} AS SELECT * FROM read_parquet({literal(paths)}, union_by_name=true)"
            )
        connection.execute(f"SET allowed_paths = {literal(files)}")
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        yield connection


def one_select(sql: str) -> str | None:
    """None when `sql` is exactly one SELECT statement, else what is wrong, as "does not parse: ..."."""
    try:
        with duckdb.connect() as connection:
            statements = connection.extract_statements(sql)
    except duckdb.Error as error:
        return f"does not parse: {error}"
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(statement.type.name for statement in statements)
        return f"is not exactly one SELECT statement: it holds {len(statements)} ({kinds})"
    return None


def identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
