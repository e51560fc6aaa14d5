"""Dagster-free algorithms: drops, sources, shard reading and ingest."""
