"""Mixture: the time to build a training mixture over every ../shared/data candidate, and its share of the pipeline.

Each corpus of ../shared/data becomes a declared source with one drop (its docs.jsonl.gz, linked), beside
copies of the shipped dedup.yml, semantic.yml and models/ (the `source` test of `candidates` lists the corpora).
The whole pipeline then runs on a real, ephemeral Dagster instance through dg.materialize, as `make demo`
runs its jobs: per drop raw_documents, minhash_signatures and quality_signals; exact and near dedup;
embeddings per drop (the CPU static model, distilled or loaded before the clock starts); semantic clusters,
semantic duplicates and quality scores; the recipe models; and the mixture `all_corpora`. Every stage is
wall time, Dagster's per-run overhead included, as a user sees it.

The mixture is written once the recipe models exist, because its budget must fit the data: every corpus,
exact, near and semantic duplicates removed, weighted by its surviving tokens to the power 0.3 (temperature
sampling, as XLM-R and mT5 weight their languages), up to 4 copies of a document, and a budget of half the
surviving tokens or less where the smallest corpora run out. Counting those tokens is timed on its own, as
the mixture's own breakdown (decide, read the texts, tokenize). The mixture is then built in the pipeline
and rebuilt --repeats times (median); a rebuild reads the same inputs and writes the same manifest.

    python benchmarks/mixture.py [--data ../shared/data] [--work DIR] [--repeats 3] [--model-cache DIR]
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from curation_dag.assets.dedup import exact_duplicates, minhash_signatures, near_duplicates
from curation_dag.assets.embed import embeddings
from curation_dag.assets.ingest import raw_documents
from curation_dag.assets.mixtures import mixture_assets
from curation_dag.assets.quality import quality_scores, quality_signals
from curation_dag.assets.recipe_models import model_assets
from curation_dag.assets.semantic import semantic_clusters, semantic_duplicates
from curation_dag.cli import QUIET_RUN
from curation_dag.resources import DropsResource, EmbedderResource, RecipesResource, StorageResource
from curation_dag.steps.ingest.drops import COMPLETE_MARKER
from curation_dag.steps.mixtures.selection import MixtureSpec, decide, token_counts
from curation_dag.steps.quality.rules import RULES
from curation_dag.store.layout import Layout

PROJECT = Path(__file__).resolve().parents[1]
SHIPPED_RECIPES = PROJECT / "dbt_like_recipes"
DROP_ID = "2026-11-22"
MIXTURE = "all_corpora"
WEIGHT_EXPONENT = 0.3  # source share ~ tokens^0.3: XLM-R (Conneau et al. 2020) and mT5 (Xue et al. 2021)
MAX_REPEATS = 4  # up to 4 epochs of repeated data cost little against unique data (Muennighoff et al. 2023)
BUDGET_FRACTION = 0.5  # of the tokens that survive dedup
FEASIBLE_MARGIN = 0.9  # of the budget at which the tightest source would need every one of its copies
BUDGET_STEP = 100_000  # the budget is a round number of tokens
STATIC_MODEL = "all-MiniLM-L6-v2-static-256"


def write_recipes(data: Path, recipes: Path, drops_root: Path) -> list[str]:
    """A recipes folder declaring every corpus of `data` as a source, and one complete drop per corpus."""
    corpora = sorted(path.parent.name for path in data.glob("*/docs.jsonl.gz"))
    if not corpora:
        sys.exit(f"no <corpus>/docs.jsonl.gz under {data}: give --data")
    sources = [
        {"name": corpus, "description": f"{corpus} from ../shared/data.", "path_pattern": "*.jsonl.gz",
         "format": "jsonl", "id_field": "id", "metadata_fields": ["source"]}
        for corpus in corpora
    ]  # fmt: skip
    recipes.mkdir(parents=True)
    (recipes / "sources.yml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    for name in ("dedup.yml", "semantic.yml"):
        shutil.copy(SHIPPED_RECIPES / name, recipes / name)
    shutil.copytree(SHIPPED_RECIPES / "models", recipes / "models")
    schema = recipes / "models" / "schema.yml"
    text, replaced = re.subn(r"accepted_values: \{values: \[[^\]]*\]\}",
                             f"accepted_values: {{values: [{', '.join(corpora)}]}}", schema.read_text())  # fmt: skip
    if replaced != 1:
        sys.exit(f"{SHIPPED_RECIPES / 'models' / 'schema.yml'}: expected one accepted_values test on source")
    schema.write_text(text)
    (recipes / "mixtures").mkdir()
    for corpus in corpora:
        drop = drops_root / corpus / DROP_ID
        drop.mkdir(parents=True)
        shutil.copyfile(data / corpus / "docs.jsonl.gz", drop / "docs.jsonl.gz")  # links leaving a drop are refused
        (drop / COMPLETE_MARKER).touch()
    return corpora


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stages:
    """Wall time, runs, step time and the peak RSS so far of each stage; failed checks and steps, as found."""

    def __init__(self, instance: dg.DagsterInstance, resources: dict) -> None:
        self.instance, self.resources = instance, resources
        self.rows: dict[str, dict] = {}
        self.failed_checks: list[str] = []
        self.failed_runs: list[str] = []
        self.by_asset: dict[str, float] = {}

    def materialize(self, stage: str, assets: list, **kwargs) -> dg.ExecuteInProcessResult:
        started = time.perf_counter()
        result = dg.materialize(assets, instance=self.instance, resources=self.resources, run_config=QUIET_RUN,
                                raise_on_error=False, **kwargs)  # fmt: skip
        seconds = time.perf_counter() - started
        row = self.rows.setdefault(stage, {"runs": 0, "seconds": 0.0, "steps": 0.0})
        row["runs"] += 1
        row["seconds"] += seconds
        steps = self.step_seconds(result.run_id)
        row["steps"] += sum(steps.values())
        row["peak_rss_mb"] = peak_rss_mb()
        row["load"] = os.getloadavg()[0]
        if stage != "mixture rebuilds":
            for step, step_seconds in steps.items():
                self.by_asset[step] = self.by_asset.get(step, 0.0) + step_seconds
        where = f" ({kwargs['partition_key']})" if "partition_key" in kwargs else ""
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                severity = evaluation.severity.value if evaluation.severity else "ERROR"
                self.failed_checks.append(
                    f"{evaluation.asset_key.to_user_string()}.{evaluation.check_name}{where} [{severity}]: "
                    f"{ {k: v.value for k, v in evaluation.metadata.items()} }"
                )
        if not result.success:
            failures = [e.message for e in result.all_events if e.is_failure]
            materialized = {e.asset_key for e in result.get_asset_materialization_events()}
            if materialized < {key for asset in assets for key in asset.keys}:
                sys.exit(f"{stage}{where} failed:\n" + "\n".join(failures) + "\n" + self.report_checks())
            # Every asset was written and recorded; only a blocking check failed. The later jobs still see
            # the materializations (as they would after a failed run in `dagster dev`), so the timing goes on.
            self.failed_runs.append(f"{stage}{where}: {' '.join(failures)}")
        return result

    def step_seconds(self, run_id: str) -> dict[str, float]:
        """Seconds inside each of the run's steps, from its start to its success or failure."""
        starts, seconds = {}, {}
        for entry in self.instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                seconds[event.step_key] = entry.timestamp - starts.pop(event.step_key)
        return seconds

    def report_checks(self) -> str:
        runs = "".join(f"\n- {line}" for line in self.failed_runs)
        runs = f"Runs that failed on a blocking check, all their assets written:{runs}\n" if runs else ""
        if not self.failed_checks:
            return runs + "Every asset check passed."
        return runs + "Failed asset checks:\n" + "\n".join(f"- {line}" for line in self.failed_checks)


def run_pipeline(stages: Stages, keys: list[str]) -> None:
    """Every pipeline asset up to quality_scores, in the order `make demo` runs its jobs."""
    stages.instance.add_dynamic_partitions("drops", keys)
    for key in keys:
        stages.materialize("raw_documents, minhash_signatures, quality_signals (per drop)",
                           [raw_documents, minhash_signatures, quality_signals], partition_key=key)  # fmt: skip
    stages.materialize("exact_duplicates, near_duplicates", [exact_duplicates, near_duplicates])
    for key in keys:
        stages.materialize("embeddings (per drop)", [embeddings], partition_key=key)
    stages.materialize("semantic_clusters, semantic_duplicates, quality_scores",
                       [semantic_clusters, semantic_duplicates, quality_scores])  # fmt: skip


@contextmanager
def timed(times: dict[str, float], name: str):
    started = time.perf_counter()
    yield
    times[name] = time.perf_counter() - started


def survivors_with_tokens(storage: Path, spec: MixtureSpec, times: dict[str, float]) -> pl.DataFrame:
    """The candidates that pass the spec's stages before the budget, with their tokens: what the
    mixture asset does before it allocates, step by step, each step timed."""
    with timed(times, "read candidates, decide"):
        candidates = pl.read_parquet(Layout.at(storage).recipe_model("candidates"))
        times["candidates"] = candidates.height
        decisions = decide(spec, candidates, RULES)
        survivors = candidates.filter(decisions["stage"].is_null()).select("doc_id", "source")
    with timed(times, "read the survivors' texts"):
        files = sorted(str(p) for p in (storage / "raw_documents").glob("*/*/documents.parquet"))
        texts = pl.scan_parquet(files).filter(pl.col("doc_id").is_in(survivors["doc_id"].implode()))
        survivors = survivors.join(texts.select("doc_id", "text").collect(), on="doc_id", maintain_order="left")
    with timed(times, "count tokens (bundled tokenizer)"):
        tokens = token_counts(survivors["text"].to_list(), spec.tokenizer)
    times["survivors"], times["text_mb"] = survivors.height, survivors["text"].str.len_bytes().sum() / 1e6
    return survivors.select("doc_id", "source", tokens=pl.Series(tokens))


def feasible_spec(survivors: pl.DataFrame, corpora: list[str]) -> MixtureSpec:
    """Tempered weights over every corpus and a budget the survivors can fill."""
    tokens = dict(survivors.group_by("source").agg(pl.col("tokens").sum()).iter_rows())
    tempered = {corpus: tokens[corpus] ** WEIGHT_EXPONENT for corpus in corpora if tokens.get(corpus)}
    weights = {corpus: value / sum(tempered.values()) for corpus, value in tempered.items()}
    cap = min(tokens[corpus] * MAX_REPEATS / weight for corpus, weight in weights.items())
    budget = int(min(BUDGET_FRACTION * sum(tokens.values()), FEASIBLE_MARGIN * cap)) // BUDGET_STEP * BUDGET_STEP
    return MixtureSpec(
        description=f"Every ../shared/data corpus, deduplicated, weighted by tokens^{WEIGHT_EXPONENT}, "
        f"up to {MAX_REPEATS} copies.",
        budget_tokens=budget, weights=weights, dedup={"exact": True, "near": True, "semantic": True},
        max_repeats=MAX_REPEATS, order="shuffle", seed=1,
    )  # fmt: skip


def write_spec(spec: MixtureSpec, path: Path) -> None:
    fields = spec.model_dump(exclude={"filters", "pruning", "tokenizer", "pool", "format"})
    fields["weights"] = {source: float(weight) for source, weight in spec.weights.items()}
    path.write_text(yaml.safe_dump(fields, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, help="an empty or new folder to keep everything in (default: a temp dir)")
    parser.add_argument("--repeats", type=int, default=3, help="rebuilds of the mixture after the pipeline")
    parser.add_argument("--model-cache", type=Path, help="where the distilled static model is (or goes)")
    args = parser.parse_args()
    caches = [PROJECT / ".curation" / "models", PROJECT / ".pytest_cache" / "d" / "static-embedder"]
    model_cache = args.model_cache or next((c for c in caches if (c / STATIC_MODEL).is_dir()), caches[0])
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")

    started = time.perf_counter()
    embedder = EmbedderResource(device="cpu", cache_dir=str(model_cache))
    embedder.setup_for_execution(dg.build_init_resource_context())
    print(f"static embedder ready in {time.perf_counter() - started:.1f} s ({model_cache}; not counted below)")

    with tempfile.TemporaryDirectory() as scratch:
        work = args.work.resolve() if args.work else Path(scratch)
        if args.work and work.exists() and any(work.iterdir()):
            sys.exit(f"--work {work} is not empty: give a new or empty folder")
        recipes, drops_root, storage = work / "recipes", work / "drops", work / "store"
        corpora = write_recipes(args.data.resolve(), recipes, drops_root)
        keys = [f"{corpus}/{DROP_ID}" for corpus in corpora]
        recipes_resource = RecipesResource(folder=str(recipes))
        resources = {
            "storage": StorageResource(root=str(storage)),
            "recipes": recipes_resource,
            "drops": DropsResource(drops_root=str(drops_root), recipes=recipes_resource),
            "embedder": EmbedderResource(device="cpu", cache_dir=str(model_cache)),
        }
        with dg.DagsterInstance.ephemeral() as instance:
            stages = Stages(instance, resources)
            run_pipeline(stages, keys)
            models = model_assets(str(recipes))
            stages.materialize("recipe models (candidates, cluster_summary)", models)

            breakdown: dict[str, float] = {}
            provisional = MixtureSpec(budget_tokens=1, weights=dict.fromkeys(corpora, 1 / len(corpora)))
            survivors = survivors_with_tokens(storage, provisional, breakdown)
            spec_path = recipes / "mixtures" / f"{MIXTURE}.yml"
            write_spec(feasible_spec(survivors, corpora), spec_path)
            (mixture,) = mixture_assets(recipes, models)
            built = stages.materialize(f"mixture_{MIXTURE}", [mixture])
            rebuilds = []
            for _ in range(args.repeats):
                rebuilt = time.perf_counter()
                stages.materialize("mixture rebuilds", [mixture])
                rebuilds.append(time.perf_counter() - rebuilt)
            report(stages, built, breakdown, rebuilds, survivors, spec_path, args)


def report(stages, built, breakdown, rebuilds, survivors, spec_path, args) -> None:
    rows = stages.rows
    mixture_stage = f"mixture_{MIXTURE}"
    pipeline = {name: row for name, row in rows.items() if name != "mixture rebuilds"}
    total = sum(row["seconds"] for row in pipeline.values())
    models = rows["recipe models (candidates, cluster_summary)"]["seconds"]
    mixture = rows[mixture_stage]["seconds"]
    metadata = built.asset_materializations_for_node(mixture_stage)[0].metadata
    rebuild = statistics.median(rebuilds) if rebuilds else float("nan")

    print(f"\nMixture spec ({spec_path}):\n{spec_path.read_text()}")
    print(f"Command: .venv/bin/python benchmarks/mixture.py --repeats {args.repeats} ({datetime.date.today()})\n")
    print("| stage | runs | seconds | in steps s | share of pipeline | peak RSS MB so far | load after |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in pipeline.items():
        print(f"| {name} | {row['runs']} | {row['seconds']:.1f} | {row['steps']:.1f} | "
              f"{row['seconds'] / total:.1%} | {row['peak_rss_mb']:,.0f} | {row['load']:.1f} |")  # fmt: skip
    print(f"| **whole pipeline** | {sum(r['runs'] for r in pipeline.values())} | **{total:.1f}** | "
          f"{sum(r['steps'] for r in pipeline.values()):.1f} | 100% | {peak_rss_mb():,.0f} | |")  # fmt: skip
    print("\nSeconds inside each asset's steps, over all its runs in the pipeline:\n")
    print("| asset | seconds | share of pipeline |")
    print("|---|---:|---:|")
    for asset, seconds in sorted(stages.by_asset.items(), key=lambda item: -item[1]):
        print(f"| {asset} | {seconds:.1f} | {seconds / total:.1%} |")
    print(f"\n- recipe models: {models:.1f} s ({models / total:.1%} of the pipeline)")
    print(f"- mixture build (in the pipeline): {mixture:.1f} s, **{mixture / total:.1%}** of the pipeline; "
          f"models + mixture: {(models + mixture) / total:.1%}")  # fmt: skip
    if rebuilds:
        print(f"- mixture rebuild, median of {len(rebuilds)}: {rebuild:.1f} s "
              f"({', '.join(f'{s:.1f}' for s in rebuilds)})")  # fmt: skip
    print(f"- candidates: {breakdown['candidates']:,}; after dedup: {breakdown['survivors']:,} documents, "
          f"{breakdown['text_mb']:,.1f} MB of text, {survivors['tokens'].sum():,} tokens")  # fmt: skip
    print(f"- selected: {metadata['documents'].value:,} documents, {metadata['copies'].value:,} copies, "
          f"{metadata['tokens'].value:,} tokens for a budget of {metadata['budget_tokens'].value:,}")  # fmt: skip
    print("\nThe mixture's own work, timed apart (as the asset does it, before allocating):\n")
    print("| part | seconds | share of the mixture build |")
    print("|---|---:|---:|")
    for name in ("read candidates, decide", "read the survivors' texts", "count tokens (bundled tokenizer)"):
        print(f"| {name} | {breakdown[name]:.1f} | {breakdown[name] / mixture:.0%} |")
    counting = breakdown["count tokens (bundled tokenizer)"]
    print(f"\ntokenizer: {survivors['tokens'].sum() / counting:,.0f} tokens/s, "
          f"{breakdown['text_mb'] / counting:.1f} MB/s of text")  # fmt: skip
    print(f"peak RSS: {peak_rss_mb():,.0f} MB")
    print(stages.report_checks())
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
