"""Storage: the pipeline's outputs under one root, laid out by `store/layout.py`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from curation_dag.steps.takedowns.removal import TakedownLog, log_of
from curation_dag.store.atomic import DamagedFile, checked_parquet
from curation_dag.store.layout import Layout


class StorageResource(dg.ConfigurableResource):
    """Pipeline outputs under one root folder: `<root>/<asset>/<partition key>/` (store/layout.py)."""

    root: str = Field(default=".curation", description="Folder holding every asset's output files.")

    @property
    def layout(self) -> Layout:
        return Layout.at(self.root)

    def takedown_log(self) -> TakedownLog:
        """The append-only log of takedowns (store/layout.py names its file)."""
        return log_of(self.root)

    def upstream(self, path: Path, asset: str, partition_key: str | None = None) -> Path:
        """`path`, an output of `asset` (for one drop), once it exists and, for Parquet, reads whole;
        else a failure saying which asset to materialize, for which drop."""
        which = f"{asset} for drop {partition_key}" if partition_key else asset
        if not path.is_file():
            raise dg.Failure(description=f"{path} is missing: materialize {which} first")
        if path.suffix == ".parquet":
            try:
                checked_parquet(path, f"Materialize {which} again to rewrite it.")
            except DamagedFile as error:
                raise dg.Failure(description=str(error)) from None
        return path
