"""Ingest on real corpora from ../shared/data: every line accounted for, texts and hashes intact."""

import gzip
import hashlib
import json
import shutil

import polars as pl
import pytest

from curation_dag.steps.ingest.documents import ingest_drop
from curation_dag.steps.ingest.drops import Drop
from curation_dag.steps.ingest.sources import SourceSpec


@pytest.mark.parametrize("corpus", ["gutenberg_books", "code_python_stdlib", "udhr_multilingual", "enron1_spam_ham"])
def test_real_corpus_is_ingested_whole(shared_data, tmp_path, corpus):
    drop = tmp_path / "drops" / corpus / "d1"
    drop.mkdir(parents=True)
    shutil.copyfile(shared_data / corpus / "docs.jsonl.gz", drop / "docs.jsonl.gz")  # a link would leave the drop
    spec = SourceSpec(name=corpus, id_field="id", metadata_fields=("source",))

    report = ingest_drop(Drop(corpus, "d1", drop), spec, tmp_path / "d.parquet", tmp_path / "q.parquet")

    with gzip.open(drop / "docs.jsonl.gz", "rt", encoding="utf-8") as handle:
        originals = [json.loads(line) for line in handle]
    assert report.input_rows == len(originals) == report.accepted + report.quarantined
    documents = pl.read_parquet(tmp_path / "d.parquet")
    expected = {r["id"]: r["text"].replace("\r\n", "\n").replace("\r", "\n").strip() for r in originals}
    kept = {r["source_id"]: r for r in documents.iter_rows(named=True)}
    assert set(kept) == {i for i, t in expected.items() if t}
    for identifier, row in list(kept.items())[:200]:
        assert row["text"] == expected[identifier]
        assert row["content_hash"] == hashlib.sha256(expected[identifier].encode()).hexdigest()
        assert json.loads(row["metadata"])["source"]
