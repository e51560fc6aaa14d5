"""The audit report of one mixture materialization: a self-contained HTML page of its tables and plots.

It reads only the materialization folder (`<storage>/mixtures/<name>/<16 hex>/`): `summary.json`,
`manifest.parquet` and `decisions.parquet` are required; `candidates.parquet` (the quality signals and
clusters of every candidate) and `run.json` (recipe hashes, upstream versions) are shown when present
and reported as "not recorded" when not. Plots are PNGs inside the page: it needs no network and runs
no scripts, so it opens the same from a laptop, a CI artifact or an air-gapped cluster.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import numpy as np
import polars as pl
from markupsafe import Markup
from upath import UPath

from curation_dag.metadata import markdown_table
from curation_dag.steps.mixtures.selection import FUNNEL
from curation_dag.steps.quality.rules import Rule
from curation_dag.store.atomic import atomic_path
from curation_dag.store.files import read_parquet, scan_parquet
from curation_dag.store.layout import CANDIDATES, CURRENT, DECISIONS, MANIFEST, MIXTURES, REPORT, RUN, SUMMARY

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NOT_RECORDED = "not recorded"
TOP_CLUSTERS = 15  # more bars than this stop being readable; the table says how many clusters there are
# The signals people check first: length, word shape, repetition, punctuation, code shape, language.
KEY_SIGNALS = (
    "gopher_words",
    "gopher_mean_word_length",
    "gopher_alpha_word_frac",
    "gopher_dup_line_frac",
    "fineweb_line_punct_frac",
    "fineweb_short_line_frac",
    "code_mean_line_length",
    "language_score",
)
KEPT, REMOVED, TARGET = "#4f6bed", "#e07b39", "#9aa0a6"
DPI = 100
HASH_COLUMNS = ("sha256", "code version", "data version", "run id")  # shown monospaced

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto;
       max-width: 1200px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin-bottom: 4px; } h1 code { font-size: 16px; color: #555; }
h2 { font-size: 17px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
p.note { color: #555; margin: 4px 0 10px; }
.pair { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 20px; align-items: start; }
img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: left; vertical-align: top; }
th { background: #f4f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.hash { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
"""


def render_report(folder: Path, rules: tuple[Rule, ...]) -> Path:
    """Write the report (`REPORT`) of the mixture materialized in `folder`, with the thresholds of the
    quality `rules`; return its path."""
    audit = _load(folder)
    name = audit.run.get("mixture") or audit.folder.parent.name
    page = _PAGE.render(
        name=name,
        digest=audit.summary.get("manifest_sha256", ""),
        css=Markup(CSS),
        not_recorded=NOT_RECORDED,
        candidates_file=CANDIDATES,
        run_file=RUN,
        header=_table("header-table", _header(audit, name)),
        funnel=_funnel_section(audit),
        sources=_sources_section(audit),
        clusters=_clusters_section(audit),
        signals=_signals_section(audit, rules),
        languages=_languages_section(audit),
        run=_run_section(audit),
    )
    path = audit.folder / REPORT
    with atomic_path(path) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path


def report_metadata(folder: Path) -> dict[str, str]:
    """The report's key tables as markdown and its funnel plot as a PNG inside markdown, ready for
    `dg.MetadataValue.md` in the mixture asset's metadata."""
    audit = _load(folder)
    funnel = _funnel(audit)
    return {
        "funnel_markdown": markdown_table(_formatted(funnel)),
        "shares_markdown": markdown_table(_formatted(_sources(audit), percent=("share", "weight"))),
        "clusters_markdown": markdown_table(_formatted(_clusters(audit).head(TOP_CLUSTERS), percent=("share",))),
        "funnel_plot_markdown": f"![funnel](data:image/png;base64,{_funnel_plot(funnel)})",
    }


@dataclass(frozen=True)
class _Audit:
    folder: Path
    summary: dict
    run: dict  # empty when the folder has no run.json
    manifest: pl.DataFrame
    decisions: pl.DataFrame
    candidates: pl.DataFrame | None  # doc_id, cluster and the key signals it has; None without candidates.parquet


def _load(folder: Path) -> _Audit:
    folder = UPath(folder)
    required = (SUMMARY, MANIFEST, DECISIONS)
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder}: no {', '.join(missing)}; pass the folder of one mixture materialization, "
            f"<storage>/{MIXTURES}/<name>/<16 hex>/ (its {CURRENT} file names the latest)"
        )
    candidates = None
    if (folder / CANDIDATES).is_file():
        available = scan_parquet(folder / CANDIDATES).collect_schema().names()
        wanted = [c for c in ("doc_id", "cluster", *KEY_SIGNALS) if c in available]
        candidates = read_parquet(folder / CANDIDATES, columns=wanted)
    run_file = folder / RUN
    return _Audit(
        folder=folder,
        summary=json.loads((folder / SUMMARY).read_text()),
        run=json.loads(run_file.read_text()) if run_file.is_file() else {},
        manifest=read_parquet(folder / MANIFEST),
        decisions=read_parquet(folder / DECISIONS),
        candidates=candidates,
    )


# Tables


def _header(audit: _Audit, name: str) -> pl.DataFrame:
    summary, run = audit.summary, audit.run
    tokens, budget = summary.get("tokens", 0), summary.get("budget_tokens", 0)
    drops = run.get("drops")
    rows = {
        "mixture": name,
        "manifest sha256": summary.get("manifest_sha256", NOT_RECORDED),
        "run id": run.get("run_id", NOT_RECORDED),
        "materialized at": run.get("materialized_at", NOT_RECORDED),
        "spec file": run.get("spec_file", NOT_RECORDED),
        "tokens (repeats included)": f"{tokens:,} of a {budget:,} budget ({tokens / max(budget, 1):.1%})",
        "candidates": f"{audit.decisions.height:,}",
        "kept documents": f"{audit.manifest.height:,} ({int(audit.manifest['repeats'].sum()):,} copies)",
        "drops": ", ".join(map(str, drops)) if drops else NOT_RECORDED,
    }
    return pl.DataFrame({"field": list(rows), "value": [str(v) for v in rows.values()]})


def _funnel(audit: _Audit) -> pl.DataFrame:
    """Documents removed at each stage, in stage order, then the kept ones; tokens where they were counted."""
    per_stage = {
        row["stage"] or "kept": row
        for row in audit.decisions.group_by("stage")
        .agg(documents=pl.len(), tokens=pl.col("tokens").sum(), counted=pl.col("tokens").count())
        .iter_rows(named=True)
    }
    rows, remaining = [], audit.decisions.height
    for stage in FUNNEL:
        row = per_stage.get(stage, {"documents": 0, "tokens": None, "counted": 0})
        if stage != "kept":
            remaining -= row["documents"]
        tokens = int(row["tokens"]) if row["counted"] else None
        rows.append({"stage": stage, "documents": row["documents"], "remaining": remaining, "tokens": tokens})
    return pl.DataFrame(
        rows, schema={"stage": pl.String, "documents": pl.Int64, "remaining": pl.Int64, "tokens": pl.Int64}
    )


def _sources(audit: _Audit) -> pl.DataFrame:
    schema = {"source": pl.String, "documents": pl.Int64, "tokens": pl.Int64, "share": pl.Float64, "weight": pl.Float64}
    rows = audit.summary.get("by_source") or []
    return pl.DataFrame([{k: row.get(k) for k in schema} for row in rows], schema=schema)


def _clusters(audit: _Audit) -> pl.DataFrame:
    """Token share, kept documents and candidates per cluster, most tokens first."""
    schema = {"cluster": pl.String, "tokens": pl.Int64}
    tokens = pl.DataFrame(
        [
            {"cluster": _cluster_name(r.get("cluster")), "tokens": r.get("tokens")}
            for r in audit.summary.get("by_cluster") or []
        ],
        schema=schema,
    )
    total = max(int(tokens["tokens"].sum() or 0), 1)
    frame = tokens.with_columns(share=pl.col("tokens") / total)
    for column, documents in (("kept documents", audit.manifest), ("candidates", audit.candidates)):
        if documents is not None and "cluster" in documents.columns:
            counts = _cluster_counts(documents).rename({"documents": column})
            frame = frame.join(counts, on="cluster", how="left")
    return frame.sort("tokens", "cluster", descending=[True, False])


def _cluster_counts(documents: pl.DataFrame) -> pl.DataFrame:
    return documents.group_by(cluster=pl.col("cluster").cast(pl.String).fill_null("none")).agg(documents=pl.len())


def _cluster_name(cluster: object) -> str:
    return "none" if cluster is None else str(cluster)


def _languages(audit: _Audit) -> pl.DataFrame:
    rows = audit.summary.get("by_language") or []
    frame = pl.DataFrame(
        [{"language": r.get("language") or "unknown", "tokens": r.get("tokens")} for r in rows],
        schema={"language": pl.String, "tokens": pl.Int64},
    )
    return frame.with_columns(share=pl.col("tokens") / max(int(frame["tokens"].sum() or 0), 1))


def _recipes(audit: _Audit) -> pl.DataFrame:
    recipes = audit.run.get("recipes") or {}
    return pl.DataFrame(
        {"file": list(recipes), "sha256": list(recipes.values())}, schema=dict.fromkeys(("file", "sha256"), pl.String)
    )


def _upstream(audit: _Audit) -> pl.DataFrame:
    """One row per upstream asset, or per partition of a partitioned one."""
    rows = []
    for asset, latest in (audit.run.get("upstream") or {}).items():
        versions = (latest or {}).get("partitions") or {"": latest or {}}
        for partition, version in versions.items():
            rows.append(
                {
                    "asset": asset,
                    "partition": partition,
                    "code version": version.get("code_version"),
                    "data version": version.get("data_version"),
                    "run id": version.get("run_id"),
                }
            )
    columns = ("asset", "partition", "code version", "data version", "run id")
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String))


# Sections: what the page template shows of each, None for a section with nothing to show


def _funnel_section(audit: _Audit) -> dict:
    funnel = _funnel(audit)
    return {
        "plot": _Plot("funnel-plot", "Documents remaining after each stage", _funnel_plot(funnel)),
        "table": _table("funnel-table", funnel),
    }


def _sources_section(audit: _Audit) -> dict | None:
    sources = _sources(audit)
    if sources.is_empty():
        return None
    return {
        "plot": _Plot("sources-plot", "Token share by source beside its weight", _sources_plot(sources)),
        "table": _table("sources-table", sources, percent=("share", "weight")),
    }


def _clusters_section(audit: _Audit) -> dict | None:
    clusters = _clusters(audit)
    if clusters.is_empty():
        return None
    shown = clusters.head(TOP_CLUSTERS)
    kept = _cluster_counts(audit.manifest.filter(pl.col("cluster").is_not_null()))["documents"].to_numpy()
    candidates = audit.candidates
    every = (
        _cluster_counts(candidates.filter(pl.col("cluster").is_not_null()))["documents"].to_numpy()
        if candidates is not None and "cluster" in candidates.columns
        else None
    )
    if every is None:
        note = f"Documents per cluster in the mixture; candidates per cluster {NOT_RECORDED} (no {CANDIDATES})."
    else:
        note = "How many clusters hold how many documents: every candidate, and the kept documents."
    return {
        "shown": shown.height,
        "total": clusters.height,
        "plot": _Plot("clusters-plot", f"Token share of the top {shown.height} clusters", _clusters_plot(shown)),
        "table": _table("clusters-table", shown, percent=("share",)),
        "sizes_note": note,
        "sizes_plot": _Plot("cluster-sizes-plot", note, _sizes_plot(kept, every)),
    }


def _signals_section(audit: _Audit, rules: tuple[Rule, ...]) -> dict:
    """The plot, or `missing`: what is not in the folder (the candidates, or every key signal)."""
    candidates = audit.candidates
    if candidates is None:
        return {"missing": "candidates"}
    # Documents of sources outside the weights were never considered; they would only blur the comparison.
    judged = candidates.join(
        audit.decisions.filter(pl.col("stage").fill_null("") != "weights").select("doc_id", "verdict"), on="doc_id"
    )
    signals = [s for s in KEY_SIGNALS if s in judged.columns and _finite(judged[s]).len()]
    if not signals:
        return {"missing": "signals"}
    alt = "Quality signal distributions of kept and removed documents"
    return {"plot": _Plot("signals-plot", alt, _signals_plot(judged, signals, rules))}


def _languages_section(audit: _Audit) -> _Table | None:
    languages = _languages(audit)
    return None if languages.is_empty() else _table("languages-table", languages, percent=("share",))


def _run_section(audit: _Audit) -> dict | None:
    if not audit.run:
        return None
    recipes, upstream = _recipes(audit), _upstream(audit)
    return {
        "recipes": _table("recipes-table", recipes) if recipes.height else None,
        "upstream": _table("upstream-table", upstream) if upstream.height else None,
    }


# Plots


def _funnel_plot(funnel: pl.DataFrame) -> str:
    stages = funnel.filter(pl.col("stage") != "kept")
    labels = ["candidates", *(f"after {s}" for s in stages["stage"])]
    remaining = [int(funnel["remaining"][0] + funnel["documents"][0]), *stages["remaining"]]
    removed = [0, *stages["documents"]]
    figure = _figure(figsize=(7, 3.6))
    axes = figure.subplots()
    bars = axes.barh(labels, remaining, color=[TARGET, *[KEPT] * stages.height])
    for bar, gone in zip(bars, removed, strict=True):
        text = f"{bar.get_width():,.0f}" + (f"  (−{gone:,})" if gone else "")
        axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + text, va="center", fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, max(remaining) * 1.3 or 1)
    axes.set(xlabel="documents", title="Documents remaining after each stage")
    _tidy(axes)
    return _png(figure)


def _sources_plot(sources: pl.DataFrame) -> str:
    positions = np.arange(sources.height)
    figure = _figure(figsize=(7, 0.6 + 0.5 * max(sources.height, 3)))
    axes = figure.subplots()
    axes.barh(positions - 0.2, sources["share"].fill_null(0), height=0.4, color=KEPT, label="token share")
    axes.barh(positions + 0.2, sources["weight"].fill_null(0), height=0.4, color=TARGET, label="weight")
    axes.set_yticks(positions, sources["source"].to_list())
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter("{x:.0%}")
    axes.set(title="Token share by source vs weight")
    axes.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    _tidy(axes)
    return _png(figure)


def _clusters_plot(clusters: pl.DataFrame) -> str:
    figure = _figure(figsize=(7, 0.8 + 0.28 * max(clusters.height, 4)))
    axes = figure.subplots()
    axes.barh([f"cluster {c}" for c in clusters["cluster"]], clusters["share"], color=KEPT)
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter("{x:.0%}")
    axes.tick_params(axis="y", labelsize=8)
    axes.set(title="Token share by cluster (most tokens first)")
    _tidy(axes)
    return _png(figure)


def _sizes_plot(kept: np.ndarray, every: np.ndarray | None) -> str:
    from matplotlib.ticker import MaxNLocator

    figure = _figure(figsize=(10, 3))
    axes = figure.subplots()
    values = kept if every is None else np.concatenate([kept, every])
    low, high = (values.min(), values.max()) if values.size else (0, 1)
    # One bar per size while sizes are few, so a bar never straddles two sizes.
    bins = np.arange(low - 0.5, high + 1.5) if high - low < 40 else np.histogram_bin_edges(values, bins=40)
    axes.hist(kept, bins=bins, color=KEPT, label=f"kept documents ({len(kept)} clusters)")
    if every is not None:  # an outline, so the kept bars show through
        axes.hist(
            every,
            bins=bins,
            histtype="step",
            linewidth=1.5,
            color="#333",
            label=f"all candidates ({len(every)} clusters)",
        )
    axes.set(title="Cluster size distribution", xlabel="documents per cluster", ylabel="clusters")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize=8)
    _tidy(axes)
    return _png(figure)


def _signals_plot(judged: pl.DataFrame, signals: list[str], rules: tuple[Rule, ...]) -> str:
    thresholds = {rule.signal: (rule.low, rule.high) for rule in rules}
    columns = 4
    rows = -(-len(signals) // columns)
    figure = _figure(figsize=(12, 2.4 * rows + 0.6))
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    kept = judged["verdict"] == "kept"
    groups = [(kept, f"kept: {kept.sum():,} documents", KEPT), (~kept, f"removed: {(~kept).sum():,}", REMOVED)]
    for axes, signal in zip(grid, signals, strict=False):
        values = judged[signal]
        present = _finite(values).to_numpy()
        log = present.min() >= 1 and present.max() / present.min() > 100  # counts spanning orders of magnitude
        bins = np.geomspace(present.min(), present.max(), 30) if log else np.histogram_bin_edges(present, bins=30)
        for members, label, colour in groups:
            group = _finite(values.filter(members)).to_numpy()
            if group.size:
                share = np.full(group.size, 1 / group.size)
                axes.hist(group, bins=bins, weights=share, color=colour, alpha=0.55, label=label)
        if log:
            axes.set_xscale("log")
        low, high = axes.get_xlim()
        for cut in thresholds.get(signal, ()):
            if cut is not None and low <= cut <= high:  # a threshold far outside the data would squash it
                axes.axvline(cut, color="#333", linestyle="--", linewidth=1)
        axes.set_title(signal, fontsize=9)
        axes.tick_params(labelsize=7)
        _tidy(axes)
    for axes in grid[len(signals) :]:
        axes.set_visible(False)
    handles, labels = grid[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncols=2, fontsize=9, frameon=False)
    figure.supylabel("share of group", fontsize=9)
    # Fixed margins: tight_layout over many panels costs seconds and the panels are all alike.
    top = 1 - 0.75 / figure.get_figheight()
    figure.subplots_adjust(
        left=0.06, right=0.99, bottom=0.3 / figure.get_figheight(), top=top, wspace=0.28, hspace=0.45
    )
    return _png(figure, tight=False)


def _finite(values: pl.Series) -> pl.Series:
    return values.cast(pl.Float64).fill_nan(None).drop_nulls()


def _tidy(axes) -> None:
    axes.spines[["top", "right"]].set_visible(False)


def _figure(**size) -> Figure:
    from matplotlib.figure import Figure  # here, so that loading the code location does not import matplotlib

    return Figure(dpi=DPI, **size)


def _png(figure: Figure, tight: bool = True) -> str:
    """The figure as base64 PNG; no software tag, so the page holds no address of any kind."""
    if tight:
        figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode()


# HTML


@dataclass(frozen=True)
class _Plot:
    id: str
    alt: str
    png: str  # base64


@dataclass(frozen=True)
class _Table:
    id: str
    columns: list[str]
    rows: list[list[tuple[str, str]]]  # (text, class attribute) per cell


def _table(table_id: str, frame: pl.DataFrame, percent: tuple[str, ...] = ()) -> _Table:
    kinds = [
        ' class="num"' if frame[c].dtype.is_numeric() else ' class="hash"' if c in HASH_COLUMNS else ""
        for c in frame.columns
    ]
    rows = [list(zip(row, kinds, strict=True)) for row in _formatted(frame, percent).iter_rows()]
    return _Table(table_id, frame.columns, rows)


def _formatted(frame: pl.DataFrame, percent: tuple[str, ...] = ()) -> pl.DataFrame:
    """Every cell as display text: thousands separators, percentages, a dash for nothing."""

    def text(value: object, column: str) -> str:
        if value is None:
            return "—"
        if column in percent:
            return f"{value:.1%}"
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:,.4g}"
        return str(value)

    return pl.DataFrame(
        {c: [text(v, c) for v in frame[c].to_list()] for c in frame.columns},
        schema=dict.fromkeys(frame.columns, pl.String),
    )


_PAGE = jinja2.Environment(
    autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True
).from_string(
    """\
{%- macro img(plot) -%}
<img id="{{ plot.id }}" alt="{{ plot.alt }}" src="data:image/png;base64,{{ plot.png }}">
{%- endmacro -%}
{%- macro table(t) -%}
<table id="{{ t.id }}"><thead><tr>{% for column in t.columns %}<th>{{ column }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}
<tr>{% for text, kind in row %}<td{{ kind|safe }}>{{ text }}</td>{% endfor %}</tr>
{% endfor %}
</tbody></table>
{%- endmacro -%}
{%- macro pair(section) -%}
<div class="pair">
{{ img(section.plot) }}
{{ table(section.table) }}
</div>
{%- endmacro -%}
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Mixture {{ name }} {{ digest[:16] }}</title>\
<style>{{ css }}</style></head>
<body>
<h1>Mixture {{ name }} <code>{{ digest }}</code></h1>
{{ table(header) }}
<h2>Funnel</h2>
<p class="note">Every candidate is removed by the first stage that removes it, or kept. Tokens are counted once \
per document, and only for documents that reached the budget stage.</p>
{{ pair(funnel) }}
<h2>Token shares by source</h2>
{% if sources %}
<p class="note">Each source's share of the mixture's tokens (repeats included) beside its weight.</p>
{{ pair(sources) }}
{% else %}
<p class="note">No documents were kept.</p>
{% endif %}
<h2>Token shares by cluster</h2>
{% if clusters %}
<p class="note">The {{ clusters.shown }} clusters with the most tokens, of {{ clusters.total }} in the mixture.</p>
{{ pair(clusters) }}
<h2>Cluster sizes</h2>
<p class="note">{{ clusters.sizes_note }}</p>
{{ img(clusters.sizes_plot) }}
{% else %}
<p class="note">No clusters recorded: the pool has no cluster column.</p>
{% endif %}
<h2>Quality signals, kept vs removed</h2>
{% if signals.missing == "candidates" %}
<p class="note">Signals {{ not_recorded }}: this folder has no {{ candidates_file }}.</p>
{% elif signals.missing == "signals" %}
<p class="note">None of the key signals is in {{ candidates_file }}.</p>
{% else %}
<p class="note">Each group's share of documents per bin, for the documents of the weighted sources. Dashed lines \
are the thresholds of the rule on that signal (the recipes' quality.yml), whether or not this mixture applies it.</p>
{{ img(signals.plot) }}
{% endif %}
<h2>Languages</h2>
{% if languages %}
{{ table(languages) }}
{% else %}
<p class="note">Languages {{ not_recorded }}.</p>
{% endif %}
<h2>Recipes and upstream versions</h2>
{% if run %}
<p class="note">The SHA-256 of every recipe file when the mixture was built.</p>
{% if run.recipes %}{{ table(run.recipes) }}{% else %}<p class="note">Recipes {{ not_recorded }}.</p>{% endif %}

<p class="note">The latest materialization of every upstream asset (of each partition) at build time.</p>
{% if run.upstream %}{{ table(run.upstream) }}{% else %}<p class="note">Upstream {{ not_recorded }}.</p>{% endif %}

{% else %}
<p class="note">Recipe hashes and upstream versions {{ not_recorded }}: no {{ run_file }}.</p>
{% endif %}
</body></html>
"""
)
