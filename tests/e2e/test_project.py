"""The project as a user meets it: the code location validates and `curate demo` runs the demo drops."""

import re
import subprocess
import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import PROJECT
from tests.e2e.conftest import BIN, dagster_env


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


def test_curate_demo_runs_every_step_and_builds_the_mixtures(embedded_demo):
    result, tmp_path = embedded_demo
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 drops registered" in result.stdout
    assert re.search(r"licenses/2026-11-15 +65 +63 +2 +passed", result.stdout), result.stdout
    assert len(list((tmp_path / "store" / "raw_documents").glob("*/*/documents.parquet"))) == 6
    for mixture in ("code_long_files", "d4_pruned", "plain_dedup", "quality_filtered"):
        assert re.search(rf"mixture_{mixture} +\d+ +\d+ +\d+  [0-9a-f]{{16}}", result.stdout), result.stdout
        assert (tmp_path / "store" / "mixtures" / mixture / "CURRENT").is_file()


def test_every_lower_bound_is_the_locked_version_the_tests_run_on():
    """pyproject.toml's ranges are for people installing into their own environment; each lower bound
    is the version requirements.lock holds, so the oldest release we claim is the one CI tests."""
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    locked = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", (PROJECT / "requirements.lock").read_text(), re.M))
    wrong = []
    for line in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(line)
        floor = next(s.version for s in requirement.specifier if s.operator in (">=", "=="))
        have = locked.get(requirement.name.lower())
        if have is None or Version(Version(have).public) != Version(floor):
            wrong.append(f"{requirement.name}: pyproject.toml says {floor}, requirements.lock holds {have}")
    assert not wrong, "after `make lock`, set these lower bounds to the locked versions: " + "; ".join(wrong)


def test_readme_explains_every_quarantine_reason():
    from curation_dag.steps.ingest.reasons import Reason
    from curation_dag.steps.takedowns.removal import REASON as TAKEN_DOWN

    table = set(re.findall(r"^\| `(\w+)` \|", (PROJECT / "README.md").read_text(), flags=re.MULTILINE))
    assert set(Reason) | {TAKEN_DOWN} <= table, "README.md's reason table lacks some quarantine reasons"
