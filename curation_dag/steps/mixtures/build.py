"""Building one mixture materialization: read the pool's candidates with their quality signals, give
every candidate its verdict, count tokens and fill the budget, then write the materialization's folder
(documents, manifest, decisions, candidates, summary, run record, report) and point CURRENT at it.
Nothing is written before the spec is known to be feasible.

Memory holds compact keys (doc ids, hashes, counts and signals per candidate) and never the corpus:
texts stream from the raw documents batch by batch, to count their tokens and into the documents file.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation_dag.steps.mixtures.report import render_report
from curation_dag.steps.mixtures.selection import (
    FUNNEL,
    MixtureSpec,
    allocate,
    decide,
    manifest_digest,
    order,
    token_counts,
    tokenizer_id,
)
from curation_dag.steps.quality.rules import Rule
from curation_dag.store.atomic import atomic_path, checked_parquet
from curation_dag.store.files import parquet_file, read_parquet, scan_parquet
from curation_dag.store.layout import (
    CANDIDATES,
    DECISIONS,
    MANIFEST,
    MIXTURE_DOCUMENTS,
    QUALITY_SCORES,
    RAW_DOCUMENTS,
    RUN,
    SUMMARY,
    Layout,
)
from curation_dag.store.ledger import Ledger

BATCH_ROWS = 16384  # texts read, counted and written at a time
# The documents file is sorted in runs of consecutive positions holding about this much text, spilled
# to local disk as the texts stream in: the most text the build holds at once.
RUN_CHARS = 64 << 20


@dataclass(frozen=True)
class Built:
    """A materialization as written: its folder and report, manifest hash, summary and counts."""

    folder: Path
    report: Path
    digest: str
    summary: dict
    candidates: int
    documents: int
    copies: int
    tokens_counted_now: int


def build_mixture(
    layout: Layout,
    name: str,
    spec: MixtureSpec,
    spec_path: Path,
    pool: str,
    run_id: str,
    upstream: dict,
    rules: tuple[Rule, ...],
) -> Built:
    """Materialize mixture `name` from the candidates of recipe model `pool`. `run_id` and `upstream`
    (the latest materialization of every upstream asset) go into the run record; `rules`, the configured
    quality rules, into the filter stage's reasons and the report. Raises Infeasible, or ValueError for a
    pool or spec that cannot be used, before anything is written."""
    candidates = read_candidates(layout, pool, spec_path)
    complexity_file = layout.cluster_complexity()
    complexity = read_parquet(complexity_file) if complexity_file.is_file() else None
    decisions = decide(spec, candidates, rules, complexity)

    survivors = candidates.filter(decisions["stage"].is_null()).select("doc_id", "source")
    tokens, counted_now = count_tokens(layout, survivors["doc_id"], spec.tokenizer)
    survivors = survivors.join(tokens, on="doc_id", maintain_order="left")
    selected = allocate(spec, survivors, str(spec_path))  # raises before anything is written
    decisions = verdicts(decisions, selected)
    copies, manifest = _copies_and_manifest(spec, candidates, selected)

    digest = manifest_digest(manifest)
    out = layout.materialization(name, digest)
    out.mkdir(parents=True, exist_ok=True)
    _write_documents(
        layout, copies.select("position", "doc_id", "copy", "source"), out / f"{MIXTURE_DOCUMENTS}.{spec.format}"
    )
    _write(manifest, out / MANIFEST)
    _write(decisions, out / DECISIONS)
    _write(candidates, out / CANDIDATES)  # the audit stays exact after later drops
    summary = summarize(spec, manifest, candidates, decisions, digest)
    _write_json(out / SUMMARY, summary)
    _write_json(out / RUN, run_record(layout, name, spec_path, digest, run_id, upstream))
    report = render_report(out, rules)
    with atomic_path(layout.current(name)) as temporary:
        temporary.write_text(out.name)
    return Built(out, report, digest, summary, candidates.height, manifest.height, copies.height, counted_now)


def read_candidates(layout: Layout, pool: str, spec_path: Path) -> pl.DataFrame:
    """The pool's rows, each doc_id once, with every quality signal the pool lacks, from quality_scores."""
    path = checked_parquet(layout.recipe_model(pool), f"Materialize {pool} again to rewrite it.")
    candidates = read_parquet(path)
    if candidates["doc_id"].n_unique() != candidates.height:
        raise ValueError(f"{spec_path}: pool {pool} has repeated doc_ids; a candidate pool lists each once")
    ledger = Ledger(layout.asset(QUALITY_SCORES))
    if not ledger.drops:
        return candidates
    scores = scan_parquet(ledger.decision_files())
    missing = [c for c in scores.collect_schema().names() if c not in candidates.columns]
    return candidates.join(scores.select("doc_id", *missing).collect(), on="doc_id", how="left", maintain_order="left")


def count_tokens(layout: Layout, doc_ids: pl.Series, tokenizer: str) -> tuple[pl.DataFrame, int]:
    """doc_id and tokens, and how many texts were counted now. Counting dominates a mixture build,
    so counts are kept by content hash under `Layout.token_counts`, one file per build that counted
    new texts: a rebuild after a new drop counts only that drop's survivors."""
    hashes = _raw_documents(layout, doc_ids, ["content_hash"])
    folder = layout.token_counts(tokenizer_id(tokenizer))
    known = sorted(folder.glob("*.parquet"))
    wanted = hashes["content_hash"].unique().implode()
    counted = (
        scan_parquet(known).filter(pl.col("content_hash").is_in(wanted)).collect()
        if known
        else pl.DataFrame(schema={"content_hash": pl.String, "tokens": pl.Int64})
    )
    new = hashes.join(counted, on="content_hash", how="anti").unique("content_hash").sort("content_hash")
    if new.height:
        counts = [
            batch.select("content_hash", tokens=pl.Series(token_counts(batch["text"].to_list(), tokenizer)))
            for batch in (texts.join(new, on="doc_id") for texts in _texts(layout, new["doc_id"]))
        ]
        new = pl.concat(counts).sort("content_hash")
        name = hashlib.sha256("".join(new["content_hash"]).encode()).hexdigest()[:16]
        with atomic_path(folder / f"{name}.parquet") as temporary:
            new.write_parquet(temporary, compression="zstd")
        counted = pl.concat([counted, new])
    return hashes.join(counted.unique("content_hash"), on="content_hash").select("doc_id", "tokens"), new.height


def verdicts(decisions: pl.DataFrame, selected: pl.DataFrame) -> pl.DataFrame:
    """The decision ledger: stages 1-4's decisions, and the budget's (`selected`, repeats per survivor)."""
    decisions = decisions.join(selected.select("doc_id", "repeats", "tokens"), on="doc_id", how="left").with_columns(
        pl.when(pl.col("stage").is_null() & (pl.col("repeats") == 0))
        .then(pl.lit("budget"))
        .otherwise(pl.col("stage"))
        .alias("stage"),
        pl.when(pl.col("stage").is_null() & (pl.col("repeats") == 0))
        .then(pl.lit("not needed: the source's token budget was already filled"))
        .otherwise(pl.col("reason"))
        .alias("reason"),
        repeats=pl.col("repeats").fill_null(0),
    )
    return decisions.select(
        "doc_id",
        verdict=pl.when(pl.col("stage").is_null()).then(pl.lit("kept")).otherwise(pl.lit("removed")),
        stage="stage",
        reason="reason",
        repeats="repeats",
        tokens="tokens",
        duplicate_of="duplicate_of",
        similarity="similarity",
        rule="rule",
        value="value",
    )


def _copies_and_manifest(
    spec: MixtureSpec, candidates: pl.DataFrame, selected: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every copy in training order, and the manifest: one row per kept document, by first position."""
    curriculum = [] if spec.order == "shuffle" else [spec.order.by]
    extra = list(dict.fromkeys(c for c in ("cluster", "language", *curriculum) if c in candidates.columns))
    chosen = selected.filter(pl.col("repeats") > 0).join(
        candidates.select("doc_id", *extra), on="doc_id", maintain_order="left"
    )
    copies = order(spec, chosen)
    first = copies.group_by("doc_id").agg(position=pl.col("position").min())
    manifest = (
        chosen.join(first, on="doc_id")
        .select("doc_id", "repeats", "position", "tokens", "source", *(["cluster"] if "cluster" in extra else []))
        .sort("position")
    )
    return copies, manifest


def summarize(
    spec: MixtureSpec, manifest: pl.DataFrame, candidates: pl.DataFrame, decisions: pl.DataFrame, digest: str
) -> dict:
    """The summary.json of a materialization: tokens, the funnel, shares by source, language and cluster."""
    tokens = manifest.with_columns(total=pl.col("tokens") * pl.col("repeats"))
    total = int(tokens["total"].sum())
    by_source = (
        tokens.group_by("source")
        .agg(documents=pl.len(), tokens=pl.col("total").sum())
        .with_columns(
            share=(pl.col("tokens") / max(total, 1)).round(4),
            weight=pl.col("source").replace_strict(spec.weights, default=0.0),
        )
        .sort("source")
    )
    described = tokens.join(candidates.select("doc_id", *[c for c in ("language",) if c in candidates.columns]),
                            on="doc_id", how="left")  # fmt: skip
    language = "language" if "language" in described.columns else None
    by_language = (
        described.group_by(language).agg(tokens=pl.col("total").sum()).sort("tokens", descending=True)
        if language
        else pl.DataFrame()
    )
    by_cluster = (
        tokens.group_by("cluster").agg(tokens=pl.col("total").sum()).sort("cluster")
        if "cluster" in tokens.columns
        else pl.DataFrame()
    )
    funnel = (
        decisions.group_by("stage")
        .agg(documents=pl.len())
        .with_columns(pl.col("stage").fill_null("kept"))
        .sort(pl.col("stage").replace_strict({s: i for i, s in enumerate(FUNNEL)}))
    )
    return {
        "manifest_sha256": digest,
        "candidates": candidates.height,
        "tokens": total,
        "budget_tokens": spec.budget_tokens,
        "funnel": funnel.to_dicts(),
        "by_source": by_source.to_dicts(),
        "by_language": by_language.to_dicts(),
        "by_cluster": by_cluster.to_dicts(),
    }


def run_record(layout: Layout, name: str, spec_path: Path, digest: str, run_id: str, upstream: dict) -> dict:
    """What made a materialization: the recipe files' hashes, the run, the latest materialization of
    every upstream asset (`upstream`) and the drops absorbed so far."""
    recipes = spec_path.parent.parent
    files = sorted(p for p in recipes.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml", ".sql"))
    return {
        "mixture": name,
        "spec_file": str(spec_path),
        "manifest_sha256": digest,
        "run_id": run_id,
        "materialized_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipes": {str(p.relative_to(recipes)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
        "upstream": upstream,
        "drops": Ledger(layout.asset(QUALITY_SCORES)).keys,
    }


def _raw_files(layout: Layout) -> list[Path]:
    recovery = f"Materialize {RAW_DOCUMENTS} for that drop again to rewrite it."
    return [checked_parquet(path, recovery) for path in layout.per_drop_files(RAW_DOCUMENTS)]


def _raw_documents(layout: Layout, doc_ids: pl.Series, columns: list[str]) -> pl.DataFrame:
    """Compact columns (never the text) of the given documents."""
    wanted = doc_ids.implode()
    return scan_parquet(_raw_files(layout)).filter(pl.col("doc_id").is_in(wanted)).select("doc_id", *columns).collect()


def _texts(layout: Layout, doc_ids: pl.Series) -> Iterator[pl.DataFrame]:
    """doc_id and text of the given documents, in batches of at most BATCH_ROWS, as the raw documents hold them."""
    wanted = doc_ids.unique().to_arrow()
    for path in _raw_files(layout):
        for batch in parquet_file(path).iter_batches(BATCH_ROWS, columns=["doc_id", "text"]):
            chosen = batch.filter(pc.is_in(batch["doc_id"], value_set=wanted))
            if chosen.num_rows:
                yield pl.from_arrow(chosen)


def _write_documents(layout: Layout, copies: pl.DataFrame, path: Path) -> None:
    """Every copy with its text, in training order. The texts stream in, in the raw documents' order, and
    each copy is spilled to its run (consecutive positions, RUN_CHARS of text); then each run is sorted
    and appended in turn."""
    sizes = _raw_documents(layout, copies["doc_id"], ["n_chars"])
    runs = (
        copies.join(sizes, on="doc_id", maintain_order="left")
        .sort("position")
        .with_columns(run=pl.col("n_chars").cast(pl.Int64).cum_sum() // RUN_CHARS)
        .drop("n_chars")
    )
    with tempfile.TemporaryDirectory() as spill, atomic_path(path) as temporary:
        spilled: dict[int, pq.ParquetWriter] = {}
        for texts in _texts(layout, runs["doc_id"]):
            for (run,), part in runs.join(texts, on="doc_id").partition_by("run", as_dict=True).items():
                table = part.drop("run").to_arrow()
                if run not in spilled:
                    spilled[run] = pq.ParquetWriter(f"{spill}/{run}.parquet", table.schema)
                spilled[run].write_table(table)
        for writer in spilled.values():
            writer.close()
        ordered = (read_parquet(f"{spill}/{run}.parquet").sort("position") for run in sorted(spilled))
        if path.suffix == ".jsonl":
            with open(temporary, "wb") as handle:
                for documents in ordered:
                    documents.write_ndjson(handle)
            return
        schema = copies.head(0).with_columns(text=pl.lit(None, pl.String)).to_arrow().schema
        with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
            for documents in ordered:
                writer.write_table(documents.to_arrow())


def _write(frame: pl.DataFrame, path: Path) -> None:
    with atomic_path(path) as temporary:
        frame.write_parquet(temporary, compression="zstd")


def _write_json(path: Path, record: dict) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(record, indent=1))
