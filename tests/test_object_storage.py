"""A storage root on object storage (an S3 server): atomic commits without rename, ledgers without file
locks, and reads by Polars and the recipe sandbox's DuckDB through the root's fsspec filesystem."""

import duckdb
import polars as pl
import pytest

from curation_dag.steps.recipes.sandbox import sandboxed
from curation_dag.steps.takedowns.removal import PROVENANCE, log_of
from curation_dag.store.atomic import DamagedFile, atomic_path, checked_parquet
from curation_dag.store.files import is_local, read_parquet, scan_parquet
from curation_dag.store.layout import EXACT_DUPLICATES, Layout
from curation_dag.store.ledger import Ledger, exclusive, write_parquet


def test_a_write_appears_whole_under_its_key_or_not_at_all(s3_root):
    layout = Layout.at(s3_root)
    assert not is_local(layout.root)
    path = layout.asset("example") / "frame.parquet"
    write_parquet(pl.DataFrame({"a": [1, 2, 3]}), path)
    assert read_parquet(path)["a"].to_list() == [1, 2, 3]

    with pytest.raises(RuntimeError), atomic_path(path) as temporary:
        pl.DataFrame({"a": [4]}).write_parquet(temporary)
        raise RuntimeError("the step failed before its commit")
    assert read_parquet(path)["a"].to_list() == [1, 2, 3]  # the earlier object, untouched
    assert [p.name for p in layout.asset("example").iterdir()] == ["frame.parquet"]  # nothing left behind


def test_a_cut_short_object_is_named_as_damaged(s3_root):
    path = Layout.at(s3_root).asset("example") / "cut.parquet"
    write_parquet(pl.DataFrame({"a": list(range(1000))}), path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DamagedFile, match=r"s3://.*/example/cut.parquet is damaged.*Rebuild it"):
        checked_parquet(path, "Rebuild it.")


def test_a_ledger_commits_and_reads_its_drops_on_object_storage(s3_root):
    folder = Layout.at(s3_root).asset(EXACT_DUPLICATES)
    with exclusive(folder):  # no lock on object storage: the asset's pool excludes a second run
        ledger = Ledger(folder)
        for key, ids in (("s/1", ["a", "b"]), ("s/2", ["c"])):
            write_parquet(pl.DataFrame({"doc_id": ids}), ledger.decision_file(key))
            ledger.commit({"key": key})
    again = Ledger(folder)
    assert again.keys == ["s/1", "s/2"] and again.digest() == ledger.digest()
    assert again.scan_decisions().collect()["doc_id"].to_list() == ["a", "b", "c"]


def test_recipe_sql_reads_objects_as_arrow_and_still_no_other_file(s3_root, tmp_path):
    folder = Layout.at(s3_root).asset("recipe_inputs")
    write_parquet(pl.DataFrame({"doc_id": ["a", "b"], "score": [1.0, 2.0]}), folder / "one.parquet")
    write_parquet(pl.DataFrame({"doc_id": ["c"]}), folder / "two.parquet")  # no score: null there
    paths = [str(folder / "one.parquet"), str(folder / "two.parquet")]
    secret = tmp_path / "secret.txt"
    secret.write_text("not for recipes")
    with sandboxed({"scores": paths}) as connection:
        rows = connection.execute("SELECT doc_id, score FROM scores ORDER BY doc_id").fetchall()
        with pytest.raises(duckdb.PermissionException):
            connection.execute(f"SELECT * FROM read_text('{secret}')").fetchall()
    assert rows == [("a", 1.0), ("b", 2.0), ("c", None)]
    assert scan_parquet([folder / "two.parquet", folder / "one.parquet"]).collect()["doc_id"].to_list() == [
        "c",
        "a",
        "b",
    ]


def test_takedowns_are_added_to_a_log_on_object_storage(s3_root):
    log = log_of(s3_root)
    documents = pl.DataFrame({name: [1 if name in ("row", "n_chars") else f"{name}-1"] for name in PROVENANCE})
    first = log.append("legal@example.org", "withdrawn", {"doc_ids": ["doc_id-1"], "content_hashes": []}, documents)
    second = log.append("legal@example.org", "again", {"doc_ids": [], "content_hashes": ["h"]}, documents.head(0))
    assert [entry["takedown"] for entry in log.entries()] == [first["takedown"], second["takedown"]]
    assert log.removed().content_hashes == {"h": second["takedown"]}
