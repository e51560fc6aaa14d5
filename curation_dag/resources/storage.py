"""Storage: where every asset's Parquet files live, one folder per asset and partition."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field


class StorageResource(dg.ConfigurableResource):
    """Pipeline outputs under one root folder: `<root>/<asset>/<partition key>/`."""

    root: str = Field(default=".curation", description="Folder holding every asset's output files.")

    def asset_dir(self, asset: str, partition_key: str | None = None) -> Path:
        folder = Path(self.root) / asset
        return folder / partition_key if partition_key else folder
