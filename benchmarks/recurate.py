"""Re-curation: the wall time to absorb one more drop and rebuild a mixture, as drops pile up.

Equal drops of Reuters-21578 news (../shared/data/reuters21578, 1,900 documents each by default)
arrive one by one. After each, the runs the automation would launch for it run on a real ephemeral
Dagster instance, in its order: the drop's own steps (raw_documents, minhash_signatures,
quality_signals); exact and near dedup; the drop's embeddings (the CPU static model, loaded before
the clock starts); semantic clusters, semantic duplicates and quality scores; the recipe models;
one mixture with a fixed token budget. Absorbing drop k + 1 after k drops should cost the same for
every k. The baseline, in the same run, re-runs the whole graph from scratch (new storage, new
instance) on the same k + 1 drops. Wall times include Dagster's per-run overhead, as a user sees it.

    python benchmarks/recurate.py [--data ../shared/data] [--drops 11] [--docs-per-drop 1900]
                                  [--budget-tokens 100000] [--baseline-at 1 5 10] [--work DIR] [--model-cache DIR]
"""

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from curation_dag.cli import QUIET_RUN
from curation_dag.definitions import build_definitions
from curation_dag.resources import EmbedderResource
from curation_dag.steps.ingest.drops import COMPLETE_MARKER

PROJECT = Path(__file__).resolve().parents[1]
SOURCE = "reuters"
CORPUS = "reuters21578"
MIXTURE = """description: Reuters news, deduplicated, a fixed budget whatever the number of drops.
budget_tokens: {budget}
pool: candidates
weights: {{{source}: 1.0}}
"""
PER_DROP = ["raw_documents", "minhash_signatures", "quality_signals"]
GLOBAL_STEPS = [  # after the drop's embeddings, in the automation's order
    ["semantic_clusters", "semantic_duplicates", "quality_scores"],
    ["candidates", "cluster_summary"],
    ["mixture_news"],
]


def write_inputs(data: Path, work: Path, drops: int, per_drop: int, budget: int) -> list[Path]:
    """A recipes folder for one source, and `drops` equal drop folders (not yet in the drops root)."""
    with gzip.open(data / CORPUS / "docs.jsonl.gz", "rt") as handle:
        documents = [json.loads(line) for line in handle]
    if len(documents) < drops * per_drop:
        sys.exit(f"{CORPUS} has {len(documents)} documents, fewer than {drops} drops of {per_drop}")
    recipes = work / "recipes"
    shutil.copytree(PROJECT / "dbt_like_recipes", recipes, ignore=shutil.ignore_patterns("mixtures"))
    (recipes / "sources.yml").write_text(
        f"sources:\n  - name: {SOURCE}\n    path_pattern: '*.jsonl.gz'\n    format: jsonl\n    id_field: id\n"
    )
    schema = recipes / "models" / "schema.yml"
    schema.write_text(re.sub(r"accepted_values: \{values: \[[^\]]*\]\}", f"accepted_values: {{values: [{SOURCE}]}}",
                             schema.read_text()))  # fmt: skip
    (recipes / "mixtures").mkdir()
    (recipes / "mixtures" / "news.yml").write_text(MIXTURE.format(budget=budget, source=SOURCE))
    folders = []
    for index in range(drops):
        folder = work / "arriving" / SOURCE / f"d{index + 1:02d}"
        folder.mkdir(parents=True)
        lines = "".join(json.dumps(d) + "\n" for d in documents[index * per_drop : (index + 1) * per_drop])
        (folder / "part-0.jsonl.gz").write_bytes(gzip.compress(lines.encode(), mtime=0))
        (folder / COMPLETE_MARKER).touch()
        folders.append(folder)
    return folders


class Deployment:
    """A storage root, drops root and instance, and the runs that absorb drops into them."""

    def __init__(self, root: Path, recipes: Path, embedder: EmbedderResource):
        self.drops = root / "drops"
        self.defs = build_definitions(str(recipes), str(self.drops), str(root / "store"), embedder)
        self.instance = dg.DagsterInstance.ephemeral()

    def run(self, selection: list[str], partition: str | None = None) -> None:
        result = dg.materialize(list(self.defs.assets), selection=selection, partition_key=partition,
                                instance=self.instance, resources=self.defs.resources, run_config=QUIET_RUN,
                                raise_on_error=False)  # fmt: skip
        if not result.success:
            errors = [event.step_failure_data.error.message for event in result.get_step_failure_events()]
            sys.exit(f"{selection} {partition or ''} failed: {errors}")

    def arrive(self, folder: Path) -> str:
        shutil.copytree(folder, self.drops / SOURCE / folder.name)
        key = f"{SOURCE}/{folder.name}"
        self.instance.add_dynamic_partitions("drops", [key])
        return key

    def absorb(self, keys: list[str]) -> float:
        """Seconds to run everything for drops `keys` that just arrived, and rebuild the mixture."""
        started = time.perf_counter()
        for key in keys:
            self.run(PER_DROP, key)
        self.run(["exact_duplicates", "near_duplicates"])
        for key in keys:
            self.run(["embeddings"], key)
        for selection in GLOBAL_STEPS:
            self.run(selection)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--drops", type=int, default=11, help="drops in all: k = 1 .. drops - 1 before the last")
    parser.add_argument("--docs-per-drop", type=int, default=1900)
    parser.add_argument("--budget-tokens", type=int, default=100_000, help="the mixture's; one drop must give it")
    parser.add_argument("--baseline-at", type=int, nargs="+", default=[1, 5, 10], help="k for the from-scratch runs")
    parser.add_argument("--work", type=Path, help="a new or empty folder to keep everything in (default: temporary)")
    parser.add_argument("--model-cache", type=Path, help="where the distilled static model is (or goes)")
    args = parser.parse_args()
    caches = [PROJECT / ".curation" / "models", PROJECT / ".pytest_cache" / "d" / "static-embedder"]
    model_cache = args.model_cache or next((c for c in caches if any(c.glob("*-static-*"))), caches[0])
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    embedder = EmbedderResource(device="cpu", cache_dir=str(model_cache))
    embedder.setup_for_execution(dg.build_init_resource_context())  # distils once, if needed, before any clock

    with tempfile.TemporaryDirectory() as scratch:
        work = args.work.resolve() if args.work else Path(scratch)
        if args.work and work.exists() and any(work.iterdir()):
            sys.exit(f"--work {work} is not empty: give a new or empty folder")
        folders = write_inputs(args.data.resolve(), work, args.drops, args.docs_per_drop, args.budget_tokens)
        embedder = EmbedderResource(device="cpu", cache_dir=str(model_cache))

        incremental = Deployment(work / "incremental", work / "recipes", embedder)
        seconds = [incremental.absorb([incremental.arrive(folder)]) for folder in folders]
        print(f"drop 1 (fits the clusters): {seconds[0]:.1f} s")

        scratch_seconds = {}
        for k in sorted(set(args.baseline_at)):
            if k + 1 <= len(folders):
                fresh = Deployment(work / f"scratch-{k + 1}", work / "recipes", embedder)
                scratch_seconds[k] = fresh.absorb([fresh.arrive(folder) for folder in folders[: k + 1]])
        report(args, seconds, scratch_seconds)


def report(args, seconds: list[float], scratch: dict[int, float]) -> None:
    options = (f"--drops {args.drops} --docs-per-drop {args.docs_per_drop} --budget-tokens {args.budget_tokens} "
               f"--baseline-at {' '.join(map(str, args.baseline_at))}")  # fmt: skip
    print(f"\nCommand: .venv/bin/python benchmarks/recurate.py {options}\n")
    print("| k drops before | absorb drop k + 1 and rebuild, s | whole graph from scratch on k + 1 drops, s | ratio |")
    print("|---:|---:|---:|---:|")
    for k, took in enumerate(seconds[1:], start=1):
        baseline = scratch.get(k)
        cells = f"{baseline:.1f} | {baseline / took:.1f}x" if baseline else " | "
        print(f"| {k} | {took:.1f} | {cells} |")
    later = seconds[1:]
    print(f"\n- last / first (k = {len(later)} vs k = 1): **{later[-1] / later[0]:.2f}x** (target <= 1.3)")
    print(f"- median over k = 1 .. {len(later)}: {statistics.median(later):.1f} s; "
          f"min {min(later):.1f} s, max {max(later):.1f} s")  # fmt: skip
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
