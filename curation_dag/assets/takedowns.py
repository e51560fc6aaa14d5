"""Takedowns: documents removed on request, purged from the stored texts and kept out of every mixture."""

import dagster as dg
from pydantic import Field

from curation_dag.resources import StorageResource
from curation_dag.steps.recipes.sandbox import DUCKDB_POOL
from curation_dag.steps.takedowns import removal as core
from curation_dag.store.layout import RAW_DOCUMENTS


class TakedownRequest(dg.Config):
    """What to take down (any mix of the three), why and for whom."""

    doc_ids: list[str] = Field(default_factory=list, description="Documents, as <source>/<drop_id>/<shard>#<row>.")
    content_hashes: list[str] = Field(
        default_factory=list, description="Texts (SHA-256 of the stored text): every copy, now and in later drops."
    )
    drops: list[str] = Field(default_factory=list, description="Whole drops, as <source>/<drop_id>.")
    reason: str = Field("", description="Why, for the log: a licence, a privacy request, a corrected drop.")
    requested_by: str = Field("", description="Who asked, for the log.")


# In the recipes' pool: a purge never runs beside a model or mixture build that reads the same files.
@dg.asset(group_name="takedowns", kinds={"json"}, code_version="1", pool=DUCKDB_POOL)
def takedowns(
    context: dg.AssetExecutionContext, config: TakedownRequest, storage: StorageResource
) -> dg.MaterializeResult:
    """The append-only takedown log: one request per materialization, its texts purged from every output."""
    log = storage.takedown_log()
    if not (config.doc_ids or config.content_hashes or config.drops):  # e.g. "materialize all" in the UI
        context.log.info("no takedown requested: the log is unchanged")
        return dg.MaterializeResult(
            metadata={"takedowns_so_far": len(log.entries())}, data_version=dg.DataVersion(log.digest())
        )
    if not (config.reason.strip() and config.requested_by.strip()):
        raise dg.Failure(description="a takedown needs a reason and who requested it (reason, requested_by)")
    try:
        documents = storage.layout.per_drop_files(RAW_DOCUMENTS)
        selected = core.select(documents, config.doc_ids, config.content_hashes, config.drops)
    except core.TakedownError as error:
        raise dg.Failure(description=str(error)) from None
    asked = {"doc_ids": config.doc_ids, "content_hashes": config.content_hashes, "drops": config.drops}
    entry = log.append(config.requested_by, config.reason, asked, selected)
    detail = f"takedown {entry['takedown']} by {config.requested_by}: {config.reason}"
    purged = core.purge(storage.layout, selected, log.removed(), detail)
    context.log.info(f"{detail}: {selected.height} documents taken down, texts purged from {len(purged)} files")
    return dg.MaterializeResult(
        metadata={
            "takedown": entry["takedown"],
            "documents": selected.height,
            "requested_by": config.requested_by,
            "reason": config.reason,
            "purged_files": dg.MetadataValue.json(purged),
            "log": dg.MetadataValue.path(str(log.path)),
            "takedowns_so_far": len(log.entries()),
        },
        data_version=dg.DataVersion(log.digest()),
    )
