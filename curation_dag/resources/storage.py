"""Storage: where every asset's Parquet files live, one folder per asset and partition."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from curation_dag.core.atomic import DamagedFile, checked_parquet
from curation_dag.core.takedowns import TakedownLog, log_of


class StorageResource(dg.ConfigurableResource):
    """Pipeline outputs under one root folder: `<root>/<asset>/<partition key>/`."""

    root: str = Field(default=".curation", description="Folder holding every asset's output files.")

    def asset_dir(self, asset: str, partition_key: str | None = None) -> Path:
        folder = Path(self.root) / asset
        return folder / partition_key if partition_key else folder

    def drop_files_record(self, partition_key: str) -> Path:
        """The files of a drop as they were ingested, with their digests (core/drop_files.py)."""
        return self.asset_dir("raw_documents", partition_key) / "files.json"

    def takedown_log(self) -> TakedownLog:
        """The append-only log of takedowns, `<root>/takedowns/log.jsonl`."""
        return log_of(self.root)

    def upstream_file(self, asset: str, partition_key: str, name: str) -> Path:
        """An upstream output file, or a failure saying which asset to materialize for which drop."""
        path = self.asset_dir(asset, partition_key) / name
        if not path.is_file():
            raise dg.Failure(description=f"{path} is missing: materialize {asset} for drop {partition_key} first")
        if path.suffix == ".parquet":
            try:
                checked_parquet(path, f"Materialize {asset} for drop {partition_key} again to rewrite it.")
            except DamagedFile as error:
                raise dg.Failure(description=str(error)) from None
        return path
