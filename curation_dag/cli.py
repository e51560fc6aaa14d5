"""The `curate` command: run the pipeline on the shipped demo drops and show what it produced."""

from __future__ import annotations

import os
from pathlib import Path

import click
import dagster as dg

from curation_dag.core.dedup_store import Ledger

QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@click.group()
def main() -> None:
    """curation_dag: a Dagster-orchestrated curation DAG for LLM training data."""


@main.command()
def demo() -> None:
    """Register the complete drops (as the drop sensor does) and run the main job on every drop."""
    os.environ.setdefault("DAGSTER_HOME", str(Path(".curation/dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    from curation_dag.definitions import defs

    instance = dg.DagsterInstance.get()
    sensor = defs.resolve_sensor_def("new_drops")
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        tick = sensor(context)
    for request in getattr(tick, "dynamic_partitions_requests", []):
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    keys = instance.get_dynamic_partitions("drops")
    click.echo(f"Dagster instance: {os.environ['DAGSTER_HOME']} ({len(keys)} drops registered)")

    if not keys:
        raise click.ClickException(f"no complete drops under {defs.resources['drops'].drops_root}")

    def run(job: str, partition_key: str | None = None) -> dg.ExecuteInProcessResult:
        """Run a job in process; a failure stops the demo with the failing step's message."""
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
        metadata = result.asset_materializations_for_node("raw_documents")[0].metadata
        checks = "passed" if all(c.passed for c in result.get_asset_check_evaluations()) else "FAILED"
        rows, accepted, quarantined = (metadata[n].value for n in ("input_rows", "accepted", "quarantined"))
        path = metadata["documents"].value
        click.echo(f"{key:<24} {rows:>6} {accepted:>9} {quarantined:>12} {checks:>7}  {path}")
    click.echo("\nQuarantined rows sit beside each documents.parquet in quarantine.parquet.")

    run("dedup_job")
    storage = defs.resources["storage"]
    near = {e["key"]: e for e in Ledger(storage.asset_dir("near_duplicates")).drops}
    click.echo(f"\n{'drop (arrival order)':<24} {'exact dups':>10} {'near dups':>10}")
    for entry in Ledger(storage.asset_dir("exact_duplicates")).drops:
        click.echo(f"{entry['key']:<24} {entry['duplicates']:>10} {near[entry['key']]['duplicates']:>10}")

    embedded = [run("embed_job", key).asset_materializations_for_node("embeddings")[0].metadata for key in keys]
    model, device = embedded[0]["model"].value, embedded[0]["device"].value
    total = sum(m["documents"].value for m in embedded)
    click.echo(f"\nEmbedded {total} deduplicated documents with {model} on {device}.")
    semantic = run("semantic_job")
    clusters = semantic.asset_materializations_for_node("semantic_clusters")[0].metadata
    decided = Ledger(storage.asset_dir("semantic_duplicates")).drops
    marked, total = sum(e["duplicates"] for e in decided), sum(e["documents"] for e in decided)
    click.echo(f"{clusters['k'].value} semantic clusters; SemDeDup marked {marked} of {total} as semantic duplicates.")
    scores = semantic.asset_materializations_for_node("quality_scores")[0].metadata
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
    click.echo(f"\nMixtures, their manifests and decision ledgers: {storage.asset_dir('mixtures')}")
    click.echo("`make ui` shows the asset graph, the runs and every asset's metadata.")
