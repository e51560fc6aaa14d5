"""Ingest throughput against a plain read of the same files: MB/s of text, docs/s and peak RSS.

Every corpus in ../shared/data (docs.jsonl.gz) becomes one shard of a single drop. Each method runs
in a fresh process (so peak RSS is its own), the methods interleaved, `--repeats` times; medians
are reported with the ratio of ingest's throughput to each plain read's.

    python benchmarks/ingest.py [--data ../shared/data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
METHODS = ("polars.read_ndjson", "pyarrow.json.read_json", "curation_dag ingest")


def run_method(method: str, drop: Path, out: Path) -> dict:
    """Run one method once in this process and measure it."""
    import polars as pl
    import pyarrow.json as pj

    shards = sorted(drop.glob("*.jsonl.gz"))
    start = time.perf_counter()
    if method == "polars.read_ndjson":
        docs = sum(pl.read_ndjson(shard).height for shard in shards)
    elif method == "pyarrow.json.read_json":
        options = pj.ReadOptions(block_size=64 << 20)  # the default 1 MiB fails on long documents
        docs = sum(pj.read_json(shard, read_options=options).num_rows for shard in shards)
    else:
        from curation_dag.steps.ingest.documents import ingest_drop
        from curation_dag.steps.ingest.drops import Drop
        from curation_dag.steps.ingest.sources import SourceSpec

        spec = SourceSpec(name="bench", id_field="id", metadata_fields=("source",))
        report = ingest_drop(
            Drop("bench", drop.name, drop), spec, out / "documents.parquet", out / "quarantine.parquet"
        )
        docs = report.input_rows
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "docs": docs, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def text_megabytes(drop: Path) -> float:
    import polars as pl

    return (
        sum(pl.read_ndjson(s).select(pl.col("text").str.len_bytes().sum()).item() for s in drop.glob("*.jsonl.gz"))
        / 1e6
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--drop", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:  # a child process: one measurement, printed as JSON
        with tempfile.TemporaryDirectory() as out:
            print(json.dumps(run_method(args.method, args.drop, Path(out))))
        return

    corpora = sorted(args.data.glob("*/docs.jsonl.gz"))
    if not corpora:
        sys.exit(f"no corpora (*/docs.jsonl.gz) under {args.data}; pass --data")
    with tempfile.TemporaryDirectory() as tmp:
        drop = Path(tmp) / "bench" / "all"
        drop.mkdir(parents=True)
        for corpus in corpora:
            shutil.copyfile(corpus, drop / f"{corpus.parent.name}.jsonl.gz")  # links leaving a drop are refused
        megabytes = text_megabytes(drop)
        runs: dict[str, list[dict]] = {m: [] for m in METHODS}
        for _ in range(args.repeats):
            for method in METHODS:
                child = [sys.executable, __file__, "--method", method, "--drop", str(drop)]
                runs[method].append(
                    json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
                )

    docs = runs["curation_dag ingest"][0]["docs"]
    print(f"{len(corpora)} corpora, {docs:,} documents, {megabytes:.1f} MB of text; median of {args.repeats} runs\n")
    print("| method | seconds | MB/s of text | docs/s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    medians = {}
    for method, measured in runs.items():
        seconds = statistics.median(r["seconds"] for r in measured)
        rss = statistics.median(r["peak_rss_mb"] for r in measured)
        medians[method] = seconds
        print(f"| {method} | {seconds:.2f} | {megabytes / seconds:.0f} | {docs / seconds:,.0f} | {rss:.0f} |")
    ingest = medians["curation_dag ingest"]
    for baseline in METHODS[:2]:
        print(f"\ningest throughput / {baseline}: {medians[baseline] / ingest:.2f}")


if __name__ == "__main__":
    main()
