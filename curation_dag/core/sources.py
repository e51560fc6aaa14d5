"""Source declarations: how to read each source's shards, loaded from `dbt_like_recipes/sources.yml`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curation_dag.core.drops import DropNameError, validate_name

# Well above a long book (War and Peace is about 3.2 MB of UTF-8), far below what would strain a
# shard batch in memory. Sources may lower or raise it.
DEFAULT_MAX_TEXT_BYTES = 8 * 1024 * 1024


class RecipeError(ValueError):
    """A recipe file that cannot be used; the message names the file, the place and the fix."""


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

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        try:
            return validate_name(name, "source")
        except DropNameError as error:
            raise ValueError(str(error)) from None


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line where each mapping starts, for error messages."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def load_sources(path: Path) -> dict[str, SourceSpec]:
    """Read and validate a sources file; every problem is reported with the file and line."""
    path = Path(path)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except FileNotFoundError:
        raise RecipeError(f"{path}: sources file not found; create it or point the drops resource at one") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("sources"), list):
        raise RecipeError(f"{path}: expected a top-level 'sources:' list of source declarations")
    specs: dict[str, SourceSpec] = {}
    for entry in document["sources"]:
        if not isinstance(entry, dict):
            raise RecipeError(f"{path}: every item under 'sources:' must be a mapping, got {entry!r}")
        line = entry.pop("__line__")
        try:
            spec = SourceSpec(**entry)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'source'}: {e['msg']}" for e in error.errors())
            raise RecipeError(f"{path}, line {line}: source {entry.get('name', '?')!r}: {problems}") from None
        if spec.name in specs:
            raise RecipeError(f"{path}, line {line}: source {spec.name!r} is declared twice")
        specs[spec.name] = spec
    return specs
