"""Drops: the folder where data drops land and the source declarations that say how to read them."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from curation_dag.resources.recipes import RecipesResource
from curation_dag.steps.ingest.drops import COMPLETE_MARKER, Drop, drop_at, find_complete_drops
from curation_dag.steps.ingest.sources import SourceSpec


class DropsResource(dg.ConfigurableResource):
    """Finds complete drops under `drops_root` for the sources declared in the recipes' sources.yml."""

    drops_root: str = Field(description="Folder holding `<source>/<drop_id>/` drop folders.")
    recipes: RecipesResource

    def sources(self) -> dict[str, SourceSpec]:
        return self.recipes.sources()

    def complete_drops(self) -> tuple[list[Drop], list[str]]:
        """Complete drops in arrival order, and a message for each folder refused for its name."""
        return find_complete_drops(Path(self.drops_root), set(self.sources()))

    def resolve(self, partition_key: str) -> tuple[Drop, SourceSpec]:
        """The drop and source spec of a partition; raises ValueError saying what to fix."""
        drop = drop_at(Path(self.drops_root), partition_key)
        sources = self.sources()
        if drop.source not in sources:
            raise ValueError(
                f"drop {partition_key}: source {drop.source!r} is not declared in {self.recipes.folder}/sources.yml; "
                f"declared: {sorted(sources)}"
            )
        if not drop.path.resolve().is_relative_to(Path(self.drops_root).resolve()):
            raise ValueError(
                f"drop {partition_key}: {drop.path} links outside the drops root; copy the drop in instead"
            )
        if not (drop.path / COMPLETE_MARKER).is_file():
            raise ValueError(
                f"drop {partition_key}: {drop.path} has no {COMPLETE_MARKER} marker (missing or incomplete)"
            )
        return drop, sources[drop.source]
