"""The instance on PostgreSQL (deploy/dagster.postgres.yaml): `curate demo` against a real server keeps its
runs and events there, and builds the very mixtures the default SQLite instance builds."""

import re

import dagster as dg
import yaml

from tests.conftest import PROJECT
from tests.e2e.conftest import curate_demo, dagster_env, query

POSTGRES_INSTANCE = PROJECT / "deploy" / "dagster.postgres.yaml"


def manifests(output: str) -> dict[str, str]:
    return dict(re.findall(r"^(mixture_\w+) .*  ([0-9a-f]{16})$", output, re.M))


def test_the_postgres_instance_has_the_default_instances_settings_but_storage_and_the_run_queue():
    default = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    postgres = yaml.safe_load(POSTGRES_INSTANCE.read_text())
    assert set(postgres) - set(default) == {"storage", "run_coordinator"}
    for section, settings in default.items():
        if section == "concurrency":
            assert postgres[section]["pools"] == settings["pools"] and postgres[section]["runs"]["max_concurrent_runs"]
        else:
            assert postgres[section] == settings, section


def test_curate_demo_on_postgres_builds_the_mixtures_of_the_default_instance(
    tmp_path, postgres, static_embedder, embedded_demo, monkeypatch
):
    env = {**dagster_env(tmp_path, POSTGRES_INSTANCE), **postgres}
    result = curate_demo(env, static_embedder)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = manifests(embedded_demo[0].stdout)
    assert len(expected) == 4 and manifests(result.stdout) == expected

    # The runs and their events are in the server: nothing was written to SQLite files in the home.
    assert not [path for path in (tmp_path / "home").rglob("*") if path.suffix == ".db"]
    runs, [(materializations,)] = query(
        postgres,
        "select pipeline_name, status from runs",
        "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'",
    )
    jobs = {name for name, _ in runs}
    assert {"curation_job", "dedup_job", "embed_job", "semantic_job", "mixtures_job"} <= jobs
    assert {status for _, status in runs} == {"SUCCESS"} and len(runs) == 2 * 6 + 3  # per drop: curation, embed
    assert materializations > len(runs)

    # Runs launched from the UI, sensors and schedules queue; steps share the project's pools.
    for name, value in postgres.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
