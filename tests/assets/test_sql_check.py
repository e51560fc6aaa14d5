"""SQL checks run in the recipe sandbox: a query reads only the tables it is given."""

import polars as pl

from curation_dag.checks.sql import sql_check


def test_a_check_finds_violations_in_its_tables():
    result = sql_check("a", "small", "SELECT * FROM t WHERE x < 2", t=pl.DataFrame({"x": [1, 2, 3]}))
    assert not result.passed and result.metadata["violations"].value == 1


def test_a_check_whose_query_reads_outside_its_tables_fails_without_showing_what_it_read():
    result = sql_check("a", "sneaky", "SELECT content FROM read_text('/proc/self/environ')", t=pl.DataFrame({"x": [1]}))
    assert not result.passed and "Permission Error" in result.metadata["error"].value
    assert "PATH=" not in result.metadata["error"].value
