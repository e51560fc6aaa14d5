import gzip
from pathlib import Path

import polars as pl
import pytest

from curation_dag.steps.ingest.documents import NothingReadable, ingest_drop, sha256_hex
from curation_dag.steps.ingest.drops import Drop
from curation_dag.steps.ingest.reasons import Reason
from curation_dag.steps.ingest.sources import SourceSpec
from tests.conftest import mark_complete, write_jsonl

SPEC = SourceSpec(name="crafted", id_field="id", metadata_fields=("lang",), max_text_bytes=1000)


def run(drop_dir: Path, spec: SourceSpec = SPEC, **kwargs):
    out = drop_dir.parent.parent.parent / "out"
    report = ingest_drop(
        Drop(spec.name, drop_dir.name, drop_dir), spec, out / "documents.parquet", out / "quarantine.parquet", **kwargs
    )
    return report, pl.read_parquet(out / "documents.parquet"), pl.read_parquet(out / "quarantine.parquet")


def test_every_bad_input_class_is_quarantined_with_its_reason(bad_drop):
    report, documents, quarantine = run(bad_drop)

    reasons = {(r["shard"], r["row"]): r["reason"] for r in quarantine.iter_rows(named=True)}
    assert {k: v for k, v in reasons.items() if k[0] == "a.jsonl"} == {
        ("a.jsonl", 2): "malformed_json",
        ("a.jsonl", 3): "invalid_utf8",
        ("a.jsonl", 4): "missing_text",
        ("a.jsonl", 5): "missing_text",
        ("a.jsonl", 6): "non_string_text",
        ("a.jsonl", 7): "empty_text",
        ("a.jsonl", 8): "text_too_large",
        ("a.jsonl", 9): "duplicate_id",
        ("a.jsonl", 10): "blank_line",
        ("a.jsonl", 12): "malformed_json",
        ("a.jsonl", 13): "invalid_id",
        ("a.jsonl", 14): "invalid_id",
    }
    truncated = quarantine.filter(pl.col("shard") == "b.jsonl.gz")
    assert truncated["reason"].to_list() == ["truncated_file"]
    kept_before_cut = documents.filter(pl.col("shard") == "b.jsonl.gz").height
    assert 0 < kept_before_cut < 40 and truncated["row"][0] == kept_before_cut + 1
    assert reasons[("c.parquet", 1)] == "missing_text_column"
    assert quarantine.filter(pl.col("shard") == "c.parquet")["row"].to_list() == [1, 2, 3]
    assert reasons[("d.csv", None)] == "unknown_file_type"
    assert reasons[("g.parquet", None)] == "unreadable_file"
    assert set(quarantine["reason"]) <= set(Reason)

    assert report.input_rows == 14 + (kept_before_cut + 1) + 3 + 1 + 2 + 2 + 1
    assert report.accepted == documents.height == 2 + kept_before_cut + 2 + 2
    assert report.input_rows == report.accepted + report.quarantined == documents.height + quarantine.height
    assert report.shards == 7


def test_quarantine_rows_say_where_why_and_what(bad_drop):
    _, _, quarantine = run(bad_drop)
    rows = {(r["shard"], r["row"]): r for r in quarantine.iter_rows(named=True)}
    assert rows[("a.jsonl", 2)]["excerpt"] == '{"id": "m1", "text": "unterminated'
    assert "invalid UTF-8 at byte" in rows[("a.jsonl", 3)]["detail"]
    assert rows[("a.jsonl", 6)]["detail"] == "field 'text' is a int, not a string"
    assert rows[("a.jsonl", 8)]["detail"] == "text is 1001 bytes, over max_text_bytes=1000"
    assert rows[("a.jsonl", 9)]["detail"] == "id 'g1' was first used by crafted/d1/a.jsonl#1"
    assert rows[("c.parquet", 1)]["excerpt"] == '{"body": "x", "id": "p1"}'
    assert "body" in rows[("c.parquet", 1)]["detail"]
    assert rows[("d.csv", None)]["excerpt"].startswith("id,text")
    assert all(r["source"] == "crafted" and r["drop_id"] == "d1" for r in rows.values())


def test_accepted_documents_are_normalized_with_provenance_ids_and_hashes(bad_drop):
    _, documents, _ = run(bad_drop)
    by_id = {r["source_id"]: r for r in documents.iter_rows(named=True)}
    assert by_id["g2"]["text"] == "line one\nline two"
    assert by_id["g2"]["doc_id"] == "crafted/d1/a.jsonl#11"
    assert by_id["g1"]["metadata"] == '{"lang":"en"}'
    assert by_id["7"]["metadata"] == '{"lang":"de"}' and by_id["7"]["shard"] == "f.parquet"
    assert by_id["z1"]["doc_id"] == "crafted/d1/e.jsonl.zst#2"
    import hashlib

    assert by_id["g2"]["content_hash"] == hashlib.sha256(b"line one\nline two").hexdigest()
    assert documents["doc_id"].is_unique().all()
    assert documents.columns == [
        "doc_id", "source", "drop_id", "shard", "row", "source_id", "text", "content_hash", "n_chars", "metadata",
    ]  # fmt: skip


def test_output_is_byte_identical_across_runs_and_block_sizes(bad_drop, tmp_path):
    run(bad_drop)
    out = tmp_path / "out"
    first = (out / "documents.parquet").read_bytes(), (out / "quarantine.parquet").read_bytes()
    run(bad_drop, block_bytes=64)  # many tiny blocks: each bad line is its own block
    assert ((out / "documents.parquet").read_bytes(), (out / "quarantine.parquet").read_bytes()) == first
    assert not list(out.glob(".*.tmp")), "no temporary file may be left behind"


def test_fast_and_line_by_line_paths_agree(tmp_path):
    records = [{"id": i, "text": f" doc {i}\r\n" + "é" * i, "lang": ["en", None, 3][i % 3]} for i in range(200)]
    clean = mark_complete(tmp_path / "drops" / "crafted" / "clean")
    write_jsonl(clean / "a.jsonl", records)
    dirty = mark_complete(tmp_path / "drops" / "crafted" / "dirty")
    write_jsonl(dirty / "a.jsonl", [*records, b"not json"])  # forces the line-by-line path for the block
    _, fast, _ = run(clean)
    _, slow, quarantine = run(dirty)
    assert quarantine["reason"].to_list() == ["malformed_json"]
    columns = ["row", "source_id", "text", "content_hash", "n_chars", "metadata"]
    assert fast.select(columns).equals(slow.select(columns))


def test_a_drop_with_nothing_readable_fails_naming_the_drop_and_reasons(tmp_path):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    write_jsonl(drop / "a.jsonl", [b"{broken", {"id": "1", "text": ""}])
    with pytest.raises(NothingReadable, match=r"drop crafted/d1 .*nothing readable \(1 malformed_json, 1 empty_text\)"):
        run(drop)
    assert pl.read_parquet(tmp_path / "out" / "quarantine.parquet").height == 2


def test_an_empty_drop_fails_clearly(tmp_path):
    with pytest.raises(NothingReadable, match="no shard files"):
        run(mark_complete(tmp_path / "drops" / "crafted" / "d1"))


def test_files_outside_the_pattern_are_reported_not_read(tmp_path):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    write_jsonl(drop / "a.jsonl", [{"id": "1", "text": "kept"}])
    (drop / "README.txt").write_text("notes")
    report, documents, _ = run(drop, SPEC.model_copy(update={"path_pattern": "*.jsonl"}))
    assert report.ignored_files == ["README.txt"] and documents.height == 1


def test_a_gzip_of_several_members_is_read_whole(tmp_path):
    drop = mark_complete(tmp_path / "drops" / "crafted" / "d1")
    one = gzip.compress(b'{"id": "1", "text": "first"}\n')
    two = gzip.compress(b'{"id": "2", "text": "second"}\n')
    (drop / "a.jsonl.gz").write_bytes(one + two)
    _, documents, quarantine = run(drop)
    assert documents["text"].to_list() == ["first", "second"] and quarantine.height == 0


def test_sha256_reads_inline_and_buffered_views():
    texts = pl.Series(["short", "a string longer than twelve bytes", "", "é" * 20])
    import hashlib

    assert sha256_hex(texts) == [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    assert sha256_hex(texts.slice(1, 2)) == [hashlib.sha256(t.encode()).hexdigest() for t in texts.slice(1, 2)]
