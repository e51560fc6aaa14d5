"""The distributed executor: `curate demo` on the PostgreSQL instance with its steps run by two celery
workers (Redis as broker and results backend), in processes that share nothing with the run but the
instance and the storage root, in an S3 bucket. The mixtures equal the default, in-process demo's."""

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from upath import UPath

from tests.conftest import PROJECT
from tests.e2e.conftest import BIN, curate_demo, dagster_env, query
from tests.e2e.test_postgres_instance import POSTGRES_INSTANCE, manifests

WORKERS = ("w1", "w2")


def start_worker(name: str, env: dict[str, str], log) -> subprocess.Popen:
    """`dagster-celery worker start` as README's "Scale out" gives it, one task at a time, in a session of
    its own so that its celery child stops with it."""
    command = [BIN / "dagster-celery", "worker", "start", "-A", "dagster_celery.app", "-y", "deploy/celery.yaml"]
    return subprocess.Popen(
        [*command, "-n", name, "--", "--concurrency=1"],
        cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def wait_until_ready(log: Path, seconds: float = 120) -> None:
    """Until each worker says it is ready in `log`, so that both can take the demo's first steps."""
    deadline = time.monotonic() + seconds
    while not all(re.search(rf"\b{name}@\S+ ready", log.read_text()) for name in WORKERS):
        assert time.monotonic() < deadline, f"the workers were not ready in {seconds} s:\n{log.read_text()}"
        time.sleep(0.5)


def test_curate_demo_with_two_celery_workers_and_object_storage_builds_the_mixtures_of_the_in_process_run(
    tmp_path, postgres, redis_broker, s3_server, s3_root, static_embedder, embedded_demo
):
    env = {
        **dagster_env(tmp_path, POSTGRES_INSTANCE),
        **postgres,
        **s3_server,
        "CURATION_STORAGE_ROOT": s3_root,
        "CURATION_EXECUTOR": "celery",
        "CURATION_CELERY_BROKER": redis_broker,
        "CURATION_MODEL_CACHE": static_embedder.cache_dir,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",  # the worker command starts `celery`
    }
    # The tables first, as README says: workers that start together on an empty database race to make them.
    subprocess.run([BIN / "dagster", "instance", "migrate"], env=env, check=True, capture_output=True)
    with open(tmp_path / "workers.log", "w") as log:
        workers = [start_worker(name, env, log) for name in WORKERS]
        try:
            wait_until_ready(tmp_path / "workers.log")
            result = curate_demo(env, static_embedder)
        finally:
            for worker in workers:
                with contextlib.suppress(ProcessLookupError):  # a worker that died already
                    os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr + (tmp_path / "workers.log").read_text()
    expected = manifests(embedded_demo[0].stdout)
    assert len(expected) == 4 and manifests(result.stdout) == expected
    mixtures = UPath(s3_root) / "mixtures"
    assert sorted(p.name for p in mixtures.iterdir()) == [
        "code_long_files",
        "d4_pruned",
        "plain_dedup",
        "quality_filtered",
    ]
    assert not (tmp_path / "store").exists()  # every output went to the bucket

    # Each step says which worker ran it: both did, and no step ran in the demo's own process.
    events, [(steps,)] = query(
        postgres,
        "select event from event_logs where dagster_event_type = 'ENGINE_EVENT'",
        "select count(*) from event_logs where dagster_event_type = 'STEP_SUCCESS'",
    )
    engine_events = [json.loads(event)["dagster_event"] for (event,) in events]
    ran_on = [
        entry["entry_data"]["text"]
        for event in engine_events
        if event["message"].startswith("[CeleryExecutor] Executing steps")
        for entry in event["event_specific_data"]["metadata_entries"]
        if entry["label"] == "Celery worker"
    ]
    assert len(ran_on) == steps > 0
    assert {worker.split("@")[0] for worker in ran_on} == set(WORKERS)
