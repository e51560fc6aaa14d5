"""The `curate` command: run the demo, and audit why each document is, or is not, in a training mix."""

from __future__ import annotations

import getpass
import json
import os
import textwrap
import warnings
from pathlib import Path

import click
import dagster as dg

from curation_dag.materializations import latest_versions
from curation_dag.settings import Settings, dagster_home
from curation_dag.steps.audit import lineage as audits
from curation_dag.steps.quality.config import load_quality_config
from curation_dag.steps.quality.rules import rules_of
from curation_dag.steps.recipes.files import RecipeError
from curation_dag.store import layout
from curation_dag.store.ledger import Ledger

QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@click.group()
def main() -> None:
    """curation_dag: a Dagster-orchestrated curation DAG for LLM training data."""


@main.command()
def demo() -> None:
    """Register the complete drops (as the drop sensor does) and run the main job on every drop."""
    home = dagster_home()
    from curation_dag.automation.run_recovery import recover_dead_runs
    from curation_dag.definitions import defs

    instance = dg.DagsterInstance.get()
    recover_dead_runs(instance)  # a demo killed midway left its pool slots claimed
    sensor = defs.resolve_sensor_def("new_drops")
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        tick = sensor(context)
    for request in getattr(tick, "dynamic_partitions_requests", []):
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    keys = instance.get_dynamic_partitions("drops")
    click.echo(f"Dagster instance: {home} ({len(keys)} drops registered)")

    if not keys:
        raise click.ClickException(f"no complete drops under {defs.resources['drops'].drops_root}")

    on_workers = Settings.from_environment().executor != "default"

    def run(job: str, partition_key: str | None = None) -> dg.ExecutionResult:
        """Run a job in process, or, with another executor set, launch it with its steps on the workers;
        a failure stops the demo with the failing step's message."""
        if on_workers:
            result = _launched(job, instance, partition_key)
        else:
            result = defs.resolve_job_def(job).execute_in_process(
                instance=instance, partition_key=partition_key, run_config=QUIET_RUN, raise_on_error=False
            )
        if not result.success:
            failure = next((e.message for e in result.all_events if e.is_failure), "")
            raise click.ClickException(f"{job} {partition_key or ''} failed: {failure} (see the run in `make ui`)")
        return result

    click.echo(f"\n{'drop':<24} {'rows':>6} {'accepted':>9} {'quarantined':>12} {'checks':>7}  documents")
    for key in keys:
        result = run("curation_job", key)
        metadata = result.asset_materializations_for_node(layout.RAW_DOCUMENTS)[0].metadata
        checks = "passed" if all(c.passed for c in result.get_asset_check_evaluations()) else "FAILED"
        rows, accepted, quarantined = (metadata[n].value for n in ("input_rows", "accepted", "quarantined"))
        path = metadata["documents"].value
        click.echo(f"{key:<24} {rows:>6} {accepted:>9} {quarantined:>12} {checks:>7}  {path}")
    click.echo("\nQuarantined rows sit beside each documents.parquet in quarantine.parquet.")

    run("dedup_job")
    stored = defs.resources["storage"].layout
    near = {e["key"]: e for e in Ledger(stored.asset(layout.NEAR_DUPLICATES)).drops}
    click.echo(f"\n{'drop (arrival order)':<24} {'exact dups':>10} {'near dups':>10}")
    for entry in Ledger(stored.asset(layout.EXACT_DUPLICATES)).drops:
        click.echo(f"{entry['key']:<24} {entry['duplicates']:>10} {near[entry['key']]['duplicates']:>10}")

    embedded = [run("embed_job", key).asset_materializations_for_node(layout.EMBEDDINGS)[0].metadata for key in keys]
    model, device = embedded[0]["model"].value, embedded[0]["device"].value
    total = sum(m["documents"].value for m in embedded)
    click.echo(f"\nEmbedded {total} deduplicated documents with {model} on {device}.")
    semantic = run("semantic_job")
    clusters = semantic.asset_materializations_for_node(layout.SEMANTIC_CLUSTERS)[0].metadata
    decided = Ledger(stored.asset(layout.SEMANTIC_DUPLICATES)).drops
    marked, total = sum(e["duplicates"] for e in decided), sum(e["documents"] for e in decided)
    click.echo(f"{clusters['k'].value} semantic clusters; SemDeDup marked {marked} of {total} as semantic duplicates.")
    scores = semantic.asset_materializations_for_node(layout.QUALITY_SCORES)[0].metadata
    click.echo(f"\nShare passing each quality rule set, by source:\n{scores['pass_rates_by_source'].value}")
    mixtures = run("mixtures_job")
    click.echo(f"\n{'mixture':<30} {'documents':>9} {'tokens':>8} {'budget':>8}  manifest sha256")
    built = {e.asset_key.path[-1]: e.materialization.metadata for e in mixtures.get_asset_materialization_events()}
    for node, metadata in sorted(built.items()):
        if not node.startswith("mixture_"):
            continue
        documents, tokens, budget, digest = (
            metadata[n].value for n in ("documents", "tokens", "budget_tokens", "manifest_sha256")
        )
        click.echo(f"{node:<30} {documents:>9} {tokens:>8} {budget:>8}  {digest[:16]}")
    click.echo(f"\nMixtures, their manifests and decision ledgers: {stored.asset(layout.MIXTURES)}")
    click.echo("`make ui` shows the asset graph, the runs and every asset's metadata.")


def _launched(job: str, instance: dg.DagsterInstance, partition_key: str | None) -> dg.ExecutionResult:
    """`job` of the code location run by the executor it is defined with, so that other processes (the
    workers or pods) can load it: its result, its events read back from the instance. The job is named
    through the module's `defs`, the pointer Dagster's own loaders use (dagster 1.13 has no public one for
    a job of a Definitions object)."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    repository = ReconstructableRepository.for_module("curation_dag.definitions", "defs", os.getcwd())
    tags = {"dagster/partition": partition_key} if partition_key else None
    with warnings.catch_warnings():  # dagster-celery registers its task again for each run of one process
        warnings.filterwarnings("ignore", "Task name 'execute_plan' is already registered")
        with dg.execute_job(repository.get_reconstructable_job(job), instance, QUIET_RUN, tags=tags) as result:
            return result


@main.command()
@click.option("--doc-id", "doc_ids", multiple=True, help="A document, <source>/<drop_id>/<shard>#<row> (repeatable).")
@click.option("--content-hash", "content_hashes", multiple=True, help="A text's SHA-256: every copy (repeatable).")
@click.option("--drop", "drops", multiple=True, help="A whole drop, <source>/<drop_id> (repeatable).")
@click.option("--reason", required=True, help="Why, for the takedown log.")
@click.option("--by", "requested_by", default=getpass.getuser, show_default="you", help="Who asked, for the log.")
def remove(doc_ids, content_hashes, drops, reason: str, requested_by: str) -> None:
    """Take documents down: log the request, purge their texts, rebuild every recipe model and mixture."""
    if not (doc_ids or content_hashes or drops):
        raise click.UsageError("name what to take down: --doc-id, --content-hash or --drop (each repeatable)")
    dagster_home()
    from curation_dag.automation.run_recovery import recover_dead_runs
    from curation_dag.definitions import defs

    instance = dg.DagsterInstance.get()
    recover_dead_runs(instance)  # a killed run would hold the duckdb pool the rebuild needs
    request = {"doc_ids": list(doc_ids), "content_hashes": list(content_hashes), "drops": list(drops)}
    config = {**request, "reason": reason, "requested_by": requested_by}
    result = defs.resolve_job_def("takedown_job").execute_in_process(
        instance=instance,
        run_config={**QUIET_RUN, "ops": {layout.TAKEDOWNS: {"config": config}}},
        raise_on_error=False,
    )
    logged = result.asset_materializations_for_node(layout.TAKEDOWNS)
    if not logged:
        failure = next((e.message for e in result.all_events if e.is_failure), "")
        raise click.ClickException(f"nothing was taken down: {failure}")
    metadata = logged[0].metadata
    click.echo(f"takedown {metadata['takedown'].value}: {metadata['documents'].value} documents taken down")
    for path, count in metadata["purged_files"].value.items():
        click.echo(f"  purged {count:>6} texts from {path}")
    for event in result.get_asset_materialization_events():
        if event.asset_key.path[-1].startswith("mixture_"):
            digest = event.materialization.metadata["manifest_sha256"].value
            click.echo(f"  rebuilt {event.asset_key.path[-1]:<28} manifest {digest[:16]}")
    if not result.success:
        failure = next((e.message for e in result.all_events if e.is_failure), "")
        raise click.ClickException(f"the takedown is logged and purged, but a rebuild failed: {failure}")


def _storage_root() -> str:
    return Settings.from_environment().storage_root


def _emit(facts: dict, as_json: bool, lines) -> None:
    if as_json:
        click.echo(json.dumps(facts, indent=1, default=str))
    else:
        for line in lines(facts):
            click.echo(line)


def _mixture(reference: str) -> Path:
    try:
        return audits.mixture_folder(_storage_root(), reference)
    except audits.AuditError as error:
        raise click.ClickException(str(error)) from None


def _latest_runs(doc_id: str) -> dict:
    """Without a mixture: the latest materialization of each asset behind a fact, from the instance."""
    dagster_home()
    instance = dg.DagsterInstance.get()
    drop = "/".join(doc_id.split("/")[:2])
    produced = {}
    for fact, asset in audits.FACT_ASSETS.items():
        partitions = [drop] if asset in layout.PER_DROP_FILE else None
        latest = latest_versions(instance, dg.AssetKey(asset), partitions, limit=1)
        produced[fact] = next(iter(latest.values()), None)
    return produced


@main.command()
@click.argument("doc_id")
@click.option("--mixture", help="A mixture name (its latest build) or name@<hash prefix>: facts as recorded then.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def explain(doc_id: str, mixture: str | None, as_json: bool) -> None:
    """Why DOC_ID is, or is not, in a mixture: provenance, signals, each stage's decision and evidence."""
    settings = Settings.from_environment()
    try:
        rules = rules_of(load_quality_config(Path(settings.recipes) / "quality.yml"))
    except RecipeError as error:
        raise click.ClickException(str(error)) from None
    try:
        facts = audits.explain(settings.storage_root, doc_id, rules, _mixture(mixture) if mixture else None)
    except audits.AuditError as error:
        raise click.ClickException(str(error)) from None
    if not mixture:
        facts["produced_by"] = _latest_runs(doc_id)
    drops_root = settings.drops_root
    where = facts["provenance"]
    facts["provenance"]["source_file"] = str(Path(drops_root) / where["source"] / where["drop_id"] / where["shard"])
    _emit(facts, as_json, _explain_lines)


def _explain_lines(facts: dict):
    where = facts["provenance"]
    yield f"{facts['doc_id']}"
    yield f"  from {where['source_file']}, row {where['row']} (id {where['source_id']}), {where['n_chars']} chars"
    if taken := facts.get("taken_down"):
        yield (f"  TAKEN DOWN by takedown {taken['takedown']} on {taken['requested_at']} for {taken['requested_by']}: "
               f"{taken['reason']}; its text is purged and it is in no later mixture")  # fmt: skip
    if "mixture" in facts:
        verdict = facts["mixture"]
        outcome = f"KEPT x{verdict['repeats']}" if verdict["verdict"] == "kept" else f"REMOVED at {verdict['stage']}"
        yield f"  mixture {verdict['name']}@{verdict['materialization']}: {outcome}"
        if verdict["reason"]:
            yield f"    {verdict['reason']}"
    yield "  signals:"
    values = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in facts["signals"].items()]
    yield from textwrap.wrap(" ".join(values), 116, initial_indent="    ", subsequent_indent="    ")
    yield "  decisions:"
    for decision in facts["decisions"]:
        stage = decision["stage"]
        if "duplicate" in decision:
            if decision["duplicate"]:
                similarity = decision.get("jaccard") or decision.get("cosine")
                score = f" ({'Jaccard' if 'jaccard' in decision else 'cosine'} {similarity:.3f})" if similarity else ""
                matched = decision["matched_provenance"]
                yield (f"    {stage:<26} duplicate of {decision['duplicate_of']}{score}, "
                       f"from {matched['shard']} row {matched['row']} of drop {matched['drop_id']}")  # fmt: skip
            elif decision.get("not_judged"):
                yield f"    {stage:<26} not judged: {decision['not_judged']}"
            else:
                yield f"    {stage:<26} not a duplicate"
        elif stage == "cluster":
            proto = decision["prototypicality"]
            place = f"{decision['cluster']} (distance to centroid {proto:.4f})" if proto is not None else "none"
            yield f"    {stage:<26} {place}"
        else:
            verdict = (
                "passes"
                if decision["passes"]
                else (
                    f"fails {decision['first_failure']}: {decision['value']:.4g} "
                    f"(passes when {decision['passes_when']})"
                )
            )
            yield f"    {stage:<26} {verdict}"
    yield "  produced by (code version, run):"
    for fact, run in facts.get("produced_by", {}).items():
        if run and "partitions" in run:
            run = run["partitions"].get("/".join(facts["doc_id"].split("/")[:2]))
        yield f"    {fact:<12} {run['code_version']} {run['run_id']}" if run else f"    {fact:<12} not recorded"


@main.command()
@click.argument("mixture")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def audit(mixture: str, as_json: bool) -> None:
    """What MIXTURE (name or name@<hash prefix>) is made of, and what made it."""
    _emit(audits.audit(_mixture(mixture)), as_json, _audit_lines)


def _audit_lines(facts: dict):
    yield f"{facts['mixture']}@{facts['materialization']}  manifest {facts['manifest_sha256']}"
    yield f"  built {facts['materialized_at']} by run {facts['run_id']} from {facts['spec_file']}"
    yield (f"  {facts['documents']} documents, {facts['copies']} copies, {facts['tokens']} tokens "
           f"(budget {facts['budget_tokens']}) from {facts['candidates']} candidates")  # fmt: skip
    yield f"  drops absorbed: {', '.join(facts['drops']) or 'none recorded'}"
    if taken := facts["taken_down"]:
        ids = sorted({row["takedown"] for row in taken})
        yield (f"  taken down since: {len(taken)} documents (takedowns {', '.join(ids)}); "
               "their texts are purged from this materialization")  # fmt: skip
    yield "  funnel:"
    for row in facts["funnel"]:
        tokens = f"{row['tokens']:>10} tokens" if row["tokens"] is not None else ""
        yield f"    {row['stage']:<10} {row['documents']:>7} documents {tokens}".rstrip()
    yield "  by source:"
    for row in facts["by_source"]:
        yield f"    {row['source']:<20} {row['tokens']:>10} tokens  share {row['share']:.4f}  weight {row['weight']}"
    yield "  by language:"
    for row in facts["by_language"]:
        yield f"    {row['language']:<20} {row['tokens']:>10} tokens"
    yield "  recipe files (sha256):"
    for path, digest in facts["recipes"].items():
        yield f"    {path:<40} {digest[:16]}"
    yield "  upstream assets (code version, data version, run):"
    for asset, latest in facts["upstream"].items():
        for partition, run in (latest.get("partitions") or {"": latest}).items():
            name = f"{asset}[{partition}]" if partition else asset
            yield f"    {name:<48} {run.get('code_version')} {run.get('data_version')} {run.get('run_id')}"


@main.command()
@click.argument("before")
@click.argument("after")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff(before: str, after: str, as_json: bool) -> None:
    """Documents and tokens added and removed from BEFORE to AFTER (names, or name@<hash prefix>)."""
    _emit(audits.diff(_mixture(before), _mixture(after)), as_json, _diff_lines)


def _diff_lines(facts: dict):
    yield f"{facts['before']} -> {facts['after']}: {facts['tokens_before']} -> {facts['tokens_after']} tokens"
    for side in ("added", "removed"):
        part = facts[side]
        yield f"  {side}: {part['documents']} documents, {part['tokens']} tokens"
        for group in ("by_reason", "by_source", "by_cluster"):
            for row in part.get(group, []):
                key = next(iter(row.values()))
                yield f"    {group[3:]:<8} {key!s:<40} {row['documents']:>6} documents {row['tokens']:>9} tokens"
