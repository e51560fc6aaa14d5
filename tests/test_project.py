"""The project as a user meets it: the code location validates and `curate demo` runs the demo drops."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT

BIN = Path(sys.executable).parent


def dagster_env(tmp_path: Path) -> dict[str, str]:
    """A fresh Dagster home with the project's instance settings, and outputs under tmp_path."""
    (tmp_path / "home").mkdir()
    shutil.copy(PROJECT / "dagster.yaml", tmp_path / "home")
    return {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "CURATION_STORAGE_ROOT": str(tmp_path / "store")}


def test_dagster_definitions_validate(tmp_path):
    result = subprocess.run(
        [BIN / "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT,
        env=dagster_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_curate_demo_runs_every_step_and_builds_the_mixtures(tmp_path, static_embedder):
    env = {**dagster_env(tmp_path), "CURATION_MODEL_CACHE": static_embedder.cache_dir}  # distilled once per checkout
    result = subprocess.run([BIN / "curate", "demo"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 drops registered" in result.stdout
    assert re.search(r"licenses/2026-11-15 +65 +63 +2 +passed", result.stdout), result.stdout
    assert len(list((tmp_path / "store" / "raw_documents").glob("*/*/documents.parquet"))) == 6
    for mixture in ("code_long_files", "d4_pruned", "plain_dedup", "quality_filtered"):
        assert re.search(rf"mixture_{mixture} +\d+ +\d+ +\d+  [0-9a-f]{{16}}", result.stdout), result.stdout
        assert (tmp_path / "store" / "mixtures" / mixture / "CURRENT").is_file()
