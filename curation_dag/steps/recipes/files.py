"""Reading recipe YAML files so that every problem names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)
_LINE = "__line__"


class RecipeError(ValueError):
    """A recipe file that cannot be used; the message names the file, the place and the fix."""


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line where each mapping starts."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def read_yaml(path: Path, what: str) -> dict:
    """The top-level mapping of a YAML file; each mapping in it records its line under `__line__`."""
    try:
        document = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LineLoader)
    except FileNotFoundError:
        raise RecipeError(f"{path}: {what} not found; create it or point the recipes folder at one") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise RecipeError(f"{path}: expected a mapping at the top of the {what}")
    return document


def line_of(mapping: Any) -> int | None:
    return mapping.get(_LINE) if isinstance(mapping, dict) else None


def without_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_lines(v) for k, v in value.items() if k != _LINE}
    if isinstance(value, list):
        return [without_lines(v) for v in value]
    return value


def build(model: type[Model], mapping: Any, path: Path, where: str) -> Model:
    """Validate `mapping` as `model`, or raise RecipeError naming the file, line, place and fields."""
    place = f"{path}, line {line_of(mapping)}" if line_of(mapping) else str(path)
    if not isinstance(mapping, dict):
        raise RecipeError(f"{place}: {where} must be a mapping, got {mapping!r}")
    try:
        return model(**without_lines(mapping))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or where}: {e['msg']}" for e in error.errors())
        raise RecipeError(f"{place}: {where}: {problems}") from None
