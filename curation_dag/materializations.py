"""What the Dagster instance recorded of assets' materializations, for a mixture's run record and
the audit's `explain`."""

import dagster as dg


def latest_versions(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: list[str] | None = None, limit: int = 10_000
) -> dict[str, dict]:
    """The code version, data version and run of the latest materialization of each partition of an
    asset ("" for an unpartitioned asset), among its `limit` newest, of `partitions` only if given."""
    latest = {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=limit
    ).records
    for record in records:  # newest first
        event = record.event_log_entry
        materialization = event.asset_materialization
        partition = materialization.partition or ""
        if partition not in latest:
            latest[partition] = {
                "code_version": materialization.tags.get("dagster/code_version"),
                "data_version": materialization.tags.get("dagster/data_version"),
                "run_id": event.run_id,
            }
    return latest
