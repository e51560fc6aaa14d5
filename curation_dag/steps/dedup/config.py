"""Dedup settings from `dbt_like_recipes/dedup.yml`: MinHash/LSH parameters and expected rates."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from curation_dag.steps.dedup.minhash import MinHashConfig
from curation_dag.steps.recipes.files import build, read_yaml


class RateBand(BaseModel):
    """The duplicate rate a drop is expected to have; outside it, a check warns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float = Field(0.0, ge=0, le=1)
    # A drop more than half of which repeats earlier text is more likely a re-delivery than new
    # data. For scale, ../shared/data's corpora range from 0 to 0.46 (Debian licence files).
    high: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> RateBand:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


class DedupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    minhash: MinHashConfig = MinHashConfig()
    exact_rate: RateBand = RateBand()
    near_rate: RateBand = RateBand()


def load_dedup_config(path: Path) -> DedupConfig:
    """Read `dedup.yml`; a missing file means every default."""
    if not Path(path).exists():
        return DedupConfig()
    return build(DedupConfig, read_yaml(path, "dedup settings"), path, "dedup settings")
