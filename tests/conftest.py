"""Shared fixtures: the shipped demo drops, crafted drops, a real Dagster instance, ../shared/data."""

import gzip
import json
from pathlib import Path

import dagster as dg
import pytest

from curation_dag.core.drops import COMPLETE_MARKER

PROJECT = Path(__file__).resolve().parents[1]
DEMO_DROPS = PROJECT / "demo_data" / "drops"
RECIPES = PROJECT / "dbt_like_recipes"
SOURCES_FILE = RECIPES / "sources.yml"
SHARED_DATA = PROJECT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The evaluation corpora beside the project; tests that need them skip on machines without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the evaluation corpora in {SHARED_DATA}, absent on this machine")
    return SHARED_DATA


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def write_jsonl(path: Path, records: list, compress: bool = False) -> Path:
    """Write JSON Lines: dicts are dumped, bytes are written as the raw line."""
    lines = b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(lines, mtime=0) if compress else lines)
    return path


def mark_complete(drop_dir: Path) -> Path:
    drop_dir.mkdir(parents=True, exist_ok=True)
    (drop_dir / COMPLETE_MARKER).touch()
    return drop_dir
