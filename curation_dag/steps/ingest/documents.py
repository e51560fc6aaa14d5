"""Ingest one drop: normalize every readable record to one schema and quarantine the rest with a reason."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curation_dag.steps.ingest.drops import COMPLETE_MARKER, Drop
from curation_dag.steps.ingest.reasons import Reason
from curation_dag.steps.ingest.shards import BLOCK_BYTES, Quarantined, RawBatch, excerpt, read_shard
from curation_dag.steps.ingest.sources import SourceSpec
from curation_dag.store.atomic import atomic_path

T = TypeVar("T")

DOCUMENTS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("drop_id", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("source_id", pa.string()),
        # string_view, as polars holds text, so no copy is made; the file stores plain UTF-8 columns.
        pa.field("text", pa.string_view(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("n_chars", pa.int64(), nullable=False),
        pa.field("metadata", pa.string(), nullable=False),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("drop_id", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("row", pa.int64()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("excerpt", pa.string(), nullable=False),
    ]
)

# zstd level 1 compresses text about 3.7x at a fraction of level 3's cost (benchmarks/ingest.py); the
# file keeps plain UTF-8 string columns rather than the in-memory string views.
_DOCUMENTS_PARQUET = {"compression": "zstd", "compression_level": 1, "store_schema": False}


class NothingReadable(ValueError):
    """A drop none of whose rows could be accepted."""


@dataclass
class IngestReport:
    """What one drop's ingest did: counts are data, so checks and metadata can use them."""

    input_rows: int = 0
    accepted: int = 0
    shards: int = 0
    input_bytes: int = 0
    text_bytes: int = 0
    ignored_files: list[str] = field(default_factory=list)
    quarantined_by_reason: Counter = field(default_factory=Counter)

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())


def normalize_text(text: pl.Series) -> pl.Series:
    """The stored text: LF line endings and no surrounding whitespace; everything else is kept as is."""
    if text.str.contains("\r", literal=True).any():
        text = text.str.replace_all("\r\n", "\n", literal=True).str.replace_all("\r", "\n", literal=True)
    return text.str.strip_chars()


def sha256_hex(texts: pl.Series) -> list[str]:
    """SHA-256 of each string's UTF-8 bytes, read in place from polars' string views (no copies)."""
    array = texts.rechunk().to_arrow(compat_level=pl.CompatLevel.newest())
    if array.type != pa.string_view():
        array = array.cast(pa.string_view())
    buffers = array.buffers()
    raw_views = memoryview(buffers[1])
    data = [memoryview(buffer) for buffer in buffers[2:]]
    # Arrow's string view: int32 length, then 12 inline bytes if length <= 12, else a 4-byte prefix,
    # int32 buffer index and int32 offset (arrow.apache.org/docs/format/Columnar.html#variable-size-binary-view-layout).
    views = np.frombuffer(buffers[1], dtype=np.int32).reshape(-1, 4)[array.offset : array.offset + len(array)]
    digests = []
    for position, length, buffer_index, offset in zip(
        range(array.offset, array.offset + len(array)),
        views[:, 0].tolist(),
        views[:, 2].tolist(),
        views[:, 3].tolist(),
        strict=True,
    ):
        if length <= 12:
            chunk = raw_views[position * 16 + 4 : position * 16 + 4 + length]
        else:
            chunk = data[buffer_index][offset : offset + length]
        digests.append(sha256(chunk).hexdigest())
    return digests


def _is_utf8(name: str) -> bool:
    return name == _printable(name)


def _printable(name: str) -> str:
    """A file name as UTF-8 text: bytes that are not UTF-8 (held as surrogates by Python) become U+FFFD."""
    return os.fsencode(name).decode("utf-8", errors="replace")


class _DropIngest:
    """The per-drop state that outlives a batch: ids seen so far and the running report."""

    def __init__(self, drop: Drop, spec: SourceSpec, block_bytes: int):
        self.drop, self.spec, self.block_bytes = drop, spec, block_bytes
        self.first_use: dict[str, tuple[str, int]] = {}  # id -> (shard, row) where it was accepted
        self.outside: list[Path] = []
        self.misnamed: list[Path] = []
        self.report = IngestReport()

    def shards(self) -> list[Path]:
        """The shard files of the drop, in order; links that resolve outside it are in `self.outside`."""
        root = self.drop.path.resolve()
        skipped = {COMPLETE_MARKER}
        matched = sorted(self.drop.path.glob(self.spec.path_pattern))
        candidates = [p for p in matched if p.name not in skipped and not p.name.startswith(".")]
        self.outside = [p for p in candidates if not p.resolve().is_relative_to(root)]
        self.misnamed = [p for p in candidates if p not in self.outside and p.is_file() and not _is_utf8(self._name(p))]
        shards, targets = [], set()
        for path in candidates:
            # Folders (and links to them) are not shards; a file reached again through a link is read once.
            if path in self.outside or path in self.misnamed or not path.is_file() or path.resolve() in targets:
                continue
            targets.add(path.resolve())
            shards.append(path)
        everything = {p for p in self.drop.path.rglob("*") if p.is_file() and p.name not in skipped}
        ignored = everything - set(shards) - set(self.outside) - set(self.misnamed)
        self.report.ignored_files = sorted(_printable(self._name(p)) for p in ignored)
        return shards

    def _name(self, path: Path) -> str:
        return path.relative_to(self.drop.path).as_posix()

    def _whole_file(self, path: Path, reason: Reason, detail: str) -> tuple[str, RawBatch]:
        """A shard quarantined without being opened, as one row."""
        empty = pl.DataFrame(schema={"row": pl.Int64, "id": pl.String, "text": pl.String, "metadata": pl.String})
        return _printable(self._name(path)), RawBatch(empty, [Quarantined(None, reason, detail, "")], 1)

    def batches(self) -> Iterator[tuple[str, RawBatch]]:
        shards = self.shards()
        for path in self.outside:  # never opened: a link to /etc/passwd must not reach an excerpt
            target = _printable(str(path.resolve()))
            detail = f"the file links outside the drop folder ({target}); shards must be files inside the drop"
            yield self._whole_file(path, Reason.OUTSIDE_DROP, detail)
        for path in self.misnamed:  # the shard name is part of every doc_id, which is UTF-8
            yield self._whole_file(path, Reason.INVALID_FILE_NAME, "the file name is not UTF-8; rename the file")
        for path in shards:
            self.report.shards += 1
            self.report.input_bytes += path.stat().st_size
            shard = path.relative_to(self.drop.path).as_posix()
            yield from ((shard, batch) for batch in read_shard(path, self.spec, self.block_bytes))

    def split(self, batch: RawBatch, shard: str) -> tuple[pa.Table, pa.Table]:
        """Accepted documents and quarantined rows of one batch, in the two output schemas."""
        records = batch.records.with_columns(normalize_text(batch.records["text"]).alias("normalized"))
        size = pl.col("normalized").str.len_bytes()
        reason = (
            pl.when(pl.col("text").is_null())
            .then(pl.lit(Reason.MISSING_TEXT))
            .when(size == 0)
            .then(pl.lit(Reason.EMPTY_TEXT))
            .when(size > self.spec.max_text_bytes)
            .then(pl.lit(Reason.TEXT_TOO_LARGE))
        )
        if self.spec.id_field:
            reason = reason.when(pl.col("id").is_null()).then(pl.lit(Reason.INVALID_ID))
        records = records.with_columns(reason.otherwise(pl.lit(None, dtype=pl.String)).alias("reason"))
        records = self._mark_duplicate_ids(records, shard)

        quarantined = list(batch.quarantined)
        for row in records.filter(pl.col("reason").is_not_null()).iter_rows(named=True):
            quarantined.append(
                Quarantined(
                    row["row"],
                    Reason(row["reason"]),
                    self._detail(row),
                    excerpt(row["text"] or json.dumps({"id": row["id"]})),
                )
            )
        accepted = records.filter(pl.col("reason").is_null())

        documents = accepted.select(
            pl.concat_str(pl.lit(f"{self.drop.key}/{shard}#"), pl.col("row").cast(pl.String)).alias("doc_id"),
            pl.lit(self.drop.source).alias("source"),
            pl.lit(self.drop.drop_id).alias("drop_id"),
            pl.lit(shard).alias("shard"),
            pl.col("row"),
            pl.col("id").alias("source_id"),
            pl.col("normalized").alias("text"),
            pl.Series("content_hash", sha256_hex(accepted["normalized"]), dtype=pl.String),
            pl.col("normalized").str.len_chars().cast(pl.Int64).alias("n_chars"),
            pl.col("metadata"),
        )
        self.report.accepted += documents.height
        self.report.input_rows += batch.input_rows
        self.report.text_bytes += int(documents["text"].str.len_bytes().sum() or 0)
        self.report.quarantined_by_reason.update(q.reason for q in quarantined)
        documents = documents.to_arrow(compat_level=pl.CompatLevel.newest()).cast(DOCUMENTS_SCHEMA)
        return documents, self._quarantine_table(quarantined, shard)

    def _mark_duplicate_ids(self, records: pl.DataFrame, shard: str) -> pl.DataFrame:
        if not self.spec.id_field:
            return records
        reasons = records["reason"].to_list()
        first_use = self.first_use
        for index, (row, identifier) in enumerate(zip(records["row"].to_list(), records["id"].to_list(), strict=True)):
            if reasons[index] is None:
                if identifier in first_use:
                    reasons[index] = Reason.DUPLICATE_ID
                else:
                    first_use[identifier] = (shard, row)
        return records.with_columns(pl.Series("reason", reasons, dtype=pl.String))

    def _detail(self, row: dict) -> str:
        reason, spec = row["reason"], self.spec
        if reason == Reason.MISSING_TEXT:
            return f"field {spec.text_field!r} is missing or null"
        if reason == Reason.EMPTY_TEXT:
            return f"field {spec.text_field!r} is empty or whitespace only"
        if reason == Reason.TEXT_TOO_LARGE:
            return f"text is {len(row['normalized'].encode())} bytes, over max_text_bytes={spec.max_text_bytes}"
        if reason == Reason.INVALID_ID:
            return f"field {spec.id_field!r} is missing or null"
        shard, first_row = self.first_use[row["id"]]
        return f"id {row['id']!r} was first used by {self.drop.key}/{shard}#{first_row}"

    def _quarantine_table(self, quarantined: list[Quarantined], shard: str) -> pa.Table:
        n = len(quarantined)
        return pa.table(
            {
                "source": [self.drop.source] * n,
                "drop_id": [self.drop.drop_id] * n,
                "shard": [shard] * n,
                "row": [q.row for q in quarantined],
                "reason": [q.reason for q in quarantined],
                "detail": [q.detail for q in quarantined],
                "excerpt": [q.excerpt for q in quarantined],
            },
            schema=QUARANTINE_SCHEMA,
        )


def _write(documents: pq.ParquetWriter, accepted: pa.Table, quarantine: pq.ParquetWriter, rejected: pa.Table) -> None:
    if accepted.num_rows:
        documents.write_table(accepted)
    if rejected.num_rows:
        quarantine.write_table(rejected)


def _read_ahead(batches: Iterator[T]) -> Iterator[T]:
    """Produce the next batch in a worker thread while this one is checked and written.

    Decompression, JSON parsing and Parquet writing release the GIL, so the two overlap on two cores.
    """
    with ThreadPoolExecutor(max_workers=1) as worker:
        upcoming = worker.submit(next, batches, None)
        while (batch := upcoming.result()) is not None:
            upcoming = worker.submit(next, batches, None)
            yield batch


def ingest_drop(
    drop: Drop, spec: SourceSpec, documents_path: Path, quarantine_path: Path, block_bytes: int = BLOCK_BYTES
) -> IngestReport:
    """Read every shard of `drop` into `documents_path` and `quarantine_path` (Parquet, atomic).

    Memory is bounded by a few batches of about `block_bytes` of JSONL (or PARQUET_BATCH_ROWS rows),
    which stream through Parquet writers. Raises NothingReadable,
    after writing the quarantine, when no row of the drop could be accepted.
    """
    state = _DropIngest(drop, spec, block_bytes)
    with (
        atomic_path(documents_path) as documents_tmp,
        atomic_path(quarantine_path) as quarantine_tmp,
        pq.ParquetWriter(documents_tmp, DOCUMENTS_SCHEMA, **_DOCUMENTS_PARQUET) as documents,
        pq.ParquetWriter(quarantine_tmp, QUARANTINE_SCHEMA, compression="zstd") as quarantine,
        ThreadPoolExecutor(max_workers=1) as writer,
    ):
        written = writer.submit(lambda: None)
        for shard, batch in _read_ahead(state.batches()):
            accepted, rejected = state.split(batch, shard)
            written.result()  # one batch in flight at most, and written in order
            written = writer.submit(_write, documents, accepted, quarantine, rejected)
        written.result()
    report = state.report
    if report.accepted == 0:
        reasons = ", ".join(f"{n} {r}" for r, n in report.quarantined_by_reason.most_common()) or "no shard files"
        raise NothingReadable(
            f"drop {drop.key} ({drop.path}): nothing readable ({reasons}); see {quarantine_path} and fix the shards"
        )
    return report
