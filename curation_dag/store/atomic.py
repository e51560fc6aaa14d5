"""Atomic file writes (a temporary name in the same folder, then one rename into place), and the
check that a Parquet file read back is whole."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class DamagedFile(ValueError):
    """An output file that is not the complete file its asset wrote: cut short or changed since."""


def checked_parquet(path: Path, recovery: str) -> Path:
    """`path`, once its Parquet footer parses; else DamagedFile naming the file and `recovery`, what
    rewrites it. A truncated file loses its footer, so it never reaches a reader half-read."""
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException) as error:
        message = f"{path} is damaged ({error}): it was cut short or changed after it was written. {recovery}"
        raise DamagedFile(message) from None
    return path


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success it replaces `final` in one rename.

    Readers see either the old file or the complete new one, never a partial file; on error or a
    crash only a hidden `.<name>.<uuid>.tmp` file can be left behind, never the final name.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
