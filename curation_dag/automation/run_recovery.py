"""Dead-run recovery: a run whose process was killed from outside is ended and its pool slots freed.

A SIGKILLed run never reports its end: it stays STARTED and keeps the pool slots its steps claimed,
so every later run of a step in those pools waits for a slot for ever (issue 14, finding 4). Dagster's
run monitoring (dagster.yaml) fails a STARTED run only through the run launcher's worker health
check, which the DefaultRunLauncher of `dagster dev` does not have, and in-process runs have no
launcher at all. Every run process records its pid in an engine event ("Executing steps in process
(pid: N)", "Started process for run (pid: N)"), and so does each step subprocess of the multiprocess
executor (STEP_WORKER_STARTED), which outlives a SIGKILLed run worker and finishes its step; the
storage here is SQLite on one machine, so a run none of whose recorded processes is alive on this
host is dead. A recycled pid can only keep a dead
run looking alive, never make a live one look dead.
"""

import os

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES

from curation_dag.automation.conditions import SENSOR_STATUS

UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
PROCESS_EVENTS = {dg.DagsterEventType.ENGINE_EVENT, dg.DagsterEventType.STEP_WORKER_STARTED}


def recorded_pids(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    """The pids of the processes that ran `run_id`, from the `pid` metadata of its engine and step worker events."""
    pids = set()
    for entry in instance.all_logs(run_id, of_type=PROCESS_EVENTS):
        pid = entry.dagster_event.engine_event_data.metadata.get("pid")
        if pid is not None:
            pids.add(int(pid.value))
    return pids


def is_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(pids: set[int]) -> bool:
    """Whether none of these processes is alive on this host."""
    return not any(is_alive(pid) for pid in pids)


def recover_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """End every unfinished run whose processes are all gone (failed, or canceled if it was being
    canceled), free the pool slots it and any ended run still hold, and return those runs' ids.
    A run that has recorded no pid yet (still being launched) is left to run monitoring."""
    recovered = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        pids = recorded_pids(instance, run.run_id)
        if not pids or not is_dead(pids):
            continue
        listed = ", ".join(str(pid) for pid in sorted(pids))
        message = (
            f"Its process (pid {listed}) is gone: it was killed from outside before it could report its end. "
            "Ended and its pool slots freed by dead-run recovery (curation_dag/automation/run_recovery.py)."
        )
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message=message)
        else:
            instance.report_run_failed(run, message=message)
        recovered.append(run.run_id)
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return recovered
    holders = list(storage.get_concurrency_run_ids())
    if not holders:
        return recovered
    ended = instance.get_runs(filters=dg.RunsFilter(run_ids=holders, statuses=FINISHED_STATUSES))
    # An ended run's slots are freed once its processes are gone too: a terminated run may still be
    # finishing a step.
    for run in (run for run in ended if is_dead(recorded_pids(instance, run.run_id))):
        storage.free_concurrency_slots_for_run(run.run_id)
        if run.run_id not in recovered:
            recovered.append(run.run_id)
    return recovered


@dg.sensor(
    name="dead_runs",
    minimum_interval_seconds=60,
    default_status=SENSOR_STATUS,
    description="Ends each run whose process was killed from outside and frees the pool slots it held.",
)
def dead_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Launches nothing: each tick recovers the dead runs and names them in its skip message."""
    recovered = recover_dead_runs(context.instance)
    if recovered:
        context.log.warning(f"Ended dead runs and freed their pool slots: {', '.join(recovered)}")
        return dg.SkipReason(f"Recovered dead runs: {', '.join(recovered)}")
    return dg.SkipReason("No dead runs")
