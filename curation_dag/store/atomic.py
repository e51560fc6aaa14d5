"""Atomic file writes, and the check that a Parquet file read back is whole.

A local file is written under a temporary name in its folder, then renamed into place. Object storage
has no rename, but a PUT is atomic: the object appears whole or not at all. So a file under a URL root
is written locally first, then uploaded under its final key. Either way readers see the old file or the
complete new one; a ledger (store/ledger.py) or CURRENT pointer, written last, publishes a set of files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from curation_dag.store.files import is_local, parquet_file


class DamagedFile(ValueError):
    """An output file that is not the complete file its asset wrote: cut short or changed since."""


def checked_parquet(path: Path, recovery: str) -> Path:
    """`path`, once its Parquet footer parses; else DamagedFile naming the file and `recovery`, what
    rewrites it. A truncated file loses its footer, so it never reaches a reader half-read."""
    try:
        parquet_file(path)
    except (OSError, pa.ArrowException) as error:
        message = f"{path} is damaged ({error}): it was cut short or changed after it was written. {recovery}"
        raise DamagedFile(message) from None
    return path


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a local temporary path to write; on success it becomes `final` in one step.

    On error or a crash only a hidden `.<name>.<uuid>.tmp` file can be left behind (beside a local
    `final`, or in the system's temporary folder), never the final name.
    """
    if not is_local(final):
        with tempfile.TemporaryDirectory() as folder:
            temporary = Path(folder) / final.name
            yield temporary
            final.fs.put_file(str(temporary), final.path)
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
