"""The ledger of an incremental asset: the drops it has absorbed, in order, each committed last, once
the drop's decision file is in place. A drop missing from the ledger (a crash mid-absorb) is simply
absorbed again, its files rewritten."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import polars as pl

from curation_dag.store.atomic import atomic_path, checked_parquet
from curation_dag.store.files import is_local, scan_parquet

LEDGER = "ledger.json"


class Entry(TypedDict):
    """The ledger's record of one absorbed drop. Each incremental step extends it with the counts it
    reports and the settings its decisions depend on (a changed setting resets the ledger)."""

    key: str


class Ledger:
    """The drops an incremental asset has absorbed, in order; the commit point of each absorb."""

    def __init__(self, folder: Path):
        self.folder = folder
        path = self.folder / LEDGER
        self.drops: list[Entry] = json.loads(path.read_text())["drops"] if path.exists() else []

    @property
    def keys(self) -> list[str]:
        return [entry["key"] for entry in self.drops]

    @property
    def decisions(self) -> Path:
        """The folder of the decision files, one per absorbed drop."""
        return self.folder / "decisions"

    def decision_file(self, key: str) -> Path:
        return self.decisions / f"{key}.parquet"

    def committed(self, key: str) -> Path:
        """The decision file of an absorbed drop, checked whole (DamagedFile says how to rebuild)."""
        recovery = (
            f"Rebuild {self.folder.name}: delete {self.folder} and materialize it again; it absorbs every drop "
            "again, in arrival order, and so do the incremental assets downstream of it once theirs are deleted."
        )
        return checked_parquet(self.decision_file(key), recovery)

    def decision_files(self) -> list[Path]:
        return [self.committed(key) for key in self.keys]

    def reset(self) -> None:
        """Forget every absorbed drop: each is absorbed again, its files rewritten."""
        (self.folder / LEDGER).unlink(missing_ok=True)
        self.drops = []

    def reset_unless(self, **recorded: object) -> bool:
        """Forget every absorbed drop unless each was absorbed with these entry fields (the fit or the
        settings its decisions depend on); True when it reset, so every drop is absorbed again."""
        if all(entry.get(name) == value for entry in self.drops for name, value in recorded.items()):
            return False
        self.reset()
        return True

    def commit(self, entry: Entry) -> None:
        """Record an absorbed drop, once its files are in place."""
        self.drops.append(entry)
        with atomic_path(self.folder / LEDGER) as temporary:
            temporary.write_text(json.dumps({"drops": self.drops}, indent=1))

    def digest(self) -> str:
        """Changes exactly when a drop is absorbed: the data version of the asset."""
        return hashlib.sha256(json.dumps(self.drops, sort_keys=True).encode()).hexdigest()[:24]

    def scan_decisions(self) -> pl.LazyFrame | None:
        paths = self.decision_files()
        return scan_parquet(paths) if paths else None


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold the folder's lock: two runs absorbing at once would both append the same drop. Object storage
    has no locks: there the asset's Dagster pool (one step at a time, dagster.yaml) keeps a second run out."""
    if not is_local(folder):
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    with atomic_path(path) as temporary:
        frame.write_parquet(temporary, compression="zstd", statistics=True)
