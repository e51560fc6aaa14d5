"""Partitions: one dynamic partition per data drop, keyed `<source>/<drop_id>`, added by the drop sensor."""

import dagster as dg

drops_partitions = dg.DynamicPartitionsDefinition(name="drops")
