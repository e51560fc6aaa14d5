"""Hostile input (issue 14's probe): every case is quarantined with a reason naming the shard and row,
in bounded memory, and every input row is accounted for."""

import gzip
import json
import os

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from curation_dag.steps.ingest.documents import NothingReadable
from curation_dag.steps.ingest.drops import find_complete_drops
from curation_dag.steps.ingest.reasons import Reason
from curation_dag.steps.ingest.sources import SourceSpec
from tests.conftest import mark_complete, write_jsonl
from tests.steps.test_ingest import run


def reasons(quarantine) -> dict:
    return {(r["shard"], r["row"]): r["reason"] for r in quarantine.iter_rows(named=True)}


def accounted(report, documents, quarantine) -> None:
    assert report.input_rows == report.accepted + report.quarantined == documents.height + quarantine.height
    assert set(quarantine["reason"]) <= set(Reason)


def test_links_leaving_the_drop_are_quarantined_unread(tmp_path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"id": "s", "text": "TOP SECRET"}\n')
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    write_jsonl(drop / "a.jsonl", [{"id": "1", "text": "kept"}])
    os.symlink(secret, drop / "b.jsonl")
    os.symlink("/etc/passwd", drop / "c.jsonl")
    report, documents, quarantine = run(drop)
    assert documents["text"].to_list() == ["kept"]
    assert reasons(quarantine) == {("b.jsonl", None): "outside_drop", ("c.jsonl", None): "outside_drop"}
    assert set(quarantine["excerpt"]) == {""} and "root:" not in quarantine.write_csv()
    accounted(report, documents, quarantine)


@pytest.mark.parametrize("pattern", ["*", "**/*", "*/*"])
def test_linked_folders_are_neither_shards_nor_a_second_copy(tmp_path, pattern):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    write_jsonl(drop / "a.jsonl", [{"id": "1", "text": "kept once"}])
    write_jsonl(tmp_path / "elsewhere" / "b.jsonl", [{"id": "2", "text": "TOP SECRET"}])
    os.symlink(".", drop / "self")
    os.symlink(tmp_path / "elsewhere", drop / "linked")
    report, documents, quarantine = run(drop, spec=SourceSpec(name="crafted", id_field="id", path_pattern=pattern))
    assert documents["text"].to_list() == ["kept once"]
    assert set(quarantine["reason"]) == {"outside_drop"} and "TOP SECRET" not in quarantine.write_csv()
    accounted(report, documents, quarantine)


def test_a_file_name_that_is_not_utf8_is_quarantined_unread(tmp_path):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    write_jsonl(drop / "a.jsonl", [{"id": "1", "text": "kept"}])
    write_jsonl(drop / os.fsdecode(b"b\xff.jsonl"), [{"id": "2", "text": "behind a bad name"}])  # crashed the ingest
    (drop / os.fsdecode(b"notes\xfe.txt")).write_text("not a shard, and not matched by *.jsonl")
    report, documents, quarantine = run(drop, spec=SourceSpec(name="crafted", id_field="id", path_pattern="*.jsonl"))
    assert documents["text"].to_list() == ["kept"]
    assert reasons(quarantine) == {("b\ufffd.jsonl", None): "invalid_file_name"}
    assert report.ignored_files == ["notes\ufffd.txt"]
    accounted(report, documents, quarantine)


def test_patterns_and_drop_folders_that_leave_the_root_are_refused(tmp_path):
    for pattern in ("../*", "/etc/*", "shards/../../x/*"):
        with pytest.raises(ValueError, match="would read outside the drop folder"):
            SourceSpec(name="web", path_pattern=pattern)
    elsewhere = mark_complete(tmp_path / "elsewhere" / "d1")
    (tmp_path / "drops" / "web").mkdir(parents=True)
    os.symlink(elsewhere, tmp_path / "drops" / "web" / "d1")
    drops, refused = find_complete_drops(tmp_path / "drops", {"web"})
    assert drops == [] and "links outside the drops root" in refused[0]


def unchecked_strings(values: list[bytes]) -> pa.Array:
    """A string array whose bytes are not checked, as a careless Parquet writer leaves them."""
    offsets = [0]
    for value in values:
        offsets.append(offsets[-1] + len(value))
    buffers = [None, pa.py_buffer(pa.array(offsets, pa.int32()).buffers()[1]), pa.py_buffer(b"".join(values))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


def test_invalid_utf8_in_a_parquet_text_column_is_quarantined_per_row(tmp_path):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    text = unchecked_strings([b"good one", b"bad \xff\xfe", b"good two"])
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": text}), drop / "x.parquet")
    report, documents, quarantine = run(drop)
    assert documents["text"].to_list() == ["good one", "good two"]
    assert reasons(quarantine) == {("x.parquet", 2): "invalid_utf8"}
    accounted(report, documents, quarantine)


def test_invalid_utf8_in_any_parquet_column_read_is_quarantined_per_row(tmp_path):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    ids = unchecked_strings([b"a", b"b\xff", b"c", b"d"])  # polars panicked on the id
    lang = unchecked_strings([b"en", b"fr", b"\xfe", b"de"])
    text = pa.array([b"binary one", b"binary two", b"binary three", b"bad \xff"], pa.binary())  # unannotated text
    pq.write_table(pa.table({"id": ids, "text": text, "lang": lang}), drop / "x.parquet")
    report, documents, quarantine = run(drop)
    assert documents.select("source_id", "text", "metadata").rows() == [("a", "binary one", '{"lang":"en"}')]
    assert reasons(quarantine) == {("x.parquet", r): "invalid_utf8" for r in (2, 3, 4)}
    assert [d.split(" holds")[0] for d in quarantine["detail"]] == ["column 'id'", "column 'lang'", "column 'text'"]
    accounted(report, documents, quarantine)


def test_odd_parquet_columns_are_read_or_quarantined_row_by_row(tmp_path):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    categorical = pa.array(["one", "two", "one"]).dictionary_encode()
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": categorical}), drop / "dictionary.parquet")
    pq.write_table(pa.table({"id": ["d"], "text": pa.array(["large"], pa.large_string())}), drop / "large.parquet")
    pq.write_table(pa.table({"id": [["x"], ["y"]], "text": ["listed", "ids"]}), drop / "listed.parquet")
    report, documents, quarantine = run(drop)
    assert sorted(documents["text"]) == ["large", "one", "one", "two"]
    assert reasons(quarantine) == {("listed.parquet", 1): "invalid_id", ("listed.parquet", 2): "invalid_id"}
    assert "list<" in quarantine["detail"][0]
    accounted(report, documents, quarantine)


def test_a_parquet_column_named_twice_is_quarantined_not_a_key_error(tmp_path):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    columns = [pa.array(["a", "b"]), pa.array(["one", "two"]), pa.array(["uno", "dos"])]
    pq.write_table(pa.Table.from_arrays(columns, names=["id", "text", "text"]), drop / "x.parquet")
    write_jsonl(drop / "ok.jsonl", [{"id": "c", "text": "another shard"}])
    report, documents, quarantine = run(drop)
    assert documents["text"].to_list() == ["another shard"]
    assert reasons(quarantine) == {("x.parquet", 1): "duplicate_column", ("x.parquet", 2): "duplicate_column"}
    assert "column 'text' appears 2 times" in quarantine["detail"][0] and '"id": "a"' in quarantine["excerpt"][0]
    accounted(report, documents, quarantine)


def test_a_lone_surrogate_is_quarantined_not_fatal(tmp_path):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    write_jsonl(drop / "a.jsonl", [{"id": "1", "text": "fine"}, b'{"id": "2", "text": "half \\ud800 a pair"}'])
    report, documents, quarantine = run(drop)
    assert documents["text"].to_list() == ["fine"] and reasons(quarantine) == {("a.jsonl", 2): "invalid_utf8"}
    assert "surrogate" in quarantine["detail"][0]
    accounted(report, documents, quarantine)


def test_deep_nesting_is_quarantined_before_parsing(tmp_path):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    deep = [b'{"id": "%d", "text": "deep", "x": ' % n + b"[" * n + b"]" * n + b"}" for n in (1_000, 100_000)]
    brackets_in_text = {"id": "t", "text": "[" * 500 + " brackets inside a string are text"}
    write_jsonl(drop / "a.jsonl", [{"id": "ok", "text": "fine"}, *deep, brackets_in_text])
    report, documents, quarantine = run(drop)
    assert sorted(documents["source_id"]) == ["ok", "t"]
    assert reasons(quarantine) == {("a.jsonl", 2): "too_deeply_nested", ("a.jsonl", 3): "too_deeply_nested"}
    assert "nested 1001 levels deep" in quarantine["detail"][0]
    accounted(report, documents, quarantine)


TRICKY = {
    "repeated text key": b'{"id": "r", "text": "first", "text": "second"}',
    "escaped text key": b'{"id": "e", "te\\u0078t": 12345}',
    "escaped string key": b'{"id": "s", "te\\u0078t": "decoded key"}',
    "float id": b'{"id": 1.5, "text": "float id"}',
    "bool id": b'{"id": true, "text": "bool id"}',
    "negative id": b'{"id": -3, "text": "negative id"}',
    "lone surrogate": b'{"id": "l", "text": "half \\ud800"}',
    "surrogate pair": b'{"id": "p", "text": "emoji \\ud83d\\ude00"}',
    "nested metadata": b'{"id": "m", "text": "meta", "lang": {"a": [1, {"b": null}]}}',
    "number among string metadata": b'{"id": "n", "text": "number lang", "lang": 1.0}',
    "negative zero among string metadata": b'{"id": "z", "text": "zero lang", "lang": -0.0}',
    "null text": b'{"id": "t", "text": null}',
    "boolean among number metadata": b'{"id": "b", "text": "bool lang", "lang": true}',
}
# A metadata value takes its column's type within the batch, on both paths: a number among strings is
# kept as its JSON text ("1.0"), alone as a number. Only the two paths in one block are compared.
TYPED_BY_NEIGHBOURS = {
    "number among string metadata",
    "negative zero among string metadata",
    "boolean among number metadata",
}


@pytest.mark.parametrize("case", sorted(TRICKY))
def test_the_fast_and_the_line_by_line_path_give_one_verdict(tmp_path, case):
    lang = 7 if case == "boolean among number metadata" else "en"
    good = [json.dumps({"id": f"g{i}", "text": f"good {i}", "lang": lang}).encode() for i in range(3)]
    verdicts = []
    for name, lines in (
        ("alone", [TRICKY[case]]),
        ("fast", [*good, TRICKY[case]]),
        ("slow", [*good, TRICKY[case], b"{"]),
    ):
        drop = mark_complete(tmp_path / name / "drops" / "crafted" / "d1")
        write_jsonl(drop / "a.jsonl", lines)
        try:
            report, documents, quarantine = run(drop)
        except NothingReadable:
            verdicts.append("nothing readable")
            continue
        accounted(report, documents, quarantine)
        tricky = len(lines) if name != "slow" else len(lines) - 1
        accepted = documents.filter(pl.col("row") == tricky).select("source_id", "text", "metadata").rows()
        verdicts.append((accepted, reasons(quarantine).get(("a.jsonl", tricky))))
    if verdicts[0] == "nothing readable":
        assert verdicts[1][0] == verdicts[2][0] == [] and verdicts[1][1] == verdicts[2][1] is not None
    elif case in TYPED_BY_NEIGHBOURS:
        assert verdicts[1] == verdicts[2] and verdicts[1][1] is None
        [(_, _, metadata)] = verdicts[1][0]  # kept as its JSON text, not coerced to its neighbours' type
        assert json.loads(metadata)["lang"] == json.dumps(json.loads(TRICKY[case])["lang"])
    else:
        assert verdicts[0] == verdicts[1] == verdicts[2]


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_a_decompression_bomb_is_quarantined_and_the_lines_before_it_kept(tmp_path, suffix, monkeypatch):
    monkeypatch.setattr("curation_dag.steps.ingest.shards.RATIO_GRACE_BYTES", 1 << 20)
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    head = b'{"id": "1", "text": "before the bomb"}\n'
    zeros = b"\0" * (64 << 20)  # 64 MiB that compress to a few KB: far over 100x
    if suffix == ".jsonl.gz":
        blob = gzip.compress(head + zeros, compresslevel=1)
    else:
        blob = zstandard.ZstdCompressor().compress(head + zeros)
    (drop / f"bomb{suffix}").write_bytes(blob)
    write_jsonl(drop / "ok.jsonl", [{"id": "2", "text": "another shard"}])
    report, documents, quarantine = run(drop)
    assert sorted(documents["source_id"]) == ["1", "2"]
    assert reasons(quarantine) == {(f"bomb{suffix}", 2): "decompressed_too_large"}
    accounted(report, documents, quarantine)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_an_overlong_line_is_skipped_and_the_lines_after_it_read(tmp_path, suffix):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    long_line = b'{"id": "2", "text": "' + b"a" * (12 << 20) + b'"}\n'
    data = b'{"id": "1", "text": "fine"}\n' + long_line + b'{"id": "3", "text": "after"}\n' + long_line[:-3]
    (drop / f"a{suffix}").write_bytes(gzip.compress(data, compresslevel=1) if suffix == ".jsonl.gz" else data)
    report, documents, quarantine = run(drop, block_bytes=1 << 20)  # max_text_bytes 1000: lines over ~1 MB
    assert documents["source_id"].to_list() == ["1", "3"]
    assert reasons(quarantine) == {(f"a{suffix}", 2): "line_too_long", (f"a{suffix}", 4): "line_too_long"}
    assert f"a line of {len(long_line) - 1:,} bytes" in quarantine["detail"][0]
    assert quarantine["excerpt"][0].startswith('{"id": "2", "text": "aaa')
    accounted(report, documents, quarantine)


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_a_corrupt_parquet_page_quarantines_its_row_group_only(tmp_path, compression):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    texts = [" ".join([f"document number {i}"] * 5) for i in range(3000)]
    path = drop / "x.parquet"
    table = pa.table({"id": [f"i{i}" for i in range(3000)], "text": texts})
    pq.write_table(table, path, row_group_size=1000, compression=compression, write_page_checksum=True)
    text_chunk = pq.ParquetFile(path).metadata.row_group(1).column(1)  # rows 1001-2000
    start = text_chunk.dictionary_page_offset or text_chunk.data_page_offset
    damaged = bytearray(path.read_bytes())
    middle = start + text_chunk.total_compressed_size // 2
    damaged[middle : middle + 64] = b"\xff" * 64
    path.write_bytes(bytes(damaged))
    report, documents, quarantine = run(drop, spec=SourceSpec(name="crafted", id_field="id"))
    assert documents["text"].to_list() == texts[:1000] + texts[2000:]
    assert set(quarantine["reason"]) == {"unreadable_file"} and set(quarantine["shard"]) == {"x.parquet"}
    assert quarantine["row"].to_list() == list(range(1001, 2001))
    assert "rows 1001-2000 (row group 1) cannot be decoded" in quarantine["detail"][0]
    accounted(report, documents, quarantine)
