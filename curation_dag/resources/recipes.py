"""Recipes: the `dbt_like_recipes/` folder of YAML (and, later, SQL) files that steer the pipeline."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from curation_dag.steps.dedup.config import DedupConfig, load_dedup_config
from curation_dag.steps.ingest.sources import SourceSpec, load_sources
from curation_dag.steps.semantic.semdedup import SemanticConfig, load_semantic_config


class RecipesResource(dg.ConfigurableResource):
    """Reads the recipe files; each read re-validates them, so an edit takes effect on the next run."""

    folder: str = Field(default="dbt_like_recipes", description="Folder of recipe files.")

    def sources(self) -> dict[str, SourceSpec]:
        return load_sources(Path(self.folder) / "sources.yml")

    def dedup(self) -> DedupConfig:
        return load_dedup_config(Path(self.folder) / "dedup.yml")

    def semantic(self) -> SemanticConfig:
        return load_semantic_config(Path(self.folder) / "semantic.yml")
