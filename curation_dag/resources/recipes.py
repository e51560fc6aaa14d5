"""Recipes: the `dbt_like_recipes/` folder of YAML (and, later, SQL) files that steer the pipeline."""

import hashlib
import json
from pathlib import Path

import dagster as dg
from pydantic import BaseModel, Field

from curation_dag.steps.dedup.config import DedupConfig, load_dedup_config
from curation_dag.steps.ingest.sources import SourceSpec, load_sources
from curation_dag.steps.quality.config import QualityConfig, load_quality_config
from curation_dag.steps.semantic.config import SemanticConfig, load_semantic_config
from curation_dag.store.layout import (
    MINHASH_SIGNATURES,
    NEAR_DUPLICATES,
    QUALITY_SCORES,
    QUALITY_SIGNALS,
    RAW_DOCUMENTS,
    SEMANTIC_CLUSTERS,
    SEMANTIC_DUPLICATES,
)


def config_digest(*configs: BaseModel) -> str:
    """A short digest of settings, the same for the same values in any run: their JSON, keys sorted."""
    text = json.dumps([config.model_dump(mode="json") for config in configs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class RecipesResource(dg.ConfigurableResource):
    """Reads the recipe files; each read re-validates them, so an edit takes effect on the next run."""

    folder: str = Field(default="dbt_like_recipes", description="Folder of recipe files.")

    def sources(self) -> dict[str, SourceSpec]:
        return load_sources(Path(self.folder) / "sources.yml")

    def dedup(self) -> DedupConfig:
        return load_dedup_config(Path(self.folder) / "dedup.yml")

    def semantic(self) -> SemanticConfig:
        return load_semantic_config(Path(self.folder) / "semantic.yml")

    def quality(self) -> QualityConfig:
        return load_quality_config(Path(self.folder) / "quality.yml")

    def code_versions(self) -> dict[str, str]:
        """The code version of each asset that recipe settings steer: a digest of exactly the settings its
        output depends on, so an edit makes that asset and its downstream stale. Check thresholds (the
        dedup rate bands, the drift warning) change no output and no version; assets not named keep "1"."""
        sources, minhash, semantic, quality = self.sources(), self.dedup().minhash, self.semantic(), self.quality()
        return {
            RAW_DOCUMENTS: config_digest(*(sources[name] for name in sorted(sources))),
            MINHASH_SIGNATURES: config_digest(minhash),
            NEAR_DUPLICATES: config_digest(minhash),
            SEMANTIC_CLUSTERS: config_digest(semantic.kmeans),
            SEMANTIC_DUPLICATES: config_digest(semantic.semdedup),
            QUALITY_SIGNALS: config_digest(quality),
            QUALITY_SCORES: config_digest(quality),
        }
