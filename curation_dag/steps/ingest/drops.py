"""Data drops: `<drops_root>/<source>/<drop_id>/` folders of shards, complete once `_SUCCESS` exists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The Hadoop/Spark convention: a job writes `_SUCCESS` last, so its presence means every shard is in place.
COMPLETE_MARKER = "_SUCCESS"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class DropNameError(ValueError):
    """A source or drop name that cannot safely become a folder name and a partition key."""


def validate_name(name: str, what: str) -> str:
    """Return `name` if it is a safe single path component, else raise DropNameError saying why."""
    if not _NAME.fullmatch(name) or name.endswith("."):
        raise DropNameError(
            f"invalid {what} name {name!r}: use 1-128 letters, digits, '.', '_' or '-', starting with"
            " a letter or digit (no path separators, no '..'); rename the folder to fix it"
        )
    return name


@dataclass(frozen=True)
class Drop:
    """One data drop of one source; its partition key is `<source>/<drop_id>`."""

    source: str
    drop_id: str
    path: Path

    @property
    def key(self) -> str:
        return f"{self.source}/{self.drop_id}"


def parse_drop_key(key: str) -> tuple[str, str]:
    """Split a partition key `<source>/<drop_id>` into validated names."""
    source, sep, drop_id = key.partition("/")
    if not sep:
        raise DropNameError(f"invalid drop key {key!r}: expected '<source>/<drop_id>'")
    return validate_name(source, "source"), validate_name(drop_id, "drop")


def drop_at(drops_root: Path, key: str) -> Drop:
    """The drop that a partition key names, refusing keys that would escape the drops root."""
    source, drop_id = parse_drop_key(key)
    return Drop(source, drop_id, Path(drops_root) / source / drop_id)


def find_complete_drops(drops_root: Path, sources: set[str]) -> tuple[list[Drop], list[str]]:
    """Complete drops of the declared sources, ordered by drop id, then source.

    Drop ids that sort in arrival order (dates, zero-padded numbers) make that order the arrival
    order, independent of file times, which a copy or a clone does not keep.

    Returns the drops and one message per folder that was passed over because its name is invalid
    or because it links outside the drops root.
    Folders of undeclared sources and drops without the marker are not drops yet, so they are skipped.
    """
    drops: list[Drop] = []
    refused: list[str] = []
    root = Path(drops_root).resolve()
    for source in sorted(sources):
        source_dir = Path(drops_root) / source
        if not source_dir.is_dir():
            continue
        for drop_dir in sorted(p for p in source_dir.iterdir() if p.is_dir()):
            if not (drop_dir / COMPLETE_MARKER).is_file():
                continue
            try:
                validate_name(drop_dir.name, "drop")
            except DropNameError as error:
                refused.append(f"{drop_dir}: {error}")
                continue
            if not drop_dir.resolve().is_relative_to(root):
                refused.append(
                    f"{drop_dir}: links outside the drops root ({drop_dir.resolve()}); copy the drop in instead"
                )
                continue
            drops.append(Drop(source, drop_dir.name, drop_dir))
    drops.sort(key=lambda drop: (drop.drop_id, drop.source))
    return drops, refused
