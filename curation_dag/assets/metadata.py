"""Helpers that turn frames into the markdown tables shown in asset metadata."""

from __future__ import annotations

import polars as pl


def markdown_table(frame: pl.DataFrame) -> str:
    """A GitHub-flavoured markdown table; cell text has pipes and line breaks flattened."""

    def cell(value: object) -> str:
        return " ".join(str(value).replace("|", "\\|").split())

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])
