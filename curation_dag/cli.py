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

    job = defs.resolve_job_def("curation_job")
    rows = []
    for key in keys:
        result = job.execute_in_process(
            instance=instance, partition_key=key, run_config=QUIET_RUN, raise_on_error=False
        )
        if not result.success:
            failure = next((e.message for e in result.all_events if e.is_failure), "see the run in `make ui`")
            raise click.ClickException(f"drop {key}: {failure}")
        metadata = result.asset_materializations_for_node("raw_documents")[0].metadata
        checks = result.get_asset_check_evaluations()
        rows.append(
            (
                key,
                metadata["input_rows"].value,
                metadata["accepted"].value,
                metadata["quarantined"].value,
                "passed" if all(c.passed for c in checks) else "FAILED",
                metadata["documents"].value,
            )
        )
    click.echo(f"\n{'drop':<24} {'rows':>6} {'accepted':>9} {'quarantined':>12} {'checks':>7}  documents")
    for key, n_input, accepted, quarantined, checks, path in rows:
        click.echo(f"{key:<24} {n_input:>6} {accepted:>9} {quarantined:>12} {checks:>7}  {path}")
    click.echo("\nQuarantined rows sit beside each documents.parquet in quarantine.parquet.")

    dedup = defs.resolve_job_def("dedup_job").execute_in_process(
        instance=instance, run_config=QUIET_RUN, raise_on_error=False
    )
    if not dedup.success:
        raise click.ClickException("dedup_job failed; see the run in `make ui`")
    storage = defs.resources["storage"]
    near = {e["key"]: e for e in Ledger(storage.asset_dir("near_duplicates")).drops}
    click.echo(f"\n{'drop (arrival order)':<24} {'exact dups':>10} {'near dups':>10}")
    for entry in Ledger(storage.asset_dir("exact_duplicates")).drops:
        click.echo(f"{entry['key']:<24} {entry['duplicates']:>10} {near[entry['key']]['duplicates']:>10}")
    embed = defs.resolve_job_def("embed_job")
    embedded = 0
    for key in keys:
        result = embed.execute_in_process(
            instance=instance, partition_key=key, run_config=QUIET_RUN, raise_on_error=False
        )
        if not result.success:
            raise click.ClickException(f"embed_job failed for drop {key}; see the run in `make ui`")
        metadata = result.asset_materializations_for_node("embeddings")[0].metadata
        embedded += metadata["documents"].value
    click.echo(
        f"\nEmbedded {embedded} deduplicated documents with {metadata['model'].value} on {metadata['device'].value}."
    )
    semantic = defs.resolve_job_def("semantic_job").execute_in_process(
        instance=instance, run_config=QUIET_RUN, raise_on_error=False
    )
    if not semantic.success:
        raise click.ClickException("semantic_job failed; see the run in `make ui`")
    clusters = semantic.asset_materializations_for_node("semantic_clusters")[0].metadata
    decided = Ledger(storage.asset_dir("semantic_duplicates")).drops
    marked, total = sum(e["duplicates"] for e in decided), sum(e["documents"] for e in decided)
    click.echo(f"{clusters['k'].value} semantic clusters; SemDeDup marked {marked} of {total} as semantic duplicates.")
    folders = ", ".join(str(storage.asset_dir(name) / "decisions") for name in ("exact_duplicates", "near_duplicates"))
    click.echo(f"\nDuplicate decisions: {folders}")
    click.echo("`make ui` shows the asset graph, the runs and every asset's metadata.")
