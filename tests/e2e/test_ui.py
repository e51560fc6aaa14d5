"""The Dagster UI end to end: `dagster dev` on a free loopback port, the asset graph in headless
Chromium, a materialization launched through the UI's GraphQL API, and the server stopped by its PID."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import DEMO_DROPS, PROJECT, RECIPES

DROP = "licenses/2026-11-01"
GROUPS = ["ingest", "dedup", "embed", "quality", "recipes", "mixtures"]
REPOSITORY = {"repositoryLocationName": "curation_dag", "repositoryName": "__repository__"}
LOCATION_LOADED = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
ADD_PARTITION = """
mutation($partitionsDefName: String!, $partitionKey: String!, $repositorySelector: RepositorySelector!) {
  addDynamicPartition(partitionsDefName: $partitionsDefName, partitionKey: $partitionKey,
                      repositorySelector: $repositorySelector) {
    __typename ... on PythonError { message } ... on UnauthorizedError { message }
  }
}"""
LAUNCH = """
mutation($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  }
}"""
RUN_STATUS = "query($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["data"]


def wait_for(condition, timeout: float, what: str, log) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(2)
    pytest.fail(f"{what} within {timeout:.0f} s; dagster dev's log ends:\n{log.read_text()[-3000:]}")


def location_loaded(port: int) -> bool:
    try:
        entries = graphql(port, LOCATION_LOADED)["workspaceOrError"]["locationEntries"]
    except (urllib.error.URLError, ConnectionError, KeyError, TypeError):
        return False
    return [(e["name"], e["loadStatus"]) for e in entries] == [("curation_dag", "LOADED")]


@pytest.fixture
def dagster_dev(tmp_path, static_embedder):
    """`dagster dev` on the project, with its dagster.yaml, a fresh instance and one demo drop;
    sensors and schedules start off (CURATION_AUTOMATION=off) so that only the test launches runs."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home)
    shutil.copytree(DEMO_DROPS / DROP, tmp_path / "drops" / DROP)
    port, log = free_port(), tmp_path / "dagster_dev.log"
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CURATION_STORAGE_ROOT": str(tmp_path / "store"),
        "CURATION_DROPS_ROOT": str(tmp_path / "drops"),
        "CURATION_RECIPES": str(RECIPES),
        "CURATION_MODEL_CACHE": static_embedder.cache_dir,
        "CURATION_AUTOMATION": "off",
    }
    command = [PROJECT / ".venv" / "bin" / "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with open(log, "w") as output:
        server = subprocess.Popen(
            command, cwd=PROJECT, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(lambda: location_loaded(port), 240, "the code location did not load", log)
        yield port, tmp_path / "store", log
    finally:
        os.killpg(server.pid, signal.SIGINT)  # as Ctrl-C does; dagster dev then stops its daemon and servers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
    assert server.returncode is not None


def test_the_ui_shows_the_asset_groups_and_runs_a_materialization(chromium, dagster_dev, tmp_path):
    port, store, log = dagster_dev

    def graph_shows_groups() -> bool:
        page = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--dump-dom",
             "--virtual-time-budget=20000", f"--user-data-dir={tmp_path / 'chromium'}",
             f"http://127.0.0.1:{port}/asset-groups"],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
        return all(f">{group}<" in page for group in GROUPS)

    wait_for(graph_shows_groups, 180, f"the asset graph did not show the groups {GROUPS}", log)

    added = graphql(
        port, ADD_PARTITION, {"partitionsDefName": "drops", "partitionKey": DROP, "repositorySelector": REPOSITORY}
    )
    assert added["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess", added
    launched = graphql(
        port,
        LAUNCH,
        {
            "executionParams": {
                "selector": {
                    **REPOSITORY,
                    "pipelineName": "__ASSET_JOB",
                    "assetSelection": [{"path": ["raw_documents"]}],
                },
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DROP}]},
            }
        },
    )["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished() -> bool:
        return graphql(port, RUN_STATUS, {"runId": run_id})["runOrError"]["status"] in (
            "SUCCESS",
            "FAILURE",
            "CANCELED",
        )

    wait_for(finished, 300, f"run {run_id} did not finish", log)
    status = graphql(port, RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
    assert status == "SUCCESS", log.read_text()[-3000:]
    assert (store / "raw_documents" / DROP / "documents.parquet").is_file()
