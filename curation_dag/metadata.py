"""Helpers for asset metadata and data versions, Dagster-free: markdown tables, plots, file digests."""

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
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:24]


def histogram_markdown(values: np.ndarray, title: str, xlabel: str, log_x: bool = False) -> str:
    """A histogram as a PNG inside markdown, which the Dagster UI shows as an image."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 3), dpi=100)
    bins = np.geomspace(max(values.min(), 1), max(values.max(), 2), 30) if log_x else 30
    axes.hist(values, bins=bins, color=COLOUR)
    if log_x:
        axes.set_xscale("log")
    axes.set(title=title, xlabel=xlabel, ylabel="count")
    return _png_markdown(figure, title)


def histograms_markdown(panels: list[tuple[str, np.ndarray, list[float]]], title: str) -> str:
    """Small multiples: one histogram per (name, values, threshold lines), in one PNG."""
    plt = _pyplot()
    columns = 4
    rows = -(-len(panels) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3 * columns, 2.2 * rows), dpi=90, squeeze=False)
    for axes, (name, values, cuts) in zip(grid.flat, panels, strict=False):
        axes.hist(values, bins=30, color=COLOUR)
        for cut in cuts:
            axes.axvline(cut, color="#d33", linestyle="--", linewidth=1)
        axes.set_title(name, fontsize=8)
        axes.tick_params(labelsize=7)
    for axes in list(grid.flat)[len(panels) :]:
        axes.set_visible(False)
    figure.suptitle(title, fontsize=10)
    return _png_markdown(figure, title)


COLOUR = "#4f6bed"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    from matplotlib import pyplot

    return pyplot


def _png_markdown(figure, title: str) -> str:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    _pyplot().close(figure)
    return f"![{title}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"
