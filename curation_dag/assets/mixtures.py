"""Mixtures: one asset per spec in `dbt_like_recipes/mixtures/`, built from a recipe model's candidates
(steps/mixtures/build.py)."""

import hashlib
from pathlib import Path

import dagster as dg
import polars as pl

from curation_dag.automation.conditions import on_new_data
from curation_dag.checks.sql import sql_check
from curation_dag.materializations import latest_versions
from curation_dag.metadata import markdown_table
from curation_dag.resources import RecipesResource, StorageResource
from curation_dag.steps.mixtures.build import Built, build_mixture
from curation_dag.steps.mixtures.report import report_metadata
from curation_dag.steps.mixtures.selection import Infeasible, MixtureSpec, load_mixtures
from curation_dag.steps.quality.rules import rules_of
from curation_dag.steps.recipes.models import OTHER_PIPELINE_ASSETS, PIPELINE_SOURCES
from curation_dag.steps.recipes.sandbox import DUCKDB_POOL
from curation_dag.store.layout import DECISIONS, MANIFEST, QUALITY_SCORES, RAW_DOCUMENTS

CHECKS = {
    "one_verdict_per_candidate": "Every candidate has exactly one verdict in the decision ledger.",
    "budget_met": "The mixture's tokens are within {tolerance:.2%} of budget_tokens.",
    "weights_met": "Each source's tokens are within {tolerance:.2%} of weight x budget_tokens.",
    "repeats_within_cap": "No document appears more than max_repeats times.",
    "only_kept_documents": "Every document in the output was kept by the ledger.",
}


def mixture_assets(folder: str | Path, models: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """An asset per mixture spec; `models` are the recipe model assets a spec may take as its pool."""
    pools = {model.key.path[-1]: model for model in models}
    specs = load_mixtures(Path(folder) / "mixtures", set(pools))
    return [_mixture_asset(name, spec, path, pools[spec.pool], models) for name, (spec, path) in specs.items()]


def _mixture_asset(
    name: str, spec: MixtureSpec, path: Path, model: dg.AssetsDefinition, models: list[dg.AssetsDefinition]
) -> dg.AssetsDefinition:
    pool = model.key
    upstream = _upstream_keys(model, models)
    # Editing the spec or the pool's SQL (whose version covers its own upstream models) makes the mixture stale.
    version = hashlib.sha256(path.read_bytes() + model.code_versions_by_key[pool].encode()).hexdigest()[:16]
    raw_documents = dg.AssetKey(RAW_DOCUMENTS)

    @dg.asset(
        name=f"mixture_{name}",
        deps=[pool, dg.AssetKey(QUALITY_SCORES), raw_documents],
        group_name="mixtures",
        kinds={"parquet", "duckdb"},
        code_version=version,
        pool=DUCKDB_POOL,
        # A new drop reaches a mixture through its pool; its raw texts are only read for the output.
        automation_condition=on_new_data(ignore=(raw_documents,)),
        description=(spec.description or f"The {name} training mixture.").strip().splitlines()[0],
        check_specs=[
            dg.AssetCheckSpec(
                check,
                asset=f"mixture_{name}",
                blocking=True,
                description=text.format(tolerance=spec.budget_tolerance),
            )
            for check, text in CHECKS.items()
        ],
    )
    def _mixture(
        context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource
    ) -> dg.MaterializeResult:
        versions = _upstream_versions(context.instance, upstream)
        rules = rules_of(recipes.quality())
        try:
            built = build_mixture(storage.layout, name, spec, path, pool.path[-1], context.run.run_id, versions, rules)
        except (Infeasible, ValueError) as error:
            raise dg.Failure(description=str(error)) from None
        return _result(name, spec, built)

    return _mixture


def _upstream_keys(pool: dg.AssetsDefinition, models: list[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    """Every pipeline asset, the pool model and the models it reads: what a mixture's facts come from."""
    by_key = {model.key: model for model in models}
    keys, frontier = {pool.key}, [pool]
    while frontier:
        current = frontier.pop()
        for dependency in current.asset_deps[current.key]:
            if dependency in by_key and dependency not in keys:
                keys.add(dependency)
                frontier.append(by_key[dependency])
    keys |= {dg.AssetKey(name) for name in (*PIPELINE_SOURCES, *OTHER_PIPELINE_ASSETS)}
    return sorted(keys, key=lambda key: key.to_user_string())


def _upstream_versions(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> dict[str, dict]:
    """The latest materialization of each upstream asset, or of each partition of a partitioned one."""
    versions = {}
    for key in keys:
        latest = latest_versions(instance, key)
        versions[key.to_user_string()] = latest.pop("", None) or {"partitions": dict(sorted(latest.items()))}
    return versions


def _result(name: str, spec: MixtureSpec, built: Built) -> dg.MaterializeResult:
    summary = built.summary
    return dg.MaterializeResult(
        metadata={
            "manifest_sha256": built.digest,
            "documents": built.documents,
            "copies": built.copies,
            "tokens": summary["tokens"],
            "budget_tokens": spec.budget_tokens,
            "tokens_counted_now": built.tokens_counted_now,
            **{
                key.removesuffix("_markdown"): dg.MetadataValue.md(text)
                for key, text in report_metadata(built.folder).items()
            },
            "tokens_by_language": dg.MetadataValue.md(markdown_table(pl.DataFrame(summary["by_language"]))),
            "folder": dg.MetadataValue.path(str(built.folder)),
            "report": dg.MetadataValue.path(str(built.report)),
        },
        data_version=dg.DataVersion(built.digest[:24]),
        check_results=_checks(name, spec, built.folder, built.candidates, summary),
    )


def _checks(name: str, spec: MixtureSpec, out: Path, candidates: int, summary: dict) -> list[dg.AssetCheckResult]:
    asset = f"mixture_{name}"
    decisions, manifest = str(out / DECISIONS), str(out / MANIFEST)
    budget, tolerance = spec.budget_tokens, spec.budget_tolerance
    targets = pl.DataFrame({"source": list(spec.weights), "target": [w * budget for w in spec.weights.values()]})
    got = pl.DataFrame(summary["by_source"], schema={"source": pl.String, "tokens": pl.Int64}, strict=False)
    return [
        sql_check(
            asset,
            "one_verdict_per_candidate",
            f"SELECT doc_id, count(*) AS verdicts FROM decisions GROUP BY doc_id HAVING count(*) != 1 "
            f"UNION ALL SELECT 'all candidates', count(*) FROM decisions HAVING count(*) != {candidates}",
            decisions=decisions,
        ),
        sql_check(
            asset,
            "budget_met",
            f"SELECT sum(tokens * repeats) AS tokens, {budget} AS budget FROM manifest "
            f"HAVING abs(coalesce(sum(tokens * repeats), 0) - {budget}) > {tolerance * budget + 1e-6}",
            manifest=manifest,
        ),
        sql_check(
            asset,
            "weights_met",
            "SELECT t.source, t.target, coalesce(g.tokens, 0) AS tokens FROM targets t LEFT JOIN got g USING (source) "
            f"WHERE abs(coalesce(g.tokens, 0) - t.target) > {tolerance} * t.target + 1e-6",
            targets=targets,
            got=got,
        ),
        sql_check(
            asset,
            "repeats_within_cap",
            f"SELECT doc_id, repeats FROM manifest WHERE repeats > {spec.max_repeats} OR repeats < 1",
            manifest=manifest,
        ),
        sql_check(
            asset,
            "only_kept_documents",
            "SELECT m.doc_id, d.verdict FROM manifest m LEFT JOIN decisions d USING (doc_id) "
            "WHERE d.verdict IS DISTINCT FROM 'kept' OR d.repeats != m.repeats",
            manifest=manifest,
            decisions=decisions,
        ),
    ]
