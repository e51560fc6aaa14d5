"""Source declarations: how to read each source's shards, loaded from `dbt_like_recipes/sources.yml`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from curation_dag.steps.ingest.drops import DropNameError, validate_name
from curation_dag.steps.recipes.files import RecipeError, build, line_of, read_yaml

# Well above a long book (War and Peace is about 3.2 MB of UTF-8), far below what would strain a
# shard batch in memory. Sources may lower or raise it.
DEFAULT_MAX_TEXT_BYTES = 8 * 1024 * 1024


class SourceSpec(BaseModel):
    """One declared source: where its shards are in a drop and which fields hold what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Folder name under the drops root; also the first part of every doc_id.")
    description: str = ""
    path_pattern: str = Field("*", description="Glob, relative to a drop folder, of the shard files.")
    format: Literal["auto", "jsonl", "parquet"] = Field(
        "auto", description="Shard format; 'auto' goes by extension (.jsonl[.gz|.zst], .parquet)."
    )
    text_field: str = Field("text", description="Field or column holding the document text.")
    id_field: str | None = Field(None, description="Field holding the source's own id; must be unique within a drop.")
    metadata_fields: tuple[str, ...] = Field((), description="Fields kept, as JSON, in `metadata`.")
    max_text_bytes: int = Field(DEFAULT_MAX_TEXT_BYTES, gt=0, description="Larger documents are quarantined.")

    @field_validator("path_pattern")
    @classmethod
    def _inside_the_drop(cls, pattern: str) -> str:
        components = pattern.replace("\\", "/").split("/")
        if all(component in ("", ".") for component in components):  # pathlib's glob fails on these
            raise ValueError(f"path_pattern {pattern!r} names no files: use a glob such as '*.jsonl.gz'")
        if pattern.startswith(("/", "\\")) or ".." in components:
            raise ValueError(
                f"path_pattern {pattern!r} would read outside the drop folder: use a glob relative to it, "
                "without '..' or a leading '/' (e.g. '*.jsonl.gz' or 'shards/*.parquet')"
            )
        return pattern

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        try:
            return validate_name(name, "source")
        except DropNameError as error:
            raise ValueError(str(error)) from None


def load_sources(path: Path) -> dict[str, SourceSpec]:
    """Read and validate a sources file; every problem is reported with the file and line."""
    document = read_yaml(path, "sources file")
    if not isinstance(document.get("sources"), list):
        raise RecipeError(f"{path}: expected a top-level 'sources:' list of source declarations")
    specs: dict[str, SourceSpec] = {}
    for entry in document["sources"]:
        name = entry.get("name", "?") if isinstance(entry, dict) else "?"
        spec = build(SourceSpec, entry, path, f"source {name!r}")
        if spec.name in specs:
            raise RecipeError(f"{path}, line {line_of(entry)}: source {spec.name!r} is declared twice")
        specs[spec.name] = spec
    return specs
