"""Incremental dedup: the time to absorb drop k stays flat as history grows; peak RSS of a full run.

Part 1: 10 equal drops cut from the ../shared/data corpora (with 5% of each drop repeating earlier
drops, exactly or edited), absorbed one by one by exact then near dedup; the time to absorb drop k,
for k = 1..10, median over `--repeats` fresh runs. Signing is per drop and not part of absorbing.
Part 2 (in a fresh process): every corpus of ../shared/data as one drop, signed and absorbed in
turn, and the process's peak RSS.

    python benchmarks/incremental_dedup.py [--data ../shared/data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from curation_dag.steps.dedup.absorb import absorb_exact, absorb_near
from curation_dag.steps.dedup.minhash import MinHashConfig, band_keys, sign_all

PROJECT = Path(__file__).resolve().parents[1]
CONFIG = MinHashConfig()
DROPS = 10


def read_corpus(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle]


def equal_drops(data: Path, per_drop: int) -> list[list[str]]:
    rng = np.random.default_rng(20261122)
    pool = [
        t for c in sorted(data.glob("*/docs.jsonl.gz")) if c.parent.name != "deb_dictionaries" for t in read_corpus(c)
    ]
    order = rng.permutation(len(pool))
    drops, cursor = [], 0
    for _ in range(DROPS):
        fresh = [pool[i] for i in order[cursor : cursor + per_drop]]
        cursor += per_drop
        if drops:
            earlier = [t for d in drops for t in d]
            for slot in rng.choice(per_drop, size=per_drop // 20, replace=False):
                text = earlier[rng.integers(len(earlier))]
                fresh[slot] = text if rng.random() < 0.5 else text.replace(" the ", " a ", 3)
        drops.append(fresh)
    return drops


def absorb(folder: Path, key: str, texts: list[str], signatures: np.ndarray, keys: np.ndarray) -> None:
    documents = pl.DataFrame(
        {
            "doc_id": [f"{key}#{i}" for i in range(len(texts))],
            "source": "bench",
            "content_hash": [hashlib.sha256(t.encode()).hexdigest() for t in texts],
        }
    )
    exact = absorb_exact(folder / "exact", key, documents)
    kept = exact.filter(pl.col("duplicate_of").is_null())
    rows = kept["ordinal"].to_numpy() & 0xFFFFFFFF
    prefix = int(exact["ordinal"][0] >> 32)
    absorb_near(
        folder / "near", key, kept.select("doc_id", "ordinal", "source"), signatures[rows], keys[rows],
        CONFIG.threshold, prefix, str(CONFIG),
    )  # fmt: skip


def signed(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    signatures, _ = sign_all(pl.Series(texts), CONFIG)
    return signatures, band_keys(signatures, *CONFIG.band_shape(), CONFIG.seed)


def flat_over_drops(data: Path, per_drop: int, repeats: int) -> None:
    drops = equal_drops(data, per_drop)
    prepared = [signed(texts) for texts in drops]
    times = np.zeros((repeats, DROPS))
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            for k, (texts, (signatures, keys)) in enumerate(zip(drops, prepared, strict=True)):
                started = time.perf_counter()
                absorb(Path(folder), f"bench/{k:02d}", texts, signatures, keys)
                times[repeat, k] = time.perf_counter() - started
    medians = np.median(times, axis=0)
    print(f"{DROPS} drops of {per_drop:,} documents; seconds to absorb drop k (exact + near), median of {repeats}\n")
    print("| k | " + " | ".join(str(k + 1) for k in range(DROPS)) + " |")
    print("|---|" + "---:|" * DROPS)
    print("| seconds | " + " | ".join(f"{m:.2f}" for m in medians) + " |")
    print(f"\ndrop 10 / drop 1: {medians[-1] / medians[0]:.2f}")


def full_run(data: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        documents = 0
        for corpus in sorted(data.glob("*/docs.jsonl.gz")):
            texts = read_corpus(corpus)
            documents += len(texts)
            absorb(Path(folder), f"{corpus.parent.name}/all", texts, *signed(texts))
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nAll of {data} ({documents:,} documents) signed and absorbed corpus by corpus:")
    print(f"{seconds:.1f} s, peak RSS {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--per-drop", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.full_run:
        full_run(args.data)
        return
    flat_over_drops(args.data, args.per_drop, args.repeats)
    child = [sys.executable, __file__, "--full-run", "--data", str(args.data)]
    print(subprocess.run(child, check=True, capture_output=True, text=True).stdout)


if __name__ == "__main__":
    main()
