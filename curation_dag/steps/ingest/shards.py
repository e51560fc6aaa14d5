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

from curation_dag.steps.ingest.reasons import Reason
from curation_dag.steps.ingest.sources import SourceSpec

EXCERPT_CHARS = 200
READ_CHUNK_BYTES = 1 << 20
# Decompressed JSONL is parsed this many bytes at a time: the memory bound of ingest, whatever the shard size.
BLOCK_BYTES = 16 << 20
PARQUET_BATCH_ROWS = 8192
# Decompression bombs: a shard may decode to at most MAX_RATIO times its size once past the grace
# amount (Apache POI's ZipSecureFile refuses inflate ratios over 100 the same way); text compresses
# about 3-10x. zstd is fed this much input per call, which bounds one call's output (~32,000x).
MAX_RATIO = 100
RATIO_GRACE_BYTES = 256 << 20
ZSTD_FEED_BYTES = 2 << 10
# Deeper lines are quarantined before parsing: serde_json's default recursion limit. Deep nesting makes
# polars' schema inference roughly cubic (1,000 levels: 50 s) and json.loads recursive.
MAX_NESTING = 128
# One pass of bytes.translate marks brackets (+1 / -1) and line ends (2); the rest of the work is on
# those few positions only.
_NESTING_MARKS = bytearray(256)
_NESTING_MARKS[ord("{")] = _NESTING_MARKS[ord("[")] = 1
_NESTING_MARKS[ord("}")] = _NESTING_MARKS[ord("]")] = 255
_NESTING_MARKS[ord("\n")] = 2
# What the fast path cannot read as json.loads does: an escaped key (polars decodes it, the text-key
# check above does not see it), a non-integer id, and a lone surrogate escape (polars makes it NUL).
_ESCAPED_KEY = re.compile(rb'\\u[0-9a-fA-F]{4}[^"\\]*"\s*:')
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F]"
)

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
    reason: Reason
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
            **{name: pl.Series(_one_type(values), strict=False) for name, values in metadata.items()},
        }
    )
    return frame.select("row", "id", "text", _metadata_json(frame, list(metadata)))


def _one_type(values: list) -> list:
    """A field's values as one column, as polars reads a block: integers among floats become floats, and
    any other mix is kept as JSON text (left to polars, true among integers became 1)."""
    kinds = {type(value) for value in values if value is not None}
    if len(kinds) <= 1 or kinds == {int, float}:
        return values
    return [value if value is None or isinstance(value, str) else json.dumps(value) for value in values]


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

    def __init__(self, reason: Reason, detail: str, tail: bytes = b""):
        super().__init__(detail)
        self.reason, self.detail, self.tail = reason, detail, tail


def _inflate(decompressor, chunk: bytes, zstd: bool) -> Iterator[bytes]:
    """The output of one input chunk, in pieces of at most READ_CHUNK_BYTES where the codec allows
    (zlib's max_length); zstd has no output bound per call, so it is fed ZSTD_FEED_BYTES at a time."""
    if zstd:
        for start in range(0, len(chunk), ZSTD_FEED_BYTES):
            if decompressor.eof:  # a frame ended inside the previous slice: the rest starts a new one
                raise _Leftover(decompressor.unused_data + chunk[start:])
            yield decompressor.decompress(chunk[start : start + ZSTD_FEED_BYTES])
        return
    while chunk:
        yield decompressor.decompress(chunk, READ_CHUNK_BYTES)
        chunk = decompressor.unconsumed_tail


class _Leftover(Exception):
    """Input after the end of a zstd frame: the next frame's."""

    def __init__(self, data: bytes):
        self.data = data


def _decompressed_chunks(path: Path) -> Iterator[bytes]:
    """The decoded bytes of a shard; a bomb (decoded over MAX_RATIO times the file, past the first
    RATIO_GRACE_BYTES) is stopped as `decompressed_too_large` before it can fill memory."""
    make = _DECOMPRESSORS.get(path.suffix.lower())
    limit = max(MAX_RATIO * path.stat().st_size, RATIO_GRACE_BYTES)
    decoded = 0
    with open(path, "rb") as handle:
        if make is None:
            yield from iter(lambda: handle.read(READ_CHUNK_BYTES), b"")
            return
        decompressor = make()
        while chunk := handle.read(READ_CHUNK_BYTES):
            while chunk:
                try:
                    for piece in _inflate(decompressor, chunk, path.suffix.lower() == ".zst"):
                        decoded += len(piece)
                        if decoded > limit:
                            yield piece[: len(piece) - (decoded - limit)]  # the lines before the limit stay
                            raise DamagedStream(
                                Reason.DECOMPRESSED_TOO_LARGE,
                                f"decodes to over {limit:,} bytes, {MAX_RATIO} times the file's size: a "
                                "decompression bomb, or a shard to split",
                            )
                        yield piece
                    chunk = b""
                except _Leftover as leftover:
                    chunk = leftover.data
                except (isal_zlib.error, zstandard.ZstdError) as error:
                    raise DamagedStream(Reason.UNREADABLE_FILE, f"corrupt compressed data: {error}") from None
                # Concatenated members (gzip) or frames (zstd) are one stream.
                if decompressor.eof:
                    chunk = chunk or decompressor.unused_data
                    if chunk:
                        decompressor = make()
        if not decompressor.eof:
            raise DamagedStream(Reason.TRUNCATED_FILE, "compressed stream ends before its end marker (truncated file)")


@dataclass
class LongLine:
    """A line over the length limit: only its start is kept, the rest is skipped as it streams by."""

    head: bytes
    length: int


def _line_blocks(path: Path, block_bytes: int, max_line_bytes: int) -> Iterator[bytes | LongLine]:
    """Blocks of whole lines, each ending in a newline, and a LongLine in place of each line longer than
    `max_line_bytes`, which is never held whole; raises DamagedStream after the last good block."""
    pending: list[bytes] = []
    size = 0
    skipping: LongLine | None = None
    try:
        for chunk in _decompressed_chunks(path):
            if skipping:
                end = chunk.find(b"\n")
                skipping.length += len(chunk) if end < 0 else end
                if end < 0:
                    continue
                yield skipping
                skipping, chunk = None, chunk[end + 1 :]
            pending.append(chunk)
            size += len(chunk)
            # Join only when a line can end here (or one is too long): a long line is not copied per chunk.
            if size >= block_bytes and (b"\n" in chunk or size > max_line_bytes):
                data = b"".join(pending)
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield data[:cut]
                pending, size = [data[cut:]], len(data) - cut
                if size > max_line_bytes:
                    skipping, pending, size = LongLine(data[cut : cut + EXCERPT_CHARS * 4], size), [], 0
    except DamagedStream as damage:
        data = b"".join(pending)
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        damage.tail = skipping.head if skipping else data[cut:]  # the line it cut short is the damaged row
        raise damage from None
    if skipping:
        yield skipping
    data = b"".join(pending)
    if data:
        yield data if data.endswith(b"\n") else data + b"\n"


def _fast_parse(block: bytes, spec: SourceSpec, first_row: int, n_lines: int) -> pl.DataFrame | None:
    """Parse a whole block with polars, or None when any line needs the exact line-by-line path.

    polars skips blank lines and turns non-string values into strings, so a block only qualifies
    when it yields one row per line and no `"<text_field>":` key in it is followed by anything but a
    string or null, nor an id key by anything but a string, an integer or null, nor the key of a
    metadata field that polars reads as strings by a number or a boolean. Both paths keep a repeated key's
    first value, as polars does.
    """
    if _non_string_value(block, spec.text_field):
        return None
    if b"\\u" in block and (_ESCAPED_KEY.search(block) or _surrogates(block)):
        return None
    if spec.id_field:
        id_key = re.escape(json.dumps(spec.id_field).encode())
        if re.search(id_key + rb'\s*:(?!\s*(?:"|-?\d+\s*[,}]|null\s*[,}]))', block):
            return None
    if block.count(b"[") + block.count(b"{") > MAX_NESTING and _nesting_bounds(block) > MAX_NESTING:
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
    metadata = [frame[name] for name in spec.metadata_fields if name in frame.columns]
    if any(column.dtype.is_nested() for column in metadata):
        return None
    # A string column that also holds numbers or booleans: polars writes 1.0 as "1", json.dumps as "1.0".
    if any(column.dtype == pl.String and _non_string_value(block, column.name) for column in metadata):
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


def _non_string_value(block: bytes, name: str) -> bool:
    """Whether some `"<name>":` key in the block is followed by anything but a string or null."""
    key = re.escape(json.dumps(name).encode())
    return re.search(key + rb'\s*:(?!\s*(?:"|null\s*[,}]))', block) is not None


def _surrogates(block: bytes) -> bool:
    """Whether a surrogate escape might be unpaired (an escaped backslash before it may make it text)."""
    if b"\\ud" not in block and b"\\uD" not in block:
        return False
    for match in _SURROGATE.finditer(block):
        start = before = match.start()
        while before and block[before - 1] == 92:
            before -= 1
        escaped = (start - before) % 2  # an odd run of backslashes before it: text, not an escape
        if not escaped and _LONE_SURROGATE.match(block, start):  # its lookbehind sees the bytes before
            return True
    return False


def _nesting_bounds(block: bytes) -> int:
    """An upper bound of the deepest line's nesting depth (brackets inside strings count too)."""
    marks = np.frombuffer(block.translate(_NESTING_MARKS), dtype=np.int8)
    kinds = marks[np.flatnonzero(marks)]
    line = np.cumsum(kinds == 2)
    steps = kinds != 2
    line, level = line[steps], np.cumsum(kinds[steps], dtype=np.int64)
    if not len(level):
        return 0
    firsts = np.flatnonzero(np.diff(line, prepend=-1))  # each line's first bracket
    base = np.where(firsts > 0, level[firsts - 1], 0)
    return int((np.maximum.reduceat(level, firsts) - base).max())


def _nesting(line: bytes) -> int:
    """The exact nesting depth of a JSON line, brackets inside strings left out."""
    depth = deepest = 0
    inside = escaped = False
    for byte in line:
        if inside:
            escaped, inside = (False, True) if escaped else (byte == 92, byte != 34)
        elif byte == 34:
            inside = True
        elif byte in (123, 91):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (125, 93):
            depth -= 1
    return deepest


def _first_value_wins(pairs: list[tuple[str, object]]) -> dict:
    return dict(reversed(pairs))


def _slow_parse(block: bytes, spec: SourceSpec, first_row: int) -> RawBatch:
    """Line by line: every line that is not a JSON object with a string text is quarantined with why."""
    rows, ids, texts = [], [], []
    metadata: dict[str, list] = {name: [] for name in spec.metadata_fields}
    quarantined = []
    lines = block.split(b"\n")[:-1]
    for row, line in enumerate(lines, start=first_row):
        problem = None
        if not line.strip():
            problem = (Reason.BLANK_LINE, "blank line; JSON Lines needs one JSON object per line")
        elif line.count(b"[") + line.count(b"{") > MAX_NESTING and (depth := _nesting(line)) > MAX_NESTING:
            problem = (Reason.TOO_DEEPLY_NESTED, f"nested {depth} levels deep; at most {MAX_NESTING} are read")
        else:
            try:
                record = json.loads(line.decode("utf-8"), object_pairs_hook=_first_value_wins)
            except UnicodeDecodeError as error:
                problem = (Reason.INVALID_UTF8, f"invalid UTF-8 at byte {error.start} of the line")
            except json.JSONDecodeError as error:
                problem = (Reason.MALFORMED_JSON, f"malformed JSON: {error.msg} at column {error.colno}")
            else:
                problem = _record_problem(record, spec)
        if problem:
            quarantined.append(Quarantined(row, *problem, excerpt(line)))
            continue
        rows.append(row)
        ids.append(record.get(spec.id_field) if spec.id_field else None)
        texts.append(record.get(spec.text_field))
        for name in spec.metadata_fields:  # nested values are kept as their JSON text: nothing is lost
            value = record.get(name)
            metadata[name].append(json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value)
    return RawBatch(_records_frame(rows, ids, texts, metadata), quarantined, len(lines))


def _record_problem(record: object, spec: SourceSpec) -> tuple[Reason, str] | None:
    if not isinstance(record, dict):
        return Reason.MALFORMED_JSON, f"a JSON {type(record).__name__} where an object was expected"
    text = record.get(spec.text_field)
    if text is not None and not isinstance(text, str):
        return Reason.NON_STRING_TEXT, f"field {spec.text_field!r} is a {type(text).__name__}, not a string"
    identifier = record.get(spec.id_field) if spec.id_field else None
    if identifier is not None and (isinstance(identifier, bool) or not isinstance(identifier, (str, int))):
        return Reason.INVALID_ID, f"field {spec.id_field!r} is a {type(identifier).__name__}, not a string or integer"
    for name in (spec.text_field, spec.id_field, *spec.metadata_fields):
        value = record.get(name) if name else None
        try:
            (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).encode("utf-8")
        except UnicodeEncodeError:
            return Reason.INVALID_UTF8, f"field {name!r} holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape)"
    return None


def read_jsonl(path: Path, spec: SourceSpec, block_bytes: int = BLOCK_BYTES) -> Iterator[RawBatch]:
    # JSON escapes make a line up to 6 times its text (a control character is \\u001f), and metadata
    # adds more: 8 times max_text_bytes, plus one block, is the longest line read.
    max_line_bytes = 8 * spec.max_text_bytes + block_bytes
    next_row = 1
    try:
        for block in _line_blocks(path, block_bytes, max_line_bytes):
            if isinstance(block, LongLine):
                detail = (
                    f"a line of {block.length:,} bytes, over {max_line_bytes:,} (8 times max_text_bytes plus one "
                    "block); skipped unread"
                )
                yield RawBatch(
                    _records_frame([], [], [], {}),
                    [Quarantined(next_row, Reason.LINE_TOO_LONG, detail, excerpt(block.head))],
                    1,
                )
                next_row += 1
                continue
            n_lines = int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n")))
            records = _fast_parse(block, spec, next_row, n_lines)
            yield RawBatch(records, [], n_lines) if records is not None else _slow_parse(block, spec, next_row)
            next_row += n_lines
    except DamagedStream as damage:
        quarantined = Quarantined(next_row, damage.reason, damage.detail, excerpt(damage.tail))
        yield RawBatch(_records_frame([], [], [], {}), [quarantined], 1)


# ---------------------------------------------------------------- Parquet


def _stringlike(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _as_text(column: pa.Array) -> pa.Array:
    """A binary text column (older Hive and Impala writers leave text unannotated, hence Spark's
    binaryAsString) as strings, unchecked: its bytes are checked row by row with the rest."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_binary(column.type):
        return column.view(pa.string())
    if pa.types.is_large_binary(column.type):
        return column.view(pa.large_string())
    return column


def _text_problem(kind: pa.DataType | None, spec: SourceSpec, names: set[str]) -> tuple[Reason, str] | None:
    if kind is None:
        return Reason.MISSING_TEXT_COLUMN, f"no column {spec.text_field!r}; columns are {sorted(names)}"
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (_stringlike(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        return Reason.NON_STRING_TEXT, f"column {spec.text_field!r} has type {kind}, not string"
    return None


def _id_problem(kind: pa.DataType | None, spec: SourceSpec) -> tuple[Reason, str] | None:
    if kind is None or pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind):
        return None
    return Reason.INVALID_ID, f"column {spec.id_field!r} has type {kind}, not string or integer"


def _invalid_utf8(column: pa.Array) -> list[int]:
    """Positions of a string column whose bytes are not UTF-8: Parquet readers do not check, polars does."""
    column = column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return []
    try:
        column.validate(full=True)
        return []
    except pa.ArrowInvalid:
        values = column.cast(pa.large_binary()).to_pylist()
        bad = []
        for position, value in enumerate(values):
            try:
                value is None or value.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(position)
        return bad


def read_parquet(path: Path, spec: SourceSpec, batch_rows: int = PARQUET_BATCH_ROWS) -> Iterator[RawBatch]:
    try:
        # Pages that carry a CRC (parquet-mr writes them by default) are checked: a flipped byte in
        # uncompressed or snappy data otherwise decodes silently into wrong text.
        shard = pq.ParquetFile(path, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as error:
        yield _whole_file(path, Reason.UNREADABLE_FILE, f"not a readable Parquet file: {error}")
        return
    schema = shard.schema_arrow
    names = set(schema.names)
    unique = sorted(name for name in names if schema.names.count(name) == 1)
    repeated = sorted(names.difference(unique).intersection([spec.text_field, spec.id_field, *spec.metadata_fields]))
    if repeated:
        problem = (
            Reason.DUPLICATE_COLUMN,
            f"column {repeated[0]!r} appears {schema.names.count(repeated[0])} times, so which one to read is "
            "ambiguous; rename or drop the others",
        )
    else:
        text_type = schema.field(spec.text_field).type if spec.text_field in names else None
        problem = _text_problem(text_type, spec, names)
    if problem is None and spec.id_field in names:
        problem = _id_problem(schema.field(spec.id_field).type, spec)
    wanted = [spec.text_field, spec.id_field, *spec.metadata_fields] if problem is None else unique
    columns = list(dict.fromkeys(c for c in wanted if c and c in names))
    for rows, batch, damage in _row_group_batches(shard, columns, batch_rows):
        if batch is None:
            lost = [Quarantined(r, Reason.UNREADABLE_FILE, damage, "") for r in rows]
            yield RawBatch(_records_frame([], [], [], {}), lost, len(rows))
            continue
        if problem:
            samples = (json.dumps(r, default=str)[: EXCERPT_CHARS * 4] for r in batch.to_pylist())
            yield RawBatch(
                _records_frame([], [], [], {}),
                [Quarantined(r, *problem, excerpt(s)) for r, s in zip(rows, samples, strict=True)],
                batch.num_rows,
            )
            continue
        batch = batch.set_column(
            batch.schema.get_field_index(spec.text_field), spec.text_field, _as_text(batch.column(spec.text_field))
        )
        bad: dict[int, list[str]] = {}  # position -> its columns that are not UTF-8 (polars would panic on them)
        for name in batch.schema.names:
            for position in _invalid_utf8(batch.column(name)):
                bad.setdefault(position, []).append(name)
        quarantined = [
            Quarantined(
                rows[i],
                Reason.INVALID_UTF8,
                f"column {', '.join(map(repr, bad[i]))} holds bytes that are not UTF-8",
                "",
            )
            for i in sorted(bad)
        ]
        if bad:
            keep = [i not in bad for i in range(batch.num_rows)]
            batch = batch.filter(pa.array(keep))
            rows = [r for r, k in zip(rows, keep, strict=True) if k]
        frame = pl.from_arrow(batch)
        ids = frame[spec.id_field] if spec.id_field in frame.columns else pl.Series([None] * frame.height)
        records = pl.DataFrame(
            {
                "row": pl.Series(list(rows), dtype=pl.Int64),
                "id": ids.cast(pl.String, strict=False),
                "text": frame[spec.text_field].cast(pl.String),
            }
        )
        yield RawBatch(
            records.with_columns(_metadata_json(frame, list(spec.metadata_fields))),
            quarantined,
            batch.num_rows + len(quarantined),
        )


def _row_group_batches(
    shard: pq.ParquetFile, columns: list[str], batch_rows: int
) -> Iterator[tuple[range, pa.RecordBatch | None, str]]:
    """(rows, batch, "") for every batch, and (rows, None, why) for the rest of a row group that cannot be
    decoded (a corrupt page): the row groups after it are still read."""
    first_row = 1
    for group in range(shard.num_row_groups):
        end = first_row + shard.metadata.row_group(group).num_rows
        try:
            for batch in shard.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns):
                yield range(first_row, first_row + batch.num_rows), batch, ""
                first_row += batch.num_rows
        except (pa.ArrowException, OSError) as error:
            why = f"rows {first_row}-{end - 1} (row group {group}) cannot be decoded: {error}"
            yield range(first_row, end), None, why
        first_row = end


def _whole_file(path: Path, reason: Reason, detail: str) -> RawBatch:
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
            Reason.UNKNOWN_FILE_TYPE,
            f"expected {expected} (source {spec.name!r}); move the file out of the drop or fix path_pattern",
        )
        return
    yield from read_jsonl(path, spec, block_bytes) if found == "jsonl" else read_parquet(path, spec)
