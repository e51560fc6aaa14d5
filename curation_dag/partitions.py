"""Partitions: one dynamic partition per data drop, keyed `<source>/<drop_id>`, added by the drop sensor."""

import dagster as dg

drops_partitions = dg.DynamicPartitionsDefinition(name="drops")


def pending_drops(context: dg.AssetExecutionContext, upstream: dg.AssetKey, done: list[str]) -> list[str]:
    """Drops in arrival order (the order they were registered) whose `upstream` partition is
    materialized and that an incremental asset has not absorbed yet. A drop whose upstream is
    missing is absorbed later, when it is there, as if it arrived then."""
    ready = context.instance.get_materialized_partitions(upstream)
    absorbed = set(done)
    return [
        key
        for key in context.instance.get_dynamic_partitions(drops_partitions.name)
        if key in ready and key not in absorbed
    ]
