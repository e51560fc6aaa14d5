"""Every test here runs the project end to end (the CLI, the UI, killed processes, automation ticks):
marked slow, so `pytest -m "not slow"` is the quick loop while editing. `make test` runs them all."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)


def dagster_env(folder: Path, instance: Path = PROJECT / "dagster.yaml") -> dict[str, str]:
    """A fresh Dagster home with the `instance` settings, and outputs under `folder`."""
    (folder / "home").mkdir()
    shutil.copy(instance, folder / "home" / "dagster.yaml")
    return {**os.environ, "DAGSTER_HOME": str(folder / "home"), "CURATION_STORAGE_ROOT": str(folder / "store")}


def curate_demo(env: dict[str, str], static_embedder) -> subprocess.CompletedProcess:
    """`curate demo` as a user runs it, with the static model distilled once per checkout."""
    env = {**env, "CURATION_MODEL_CACHE": static_embedder.cache_dir}
    return subprocess.run([BIN / "curate", "demo"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def embedded_demo(tmp_path_factory, static_embedder) -> tuple[subprocess.CompletedProcess, Path]:
    """`curate demo` on the default instance (SQLite under the storage root): its output and its folder."""
    folder = tmp_path_factory.mktemp("embedded_demo")
    return curate_demo(dagster_env(folder), static_embedder), folder


def query(postgres: dict[str, str], *statements: str) -> list[list[tuple]]:
    """The rows of each SQL statement, in the Dagster database of the `postgres` fixture's server."""
    import psycopg2

    connection = psycopg2.connect(
        host=postgres["DAGSTER_PG_HOST"], port=postgres["DAGSTER_PG_PORT"],
        user=postgres["DAGSTER_PG_USERNAME"], dbname=postgres["DAGSTER_PG_DB"],
    )  # fmt: skip
    try:
        rows = []
        with connection, connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                rows.append(cursor.fetchall())
        return rows
    finally:
        connection.close()
