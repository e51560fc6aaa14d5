"""deploy/: the Kubernetes shape, validated without a cluster (none can run here). Its Helm values keep the
PostgreSQL instance's queue, pools and run monitoring, give the code location settings the project
accepts, and build, through dagster-k8s itself, a valid Kubernetes job for each kind of step pod."""

import json
import re

import yaml
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

from curation_dag.assets.embed import embeddings
from curation_dag.definitions import build_definitions, executor_for
from curation_dag.resources import EmbedderResource
from curation_dag.settings import Settings
from tests.conftest import DEMO_DROPS, PROJECT, RECIPES

DEPLOY = PROJECT / "deploy"
VALUES = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
[CODE_LOCATION] = VALUES["dagster-user-deployments"]["deployments"]


def snake_case(value):
    """The chart's camelCase keys as dagster.yaml spells them (the chart's templates do the same)."""
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): snake_case(item) for key, item in value.items()}
    return value


def test_the_chart_keeps_the_postgres_instances_queue_pools_and_run_monitoring():
    instance = yaml.safe_load((DEPLOY / "dagster.postgres.yaml").read_text())
    assert VALUES["dagsterDaemon"]["runCoordinator"]["type"] == instance["run_coordinator"]["class"]
    assert snake_case(VALUES["concurrency"]) == instance["concurrency"]
    assert snake_case(VALUES["dagsterDaemon"]["runMonitoring"]) == instance["run_monitoring"]
    assert VALUES["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]


def test_the_code_location_loads_with_the_k8s_executor_from_the_image_the_dockerfile_serves():
    assert CODE_LOCATION["dagsterApiGrpcArgs"] == ["--module-name", "curation_dag.definitions"]
    cmd = next(line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    assert json.loads(cmd.removeprefix("CMD "))[:5] == [
        "dagster",
        "api",
        "grpc",
        "--module-name",
        "curation_dag.definitions",
    ]
    settings = Settings.from_environment({item["name"]: item["value"] for item in CODE_LOCATION["env"]})
    assert settings.executor == "k8s" and settings.storage_root.startswith("s3://")
    defs = build_definitions(
        str(RECIPES), str(DEMO_DROPS), settings.storage_root, EmbedderResource(), executor_for(settings)
    )
    assert {defs.resolve_job_def(job).executor_def.name for job in ("curation_job", "mixtures_job")} == {"k8s"}


def step_job(user_defined: UserDefinedDagsterK8sConfig):
    """The Kubernetes job dagster-k8s makes for one step pod, with the chart's code location settings."""
    config = DagsterK8sJobConfig(
        job_image=f"{CODE_LOCATION['image']['repository']}:{CODE_LOCATION['image']['tag']}",
        dagster_home="/opt/dagster/dagster_home",
        env_secrets=[secret["name"] for secret in CODE_LOCATION["envSecrets"]],
        volumes=CODE_LOCATION["volumes"],
        volume_mounts=CODE_LOCATION["volumeMounts"],
    )
    return construct_dagster_k8s_job(config, ["dagster", "api", "execute_step"], "step", user_defined).to_dict()


def test_the_embeddings_pod_asks_for_a_gpu_and_every_pod_for_the_run_launchers_resources():
    gpu = step_job(get_user_defined_k8s_config(embeddings.op.tags))
    [container] = gpu["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert [source["secret_ref"]["name"] for source in container["env_from"]] == ["curation-object-store"]
    assert container["volume_mounts"][0]["mount_path"] == "/data/drops"

    run_k8s = snake_case(VALUES["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"])
    [container] = step_job(UserDefinedDagsterK8sConfig.from_dict(run_k8s))["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == {
        "claims": None,
        "limits": {"memory": "8Gi"},
        "requests": {"cpu": "1", "memory": "4Gi"},
    }
