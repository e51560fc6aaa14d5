"""Mixtures: one asset per spec in `dbt_like_recipes/mixtures/`, built from a recipe model's candidates."""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from curation_dag.assets.ingest import raw_documents
from curation_dag.assets.quality import quality_scores
from curation_dag.automation.conditions import on_new_data
from curation_dag.checks.sql import sql_check
from curation_dag.metadata import markdown_table
from curation_dag.resources import StorageResource
from curation_dag.steps.mixtures.report import render_report, report_metadata
from curation_dag.steps.mixtures.selection import (
    STAGES,
    Infeasible,
    MixtureSpec,
    allocate,
    decide,
    load_mixtures,
    manifest_digest,
    order,
    token_counts,
    tokenizer_id,
)
from curation_dag.steps.recipes.models import OTHER_PIPELINE_ASSETS, PIPELINE_SOURCES
from curation_dag.steps.recipes.sandbox import DUCKDB_POOL
from curation_dag.store.atomic import atomic_path, checked_parquet
from curation_dag.store.ledger import Ledger

CURRENT = "CURRENT"  # names the folder of the latest materialization


def mixture_assets(folder: str | Path, models: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """An asset per mixture spec; `models` are the recipe model assets a spec may take as its pool."""
    pools = {model.key.path[-1]: model for model in models}
    specs = load_mixtures(Path(folder) / "mixtures", set(pools))
    return [_mixture_asset(name, spec, path, pools[spec.pool], models) for name, (spec, path) in specs.items()]


def mixture_folder(storage: StorageResource, name: str) -> Path:
    """The folder of a mixture's latest materialization."""
    root = storage.asset_dir("mixtures") / name
    return root / (root / CURRENT).read_text().strip()


def _mixture_asset(
    name: str, spec: MixtureSpec, path: Path, model: dg.AssetsDefinition, models: list[dg.AssetsDefinition]
) -> dg.AssetsDefinition:
    pool = model.key
    upstream = _upstream_keys(model, models)
    # Editing the spec or the pool's SQL (whose version covers its own upstream models) makes the mixture stale.
    version = hashlib.sha256(path.read_bytes() + model.code_versions_by_key[pool].encode()).hexdigest()[:16]
    checks = {
        "one_verdict_per_candidate": "Every candidate has exactly one verdict in the decision ledger.",
        "budget_met": f"The mixture's tokens are within {spec.budget_tolerance:.2%} of budget_tokens.",
        "weights_met": f"Each source's tokens are within {spec.budget_tolerance:.2%} of weight x budget_tokens.",
        "repeats_within_cap": "No document appears more than max_repeats times.",
        "only_kept_documents": "Every document in the output was kept by the ledger.",
    }

    @dg.asset(
        name=f"mixture_{name}",
        deps=[pool, quality_scores, raw_documents],
        group_name="mixtures",
        kinds={"parquet", "duckdb"},
        code_version=version,
        pool=DUCKDB_POOL,
        # A new drop reaches a mixture through its pool; its raw texts are only read for the output.
        automation_condition=on_new_data(ignore=(raw_documents.key,)),
        description=(spec.description or f"The {name} training mixture.").strip().splitlines()[0],
        check_specs=[
            dg.AssetCheckSpec(check, asset=f"mixture_{name}", blocking=True, description=text)
            for check, text in checks.items()
        ],
    )
    def _mixture(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
        try:
            return _build(context, storage, name, spec, path, pool, upstream)
        except (Infeasible, ValueError) as error:
            raise dg.Failure(description=str(error)) from None

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


def _build(context, storage, name, spec, path, pool, upstream) -> dg.MaterializeResult:
    pool_file = storage.layout.recipe_model(pool.path[-1])
    candidates = pl.read_parquet(checked_parquet(pool_file, f"Materialize {pool.path[-1]} again to rewrite it."))
    if candidates["doc_id"].n_unique() != candidates.height:
        raise ValueError(f"{path}: pool {pool.path[-1]} has repeated doc_ids; a candidate pool lists each once")
    candidates = _with_signals(storage, candidates)
    complexity_file = storage.asset_dir("quality_scores") / "cluster_complexity.parquet"
    complexity = pl.read_parquet(complexity_file) if complexity_file.is_file() else None
    decisions = decide(spec, candidates, complexity)

    survivors = candidates.filter(decisions["stage"].is_null()).select("doc_id", "source")
    tokens, counted_now = _tokens(storage, survivors["doc_id"], spec.tokenizer)
    survivors = survivors.join(tokens, on="doc_id", maintain_order="left")
    selected = allocate(spec, survivors, str(path))  # raises before anything is written

    decisions = decisions.join(selected.select("doc_id", "repeats", "tokens"), on="doc_id", how="left").with_columns(
        pl.when(pl.col("stage").is_null() & (pl.col("repeats") == 0))
        .then(pl.lit("budget"))
        .otherwise(pl.col("stage"))
        .alias("stage"),
        pl.when(pl.col("stage").is_null() & (pl.col("repeats") == 0))
        .then(pl.lit("not needed: the source's token budget was already filled"))
        .otherwise(pl.col("reason"))
        .alias("reason"),
        repeats=pl.col("repeats").fill_null(0),
    )
    decisions = decisions.select(
        "doc_id",
        verdict=pl.when(pl.col("stage").is_null()).then(pl.lit("kept")).otherwise(pl.lit("removed")),
        stage="stage",
        reason="reason",
        repeats="repeats",
        tokens="tokens",
        duplicate_of="duplicate_of",
        similarity="similarity",
        rule="rule",
        value="value",
    )
    curriculum = [] if spec.order == "shuffle" else [spec.order.by]
    extra = list(dict.fromkeys(c for c in ("cluster", "language", *curriculum) if c in candidates.columns))
    chosen = selected.filter(pl.col("repeats") > 0).join(
        candidates.select("doc_id", *extra), on="doc_id", maintain_order="left"
    )
    copies = order(spec, chosen)
    first = copies.group_by("doc_id").agg(position=pl.col("position").min())
    manifest = (
        chosen.join(first, on="doc_id")
        .select("doc_id", "repeats", "position", "tokens", "source", *(["cluster"] if "cluster" in extra else []))
        .sort("position")
    )
    digest = manifest_digest(manifest)
    out = storage.asset_dir("mixtures") / name / digest[:16]
    out.mkdir(parents=True, exist_ok=True)
    texts = _raw_documents(storage, manifest["doc_id"], ["text"])
    documents = copies.select("position", "doc_id", "copy", "source").join(texts, on="doc_id", maintain_order="left")
    _write(documents, out / f"documents.{spec.format}")
    _write(manifest, out / "manifest.parquet")
    _write(decisions, out / "decisions.parquet")
    _write(candidates, out / "candidates.parquet")  # the audit stays exact after later drops
    summary = _summary(spec, manifest, candidates, decisions, digest)
    with atomic_path(out / "summary.json") as temporary:
        temporary.write_text(json.dumps(summary, indent=1))
    with atomic_path(out / "run.json") as temporary:
        record = _run_record(context, name, path, digest, upstream)
        temporary.write_text(
            json.dumps({**record, "drops": Ledger(storage.asset_dir("quality_scores")).keys}, indent=1)
        )
    report = render_report(out)
    with atomic_path(storage.asset_dir("mixtures") / name / CURRENT) as temporary:
        temporary.write_text(out.name)
    return dg.MaterializeResult(
        metadata={
            "manifest_sha256": digest,
            "documents": manifest.height,
            "copies": copies.height,
            "tokens": summary["tokens"],
            "budget_tokens": spec.budget_tokens,
            "tokens_counted_now": counted_now,
            **{key.removesuffix("_markdown"): dg.MetadataValue.md(text) for key, text in report_metadata(out).items()},
            "tokens_by_language": dg.MetadataValue.md(markdown_table(pl.DataFrame(summary["by_language"]))),
            "folder": dg.MetadataValue.path(str(out)),
            "report": dg.MetadataValue.path(str(report)),
        },
        data_version=dg.DataVersion(digest[:24]),
        check_results=_checks(name, spec, out, candidates.height, summary),
    )


def _run_record(context: dg.AssetExecutionContext, name: str, path: Path, digest: str, upstream: list) -> dict:
    """What made this materialization: the recipe files' hashes, and the code version, data version
    and run of the latest materialization of every upstream asset (each partition of partitioned ones)."""
    recipes = path.parent.parent
    files = sorted(p for p in recipes.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml", ".sql"))
    return {
        "mixture": name,
        "spec_file": str(path),
        "manifest_sha256": digest,
        "run_id": context.run.run_id,
        "materialized_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipes": {str(p.relative_to(recipes)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
        "upstream": {key.to_user_string(): _latest(context.instance, key) for key in upstream},
    }


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict:
    """The latest materialization of an asset, or of each of its partitions."""
    latest = {}
    for record in instance.fetch_materializations(key, limit=10_000).records:  # newest first
        event = record.event_log_entry
        materialization = event.asset_materialization
        partition = materialization.partition or ""
        if partition not in latest:
            latest[partition] = {
                "code_version": materialization.tags.get("dagster/code_version"),
                "data_version": materialization.tags.get("dagster/data_version"),
                "run_id": event.run_id,
            }
    return latest.pop("", None) or {"partitions": dict(sorted(latest.items()))}


def _with_signals(storage: StorageResource, candidates: pl.DataFrame) -> pl.DataFrame:
    """The pool's columns plus every quality signal it lacks, from quality_scores, by doc_id."""
    ledger = Ledger(storage.asset_dir("quality_scores"))
    if not ledger.drops:
        return candidates
    scores = pl.scan_parquet(ledger.decision_files())
    missing = [c for c in scores.collect_schema().names() if c not in candidates.columns]
    return candidates.join(scores.select("doc_id", *missing).collect(), on="doc_id", how="left", maintain_order="left")


def _raw_documents(storage: StorageResource, doc_ids: pl.Series, columns: list[str]) -> pl.DataFrame:
    recovery = "Materialize raw_documents for that drop again to rewrite it."
    paths = sorted(storage.asset_dir("raw_documents").glob("*/*/documents.parquet"))
    files = [str(checked_parquet(path, recovery)) for path in paths]
    wanted = doc_ids.implode()
    return pl.scan_parquet(files).filter(pl.col("doc_id").is_in(wanted)).select("doc_id", *columns).collect()


def _tokens(storage: StorageResource, doc_ids: pl.Series, tokenizer: str) -> tuple[pl.DataFrame, int]:
    """doc_id and tokens, and how many texts were counted now. Counting dominates a mixture build,
    so counts are kept by content hash under <storage>/token_counts/<tokenizer id>/, one file per
    build that counted new texts: a rebuild after a new drop counts only that drop's survivors."""
    hashes = _raw_documents(storage, doc_ids, ["content_hash"])
    folder = storage.asset_dir("token_counts") / tokenizer_id(tokenizer)
    known = sorted(folder.glob("*.parquet"))
    wanted = hashes["content_hash"].unique().implode()
    counted = (
        pl.scan_parquet(known).filter(pl.col("content_hash").is_in(wanted)).collect()
        if known
        else pl.DataFrame(schema={"content_hash": pl.String, "tokens": pl.Int64})
    )
    new = hashes.join(counted, on="content_hash", how="anti").unique("content_hash").sort("content_hash")
    if new.height:
        texts = new.join(_raw_documents(storage, new["doc_id"], ["text"]), on="doc_id", maintain_order="left")
        new = texts.select("content_hash", tokens=pl.Series(token_counts(texts["text"].to_list(), tokenizer)))
        name = hashlib.sha256("".join(new["content_hash"]).encode()).hexdigest()[:16]
        with atomic_path(folder / f"{name}.parquet") as temporary:
            new.write_parquet(temporary, compression="zstd")
        counted = pl.concat([counted, new])
    return hashes.join(counted.unique("content_hash"), on="content_hash").select("doc_id", "tokens"), new.height


def _write(frame: pl.DataFrame, path: Path) -> None:
    with atomic_path(path) as temporary:
        if path.suffix == ".jsonl":
            frame.write_ndjson(temporary)
        else:
            frame.write_parquet(temporary, compression="zstd")


def _summary(spec, manifest, candidates, decisions, digest) -> dict:
    tokens = manifest.with_columns(total=pl.col("tokens") * pl.col("repeats"))
    total = int(tokens["total"].sum())
    by_source = (
        tokens.group_by("source")
        .agg(documents=pl.len(), tokens=pl.col("total").sum())
        .with_columns(
            share=(pl.col("tokens") / max(total, 1)).round(4),
            weight=pl.col("source").replace_strict(spec.weights, default=0.0),
        )
        .sort("source")
    )
    described = tokens.join(candidates.select("doc_id", *[c for c in ("language",) if c in candidates.columns]),
                            on="doc_id", how="left")  # fmt: skip
    language = "language" if "language" in described.columns else None
    by_language = (
        described.group_by(language).agg(tokens=pl.col("total").sum()).sort("tokens", descending=True)
        if language
        else pl.DataFrame()
    )
    by_cluster = (
        tokens.group_by("cluster").agg(tokens=pl.col("total").sum()).sort("cluster")
        if "cluster" in tokens.columns
        else pl.DataFrame()
    )
    funnel = (
        decisions.group_by("stage")
        .agg(documents=pl.len())
        .with_columns(pl.col("stage").fill_null("kept"))
        .sort(pl.col("stage").replace_strict({s: i for i, s in enumerate((*STAGES, "kept"))}))
    )
    return {
        "manifest_sha256": digest,
        "candidates": candidates.height,
        "tokens": total,
        "budget_tokens": spec.budget_tokens,
        "funnel": funnel.to_dicts(),
        "by_source": by_source.to_dicts(),
        "by_language": by_language.to_dicts(),
        "by_cluster": by_cluster.to_dicts(),
    }


def _checks(name: str, spec: MixtureSpec, out: Path, candidates: int, summary: dict) -> list[dg.AssetCheckResult]:
    asset = f"mixture_{name}"
    decisions, manifest = str(out / "decisions.parquet"), str(out / "manifest.parquet")
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
