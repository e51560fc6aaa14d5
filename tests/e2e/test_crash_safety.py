"""Crash safety: a materialization SIGKILLed midway leaves no partial file under its final name, and
running it again gives outputs byte-identical to a run that was never interrupted, with the killed
run failed and its pool slots freed.

Each stage runs in a process of its own (tests/e2e/crash_runner.py) against a persistent SQLite instance
with the project's dagster.yaml, pools included.
The reference runs every stage once, uninterrupted, keeping a copy of the work folder before each;
a crash test starts from that copy, kills the stage at its first, middle or last file write, checks
every visible file, runs the stage again and compares every output byte for byte. A truncated file
left by something else (a full disk, a bad copy) fails its reader, naming the file and the way back.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import dagster as dg
import pyarrow.parquet as pq
import pytest

from curation_dag.automation.run_recovery import UNFINISHED
from tests.conftest import DEMO_DROPS, PROJECT, small_recipes

STAGES = ["ingest", "dedup", "curate", "mixture"]
# Which run built a mixture, and when: the only outputs that differ between two runs by design.
RUN_RECORDS = {"run.json", "report.html"}


def run_stage(work, stage, model_cache, kill_at=None, timeout=600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tests.e2e.crash_runner", stage, str(work), model_cache]
    if kill_at:
        command += ["--kill-at", str(kill_at)]
    environment = {**os.environ, "DAGSTER_HOME": str(work / "home")}
    return subprocess.run(command, cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=timeout)


def assert_killed_run_recovered(home) -> None:
    """The killed run is failed, saying why, and holds no pool slot (issue 14, finding 4: it used to
    keep its slot, and the rerun waited for it for ever)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        assert len(failed) == 1
        failure = instance.all_logs(failed[0].run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
        assert "killed from outside" in failure.message
        assert instance.get_runs_count(filters=dg.RunsFilter(statuses=UNFINISHED)) == 0
        assert instance.event_log_storage.get_concurrency_run_ids() == set()


def outputs(store) -> dict:
    """Every visible output file (hidden temporaries and locks left out), by path, with its bytes."""
    files = (p.relative_to(store) for p in store.rglob("*") if p.is_file())
    visible = (p for p in files if not any(part.startswith(".") for part in p.parts) and p.name not in RUN_RECORDS)
    return {str(p): (store / p).read_bytes() for p in visible}


def assert_readable(store) -> None:
    """Every visible Parquet and JSON file parses: no half-written file is under a final name."""
    for name in outputs(store):
        path = store / name
        if path.suffix == ".parquet":
            pq.read_metadata(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, static_embedder):
    """The work folder before each stage, every stage's count of renamed files, and the final folder."""
    root = tmp_path_factory.mktemp("crash")
    work = root / "reference"
    for key in ("licenses/2026-11-01", "python_docs/2026-11-01"):
        shutil.copytree(DEMO_DROPS / key, work / "drops" / key)
    small_recipes(work / "recipes")
    (work / "home").mkdir()
    shutil.copy(PROJECT / "dagster.yaml", work / "home")  # its pools: a killed run holds a slot
    before, renames = {}, {}
    for stage in STAGES:
        before[stage] = shutil.copytree(work, root / f"before-{stage}")
        done = run_stage(work, stage, static_embedder.cache_dir)
        assert done.returncode == 0, done.stderr[-3000:]
        renames[stage] = json.loads(done.stdout.strip().splitlines()[-1])["renames"]
    return before, renames, work


@pytest.mark.parametrize(
    ("stage", "at"),
    [("ingest", "middle"), ("dedup", "first"), ("dedup", "last"), ("mixture", "middle"), ("mixture", "last")],
)
def test_a_killed_stage_leaves_no_partial_file_and_its_rerun_is_byte_identical(
    stage, at, reference, tmp_path, static_embedder
):
    before, renames, final = reference
    work = shutil.copytree(before[stage], tmp_path / "work")
    kill_at = {"first": 1, "middle": max(1, renames[stage] // 2), "last": renames[stage]}[at]
    killed = run_stage(work, stage, static_embedder.cache_dir, kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert list((work / "store").rglob(".*.tmp")), "the kill was meant to leave a half-written temporary file"
    assert_readable(work / "store")

    # A run that waits for the killed run's pool slot times out here rather than hanging the suite.
    again = run_stage(work, stage, static_embedder.cache_dir, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_killed_run_recovered(work / "home")
    after = before[STAGES[STAGES.index(stage) + 1]] if stage != STAGES[-1] else final
    expected, got = outputs(after / "store"), outputs(work / "store")
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == []


@pytest.mark.parametrize(
    ("damaged", "stage", "recovery"),
    [
        ("raw_documents/licenses/2026-11-01/documents.parquet", "mixture", "Materialize raw_documents for that drop"),
        ("near_duplicates/decisions/licenses/2026-11-01.parquet", "curate", "Rebuild near_duplicates: delete"),
    ],
)
def test_a_truncated_intermediate_fails_the_reader_naming_the_file_and_the_way_back(
    damaged, stage, recovery, reference, tmp_path, static_embedder
):
    _, _, final = reference
    work = shutil.copytree(final, tmp_path / "work")
    path = work / "store" / damaged
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    failed = run_stage(work, stage, static_embedder.cache_dir)
    assert failed.returncode == 1
    assert f"{path} is damaged" in failed.stderr and recovery in failed.stderr, failed.stderr[-3000:]
