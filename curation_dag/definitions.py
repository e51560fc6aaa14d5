"""The curation_dag code location: every asset, check, resource, sensor and job, wired in one place.

Paths come from the environment, with defaults that run the shipped demo from the project folder:
CURATION_DROPS_ROOT (demo_data/drops), CURATION_SOURCES (dbt_like_recipes/sources.yml) and
CURATION_STORAGE_ROOT (.curation).
"""

import os

import dagster as dg

from curation_dag.assets.ingest import raw_documents
from curation_dag.resources import DropsResource, StorageResource
from curation_dag.sensors import new_drops_sensor

curation_job = dg.define_asset_job(
    "curation_job",
    selection=dg.AssetSelection.assets(raw_documents),
    description="Curate one data drop: every per-drop step, from raw shards on.",
)

defs = dg.Definitions(
    assets=[raw_documents],
    jobs=[curation_job],
    sensors=[new_drops_sensor],
    resources={
        "storage": StorageResource(root=os.environ.get("CURATION_STORAGE_ROOT", ".curation")),
        "drops": DropsResource(
            drops_root=os.environ.get("CURATION_DROPS_ROOT", "demo_data/drops"),
            sources_file=os.environ.get("CURATION_SOURCES", "dbt_like_recipes/sources.yml"),
        ),
    },
)
