"""Quality: heuristic signals of each drop, and scores that add the clusters' model-based metrics."""

import time
from pathlib import Path

import dagster as dg
import polars as pl

from curation_dag.automation.conditions import on_new_data
from curation_dag.checks.quality import SCORES_SPECS, SIGNALS_SPECS, scores_checks, signals_checks
from curation_dag.metadata import file_digest, histograms_markdown, markdown_table
from curation_dag.partitions import drops_partitions, pending_drops
from curation_dag.resources import RecipesResource, StorageResource
from curation_dag.resources.recipes import config_digest
from curation_dag.steps.quality.rules import (
    RULE_SETS,
    Rule,
    assess_file,
    rule_passes,
    rule_sets,
    rules_of,
)
from curation_dag.steps.quality.scores import absorb_scores, write_complexity
from curation_dag.steps.semantic.absorb import fit_id
from curation_dag.store.files import scan_parquet
from curation_dag.store.layout import QUALITY_SCORES, QUALITY_SIGNALS, RAW_DOCUMENTS, SEMANTIC_CLUSTERS
from curation_dag.store.ledger import Ledger, exclusive, write_parquet

EXAMPLES_PER_RULE = 2
PLOTTED = [
    "gopher_words", "gopher_mean_word_length", "gopher_alpha_word_frac", "gopher_stop_words",
    "gopher_dup_line_frac", "gopher_top_2gram_char_frac", "gopher_dup_5gram_char_frac", "c4_sentences",
    "fineweb_line_punct_frac", "fineweb_short_line_frac", "fineweb_dup_line_char_frac", "fineweb_newline_word_ratio",
    "code_mean_line_length", "code_alnum_frac", "language_score",
]  # fmt: skip


@dg.asset(
    partitions_def=drops_partitions,
    deps=[RAW_DOCUMENTS],
    group_name="quality",
    kinds={"polars", "parquet"},
    code_version="1",
    automation_condition=on_new_data(),
    check_specs=SIGNALS_SPECS,
)
def quality_signals(
    context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource
) -> dg.MaterializeResult:
    """Every heuristic signal (Gopher, C4, FineWeb, code, language) of the drop's documents, with rule set verdicts."""
    key, layout = context.partition_key, storage.layout
    source = storage.upstream(layout.documents(key), RAW_DOCUMENTS, key)
    rules = rules_of(recipes.quality())
    started = time.perf_counter()
    signals = assess_file(source, rules)
    seconds = time.perf_counter() - started
    out = layout.signals(key)
    write_parquet(signals, out)
    return dg.MaterializeResult(
        metadata={
            "documents": signals.height,
            "docs_per_second": round(signals.height / seconds, 1) if seconds else None,
            "pass_rates": dg.MetadataValue.md(markdown_table(_pass_rates(signals, rules))),
            "languages": dg.MetadataValue.md(markdown_table(_languages(signals))),
            "signal_distributions": dg.MetadataValue.md(
                histograms_markdown(
                    [(name, signals[name].to_numpy(), _cuts(name, rules)) for name in PLOTTED],
                    f"Quality signals of {key} (dashed: rule thresholds)",
                )
            ),
            "failing_examples": dg.MetadataValue.md(markdown_table(_failing_examples(signals, source, rules))),
            "signals": dg.MetadataValue.path(str(out)),
        },
        data_version=dg.DataVersion(file_digest(out)),
        check_results=signals_checks(out),
    )


def _cuts(signal: str, rules: tuple[Rule, ...]) -> list[float]:
    return [bound for rule in rules if rule.signal == signal for bound in (rule.low, rule.high) if bound is not None]


def _pass_rates(signals: pl.DataFrame, rules: tuple[Rule, ...]) -> pl.DataFrame:
    """Share of documents passing each rule set and rule, with the rule's passing range."""
    passes = rule_passes(signals, rules)
    rows = []
    for name, members in rule_sets(rules).items():
        rows.append({"rule": f"**{name}** (all rules)", "passes": "", "pass_rate": passes[name].mean()})
        rows += [
            {"rule": rule.name, "passes": rule.describe(), "pass_rate": passes[rule.name].mean()} for rule in members
        ]
    return pl.DataFrame(rows).with_columns(pl.col("pass_rate").round(3))


def _languages(signals: pl.DataFrame) -> pl.DataFrame:
    return (
        signals.group_by("language")
        .agg(documents=pl.len(), mean_score=pl.col("language_score").mean().round(3))
        .sort("documents", "language", descending=[True, False])
        .head(10)
    )


def _failing_examples(signals: pl.DataFrame, documents: Path, rules: tuple[Rule, ...]) -> pl.DataFrame:
    """A few documents failing each rule, with the signal value and the opening of the text."""
    passes = rule_passes(signals, rules)
    rows = []
    for rule in rules:
        failing = signals.filter(~passes[rule.name]).head(EXAMPLES_PER_RULE)
        rows += [
            {"rule": rule.name, "passes": rule.describe(), "doc_id": doc_id, "value": round(float(value), 4)}
            for doc_id, value in failing.select("doc_id", rule.signal).iter_rows()
        ]
    examples = pl.DataFrame(
        rows, schema={"rule": pl.String, "passes": pl.String, "doc_id": pl.String, "value": pl.Float64}
    )
    openings = (
        scan_parquet(documents)
        .filter(pl.col("doc_id").is_in(examples["doc_id"].implode()))
        .select("doc_id", opening=pl.col("text").str.slice(0, 80))
        .collect()
    )
    return examples.join(openings, on="doc_id", how="left", maintain_order="left")


@dg.asset(
    deps=[QUALITY_SIGNALS, SEMANTIC_CLUSTERS],
    group_name="quality",
    kinds={"polars", "parquet"},
    code_version="1",
    pool="quality_state",
    automation_condition=on_new_data(),
    check_specs=SCORES_SPECS,
)
def quality_scores(
    context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource
) -> dg.MaterializeResult:
    """Signals joined with prototypicality (distance to the centroid) and cluster complexity, drop by drop."""
    layout = storage.layout
    clusters = Ledger(layout.asset(SEMANTIC_CLUSTERS))
    folder = layout.asset(QUALITY_SCORES)
    centroids = storage.upstream(layout.centroids(), SEMANTIC_CLUSTERS)
    recorded = {"fit": fit_id(centroids), "quality": config_digest(recipes.quality())}
    with exclusive(folder):
        ledger = Ledger(folder)
        ledger.reset_unless(**recorded)  # a refit or new thresholds: every drop is scored again
        clustered = set(clusters.keys)
        keys = [key for key in pending_drops(context, dg.AssetKey(QUALITY_SIGNALS), ledger.keys) if key in clustered]
        absorb_scores(
            ledger, clusters, keys, lambda key: storage.upstream(layout.signals(key), QUALITY_SIGNALS, key), **recorded
        )
        everything = ledger.scan_decisions()
        if everything is None:
            raise dg.Failure(description="no drop has both quality signals and clusters: materialize them first")
        scored = everything.collect()
        complexity = write_complexity(scored, centroids, layout.cluster_complexity())
    return _scores_result(ledger, keys, scored, complexity, layout.cluster_complexity())


def _scores_result(
    ledger: Ledger, keys: list[str], scored: pl.DataFrame, complexity: pl.DataFrame, complexity_path: Path
) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={
            "absorbed_now": len(keys),
            "documents": scored.height,
            "pass_rates_by_source": dg.MetadataValue.md(markdown_table(_pass_rates_by_source(scored))),
            "languages_by_source": dg.MetadataValue.md(markdown_table(_languages_by_source(scored))),
            "cluster_complexity": dg.MetadataValue.md(
                markdown_table(complexity.sort("complexity", descending=True).with_columns(pl.col(pl.Float64).round(4)))
            ),
            "distributions": dg.MetadataValue.md(
                histograms_markdown(
                    [
                        ("prototypicality", scored["prototypicality"].drop_nulls().to_numpy(), []),
                        ("cluster complexity", complexity["complexity"].to_numpy(), []),
                    ],
                    "Model-based metrics",
                )
            ),
            "complexity_table": dg.MetadataValue.path(str(complexity_path)),
        },
        data_version=dg.DataVersion(f"{ledger.digest()}-{file_digest(complexity_path)}"),
        check_results=scores_checks(ledger.decision_files(), complexity_path),
    )


def _pass_rates_by_source(scored: pl.DataFrame) -> pl.DataFrame:
    return (
        scored.group_by("source")
        .agg(pl.len().alias("documents"), *(pl.col(name).mean().round(3) for name in RULE_SETS))
        .sort("source")
    )


def _languages_by_source(scored: pl.DataFrame) -> pl.DataFrame:
    return (
        scored.group_by("source", "language")
        .agg(documents=pl.len())
        .sort("source", "documents", descending=[False, True])
        .group_by("source", maintain_order=True)
        .head(3)
    )
