"""Drops are immutable: a registered drop whose files change after ingest is refused, naming the files,
by raw_documents and by the drop sensor; the same bytes ingest again as before."""

import gzip
import os
import shutil

import dagster as dg
import polars as pl
import pytest

from curation_dag.assets.ingest import raw_documents
from curation_dag.automation.sensors import new_drops_sensor
from curation_dag.resources import DropsResource, RecipesResource, StorageResource
from curation_dag.steps.ingest import drop_files
from tests.conftest import DEMO_DROPS, RECIPES

KEY = "licenses/2026-11-01"


@pytest.fixture
def setup(instance, tmp_path):
    drops = tmp_path / "drops"
    shutil.copytree(DEMO_DROPS / KEY, drops / KEY)
    resources = {
        "storage": StorageResource(root=str(tmp_path / "store")),
        "drops": DropsResource(drops_root=str(drops), recipes=RecipesResource(folder=str(RECIPES))),
    }
    instance.add_dynamic_partitions("drops", [KEY])

    def ingest() -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [raw_documents], partition_key=KEY, instance=instance, resources=resources, raise_on_error=False
        )

    def sense() -> dg.SkipReason:
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            return new_drops_sensor(context)

    return drops / KEY, tmp_path / "store" / "raw_documents" / KEY, ingest, sense


def _failure(result: dg.ExecuteInProcessResult) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message


def test_the_same_bytes_ingest_again_identically(setup):
    drop, stored, ingest, sense = setup
    assert ingest().success
    first = (stored / "documents.parquet").read_bytes()
    record = drop_files.load(stored / "files.json")
    assert sorted(record) == sorted(p.name for p in drop.iterdir() if p.name != "_SUCCESS")
    assert all(len(f.sha256) == 64 for f in record.values())

    for path in drop.iterdir():  # touched, not changed: the sensor digests it and finds no change
        os.utime(path)
    assert "changed since ingest" not in sense().skip_message
    assert ingest().success
    assert (stored / "documents.parquet").read_bytes() == first


@pytest.mark.parametrize("change", ["edit a line", "remove a line", "add a shard", "remove a shard"])
def test_a_drop_changed_after_ingest_is_refused_naming_the_files(setup, change):
    drop, stored, ingest, sense = setup
    assert ingest().success
    documents = (stored / "documents.parquet").read_bytes()
    shard = sorted(drop.glob("*.jsonl.gz"))[0]
    lines = gzip.decompress(shard.read_bytes()).splitlines(keepends=True)
    if change == "edit a line":
        shard.write_bytes(gzip.compress(lines[0][:-30] + b'Spam spam spam."}\n' + b"".join(lines[1:])))
    elif change == "remove a line":
        shard.write_bytes(gzip.compress(b"".join(lines[1:])))
    elif change == "add a shard":
        (drop / "late.jsonl").write_text('{"text": "a late addition"}\n')
    else:
        shard.unlink()

    failed = ingest()
    assert not failed.success
    message = _failure(failed)
    named = "late.jsonl was added" if change == "add a shard" else shard.name
    assert f"drop {KEY}" in message and named in message and "changed after it was ingested" in message
    assert "as a new drop" in message and f"curate remove --drop {KEY}" in message
    assert (stored / "documents.parquet").read_bytes() == documents  # never re-read
    skipped = sense()
    assert "1 ingested drop(s) changed since ingest and will be refused" in skipped.skip_message


def test_a_drop_that_never_ingested_may_be_fixed_and_ingested(setup):
    drop, stored, ingest, _ = setup
    shards = sorted(drop.glob("*.jsonl.gz"))
    contents = {p: p.read_bytes() for p in shards}
    for path in shards:
        path.write_bytes(gzip.compress(b"not json\n"))
    assert not ingest().success  # nothing readable: nothing downstream saw it, so it is not recorded
    assert not (stored / "files.json").exists()
    for path, content in contents.items():
        path.write_bytes(content)
    assert ingest().success
    assert pl.read_parquet(stored / "documents.parquet").height == 60
