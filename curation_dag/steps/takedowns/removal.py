"""Takedowns: documents removed on request (a licence, a privacy claim, a corrected drop), recorded in an
append-only log, purged from the stored texts, and kept out of every later mixture.

The ledgers of dedup, semantic and quality decisions are history and stay as written; a takedown is
applied where decisions are read (`apply`), so that:
- a removed document that was the kept copy of identical texts is replaced by the earliest remaining
  copy, which takes over its decisions at every later stage (the texts are equal, so are the verdicts);
- a removed document that was the kept original of near or semantic duplicates, with no identical copy
  left, hands the role to the earliest of them, in arrival order, as "the earliest is kept" elects;
- a later drop's document that matches a removed one is handled the same way, since it is read the same.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation_dag.steps.ingest.documents import QUARANTINE_SCHEMA
from curation_dag.store.atomic import atomic_path
from curation_dag.store.files import parquet_file, read_parquet, scan_parquet
from curation_dag.store.layout import (
    EXACT_DUPLICATES,
    NEAR_DUPLICATES,
    QUALITY_SCORES,
    RAW_DOCUMENTS,
    SEMANTIC_CLUSTERS,
    SEMANTIC_DUPLICATES,
    Layout,
)
from curation_dag.store.ledger import Ledger, exclusive

REASON = "taken_down"
MEANING = {REASON: "taken down on request (`curate remove`); the row's text is not kept"}
PROVENANCE = ["doc_id", "content_hash", "source", "drop_id", "shard", "row", "source_id", "n_chars"]


class TakedownError(ValueError):
    """A takedown request that names nothing, or documents that do not exist."""


@dataclass(frozen=True)
class Removed:
    """Everything taken down so far: the documents by id (with the takedown that removed each), and the
    content hashes asked for, which also keep the same text out when a later drop brings it again."""

    doc_ids: dict[str, str]
    content_hashes: dict[str, str]

    def __bool__(self) -> bool:
        return bool(self.doc_ids or self.content_hashes)

    def mask(self, doc_ids: pl.Expr, content_hashes: pl.Expr | None = None) -> pl.Expr:
        removed = doc_ids.is_in(pl.Series(list(self.doc_ids), dtype=pl.String).implode())
        if content_hashes is not None:
            removed |= content_hashes.is_in(pl.Series(list(self.content_hashes), dtype=pl.String).implode())
        return removed


class TakedownLog:
    """The takedown log (`Layout.takedown_log`), one takedown a line, each added under a lock (on a local
    root) by writing the log again atomically, earlier lines unchanged."""

    def __init__(self, path: Path):
        self.path = path

    def entries(self) -> list[dict]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def removed(self) -> Removed:
        doc_ids, hashes = {}, {}
        for entry in self.entries():
            doc_ids |= {document["doc_id"]: entry["takedown"] for document in entry["documents"]}
            hashes |= dict.fromkeys(entry["asked"]["content_hashes"], entry["takedown"])
        return Removed(doc_ids, hashes)

    def entry_for(self, doc_id: str) -> dict | None:
        """The takedown that removed a document, with its recorded provenance, or None."""
        for entry in self.entries():
            for document in entry["documents"]:
                if document["doc_id"] == doc_id:
                    return {**{k: v for k, v in entry.items() if k != "documents"}, "document": document}
        return None

    def digest(self) -> str:
        return hashlib.sha256(self.path.read_bytes() if self.path.is_file() else b"").hexdigest()[:24]

    def append(self, requested_by: str, reason: str, asked: dict, documents: pl.DataFrame) -> dict:
        """Record one takedown of `documents` (their provenance, never their text); returns the entry."""
        at = datetime.now(UTC).isoformat(timespec="seconds")
        key = json.dumps([at, requested_by, reason, asked], sort_keys=True).encode()
        entry = {
            "takedown": hashlib.sha256(key).hexdigest()[:12],
            "requested_at": at,
            "requested_by": requested_by,
            "reason": reason,
            "asked": asked,
            "documents": documents.select(PROVENANCE).to_dicts(),
        }
        with exclusive(self.path.parent):  # object storage has no append: the log is written again, whole
            earlier = self.path.read_bytes() if self.path.is_file() else b""
            with atomic_path(self.path) as temporary:
                temporary.write_bytes(earlier + (json.dumps(entry) + "\n").encode())
        return entry


def select(documents: list[Path], doc_ids: list[str], content_hashes: list[str], drops: list[str]) -> pl.DataFrame:
    """The stored documents a request names (by id, by content hash, or every document of a drop), with
    their provenance; an id or drop that matches nothing is refused, naming it."""
    if not (doc_ids or content_hashes or drops):
        raise TakedownError("a takedown names no documents: give doc ids, content hashes or drops")
    wanted = (
        pl.col("doc_id").is_in(pl.Series(doc_ids, dtype=pl.String).implode())
        | pl.col("content_hash").is_in(pl.Series(content_hashes, dtype=pl.String).implode())
        | pl.concat_str("source", pl.lit("/"), "drop_id").is_in(pl.Series(drops, dtype=pl.String).implode())
    )
    found = (
        scan_parquet(documents).filter(wanted).select(PROVENANCE).collect().sort("doc_id")
        if documents
        else pl.DataFrame(schema=dict.fromkeys(PROVENANCE, pl.String))
    )
    missing = sorted(set(doc_ids) - set(found["doc_id"]))
    missing += sorted(set(drops) - set(found["source"] + "/" + found["drop_id"]))
    if missing:
        raise TakedownError(
            f"no stored document matches {', '.join(missing)}: doc ids look like <source>/<drop_id>/<shard>#<row> "
            f"and drops like <source>/<drop_id> (see {RAW_DOCUMENTS}); nothing was taken down"
        )
    return found


def purge_documents(documents: Path, quarantine: Path, removed: Removed, detail: str) -> int:
    """Rewrite a drop's documents file without the removed documents, and add each to its quarantine
    as `taken_down` with no excerpt, so every input row stays accounted for. Streams row groups."""
    if not removed or not documents.is_file():
        return 0
    taken = (
        scan_parquet(documents)
        .filter(removed.mask(pl.col("doc_id"), pl.col("content_hash")))
        .select("doc_id", "source", "drop_id", "shard", "row")
        .collect()
    )
    if not taken.height:
        return 0
    gone = pa.array(taken["doc_id"].to_list(), pa.string())
    source = parquet_file(documents)
    with (
        atomic_path(documents) as temporary,
        pq.ParquetWriter(temporary, source.schema_arrow, compression="zstd") as out,
    ):
        for batch in source.iter_batches():
            out.write_batch(batch.filter(pc.invert(pc.is_in(batch["doc_id"], gone))))
    rows = taken.select(
        "source",
        "drop_id",
        "shard",
        "row",
        reason=pl.lit(REASON),
        detail=pl.lit(detail),
        excerpt=pl.lit(""),
    ).to_arrow()
    earlier = parquet_file(quarantine).read() if quarantine.is_file() else QUARANTINE_SCHEMA.empty_table()
    with atomic_path(quarantine) as temporary:
        pq.write_table(pa.concat_tables([earlier, rows.cast(QUARANTINE_SCHEMA)]), temporary, compression="zstd")
    return taken.height


def purge(layout: Layout, selected: pl.DataFrame, removed: Removed, detail: str) -> dict[str, int]:
    """Purge the removed documents from the stored texts of the drops of `selected` (the documents a
    takedown named) and from every mixture's documents file; returns the texts purged by file: each of
    those drops' documents file, and the mixture files that had any."""
    purged = {}
    for drop in sorted(set(selected["source"] + "/" + selected["drop_id"])):
        documents = layout.documents(drop)
        purged[str(documents)] = purge_documents(documents, layout.quarantine(drop), removed, detail)
    for path in layout.mixture_documents():
        if count := purge_file(path, removed):
            purged[str(path)] = count
    return purged


def purge_file(path: Path, removed: Removed) -> int:
    """Rewrite a mixture's documents file (Parquet or JSONL) without the removed documents."""
    frame = pl.read_ndjson(path.read_bytes()) if path.suffix == ".jsonl" else read_parquet(path)
    kept = frame.filter(~removed.mask(pl.col("doc_id")))
    if kept.height == frame.height:
        return 0
    with atomic_path(path) as temporary:
        kept.write_ndjson(temporary) if path.suffix == ".jsonl" else kept.write_parquet(temporary, compression="zstd")
    return frame.height - kept.height


@dataclass(frozen=True)
class Overlay:
    """The takedowns as they bear on the ledgers: every removed doc_id (later copies of a removed
    text included), the replacement of each removed kept copy, and every document's arrival order."""

    removed: frozenset[str]
    replaced_by: dict[str, str]
    order: pl.DataFrame

    def apply(
        self, decisions: pl.DataFrame, column: str | None = None, similarity: str | None = None, takes_over: bool = True
    ) -> pl.DataFrame:
        """One stage's decisions as they stand after the takedowns (see the module's docstring).

        `column` names the stage's duplicate-of column and `similarity` its score, unknown for a
        re-elected pair and so cleared. With `takes_over`, a replacement copy takes over the removed
        copy's row (every stage but exact dedup, which elects the replacements)."""
        removed, replaced_by = list(self.removed), self.replaced_by
        if takes_over:
            renamed = pl.col("doc_id").replace(replaced_by)
            decisions = decisions.filter(~pl.col("doc_id").is_in(list(replaced_by.values()))).with_columns(
                doc_id=renamed, **_identity(decisions, renamed)
            )
        decisions = decisions.filter(~pl.col("doc_id").is_in(removed))
        if column is None:
            return decisions
        target = pl.col(column).replace(replaced_by)
        decisions = decisions.with_columns(
            pl.when(target == pl.col("doc_id")).then(None).otherwise(target).alias(column)
        )
        orphaned = pl.col(column).is_in(removed)
        ranked = decisions.join(self.order.select("doc_id", rank="ordinal"), on="doc_id", how="left")
        heirs = ranked.filter(orphaned).sort("rank").group_by(column, maintain_order=True).first()
        new_target = pl.col(column).replace(dict(heirs.select(column, "doc_id").iter_rows()))
        decisions = decisions.with_columns(
            pl.when(orphaned & (new_target == pl.col("doc_id"))).then(None).otherwise(new_target).alias(column),
            *([pl.when(orphaned).then(None).otherwise(pl.col(similarity)).alias(similarity)] if similarity else []),
        )
        return _with_drops(decisions, column)


def overlay(exact: pl.DataFrame, removed: Removed) -> Overlay:
    """The overlay of `removed` on the exact-dedup decisions of every drop (`doc_id`, `ordinal`,
    `content_hash`, `duplicate_of`): a removed kept copy is replaced by its earliest remaining copy."""
    gone = exact.filter(removed.mask(pl.col("doc_id"), pl.col("content_hash")))
    ids = frozenset(gone["doc_id"]) | frozenset(removed.doc_ids)
    remaining = exact.filter(~pl.col("doc_id").is_in(list(ids)) & pl.col("duplicate_of").is_in(list(ids)))
    earliest = remaining.sort("ordinal").group_by("duplicate_of", maintain_order=True).first()
    return Overlay(ids, dict(earliest.select("duplicate_of", "doc_id").iter_rows()), exact.select("doc_id", "ordinal"))


def _identity(decisions: pl.DataFrame, renamed: pl.Expr) -> dict[str, pl.Expr]:
    """`source` and `drop` follow a renamed doc_id (`<source>/<drop_id>/...`)."""
    parts = renamed.str.split("/")
    columns = {}
    if "source" in decisions.columns:
        columns["source"] = parts.list.get(0)
    if "drop" in decisions.columns:
        columns["drop"] = parts.list.get(0) + "/" + parts.list.get(1)
    return columns


def _with_drops(decisions: pl.DataFrame, column: str) -> pl.DataFrame:
    if f"{column}_drop" not in decisions.columns:
        return decisions
    parts = pl.col(column).str.split("/")
    return decisions.with_columns((parts.list.get(0) + "/" + parts.list.get(1)).alias(f"{column}_drop"))


# How each pipeline source reads after the takedowns: its duplicate-of column, that column's score,
# and whether a replacement copy takes over the removed copy's row. Others are only filtered.
VIEWS: dict[str, tuple[str | None, str | None, bool]] = {
    EXACT_DUPLICATES: ("duplicate_of", None, False),
    NEAR_DUPLICATES: ("duplicate_of", "jaccard", True),
    SEMANTIC_DUPLICATES: ("semantic_duplicate_of", "cosine", True),
    SEMANTIC_CLUSTERS: (None, None, True),
    QUALITY_SCORES: (None, None, True),
}


def log_of(storage_root: str | Path) -> TakedownLog:
    return TakedownLog(Layout.at(storage_root).takedown_log())


def current_overlay(storage_root: str | Path) -> Overlay | None:
    """The overlay of every takedown so far, or None when nothing was taken down."""
    removed = log_of(storage_root).removed()
    if not removed:
        return None
    exact = Ledger(Layout.at(storage_root).asset(EXACT_DUPLICATES)).scan_decisions()
    columns = {"doc_id": pl.String, "ordinal": pl.Int64, "content_hash": pl.String, "duplicate_of": pl.String}
    frame = exact.select(list(columns)).collect() if exact is not None else pl.DataFrame(schema=columns)
    return overlay(frame, removed)


def view(storage_root: str | Path, asset: str, files: list[str]) -> list[str] | pl.DataFrame:
    """A pipeline source's files, or, once something was taken down, its rows as they now stand."""
    current = current_overlay(storage_root)
    if current is None or asset == RAW_DOCUMENTS:  # purged in place: never loaded, texts and all
        return files
    frame = scan_parquet(files).collect()
    if asset in VIEWS:
        return current.apply(frame, *VIEWS[asset])
    return frame.filter(~pl.col("doc_id").is_in(list(current.removed)))
