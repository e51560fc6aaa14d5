"""Helpers for asset metadata and data versions: markdown tables, plots, file digests."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import numpy as np
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


def histogram_markdown(values: np.ndarray, title: str, xlabel: str, log_x: bool = False) -> str:
    """A histogram as a PNG inside markdown, which the Dagster UI shows as an image."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3), dpi=100)
    bins = np.geomspace(max(values.min(), 1), max(values.max(), 2), 30) if log_x else 30
    axes.hist(values, bins=bins, color="#4f6bed")
    if log_x:
        axes.set_xscale("log")
    axes.set(title=title, xlabel=xlabel, ylabel="count")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return f"![{title}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"
