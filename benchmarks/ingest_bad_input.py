"""Hostile shards in bounded memory: a gzip and a zstd decompression bomb (2 GiB of zeros), a line
nested 100,000 deep and a 1 GiB line between two good ones, each ingested in a process of its own,
with its peak RSS and wall time.

    python benchmarks/ingest_bad_input.py

The baseline is a process that only imports the ingest code. Every case must be quarantined, with
every input row accounted for, and stay under 1 GiB of peak RSS.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zstandard

BOMB_BYTES = 2 << 30
PIECE = b"\0" * (64 << 20)
HEAD = b'{"id": "1", "text": "the line before the bomb"}\n'
CHILD = """
import json, sys
from pathlib import Path
from curation_dag.steps.ingest.drops import Drop
from curation_dag.steps.ingest.documents import ingest_drop
from curation_dag.steps.ingest.sources import SourceSpec
drop = Path(sys.argv[1])
if len(sys.argv) > 2:
    report = ingest_drop(Drop("bad", drop.name, drop), SourceSpec(name="bad", id_field="id"),
                         drop.parent / "d.parquet", drop.parent / "q.parquet")
    print(json.dumps({"input_rows": report.input_rows, "accepted": report.accepted,
                      "quarantined": dict(report.quarantined_by_reason)}))
"""


def bomb(path: Path) -> None:
    """2 GiB of zeros after one good line, compressed as it is written."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb", compresslevel=9) as out:
            out.write(HEAD)
            for _ in range(BOMB_BYTES // len(PIECE)):
                out.write(PIECE)
    else:
        with open(path, "wb") as raw, zstandard.ZstdCompressor(level=19).stream_writer(raw) as out:
            out.write(HEAD)
            for _ in range(BOMB_BYTES // len(PIECE)):
                out.write(PIECE)


def deep(path: Path) -> None:
    depth = 100_000
    path.write_bytes(HEAD + b'{"id": "2", "text": "deep", "x": ' + b"[" * depth + b"]" * depth + b"}\n")


def long_line(path: Path) -> None:
    """A 1 GiB line between two good ones, written a piece at a time."""
    with open(path, "wb") as out:
        out.write(HEAD + b'{"id": "2", "text": "')
        for _ in range(BOMB_BYTES // 2 // len(PIECE)):
            out.write(b"a" * len(PIECE))
        out.write(b'"}\n{"id": "3", "text": "the line after it"}\n')


def measure(drop: Path | None) -> dict:
    """Peak RSS (MiB) and seconds of one child process: ingest of `drop`, or only the imports."""
    started = time.perf_counter()
    args = [sys.executable, "-c", CHILD, str(drop or "-")] + (["ingest"] if drop else [])
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest so far
    seconds = time.perf_counter() - started
    assert status == 0, output
    result = json.loads(output) if drop else {}
    return {**result, "seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def main() -> None:
    print(f"baseline (imports only): {measure(None)}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (
            ("bomb.jsonl.gz", bomb),
            ("bomb.jsonl.zst", bomb),
            ("deep.jsonl", deep),
            ("long.jsonl", long_line),
        ):
            drop = Path(tmp) / name.replace(".", "-")
            drop.mkdir()
            make(drop / name)
            size = (drop / name).stat().st_size
            result = measure(drop)
            assert result["input_rows"] == result["accepted"] + sum(result["quarantined"].values())
            assert result["peak_rss_mib"] < 1024, result
            print(f"{name:<16} {size / 1e6:8.2f} MB on disk: {result}")


if __name__ == "__main__":
    main()
