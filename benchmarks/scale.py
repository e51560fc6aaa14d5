"""Scale: --docs real documents through the CPU pipeline and a mixture, each step in a process of its own.

The documents: every ../shared/data corpus as a source, its docs.jsonl.gz one drop (generation 0, as
benchmarks/mixture.py declares them), then spliced copies, generation by generation, until --docs:
copy g of document i of a corpus is the first half of its words followed by the second half of
document i + g * 7919's (modulo the corpus's size). Each is a new document to exact and near dedup (about
1/3 word-5-gram Jaccard with either parent) and mostly to SemDeDup, as most of a real corpus is; a copy
that only splices a document with itself (a corpus of one) is an exact duplicate. Each generation of a
corpus is one more drop.

Each step (an asset, over every drop where it is per drop) then runs in a fresh Python process on one
persistent Dagster instance (SQLite) and storage root, in `make demo`'s order, with the static CPU
embedder; the mixture takes every source, weights ~ tokens^0.3, up to 4 copies. Reported per step:
seconds in the process (Dagster's per-run overhead included, not the process's start), input documents/s and MB/s of
input text (the corpus's, for every step), and the process's peak RSS.

--workers-drops K first measures per-drop throughput: raw_documents, minhash_signatures and
quality_signals of the K largest original drops, in one worker process, then split across two
processes running at once (each its own instance, one storage root), as two celery workers would.

    python benchmarks/scale.py --docs 1000000 [--data ../shared/data] [--work DIR] [--model-cache DIR]
                               [--workers-drops 6]
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from mixture import DROP_ID, feasible_spec, write_recipes, write_spec  # noqa: E402

from curation_dag.assets.recipe_models import model_assets  # noqa: E402
from curation_dag.cli import QUIET_RUN  # noqa: E402
from curation_dag.definitions import build_definitions  # noqa: E402
from curation_dag.resources import EmbedderResource  # noqa: E402
from curation_dag.steps.ingest.drops import COMPLETE_MARKER  # noqa: E402
from curation_dag.steps.mixtures.selection import MixtureSpec, decide  # noqa: E402
from curation_dag.steps.quality.rules import RULES  # noqa: E402
from curation_dag.store.layout import Layout  # noqa: E402

STATIC_MODEL = "all-MiniLM-L6-v2-static-256"
MIXTURE = "all_corpora"
PER_DROP = ["raw_documents", "minhash_signatures", "quality_signals", "embeddings"]
STEPS = [
    "raw_documents", "minhash_signatures", "quality_signals", "exact_duplicates", "near_duplicates",
    "embeddings", "semantic_clusters", "semantic_duplicates", "quality_scores", "recipe models", f"mixture_{MIXTURE}",
]  # fmt: skip
STRIDE = 7919  # a prime: the partner of document i in generation g is i + g * STRIDE
TOKENS_PER_CHAR = 1 / 8  # half of the usual ~4 chars per token: a budget every source can surely fill


def spliced(rows: list[dict], i: int, generation: int) -> str:
    head, tail = rows[i]["text"].split(" "), rows[(i + generation * STRIDE) % len(rows)]["text"].split(" ")
    return " ".join(head[: len(head) // 2] + tail[len(tail) // 2 :])


def write_drops(data: Path, work: Path, docs: int) -> dict:
    """Recipes and drops for `docs` documents (generation 0, then spliced copies); their counts and MB."""
    drops_root = work / "drops"
    corpora = write_recipes(data, work / "recipes", drops_root)
    originals = {c: [json.loads(line) for line in gzip.open(data / c / "docs.jsonl.gz", "rt")] for c in corpora}
    total = sum(map(len, originals.values()))
    if docs < total:
        sys.exit(f"--docs {docs}: the corpora alone hold {total:,} documents; ask for at least that many")
    drops = {f"{c}/{DROP_ID}": len(rows) for c, rows in originals.items()}
    chars = sum(len(d["text"].encode()) for rows in originals.values() for d in rows)
    generation = 0
    while total < docs:
        generation += 1
        day = datetime.date.fromisoformat(DROP_ID) + datetime.timedelta(days=generation)
        for corpus, rows in originals.items():
            taken = min(len(rows), docs - total)
            if not taken:
                break
            folder = drops_root / corpus / day.isoformat()
            folder.mkdir(parents=True)
            with gzip.open(folder / "docs.jsonl.gz", "wt", compresslevel=1) as out:
                for i, row in enumerate(rows[:taken]):
                    text = spliced(rows, i, generation)
                    chars += len(text.encode())
                    out.write(json.dumps({**row, "id": f"{row['id']}~{generation}", "text": text}) + "\n")
            (folder / COMPLETE_MARKER).touch()
            drops[f"{corpus}/{day.isoformat()}"] = taken
            total += taken
    return {"documents": total, "mb": chars / 1e6, "drops": drops, "generations": generation + 1}


def definitions(work: Path, model_cache: str, store: Path | None = None) -> dg.Definitions:
    embedder = EmbedderResource(device="cpu", cache_dir=model_cache)
    return build_definitions(str(work / "recipes"), str(work / "drops"), str(store or work / "store"), embedder)


def child(work: Path, model_cache: str, step: str, keys: list[str], store: Path | None) -> None:
    """Run one step over `keys` (its drops; none for a global step) and print its seconds and peak RSS."""
    defs = definitions(work, model_cache, store)
    assets = list(defs.assets)
    if step == "recipe models":
        selection = [model.key for model in model_assets(str(work / "recipes"))]
    elif step == "per-drop steps":
        selection = [dg.AssetKey(name) for name in PER_DROP[:3]]
    else:
        selection = [dg.AssetKey(step)]
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        if keys:
            instance.add_dynamic_partitions(
                "drops", [k for k in keys if not instance.has_dynamic_partition("drops", k)]
            )
        for key in keys or [None]:
            result = dg.materialize(assets, selection=selection, partition_key=key, instance=instance,
                                    resources=defs.resources, run_config=QUIET_RUN, raise_on_error=False)  # fmt: skip
            if not set(selection) <= {e.asset_key for e in result.get_asset_materialization_events()}:
                sys.exit(f"{step} ({key}) failed: {[e.message for e in result.all_events if e.is_failure]}")
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM): unlike getrusage's ru_maxrss, which Linux carries over from the
    parent across fork and exec, it starts again with the new program."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def run_child(work: Path, model_cache: str, step: str, keys: list[str], home: Path, store: Path | None = None):
    command = [sys.executable, __file__, "--child", step, "--work", str(work), "--model-cache", model_cache,
               *(["--store", str(store)] if store else []), "--keys", *keys]  # fmt: skip
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> dict:
    out, _ = process.communicate()
    if process.returncode:
        sys.exit(f"a step failed (exit {process.returncode}): {out}")
    return json.loads(out.strip().splitlines()[-1])


def new_home(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return folder


def workers(work: Path, model_cache: str, inputs: dict, count: int) -> dict:
    """Per-drop steps on the `count` largest original drops: one worker, then two at once."""
    originals = sorted((k for k in inputs["drops"] if k.endswith(DROP_ID)), key=lambda k: -inputs["drops"][k])
    chosen = originals[:count]
    docs = sum(inputs["drops"][k] for k in chosen)
    halves: list[list[str]] = [[], []]
    for key in chosen:  # the larger drops first, each to the lighter half
        min(halves, key=lambda h: sum(inputs["drops"][k] for k in h)).append(key)
    timings = {}
    for label, groups in (("1 worker", [chosen]), ("2 workers", halves)):
        store = work / f"workers_{len(groups)}" / "store"
        started = time.perf_counter()
        processes = [
            run_child(work, model_cache, "per-drop steps", group, new_home(store.parent / f"home{i}"), store)
            for i, group in enumerate(groups)
        ]
        for process in processes:
            finished(process)
        timings[label] = time.perf_counter() - started
    return {"drops": chosen, "documents": docs, **timings}


def mixture_spec(work: Path, corpora: list[str]) -> None:
    """The mixture's spec, from the candidates' estimated tokens (TOKENS_PER_CHAR), written before its step."""
    candidates = pl.read_parquet(Layout.at(work / "store").recipe_model("candidates"))
    provisional = MixtureSpec(budget_tokens=1, weights=dict.fromkeys(corpora, 1 / len(corpora)))
    decisions = decide(provisional, candidates, RULES)
    survivors = candidates.filter(decisions["stage"].is_null()).select(
        "source", tokens=(pl.col("chars") * TOKENS_PER_CHAR).cast(pl.Int64)
    )
    write_spec(feasible_spec(survivors, corpora), work / "recipes" / "mixtures" / f"{MIXTURE}.yml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--work", type=Path, help="a new or empty folder for everything (default: a temp dir)")
    parser.add_argument("--model-cache", default=None, help="where the distilled static model is (or goes)")
    parser.add_argument("--workers-drops", type=int, default=6, help="drops for the 1 vs 2 workers run; 0: skip")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keys", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    project = Path(__file__).resolve().parents[1]
    model_cache = args.model_cache or str(project / ".curation" / "models")
    if args.child:
        return child(args.work, model_cache, args.child, args.keys, args.store)

    EmbedderResource(device="cpu", cache_dir=model_cache).setup_for_execution(dg.build_init_resource_context())
    with tempfile.TemporaryDirectory() as scratch:
        work = (args.work or Path(scratch)).resolve()
        if work.exists() and any(work.iterdir()):
            sys.exit(f"--work {work} is not empty: give a new or empty folder")
        started = time.perf_counter()
        inputs = write_drops(args.data.resolve(), work, args.docs)
        print(f"{inputs['documents']:,} documents, {inputs['mb']:,.1f} MB of text, {len(inputs['drops'])} drops "
              f"({inputs['generations']} generations), written in {time.perf_counter() - started:.0f} s",
              flush=True)  # fmt: skip
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
        parallel = workers(work, model_cache, inputs, args.workers_drops) if args.workers_drops else None
        if parallel:
            print(json.dumps(parallel), flush=True)

        home = new_home(work / "home")
        rows = {}
        corpora = sorted({key.split("/")[0] for key in inputs["drops"]})
        for step in STEPS:
            if step.startswith("mixture_"):
                mixture_spec(work, corpora)
            keys = list(inputs["drops"]) if step in PER_DROP else []
            rows[step] = finished(run_child(work, model_cache, step, keys, home))
            print(f"{step}: {json.dumps(rows[step])}", flush=True)
        report(args, inputs, rows, parallel)


def report(args, inputs: dict, rows: dict, parallel: dict | None) -> None:
    docs, mb = inputs["documents"], inputs["mb"]
    print(f"\nCommand: python benchmarks/scale.py --docs {args.docs} --workers-drops {args.workers_drops} "
          f"({datetime.date.today()}, {os.cpu_count()} cores)\n")  # fmt: skip
    print(f"{docs:,} documents, {mb:,.1f} MB of text, {len(inputs['drops'])} drops\n")
    print("| step | runs | seconds | documents/s | MB/s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for step, row in rows.items():
        runs = len(inputs["drops"]) if step in PER_DROP else 1
        print(f"| {step} | {runs} | {row['seconds']:.1f} | {docs / row['seconds']:,.0f} | {mb / row['seconds']:.2f} | "
              f"{row['peak_rss_mb']:,.0f} |")  # fmt: skip
    total = sum(row["seconds"] for row in rows.values())
    print(f"| **whole pipeline** | | **{total:.1f}** | {docs / total:,.0f} | {mb / total:.2f} | "
          f"{max(r['peak_rss_mb'] for r in rows.values()):,.0f} |")  # fmt: skip
    if parallel:
        one, two = parallel["1 worker"], parallel["2 workers"]
        print(f"\nPer-drop steps on {len(parallel['drops'])} drops ({parallel['documents']:,} documents): "
              f"1 worker {one:.1f} s ({parallel['documents'] / one:,.0f} docs/s), 2 workers {two:.1f} s "
              f"({parallel['documents'] / two:,.0f} docs/s): {one / two:.2f}x")  # fmt: skip
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
