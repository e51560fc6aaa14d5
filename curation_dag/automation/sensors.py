"""The sensors: the drop sensor registers each complete data drop as a partition, once, and requests its
per-drop steps, and warns of a registered drop whose files changed since ingest (drops are immutable:
steps/ingest/drop_files.py); the automation sensor evaluates every asset's automation condition (conditions.py)."""

import dagster as dg

from curation_dag.automation.conditions import SENSOR_STATUS
from curation_dag.partitions import drops_partitions
from curation_dag.resources import DropsResource, StorageResource
from curation_dag.steps.ingest import drop_files
from curation_dag.store.layout import MINHASH_SIGNATURES, QUALITY_SIGNALS, RAW_DOCUMENTS


@dg.sensor(
    name="new_drops",
    description="Adds each complete drop (folder with a _SUCCESS marker) as a `drops` partition and curates it.",
    asset_selection=[RAW_DOCUMENTS, MINHASH_SIGNATURES, QUALITY_SIGNALS],
    minimum_interval_seconds=30,
    default_status=SENSOR_STATUS,
)
def new_drops_sensor(
    context: dg.SensorEvaluationContext, drops: DropsResource, storage: StorageResource
) -> dg.SensorResult | dg.SkipReason:
    known = set(context.instance.get_dynamic_partitions(drops_partitions.name))
    complete, refused = drops.complete_drops()
    for message in refused:
        context.log.warning(message)
    changed = 0
    for drop in complete:
        recorded = drop_files.load(storage.layout.drop_files(drop.key)) if drop.key in known else None
        if recorded is not None and (lines := drop_files.content_changes(drop.path, recorded)):
            changed += 1
            context.log.warning(drop_files.refusal(drop.key, drop.path, lines))
    new = [drop.key for drop in complete if drop.key not in known]
    if not new:
        notes = [f"{len(refused)} folder(s) refused for their names"] if refused else []
        notes += [f"{changed} ingested drop(s) changed since ingest and will be refused"] if changed else []
        note = f"; {', '.join(notes)}, see the log" if notes else ""
        return dg.SkipReason(f"no new complete drops under {drops.drops_root}{note}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=key, partition_key=key) for key in new],
        dynamic_partitions_requests=[drops_partitions.build_add_request(new)],
    )


# Every 30 s: new data and edited recipes re-materialize what they change; runs per partition, not backfills.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "curation_automation",
    target=dg.AssetSelection.all(),
    default_status=SENSOR_STATUS,
    emit_backfills=False,
    description="Re-materializes what new data or an edited recipe changes (curation_dag/automation/conditions.py).",
)
