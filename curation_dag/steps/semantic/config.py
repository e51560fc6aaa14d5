"""Semantic settings from `dbt_like_recipes/semantic.yml`, a flat file of three parts: the k-means fit,
SemDeDup, and the drift warning. Each asset depends on its part only, so editing SemDeDup's `eps` or
the warning's `drift_share` needs no refit."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from curation_dag.steps.recipes.files import build, read_yaml


class KMeansConfig(BaseModel):
    """What the centroids are fitted with; changing it calls for a refit of every drop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clusters: int | None = Field(
        None, ge=1, description="k; default about sqrt(N) of the fit sample, a common rule of thumb for k-means."
    )
    fit_sample: int = Field(100_000, ge=1, description="Most vectors the centroids are fitted on.")
    iterations: int = Field(20, ge=1, description="k-means iterations (faiss's default is 25; 20 converges here).")
    seed: int = Field(1, ge=0)

    def k_for(self, size: int) -> int:
        return max(1, min(size, self.clusters or round(math.sqrt(size))))


class SemDeDupConfig(BaseModel):
    """Which documents are semantic duplicates; changing it judges every drop again, in the same clusters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eps: float = Field(
        0.05, gt=0, lt=1, description="Duplicates have cosine >= 1 - eps; SemDeDup's experiments span 0.01-0.1."
    )
    keep: Literal["earliest", "closest", "farthest"] = Field(
        "farthest",
        description="Within a duplicate group, keep the earliest document, or the one closest to / farthest from "
        "its centroid (SemDeDup keeps the farthest: the least prototypical).",
    )
    candidate_cosine: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="Where the clusters come from the fast (static) vectors: pairs at this fast cosine (or at "
        "1 - eps, if lower) go to the transformer, whose cosine decides (BENCHMARKS.md measures the recall kept).",
    )
    languages: list[str] = Field(
        ["en"],
        min_length=1,
        description="The languages the embedding model reads (all-MiniLM-L6-v2 was trained on English pairs): "
        "a candidate in another language, by fastText language id, is not judged, and its reason recorded.",
    )


class SemanticConfig(KMeansConfig, SemDeDupConfig):
    """The whole of `semantic.yml`: its k-means and SemDeDup parts, and the drift warning."""

    drift_share: float = Field(
        0.2, gt=0, le=1, description="Warn when more than this share of a drop lies beyond the fit's 95th percentile."
    )

    @property
    def kmeans(self) -> KMeansConfig:
        return KMeansConfig(**self.model_dump(include=set(KMeansConfig.model_fields)))

    @property
    def semdedup(self) -> SemDeDupConfig:
        return SemDeDupConfig(**self.model_dump(include=set(SemDeDupConfig.model_fields)))


def load_semantic_config(path: Path) -> SemanticConfig:
    """Read `semantic.yml`; a missing file means every default."""
    if not Path(path).exists():
        return SemanticConfig()
    return build(SemanticConfig, read_yaml(path, "semantic settings"), path, "semantic settings")
