"""Drops are immutable: the files of a drop, with their sizes and SHA-256 digests, recorded when it is
ingested, so that a later change to a registered drop is found and refused rather than re-read.

Dedup, semantic and quality decisions are made once per document and kept in ledgers keyed by
`doc_id` (`<source>/<drop>/<shard>#<row>`), so a shard edited after ingest would ship its new text
under the old text's verdicts, and a removed line would shift every later row onto its
neighbour's. A corrected drop therefore arrives as a new drop id; the old one is taken down.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from curation_dag.steps.ingest.drops import COMPLETE_MARKER
from curation_dag.store.atomic import atomic_path

_READ_BYTES = 1 << 20


@dataclass(frozen=True)
class DropFile:
    """One file of a drop: its path inside the drop folder, size, modification time and digest."""

    path: str
    size: int
    mtime_ns: int
    sha256: str | None  # None for a link that leaves the drop folder: never read, so never digested


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if (p.is_file() or p.is_symlink()) and p.name != COMPLETE_MARKER)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def snapshot(folder: Path, digests: bool = True) -> dict[str, DropFile]:
    """Every file under a drop folder but its completion marker, by relative path. Without
    `digests`, only sizes and times: the cheap first look of the drop sensor."""
    found = {}
    for path in _files(folder):
        inside = _inside(path, folder)
        status = path.stat() if inside else path.lstat()
        found[path.relative_to(folder).as_posix()] = DropFile(
            path.relative_to(folder).as_posix(),
            status.st_size,
            status.st_mtime_ns,
            _digest(path) if digests and inside and path.is_file() else None,
        )
    return found


def save(files: dict[str, DropFile], record: Path) -> None:
    with atomic_path(record) as temporary:
        temporary.write_text(json.dumps({"files": [vars(f) for f in files.values()]}, indent=1))


def load(record: Path) -> dict[str, DropFile] | None:
    """The files recorded at ingest, or None for a drop not ingested yet."""
    if not record.is_file():
        return None
    return {entry["path"]: DropFile(**entry) for entry in json.loads(record.read_text())["files"]}


def changes(recorded: dict[str, DropFile], current: dict[str, DropFile], by_content: bool = True) -> list[str]:
    """What differs, one line per file: added, removed, or changed (by digest, or by size and time)."""
    lines = [f"{path} was added" for path in sorted(current.keys() - recorded.keys())]
    lines += [f"{path} was removed" for path in sorted(recorded.keys() - current.keys())]
    for path in sorted(current.keys() & recorded.keys()):
        old, new = recorded[path], current[path]
        differs = old.sha256 != new.sha256 if by_content else (old.size, old.mtime_ns) != (new.size, new.mtime_ns)
        if differs:
            lines.append(f"{path} changed ({old.size:,} -> {new.size:,} bytes)")
    return lines


def content_changes(folder: Path, recorded: dict[str, DropFile]) -> list[str]:
    """Changes since ingest, digesting only the files whose size or time moved (a touched file
    with the same bytes is no change)."""
    moved = changes(recorded, snapshot(folder, digests=False), by_content=False)
    if not moved:
        return []
    return changes(recorded, snapshot(folder))


def refusal(key: str, folder: Path, lines: list[str]) -> str:
    """The message for a changed drop: which files, why it is refused and the way forward."""
    listed = "; ".join(lines[:10]) + (f"; and {len(lines) - 10} more" if len(lines) > 10 else "")
    return (
        f"drop {key} ({folder}) changed after it was ingested: {listed}. Drops are immutable: its documents "
        f"already have dedup, semantic and quality decisions, which the new bytes would inherit. Restore the "
        f"original files, or deliver the corrected data as a new drop (a new folder beside it, with its own "
        f"{COMPLETE_MARKER}) and take this one down with `curate remove --drop {key} --reason ...`."
    )
