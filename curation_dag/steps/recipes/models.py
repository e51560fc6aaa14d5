"""SQL recipe models: a small dbt-like compiler that turns `<recipes>/models/*.sql` (Jinja with
`{{ ref('model') }}` and `{{ source('pipeline_asset') }}`) and the schema files beside them into
models DuckDB runs over the pipeline's Parquet outputs, with dbt's column tests as SQL.

`ref('x')` renders as the identifier `"x"` and `source('y')` as `"y"`: at run time each becomes a
view over Parquet files, so the rendered SQL never names a machine's paths and its hash is stable
across machines and drops. A model's code version hashes its rendered SQL, its tests' definitions
and the code versions of the models it refs; editing a model or one of its tests therefore changes
its version and that of every model downstream of it, and nothing else.
"""

from __future__ import annotations

import graphlib
import hashlib
import heapq
import json
import os
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import polars as pl
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from pydantic import BaseModel, ConfigDict, Field

from curation_dag.steps.recipes.files import RecipeError, build, line_of, read_yaml
from curation_dag.steps.recipes.sandbox import Table, identifier, literal, one_select, sandboxed
from curation_dag.steps.takedowns import removal as takedowns
from curation_dag.store import layout
from curation_dag.store.atomic import atomic_path, checked_parquet
from curation_dag.store.layout import Layout
from curation_dag.store.ledger import Ledger

# What source() may read: per-drop assets by their file in each drop's folder, and the incremental
# assets by the decision files their ledger has committed.
PIPELINE_SOURCES = (
    layout.RAW_DOCUMENTS,
    layout.QUALITY_SIGNALS,
    layout.EXACT_DUPLICATES,
    layout.NEAR_DUPLICATES,
    layout.SEMANTIC_CLUSTERS,
    layout.SEMANTIC_DUPLICATES,
    layout.QUALITY_SCORES,
)
# Pipeline assets that are not sources (signatures and vectors are no SQL material) but whose names are taken.
OTHER_PIPELINE_ASSETS = (layout.MINHASH_SIGNATURES, layout.EMBEDDINGS)
TEST_KINDS = ("unique", "not_null", "accepted_values", "relationships", "expression")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TARGET = re.compile(r"""^\s*(ref|source)\(\s*['"]([^'"]+)['"]\s*\)\s*$""")


class SourceNotReady(RuntimeError):
    """A source() or ref() whose files do not exist yet: its asset must be materialized first."""


@dataclass(frozen=True)
class ModelTest:
    """One column or model test; `query` returns the violating rows of table `tested`
    (and reads table `referenced`, the relationship's target, for relationships)."""

    name: str
    kind: str
    column: str | None
    arguments: dict[str, Any]
    query: str
    target: tuple[str, str] | None = None  # ("ref" | "source", name) for relationships

    def describe(self) -> str:
        on = f"{self.column}: " if self.column else ""
        if self.kind == "accepted_values":
            return f"{on}every non-null value is one of {', '.join(map(str, self.arguments['values']))}."
        if self.kind == "relationships":
            return f"{on}every non-null value appears in {self.arguments['to']}.{self.arguments['field']}."
        if self.kind == "expression":
            return f"Every row satisfies {self.arguments['expression']}."
        return f"{on}{'no value appears twice' if self.kind == 'unique' else 'no value is null'}."


@dataclass(frozen=True)
class RecipeModel:
    """A compiled model: its rendered SQL, lineage (refs and sources, from the SQL and its tests) and tests."""

    name: str
    path: Path
    sql: str
    refs: tuple[str, ...]
    sources: tuple[str, ...]
    tests: tuple[ModelTest, ...]
    description: str | None
    column_descriptions: dict[str, str]
    code_version: str


@dataclass(frozen=True)
class CheckQuery:
    """A test ready to run: its check name, its SQL and the Parquet files of its tables."""

    name: str
    sql: str
    tables: dict[str, Table]


class _ColumnSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = None
    tests: list[Any] = Field(default_factory=list)
    data_tests: list[Any] = Field(default_factory=list)  # dbt >= 1.8 spelling


class _ModelSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = None
    columns: list[dict] = Field(default_factory=list)
    tests: list[Any] = Field(default_factory=list)
    data_tests: list[Any] = Field(default_factory=list)


class _SchemaFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = None  # dbt's `version: 2`, accepted and ignored
    models: list[dict] = Field(default_factory=list)


def source_files(storage_root: str | Path, asset: str) -> list[str] | pl.DataFrame:
    """The Parquet files of a pipeline source: committed decision files only for the incremental
    assets (an uncommitted leftover of a crashed absorb is never read), every drop's file otherwise.
    Once documents were taken down, the source's rows as they now stand instead (steps/takedowns/removal.py)."""
    if asset not in PIPELINE_SOURCES:
        raise RecipeError(f"source('{asset}'): not a pipeline source; sources are {', '.join(PIPELINE_SOURCES)}")
    stored = Layout.at(storage_root)
    if asset in layout.PER_DROP_FILE:
        recovery = f"Materialize {asset} for that drop again to rewrite it."
        files = sorted(str(checked_parquet(path, recovery)) for path in stored.per_drop_files(asset))
    else:
        files = [str(path) for path in Ledger(stored.asset(asset)).decision_files()]
    if not files:
        raise SourceNotReady(f"source('{asset}') has no data yet: materialize {asset} first")
    return takedowns.view(storage_root, asset, files)


def load_models(folder: str | Path) -> dict[str, RecipeModel]:
    """Compile every model of `<folder>/models`, or raise RecipeError naming the file, line and problem."""
    models_dir = Path(folder) / "models"
    paths = {path.stem: path for path in sorted(models_dir.glob("*.sql"))}
    for name, path in paths.items():
        if not _NAME.match(name):
            raise RecipeError(f"{path}: a model name must be letters, digits and _ (not starting with a digit)")
        if name in PIPELINE_SOURCES or name in OTHER_PIPELINE_ASSETS:
            raise RecipeError(f"{path}: {name} is the name of a pipeline asset; rename the model")
    schemas = _read_schemas(models_dir, paths)
    environment = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(models_dir), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    compiled = {name: _render(environment, path, set(paths)) for name, path in paths.items()}
    tests = {name: _parse_tests(name, schemas.get(name), set(paths)) for name in paths}

    upstream: dict[str, dict[str, tuple[Path, int | None]]] = {}
    for name, path in paths.items():
        sql, refs, _, lines = compiled[name]
        upstream[name] = {ref: (path, lines.get(("ref", ref))) for ref in refs}
        schema_path, _ = schemas.get(name, (None, None))
        for test, line in tests[name]:
            if test.target and test.target[0] == "ref" and test.target[1] != name:
                upstream[name].setdefault(test.target[1], (schema_path, line))
    _refuse_cycles(upstream)

    models: dict[str, RecipeModel] = {}
    for name in model_order(upstream):
        sql, _, sql_sources, _ = compiled[name]
        model_tests = tuple(test for test, _ in tests[name])
        test_sources = {test.target[1] for test in model_tests if test.target and test.target[0] == "source"}
        refs = tuple(sorted(upstream[name]))
        definition = {
            "sql": sql,
            "tests": [[t.name, t.kind, t.column, t.arguments] for t in model_tests],
            "refs": {ref: models[ref].code_version for ref in refs},
        }
        schema = schemas.get(name, (None, {}))[1] or {}
        models[name] = RecipeModel(
            name=name,
            path=paths[name],
            sql=sql,
            refs=refs,
            sources=tuple(sorted(set(sql_sources) | test_sources)),
            tests=model_tests,
            description=schema.get("description") or _leading_comment(paths[name]),
            column_descriptions={
                column["name"]: column["description"]
                for column in schema.get("columns", [])
                if column.get("description")
            },
            code_version=hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest()[:16],
        )
    return models


def model_order(models: dict[str, Any]) -> list[str]:
    """Names in dependency order, alphabetical among the ready; `models` maps a name to its RecipeModel
    or to the names it refs."""
    sorter = graphlib.TopologicalSorter(
        {name: set(getattr(model, "refs", model)) & set(models) for name, model in models.items()}
    )
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        raise RecipeError(f"models {', '.join(sorted(set(error.args[1])))} depend on each other in a cycle") from None
    ready = list(sorter.get_ready())
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        sorter.done(name)
        for other in sorter.get_ready():
            heapq.heappush(ready, other)
    return order


def run_model(model: RecipeModel, storage_root: str | Path) -> Path:
    """Run the model's SQL in a fresh in-memory DuckDB and write its output (`Layout.recipe_model`)
    atomically. Rows come out in the order of the model's ORDER BY."""
    output = Layout.at(storage_root).recipe_model(model.name)
    with atomic_path(output) as temporary, sandboxed(_input_tables(model, storage_root), [temporary]) as connection:
        try:
            connection.sql(model.sql).write_parquet(str(temporary), compression="zstd")
        except duckdb.Error as error:
            raise RecipeError(f"{model.path}: DuckDB could not run the model: {error}") from None
    return output


def check_queries(model: RecipeModel, storage_root: str | Path) -> list[CheckQuery]:
    """Each test of the model as SQL over its materialized output (`tested`) and, for relationships,
    the target's files (`referenced`); a query returns the violating rows."""
    queries = []
    for test in model.tests:
        tables: dict[str, Table] = {"tested": str(Layout.at(storage_root).recipe_model(model.name))}
        if test.target:
            kind, name = test.target
            tables["referenced"] = (
                source_files(storage_root, name) if kind == "source" else _ref_file(storage_root, name)
            )
        queries.append(CheckQuery(test.name, test.query, tables))
    return queries


def _input_tables(model: RecipeModel, storage_root: str | Path) -> dict[str, Table]:
    tables: dict[str, Table] = {name: source_files(storage_root, name) for name in model.sources}
    tables.update({name: _ref_file(storage_root, name) for name in model.refs})
    return tables


def _ref_file(storage_root: str | Path, name: str) -> str:
    path = Layout.at(storage_root).recipe_model(name)
    if not path.is_file():
        raise SourceNotReady(f"ref('{name}'): {path} is missing: materialize {name} first")
    return str(checked_parquet(path, f"Materialize {name} again to rewrite it."))


def _read_schemas(models_dir: Path, paths: dict[str, Path]) -> dict[str, tuple[Path, dict]]:
    """Schema entries by model name, each with its file; mappings keep their `__line__`."""
    schemas: dict[str, tuple[Path, dict]] = {}
    for schema_path in sorted([*models_dir.glob("*.yml"), *models_dir.glob("*.yaml")]):
        document = read_yaml(schema_path, "schema file")
        build(_SchemaFile, document, schema_path, "schema file")
        for index, entry in enumerate(document.get("models") or []):
            place = f"{schema_path}, line {line_of(entry)}" if line_of(entry) else str(schema_path)
            model = build(_ModelSchema, entry, schema_path, f"models[{index}]")
            if model.name not in paths:
                known = ", ".join(paths) or "none"
                raise RecipeError(
                    f"{place}: model {model.name!r} has no {model.name}.sql in {models_dir}; "
                    f"create it or fix the name (models: {known})"
                )
            if model.name in schemas:
                raise RecipeError(
                    f"{place}: model {model.name!r} is described twice (also in {schemas[model.name][0]})"
                )
            for column_index, column in enumerate(entry.get("columns") or []):
                build(_ColumnSchema, column, schema_path, f"models[{index}].columns[{column_index}]")
            schemas[model.name] = (schema_path, entry)
    return schemas


def _render(
    environment: SandboxedEnvironment, path: Path, known_models: set[str]
) -> tuple[str, list[str], list[str], dict[tuple[str, str], int]]:
    """The rendered SQL, the refs and sources it calls (in call order) and the line of each call."""
    refs: list[str] = []
    sources: list[str] = []

    def ref(*names: Any) -> str:
        name = _single_name("ref", "ref('model')", names)
        if name not in known_models:
            raise _CallError(f"ref('{name}'): no model {name}; models are {', '.join(sorted(known_models))}")
        if name == path.stem:
            raise _CallError(f"ref('{name}'): a model cannot ref itself")
        refs.append(name)
        return identifier(name)

    def source(*names: Any) -> str:
        name = _single_name("source", "source('quality_scores')", names)
        if name not in PIPELINE_SOURCES:
            raise _CallError(f"source('{name}'): not a pipeline source; sources are {', '.join(PIPELINE_SOURCES)}")
        sources.append(name)
        return identifier(name)

    try:
        template = environment.get_template(path.name)
        sql = template.render(ref=ref, source=source)
    except jinja2.TemplateSyntaxError as error:
        raise RecipeError(f"{path}, line {error.lineno}: Jinja syntax error: {error.message}") from None
    except (_CallError, jinja2.UndefinedError, SecurityError, TypeError) as error:
        problem = str(error)
        if isinstance(error, jinja2.UndefinedError):
            problem += "; a model may call ref('model') and source('pipeline_asset')"
        raise RecipeError(f"{_place(path, error)}: {problem}") from None
    _check_sql(path, sql)
    lines: dict[tuple[str, str], int] = {}
    for call in environment.parse(path.read_text(encoding="utf-8")).find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.args and isinstance(call.args[0], nodes.Const):
            lines.setdefault((call.node.name, str(call.args[0].value)), call.lineno)
    return sql, list(dict.fromkeys(refs)), list(dict.fromkeys(sources)), lines


class _CallError(Exception):
    """A bad ref() or source() call inside a template; re-raised with the template's line."""


def _single_name(function: str, example: str, names: tuple) -> str:
    if len(names) != 1 or not isinstance(names[0], str):
        raise _CallError(f"{function}() takes one name in quotes, e.g. {example}")
    return names[0]


def _place(path: Path, error: BaseException) -> str:
    """`file, line N` of the template line an error was raised on (Jinja rewrites tracebacks to them)."""
    frames = traceback.extract_tb(error.__traceback__)
    lines = [frame.lineno for frame in frames if os.path.normpath(frame.filename) == os.path.normpath(path)]
    return f"{path}, line {lines[-1]}" if lines else str(path)


def _check_sql(path: Path, sql: str) -> None:
    """Parse (not run) the rendered SQL: exactly one SELECT, so syntax errors fail before any work."""
    problem = one_select(sql)
    if problem:
        raise RecipeError(f"{path}: the rendered SQL {problem}")


def _parse_tests(
    model: str, schema: tuple[Path, dict] | None, known_models: set[str]
) -> list[tuple[ModelTest, int | None]]:
    """The model's tests from its schema entry, each with its schema line, under stable unique check names."""
    if schema is None:
        return []
    path, entry = schema
    declared: list[tuple[str | None, Any, int | None]] = []
    for column in entry.get("columns") or []:
        for spec in [*(column.get("tests") or []), *(column.get("data_tests") or [])]:
            declared.append((column["name"], spec, line_of(spec) or line_of(column)))
    for spec in [*(entry.get("tests") or []), *(entry.get("data_tests") or [])]:
        declared.append((None, spec, line_of(spec) or line_of(entry)))
    tests: list[tuple[ModelTest, int | None]] = []
    taken: set[str] = set()
    expressions = 0
    for column, spec, line in declared:
        place = f"{path}, line {line}" if line else str(path)
        kind, arguments = _test_spec(spec, place)
        if kind == "expression" and column is None:
            expressions += 1
            base = f"expression_{expressions}"
        elif column is None:
            raise RecipeError(f"{place}: the {kind} test of model {model} needs a column; list it under `columns`")
        else:
            base = f"{re.sub(r'[^A-Za-z0-9_]', '_', column)}_{kind}"
        name, suffix = base, 1
        while name in taken:
            suffix += 1
            name = f"{base}_{suffix}"
        taken.add(name)
        target = _test_target(kind, arguments, place, model, known_models)
        query = _test_query(kind, column, arguments)
        problem = one_select(query)
        if problem:
            raise RecipeError(f"{place}: the {name} test of model {model} {problem}")
        tests.append((ModelTest(name, kind, column, arguments, query, target), line))
    return tests


def _test_spec(spec: Any, place: str) -> tuple[str, dict[str, Any]]:
    """(kind, arguments) of `unique`, `{accepted_values: {values: [...]}}`, `{expression: "..."}` and so on."""
    if isinstance(spec, str):
        kind, value = spec, None
    elif isinstance(spec, dict) and len([key for key in spec if key != "__line__"]) == 1:
        kind, value = next((key, value) for key, value in spec.items() if key != "__line__")
    else:
        raise RecipeError(f"{place}: a test is a name (unique) or a mapping with one key ({{accepted_values: ...}})")
    if kind not in TEST_KINDS:
        raise RecipeError(f"{place}: unknown test {kind!r}; tests are {', '.join(TEST_KINDS)}")
    if isinstance(value, dict):
        value = {key: item for key, item in value.items() if key != "__line__"}
    if kind in ("unique", "not_null"):
        if value not in (None, {}):
            raise RecipeError(f"{place}: the {kind} test takes no arguments")
        return kind, {}
    if kind == "expression":
        if not isinstance(value, str) or not value.strip():
            raise RecipeError(f'{place}: the expression test needs a SQL condition, e.g. expression: "chars > 0"')
        return kind, {"expression": value.strip()}
    needed = {"accepted_values": ("values",), "relationships": ("to", "field")}[kind]
    if not isinstance(value, dict) or any(key not in value for key in needed):
        example = "{values: [a, b]}" if kind == "accepted_values" else "{to: \"ref('model')\", field: column}"
        raise RecipeError(f"{place}: the {kind} test needs {' and '.join(needed)}, e.g. {kind}: {example}")
    if set(value) - set(needed):
        raise RecipeError(
            f"{place}: the {kind} test has unknown arguments {', '.join(sorted(set(value) - set(needed)))}"
        )
    if kind == "relationships" and not isinstance(value["field"], str):
        raise RecipeError(f"{place}: relationships `field` must be a column name")
    if kind == "accepted_values":
        values = value["values"]
        if not isinstance(values, list) or not values or any(not isinstance(v, str | int | float) for v in values):
            raise RecipeError(f"{place}: accepted_values needs a non-empty list of values (strings or numbers)")
    return kind, value


def _test_target(kind: str, arguments: dict, place: str, model: str, known_models: set[str]) -> tuple[str, str] | None:
    if kind != "relationships":
        return None
    match = _TARGET.match(str(arguments["to"]))
    if not match:
        raise RecipeError(f"{place}: relationships `to` must be ref('model') or source('pipeline_asset')")
    function, name = match.groups()
    if function == "ref" and name not in known_models:
        raise RecipeError(f"{place}: ref('{name}'): no model {name}; models are {', '.join(sorted(known_models))}")
    if function == "source" and name not in PIPELINE_SOURCES:
        raise RecipeError(
            f"{place}: source('{name}'): not a pipeline source; sources are {', '.join(PIPELINE_SOURCES)}"
        )
    return function, name


def _test_query(kind: str, column: str | None, arguments: dict) -> str:
    """SQL returning the violations; like dbt, unique, accepted_values and relationships ignore nulls."""
    if kind == "expression":
        return f"SELECT * FROM tested WHERE ({arguments['expression']}) IS NOT TRUE"
    value = identifier(column)
    if kind == "not_null":
        return f"SELECT * FROM tested WHERE {value} IS NULL"
    if kind == "unique":
        condition, having = "", "HAVING count(*) > 1"
    elif kind == "accepted_values":
        condition, having = f"AND {value} NOT IN ({', '.join(literal(v) for v in arguments['values'])})", ""
    else:
        field = identifier(arguments["field"])
        condition = f"AND {value} NOT IN (SELECT {field} FROM referenced WHERE {field} IS NOT NULL)"
        having = ""
    return (
        f"SELECT {value} AS value, count(*) AS occurrences FROM tested WHERE {value} IS NOT NULL {condition} "
        f"GROUP BY {value} {having} ORDER BY occurrences DESC, value"
    )


def _refuse_cycles(upstream: dict[str, dict[str, tuple[Path | None, int | None]]]) -> None:
    """Raise on a cycle, naming its path and where it closes. Each model is added, in name order,
    as coming before its refs (in name order), so graphlib reports the cycle met first visiting
    models and their refs in name order, each model of it ref'ing the next."""
    sorter = graphlib.TopologicalSorter()
    for name in sorted(upstream):
        sorter.add(name)
    for name in sorted(upstream):
        for dependency in sorted(upstream[name]):
            sorter.add(dependency, name)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        cycle = error.args[1]
        file, line = upstream[cycle[-2]][cycle[-1]]
        place = f"{file}, line {line}" if line else str(file)
        raise RecipeError(
            f"{place}: ref('{cycle[-1]}') closes a cycle: {' -> '.join(cycle)}; "
            "a model cannot depend on itself, directly or through others"
        ) from None


def _leading_comment(path: Path) -> str | None:
    """The `--` comment lines a model file opens with, as one line of text."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip().startswith("--"):
            break
        lines.append(line.strip().removeprefix("--").strip())
    return " ".join(line for line in lines if line) or None
