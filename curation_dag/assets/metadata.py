"""Helpers for asset metadata and data versions: markdown tables, file digests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl


def markdown_table(frame: pl.DataFrame) -> str:
    """A GitHub-flavoured markdown table; cell text has pipes and line breaks flattened."""

    def cell(value: object) -> str:
        return " ".join(str(value).replace("|", "\\|").split())

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])


def file_digest(*paths: Path) -> str:
    """A digest of files' bytes: the data version of an output, unchanged exactly when the bytes are."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:24]
