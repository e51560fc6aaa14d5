"""The shape of the code, as README's Layout promises: Dagster-free steps and store, thin assets that
import no other asset module, and one definition of each shared name."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "curation_dag"
MAX_ASSET_LINES = 40  # from `def` to the end; none is longer


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", modules("steps") + modules("store"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_steps_and_store_import_neither_dagster_nor_assets(path):
    upward = {
        name for name in imported(path) if name.split(".")[0] == "dagster" or name.startswith("curation_dag.assets")
    }
    assert not upward, f"{path.relative_to(PACKAGE)} imports {sorted(upward)}"


@pytest.mark.parametrize("path", modules("assets"), ids=lambda p: p.name)
def test_no_asset_module_imports_another(path):
    others = {
        name
        for name in imported(path)
        if name.startswith("curation_dag.assets.") and name.split(".")[2] != path.stem and name.count(".") >= 2
    }
    assert not others, f"assets/{path.name} imports {sorted(others)}"


def _is_asset(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name in {"asset", "multi_asset"}


def test_asset_functions_are_thin():
    long = {}
    for path in modules("assets"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(_is_asset(d) for d in node.decorator_list):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_ASSET_LINES:
                    long[f"{path.name}:{node.name}"] = lines
    assert not long, f"asset functions over {MAX_ASSET_LINES} lines: {long}"


def _definitions(name: str) -> list[str]:
    found = []
    for path in modules("."):
        for node in ast.walk(ast.parse(path.read_text())):
            defined = (
                [node.name]
                if isinstance(node, ast.FunctionDef | ast.ClassDef)
                else [t.id for t in node.targets if isinstance(t, ast.Name)]
                if isinstance(node, ast.Assign)
                else []
            )
            if name in defined:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


@pytest.mark.parametrize("name", ["_mix", "splitmix64", "mixture_folder", "CURRENT", "STAGES", "model_order"])
def test_one_definition(name):
    assert len(_definitions(name)) <= 1, f"{name} is defined in {_definitions(name)}"


# Reads of Parquet files and arrays that bypass store/files.py, which reads a local root directly and
# object storage through the root's fsspec filesystem. The drops' own shards are read where they land
# (steps/ingest/shards.py).
DIRECT_READ = re.compile(
    r"\b(?:pl\.(?:scan|read)_parquet|pq\.(?:ParquetFile|read_table|read_metadata|read_schema)|np\.load)\("
)
READERS = {"store/files.py", "steps/ingest/shards.py"}


def test_the_storage_root_is_read_only_through_the_store():
    direct = {
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in modules(".")
        if str(path.relative_to(PACKAGE)) not in READERS
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if DIRECT_READ.search(line)
    }
    assert not direct, f"read with store/files.py instead: {sorted(direct)}"
