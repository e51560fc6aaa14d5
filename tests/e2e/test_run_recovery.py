"""Run recovery: a run whose process is gone is failed and its pool slots freed; a live run is left alone."""

import os
import shutil
import subprocess
import uuid

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

from curation_dag.automation.run_recovery import dead_runs_sensor, recover_dead_runs
from tests.conftest import PROJECT


@pytest.fixture
def instance(tmp_path):
    """A persistent instance with the project's dagster.yaml: its pools and its run monitoring settings."""
    shutil.copy(PROJECT / "dagster.yaml", tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        yield instance


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def started_run(instance, pid: int, pool: str, status=dg.DagsterRunStatus.STARTED) -> dg.DagsterRun:
    """A run of `dedup_job` in `status`, recorded as running in process `pid` and holding a slot of `pool`."""
    run = instance.add_run(dg.DagsterRun(job_name="dedup_job", run_id=str(uuid.uuid4()), status=status))
    instance.report_engine_event(f"Executing steps in process (pid: {pid})", run, EngineEventData.in_process(pid))
    with InstanceConcurrencyContext(instance, run) as concurrency:  # claims as a run's executor does
        assert concurrency.claim(pool, "near_duplicates")
    return run


def holders(instance, pool: str) -> list[str]:
    return [slot.run_id for slot in instance.event_log_storage.get_concurrency_info(pool).claimed_slots]


def test_a_run_whose_process_is_gone_is_failed_and_frees_its_slot_while_a_live_run_keeps_its_own(instance):
    killed = started_run(instance, dead_pid(), "dedup_state")
    live = started_run(instance, os.getpid(), "semantic_state")
    assert instance.event_log_storage.get_concurrency_info("dedup_state").slot_count == 1  # dagster.yaml's limit

    recovered = recover_dead_runs(instance)

    assert recovered == [killed.run_id]
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
    assert "Its process (pid" in failure.message and "killed from outside" in failure.message
    assert holders(instance, "dedup_state") == []
    assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
    assert holders(instance, "semantic_state") == [live.run_id]
    assert recover_dead_runs(instance) == []


def test_a_killed_canceling_run_is_canceled_and_an_ended_run_gives_back_its_slot_once_its_process_is_gone(
    instance,
):
    canceling = started_run(instance, dead_pid(), "duckdb", status=dg.DagsterRunStatus.CANCELING)
    ended = started_run(instance, dead_pid(), "gpu")
    finishing = started_run(instance, os.getpid(), "dedup_state")
    for run in (ended, finishing):
        instance.report_run_failed(run, "terminated from the UI, its slot still claimed")

    assert sorted(recover_dead_runs(instance)) == sorted([canceling.run_id, ended.run_id])
    assert instance.get_run_by_id(canceling.run_id).status == dg.DagsterRunStatus.CANCELED
    assert holders(instance, "duckdb") == holders(instance, "gpu") == []
    assert holders(instance, "dedup_state") == [finishing.run_id]


def test_a_run_whose_worker_was_killed_keeps_its_slot_while_a_step_subprocess_still_runs(instance):
    """The multiprocess executor's step subprocess outlives a SIGKILLed run worker and finishes its step:
    its pool stays held until then, so no other run writes that pool's state beside it."""
    orphaned = started_run(instance, dead_pid(), "dedup_state")
    step_worker = dg.DagsterEvent(
        dg.DagsterEventType.STEP_WORKER_STARTED.value,
        orphaned.job_name,
        step_key="near_duplicates",
        event_specific_data=EngineEventData(metadata={"pid": dg.MetadataValue.text(str(os.getpid()))}),
    )
    instance.report_dagster_event(step_worker, orphaned.run_id)

    assert recover_dead_runs(instance) == []
    assert instance.get_run_by_id(orphaned.run_id).status == dg.DagsterRunStatus.STARTED
    assert holders(instance, "dedup_state") == [orphaned.run_id]


def test_the_sensor_recovers_and_launches_nothing(instance):
    killed = started_run(instance, dead_pid(), "dedup_state")
    with dg.build_sensor_context(instance=instance) as context:
        tick = dead_runs_sensor(context)
    assert isinstance(tick, dg.SkipReason) and killed.run_id in tick.skip_message
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
