from pathlib import Path

import pytest

from curation_dag.steps.ingest.drops import DropNameError, drop_at, find_complete_drops, parse_drop_key, validate_name
from tests.conftest import mark_complete


@pytest.mark.parametrize("name", ["web", "2026-11-01", "cc.main_2024-10", "A1"])
def test_safe_names_pass(name):
    assert validate_name(name, "drop") == name


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "a\\b", ".hidden", "-x", "", "x.", "name with space", "x" * 129])
def test_unsafe_names_are_refused_with_the_rule(name):
    with pytest.raises(DropNameError, match="letters, digits"):
        validate_name(name, "drop")


@pytest.mark.parametrize("key", ["../x", "web/../x", "web/a/b", "web", "/etc/passwd", "web/"])
def test_partition_keys_cannot_escape_the_drops_root(key, tmp_path):
    with pytest.raises(DropNameError):
        drop_at(tmp_path, key)


def test_key_round_trip(tmp_path):
    assert parse_drop_key("web/2026-11-01") == ("web", "2026-11-01")
    assert drop_at(tmp_path, "web/2026-11-01").path == tmp_path / "web" / "2026-11-01"


def test_only_complete_drops_of_declared_sources_in_drop_id_order(tmp_path: Path):
    mark_complete(tmp_path / "web" / "2026-11-15")
    mark_complete(tmp_path / "books" / "2026-11-01")
    mark_complete(tmp_path / "web" / "2026-11-01")
    (tmp_path / "web" / "2026-12-01").mkdir()  # no marker yet: still being written
    mark_complete(tmp_path / "undeclared" / "2026-11-01")
    mark_complete(tmp_path / "web" / "bad name")

    drops, refused = find_complete_drops(tmp_path, {"web", "books"})

    assert [d.key for d in drops] == ["books/2026-11-01", "web/2026-11-01", "web/2026-11-15"]
    assert len(refused) == 1 and "bad name" in refused[0] and "invalid drop name" in refused[0]
