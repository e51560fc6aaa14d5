"""Ingest: each data drop read into normalized documents, bad rows quarantined with a reason."""

from pathlib import Path

import dagster as dg
import polars as pl

from curation_dag.checks.raw_documents import (
    RAW_DOCUMENTS_SUITE,
    accounting_spec,
    check_accounting,
    check_expectations,
)
from curation_dag.metadata import file_digest, markdown_table
from curation_dag.partitions import drops_partitions
from curation_dag.resources import DropsResource, StorageResource
from curation_dag.steps.ingest import drop_files
from curation_dag.steps.ingest.documents import IngestReport, NothingReadable, ingest_drop
from curation_dag.steps.ingest.drops import DropNameError
from curation_dag.steps.ingest.reasons import Reason
from curation_dag.steps.recipes.files import RecipeError
from curation_dag.steps.takedowns import removal as takedowns
from curation_dag.store.files import scan_parquet
from curation_dag.store.layout import RAW_DOCUMENTS

PREVIEW_ROWS = 5


@dg.asset(
    partitions_def=drops_partitions,
    group_name="ingest",
    kinds={"parquet", "polars"},
    code_version="1",
    check_specs=[accounting_spec(RAW_DOCUMENTS), RAW_DOCUMENTS_SUITE.check_spec(RAW_DOCUMENTS)],
)
def raw_documents(
    context: dg.AssetExecutionContext, storage: StorageResource, drops: DropsResource
) -> dg.MaterializeResult:
    """Documents of one data drop in one schema, with stable ids; unreadable rows quarantined with a reason."""
    key, layout = context.partition_key, storage.layout
    try:
        drop, spec = drops.resolve(key)
    except (DropNameError, RecipeError, ValueError) as error:
        raise dg.Failure(description=str(error)) from None
    documents, quarantine, record = layout.documents(key), layout.quarantine(key), layout.drop_files(key)
    files, recorded = drop_files.snapshot(drop.path), drop_files.load(record)
    if recorded is not None and (changed := drop_files.changes(recorded, files)):
        raise dg.Failure(
            description=drop_files.refusal(drop.key, drop.path, changed),
            metadata={"changed_files": dg.MetadataValue.json(changed)},
        )
    try:
        report = ingest_drop(drop, spec, documents, quarantine)
    except NothingReadable as error:
        raise dg.Failure(
            description=str(error), metadata={"quarantine": dg.MetadataValue.path(str(quarantine))}
        ) from None
    drop_files.save(files, record)
    report = _without_taken_down(report, storage, documents, quarantine)
    return dg.MaterializeResult(
        metadata=_metadata(drop.source, report, documents, quarantine),
        data_version=dg.DataVersion(file_digest(documents, quarantine)),
        check_results=[
            check_accounting(RAW_DOCUMENTS, report.input_rows, documents, quarantine),
            check_expectations(RAW_DOCUMENTS, documents),
        ],
    )


def _without_taken_down(report: IngestReport, storage: StorageResource, documents: Path, quarantine: Path):
    """Documents taken down earlier stay out when their drop is ingested again (steps/takedowns/removal.py)."""
    log = storage.takedown_log()
    purged = takedowns.purge_documents(documents, quarantine, log.removed(), f"taken down earlier, see {log.path}")
    report.accepted -= purged
    report.quarantined_by_reason.update({takedowns.REASON: purged} if purged else {})
    return report


def _metadata(source: str, report: IngestReport, documents: Path, quarantine: Path) -> dict:
    by_reason = [
        {"reason": reason, "rows": count, "meaning": _meaning(reason)}
        for reason, count in report.quarantined_by_reason.most_common()
    ]
    return {
        "source": source,
        "input_rows": report.input_rows,
        "accepted": report.accepted,
        "quarantined": report.quarantined,
        "quarantined_by_reason": dg.MetadataValue.json(by_reason),
        "shards": report.shards,
        "ignored_files": dg.MetadataValue.json(report.ignored_files),
        "input_bytes": report.input_bytes,
        "text_bytes": report.text_bytes,
        "documents": dg.MetadataValue.path(str(documents)),
        "quarantine": dg.MetadataValue.path(str(quarantine)),
        "preview": dg.MetadataValue.md(_preview(documents)),
    }


def _meaning(reason: str) -> str:
    """What a quarantine reason means: ingest's (steps/ingest/reasons.py) or a takedown's."""
    return takedowns.MEANING[reason] if reason in takedowns.MEANING else Reason(reason).meaning


def _preview(documents: Path) -> str:
    head = scan_parquet(documents).head(PREVIEW_ROWS).select("doc_id", "n_chars", "text").collect()
    return markdown_table(head.with_columns(pl.col("text").str.slice(0, 80)))
