"""Shard readers: JSONL (plain, gzip, zstd) and Parquet, yielding bounded batches of raw records.

A batch is a frame with the columns `row` (1-based line or row number in the shard), `id`, `text`
and `metadata` (JSON), plus the rows that could not even be parsed, already quarantined. Checks
that apply to every format (missing or empty text, ids) happen later, in `ingest`.
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from isal import isal_zlib

from curation_dag.core.sources import SourceSpec

EXCERPT_CHARS = 200
READ_CHUNK_BYTES = 1 << 20
# Decompressed JSONL is parsed this many bytes at a time: the memory bound of ingest, whatever the shard size.
BLOCK_BYTES = 16 << 20
PARQUET_BATCH_ROWS = 8192

_DECOMPRESSORS: dict[str, Callable[[], object]] = {
    # ISA-L inflates about 3x faster than zlib on this kind of machine (benchmarks/ingest.py).
    ".gz": lambda: isal_zlib.decompressobj(wbits=zlib.MAX_WBITS | 16),
    ".zst": lambda: zstandard.ZstdDecompressor().decompressobj(),
}


def shard_format(path: Path) -> str | None:
    """`jsonl`, `parquet` or None (unknown) from the file name."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return None


@dataclass
class Quarantined:
    """An input row (or a whole file, when row is None) that was not accepted, and why."""

    row: int | None
    reason: str
    detail: str
    excerpt: str


@dataclass
class RawBatch:
    records: pl.DataFrame
    quarantined: list[Quarantined] = field(default_factory=list)
    input_rows: int = 0


def excerpt(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        raw = raw[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return raw[:EXCERPT_CHARS]


def _records_frame(rows: list[int], ids: list, texts: list, metadata: dict[str, list]) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "row": pl.Series(rows, dtype=pl.Int64),
            "id": pl.Series(ids, dtype=pl.String, strict=False),
            "text": pl.Series(texts, dtype=pl.String),
            **{name: pl.Series(values, strict=False) for name, values in metadata.items()},
        }
    )
    return frame.select("row", "id", "text", _metadata_json(frame, list(metadata)))


def _metadata_json(frame: pl.DataFrame, fields: list[str]) -> pl.Series:
    """The kept fields of each record as one JSON object; absent fields are null."""
    if not fields:
        return pl.Series("metadata", ["{}"] * frame.height, dtype=pl.String)
    missing = [pl.lit(None, dtype=pl.String).alias(f) for f in fields if f not in frame.columns]
    kept = frame.with_columns(missing).select(pl.struct(fields).struct.json_encode().alias("metadata"))
    return kept.to_series()


# ---------------------------------------------------------------- JSONL


class DamagedStream(Exception):
    """The compressed stream ended early or is corrupt; `tail` holds the partial line read before it."""

    def __init__(self, reason: str, detail: str, tail: bytes = b""):
        super().__init__(detail)
        self.reason, self.detail, self.tail = reason, detail, tail


def _decompressed_chunks(path: Path) -> Iterator[bytes]:
    make = _DECOMPRESSORS.get(path.suffix.lower())
    with open(path, "rb") as handle:
        if make is None:
            yield from iter(lambda: handle.read(READ_CHUNK_BYTES), b"")
            return
        decompressor = make()
        while chunk := handle.read(READ_CHUNK_BYTES):
            while chunk:
                try:
                    yield decompressor.decompress(chunk)
                except (isal_zlib.error, zstandard.ZstdError) as error:
                    raise DamagedStream("unreadable_file", f"corrupt compressed data: {error}") from None
                # Concatenated members (gzip) or frames (zstd) are one stream.
                chunk = decompressor.unused_data if decompressor.eof else b""
                if chunk:
                    decompressor = make()
        if not decompressor.eof:
            raise DamagedStream("truncated_file", "compressed stream ends before its end marker (truncated file)")


def _line_blocks(path: Path, block_bytes: int) -> Iterator[bytes]:
    """Blocks of whole lines, each ending in a newline; raises DamagedStream after the last good block."""
    pending: list[bytes] = []
    size = 0
    try:
        for chunk in _decompressed_chunks(path):
            pending.append(chunk)
            size += len(chunk)
            if size >= block_bytes:
                data = b"".join(pending)
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield data[:cut]
                pending, size = [data[cut:]], len(data) - cut
    except DamagedStream as damage:
        data = b"".join(pending)
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        damage.tail = data[cut:]
        raise damage from None
    data = b"".join(pending)
    if data:
        yield data if data.endswith(b"\n") else data + b"\n"


def _fast_parse(block: bytes, spec: SourceSpec, first_row: int, n_lines: int) -> pl.DataFrame | None:
    """Parse a whole block with polars, or None when any line needs the exact line-by-line path.

    polars skips blank lines and turns non-string values into strings, so a block only qualifies
    when it yields one row per line and no `"<text_field>":` key in it is followed by a non-string.
    """
    key = re.escape(json.dumps(spec.text_field).encode())
    if re.search(key + rb'\s*:\s*[^"\s]', block):
        return None
    try:
        frame = pl.read_ndjson(io.BytesIO(block), infer_schema_length=None)
    except Exception:  # any parse problem: the line-by-line path finds and names it
        return None
    if frame.height != n_lines:
        return None
    text = frame[spec.text_field] if spec.text_field in frame.columns else pl.Series([None] * n_lines)
    if text.dtype not in (pl.String, pl.Null):
        return None
    ids = pl.Series([None] * n_lines, dtype=pl.String)
    if spec.id_field and spec.id_field in frame.columns:
        ids = frame[spec.id_field]
        if not (ids.dtype == pl.String or ids.dtype.is_integer() or ids.dtype == pl.Null):
            return None
    records = pl.DataFrame(
        {
            "row": pl.int_range(first_row, first_row + n_lines, dtype=pl.Int64, eager=True),
            "id": ids.cast(pl.String),
            "text": text.cast(pl.String),
        }
    )
    return records.with_columns(_metadata_json(frame, list(spec.metadata_fields)))


def _slow_parse(block: bytes, spec: SourceSpec, first_row: int) -> RawBatch:
    """Line by line: every line that is not a JSON object with a string text is quarantined with why."""
    rows, ids, texts = [], [], []
    metadata: dict[str, list] = {name: [] for name in spec.metadata_fields}
    quarantined = []
    lines = block.split(b"\n")[:-1]
    for row, line in enumerate(lines, start=first_row):
        problem = None
        if not line.strip():
            problem = ("blank_line", "blank line; JSON Lines needs one JSON object per line")
        else:
            try:
                record = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as error:
                problem = ("invalid_utf8", f"invalid UTF-8 at byte {error.start} of the line")
            except json.JSONDecodeError as error:
                problem = ("malformed_json", f"malformed JSON: {error.msg} at column {error.colno}")
            else:
                problem = _record_problem(record, spec)
        if problem:
            quarantined.append(Quarantined(row, *problem, excerpt(line)))
            continue
        rows.append(row)
        ids.append(record.get(spec.id_field) if spec.id_field else None)
        texts.append(record.get(spec.text_field))
        for name in spec.metadata_fields:
            metadata[name].append(record.get(name))
    return RawBatch(_records_frame(rows, ids, texts, metadata), quarantined, len(lines))


def _record_problem(record: object, spec: SourceSpec) -> tuple[str, str] | None:
    if not isinstance(record, dict):
        return "malformed_json", f"a JSON {type(record).__name__} where an object was expected"
    text = record.get(spec.text_field)
    if text is not None and not isinstance(text, str):
        return "non_string_text", f"field {spec.text_field!r} is a {type(text).__name__}, not a string"
    identifier = record.get(spec.id_field) if spec.id_field else None
    if identifier is not None and (isinstance(identifier, bool) or not isinstance(identifier, (str, int))):
        return "invalid_id", f"field {spec.id_field!r} is a {type(identifier).__name__}, not a string or integer"
    return None


def read_jsonl(path: Path, spec: SourceSpec, block_bytes: int = BLOCK_BYTES) -> Iterator[RawBatch]:
    next_row = 1
    try:
        for block in _line_blocks(path, block_bytes):
            n_lines = int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n")))
            records = _fast_parse(block, spec, next_row, n_lines)
            yield RawBatch(records, [], n_lines) if records is not None else _slow_parse(block, spec, next_row)
            next_row += n_lines
    except DamagedStream as damage:
        quarantined = Quarantined(next_row, damage.reason, damage.detail, excerpt(damage.tail))
        yield RawBatch(_records_frame([], [], [], {}), [quarantined], 1)


# ---------------------------------------------------------------- Parquet


def read_parquet(path: Path, spec: SourceSpec, batch_rows: int = PARQUET_BATCH_ROWS) -> Iterator[RawBatch]:
    try:
        shard = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        yield _whole_file(path, "unreadable_file", f"not a readable Parquet file: {error}")
        return
    names = set(shard.schema_arrow.names)
    text_type = shard.schema_arrow.field(spec.text_field).type if spec.text_field in names else None
    problem = None
    if text_type is None:
        problem = ("missing_text_column", f"no column {spec.text_field!r}; columns are {sorted(names)}")
    elif not (
        pa.types.is_string(text_type) or pa.types.is_large_string(text_type) or pa.types.is_string_view(text_type)
    ):
        problem = ("non_string_text", f"column {spec.text_field!r} has type {text_type}, not string")
    wanted = [spec.text_field, spec.id_field, *spec.metadata_fields] if problem is None else sorted(names)
    columns = list(dict.fromkeys(c for c in wanted if c and c in names))
    next_row = 1
    for batch in shard.iter_batches(batch_size=batch_rows, columns=columns):
        frame = pl.from_arrow(batch)
        rows = range(next_row, next_row + frame.height)
        next_row += frame.height
        if problem:
            samples = (json.dumps(r, default=str)[: EXCERPT_CHARS * 4] for r in frame.iter_rows(named=True))
            yield RawBatch(
                _records_frame([], [], [], {}),
                [Quarantined(r, *problem, excerpt(s)) for r, s in zip(rows, samples, strict=True)],
                frame.height,
            )
            continue
        ids = frame[spec.id_field] if spec.id_field in frame.columns else pl.Series([None] * frame.height)
        records = pl.DataFrame(
            {
                "row": pl.Series(rows, dtype=pl.Int64),
                "id": ids.cast(pl.String, strict=False),
                "text": frame[spec.text_field].cast(pl.String),
            }
        )
        yield RawBatch(records.with_columns(_metadata_json(frame, list(spec.metadata_fields))), [], frame.height)


def _whole_file(path: Path, reason: str, detail: str) -> RawBatch:
    with open(path, "rb") as handle:
        head = handle.read(EXCERPT_CHARS)
    return RawBatch(_records_frame([], [], [], {}), [Quarantined(None, reason, detail, excerpt(head))], 1)


def read_shard(path: Path, spec: SourceSpec, block_bytes: int = BLOCK_BYTES) -> Iterator[RawBatch]:
    """Batches of one shard; a file of an unknown or undeclared type is one quarantined row."""
    found = shard_format(path)
    if found is None or (spec.format != "auto" and found != spec.format):
        expected = (
            "a .jsonl, .jsonl.gz, .jsonl.zst or .parquet file" if spec.format == "auto" else f"a {spec.format} shard"
        )
        yield _whole_file(
            path,
            "unknown_file_type",
            f"expected {expected} (source {spec.name!r}); move the file out of the drop or fix path_pattern",
        )
        return
    yield from read_jsonl(path, spec, block_bytes) if found == "jsonl" else read_parquet(path, spec)
