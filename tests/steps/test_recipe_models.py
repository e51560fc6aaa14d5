"""The recipe compiler: tiny inline recipe folders over tiny Parquet sources written here."""

import re
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from curation_dag.steps.recipes import models as recipe_models
from curation_dag.steps.recipes.files import RecipeError
from curation_dag.steps.recipes.models import load_models, model_order, run_model, source_files
from curation_dag.store.ledger import Ledger, write_parquet

DOCUMENTS = pl.DataFrame(
    {"doc_id": ["s/d1/a#1", "s/d1/a#2", "s/d1/a#3"], "source": ["s"] * 3, "drop_id": ["d1"] * 3, "n_chars": [5, 0, 7]}
)
SCORES = pl.DataFrame({"doc_id": ["s/d1/a#1", "s/d1/a#3"], "cluster": [0, 1], "prototypicality": [0.25, 3.0]})


def recipes(folder: Path, **files: str) -> Path:
    """A recipe folder with `models/<name>` files; names use __ for the dot (`a__sql`, `schema__yml`)."""
    (folder / "models").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / "models" / name.replace("__", ".")).write_text(text)
    return folder


def storage(root: Path) -> Path:
    """Two sources: a per-drop raw_documents and a ledger-based quality_scores, plus an uncommitted leftover."""
    write_parquet(DOCUMENTS, root / "raw_documents" / "s" / "d1" / "documents.parquet")
    ledger = Ledger(root / "quality_scores")
    write_parquet(SCORES, ledger.decision_file("s/d1"))
    ledger.commit({"key": "s/d1"})
    write_parquet(SCORES.with_columns(pl.lit(9).alias("cluster")), ledger.decision_file("s/d2"))  # crashed absorb
    return root


CHAIN = dict(
    base__sql="-- Documents with their scores.\n"
    "SELECT d.doc_id, d.n_chars, s.cluster, s.prototypicality\n"
    "FROM {{ source('raw_documents') }} AS d LEFT JOIN {{ source('quality_scores') }} AS s USING (doc_id)\n"
    "ORDER BY d.doc_id\n",
    sizes__sql="SELECT cluster, count(*) AS documents FROM {{ ref('base') }} GROUP BY cluster ORDER BY cluster\n",
    wide__sql="SELECT b.*, z.documents FROM {{ ref('base') }} AS b JOIN {{ ref('sizes') }} AS z USING (cluster)\n"
    "ORDER BY doc_id\n",
    alone__sql="SELECT 1 AS one\n",
)


def test_refs_and_sources_render_as_identifiers_and_give_lineage_and_order(tmp_path):
    models = load_models(recipes(tmp_path, **CHAIN))
    assert models["base"].sources == ("quality_scores", "raw_documents") and models["base"].refs == ()
    assert models["wide"].refs == ("base", "sizes") and models["wide"].sources == ()
    assert 'FROM "raw_documents" AS d LEFT JOIN "quality_scores" AS s' in models["base"].sql
    assert str(tmp_path) not in models["base"].sql
    assert models["base"].description == "Documents with their scores."
    assert model_order(models) == ["alone", "base", "sizes", "wide"]
    assert model_order({"c": ["a"], "b": [], "a": []}) == ["a", "b", "c"]


def test_code_version_is_stable_and_changes_for_the_edited_model_and_its_downstream_only(tmp_path):
    folder = recipes(tmp_path / "one", **CHAIN)
    before = {name: model.code_version for name, model in load_models(folder).items()}
    copied = shutil.copytree(folder, tmp_path / "elsewhere" / "two")
    assert {name: model.code_version for name, model in load_models(copied).items()} == before

    (copied / "models" / "sizes.sql").write_text(CHAIN["sizes__sql"].replace("count(*)", "count(doc_id)"))
    after = {name: model.code_version for name, model in load_models(copied).items()}
    assert {name for name in before if before[name] != after[name]} == {"sizes", "wide"}

    (copied / "models" / "schema.yml").write_text("models:\n  - name: base\n    description: now described\n")
    assert {name: model.code_version for name, model in load_models(copied).items()} == after  # prose only
    (copied / "models" / "schema.yml").write_text(
        "models:\n  - name: base\n    columns:\n      - name: doc_id\n        tests: [unique]\n"
    )
    tested = {name: model.code_version for name, model in load_models(copied).items()}
    assert {name for name in after if after[name] != tested[name]} == {"base", "sizes", "wide"}


def test_run_model_reads_committed_source_files_and_refs_deterministically(tmp_path):
    models = load_models(recipes(tmp_path / "recipes", **CHAIN))
    root = storage(tmp_path / "store")
    assert source_files(root, "quality_scores") == [str(Ledger(root / "quality_scores").decision_file("s/d1"))]
    outputs = {name: run_model(models[name], root) for name in model_order(models)}
    assert outputs["wide"] == root / "recipe_models" / "wide.parquet"
    base = pl.read_parquet(outputs["base"])
    assert base["doc_id"].to_list() == DOCUMENTS["doc_id"].to_list() and base["cluster"].to_list() == [0, None, 1]
    assert pl.read_parquet(outputs["sizes"]).rows() == [(0, 1), (1, 1), (None, 1)]
    first = outputs["wide"].read_bytes()
    assert run_model(models["wide"], root).read_bytes() == first  # same inputs, same bytes: same data version
    assert not list((root / "recipe_models").glob(".*.tmp"))


def test_missing_source_data_and_missing_ref_output_say_what_to_materialize(tmp_path):
    models = load_models(recipes(tmp_path / "recipes", **CHAIN))
    with pytest.raises(
        recipe_models.SourceNotReady,
        match=r"^source\('quality_scores'\) has no data yet: materialize quality_scores first$",
    ):
        run_model(models["base"], tmp_path / "empty")
    with pytest.raises(
        recipe_models.SourceNotReady, match=r"ref\('base'\): .*base.parquet is missing: materialize base"
    ):
        run_model(models["sizes"], storage(tmp_path / "store"))


def violations(model: recipe_models.RecipeModel, root: Path) -> dict[str, int]:
    counts = {}
    with duckdb.connect() as connection:
        for query in recipe_models.check_queries(model, root):
            for table, files in query.tables.items():
                connection.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet({files!r})")
            counts[query.name] = len(connection.execute(query.sql).fetchall())
    return counts


def test_every_test_type_catches_its_violation_and_passes_clean_columns(tmp_path):
    schema = """
models:
  - name: base
    columns:
      - name: doc_id
        tests:
          - unique
          - not_null
          - relationships: {to: "ref('base')", field: doc_id}
      - name: cluster
        tests:
          - unique
          - not_null
          - accepted_values: {values: [0, 1]}
          - relationships: {to: "ref('sizes')", field: cluster}
          - relationships: {to: "source('quality_scores')", field: cluster}
      - name: n_chars
        tests:
          - accepted_values: {values: [5, 7]}
          - expression: "n_chars > 0"
    tests:
      - expression: "prototypicality BETWEEN 0 AND 2"
  - name: sizes
    columns:
      - name: cluster
        tests:
          - relationships: {to: "ref('alone')", field: one}
"""
    files = {
        "alone__sql": CHAIN["alone__sql"],
        "schema__yml": schema,
        "sizes__sql": "SELECT * FROM (VALUES (0), (1), (7), (NULL)) AS t(cluster)\n",
        "base__sql": CHAIN["base__sql"].replace(
            "ORDER BY d.doc_id", "UNION ALL SELECT 's/d1/a#1', 5, 1, 0.5 ORDER BY 1"
        ),
    }
    models = load_models(recipes(tmp_path / "recipes", **files))
    assert models["base"].refs == ("sizes",) and models["sizes"].refs == ("alone",)  # relationship targets are upstream
    root = storage(tmp_path / "store")
    for name in model_order(models):
        run_model(models[name], root)
    # base: a#1 twice (clusters 0 and 1), a#2 without scores (cluster null, n_chars 0), a#3 with prototypicality 3.
    assert violations(models["base"], root) == {
        "doc_id_unique": 1,
        "doc_id_not_null": 0,
        "doc_id_relationships": 0,
        "cluster_unique": 1,
        "cluster_not_null": 1,
        "cluster_accepted_values": 0,
        "cluster_relationships": 0,
        "cluster_relationships_2": 0,  # the uncommitted leftover's cluster 9 is not read
        "n_chars_accepted_values": 1,
        "n_chars_expression": 1,
        "expression_1": 2,  # a#3 out of range, and a#2's null: an unknown verdict fails too
    }
    assert violations(models["sizes"], root) == {"cluster_relationships": 2}  # 0 and 7; the null is not checked
    assert models["sizes"].tests[0].describe() == "cluster: every non-null value appears in ref('alone').one."


def error(tmp_path: Path, **files: str) -> str:
    with pytest.raises(RecipeError) as raised:
        load_models(recipes(tmp_path, **files))
    return str(raised.value)


def test_a_ref_to_no_model_names_the_file_line_and_the_known_models(tmp_path):
    message = error(tmp_path, a__sql="SELECT 1\n", b__sql="SELECT *\nFROM {{ ref('nothing') }}\n")
    assert message == f"{tmp_path}/models/b.sql, line 2: ref('nothing'): no model nothing; models are a, b"


def test_an_unknown_source_lists_the_pipeline_sources(tmp_path):
    message = error(tmp_path, a__sql="SELECT * FROM {{ source('embeddings') }}\n")
    assert message.startswith(f"{tmp_path}/models/a.sql, line 1: source('embeddings'): not a pipeline source")
    assert "raw_documents, quality_signals, exact_duplicates" in message


def test_a_cycle_is_named_with_its_path(tmp_path):
    message = error(
        tmp_path,
        a__sql="SELECT * FROM {{ ref('b') }}\n",
        b__sql="SELECT *\nFROM {{ ref('c') }}\n",
        c__sql="\n\nSELECT * FROM {{ ref('a') }}\n",
    )
    assert message == (
        f"{tmp_path}/models/c.sql, line 3: ref('a') closes a cycle: a -> b -> c -> a; "
        "a model cannot depend on itself, directly or through others"
    )
    assert "a model cannot ref itself" in error(tmp_path / "self", a__sql="SELECT * FROM {{ ref('a') }}\n")


def test_a_relationship_test_can_close_a_cycle_too(tmp_path):
    schema = "models:\n  - name: b\n    columns:\n      - name: x\n        tests:\n"
    schema += "          - relationships: {to: \"ref('a')\", field: x}\n"
    message = error(tmp_path, a__sql="SELECT * FROM {{ ref('b') }}\n", b__sql="SELECT 1 AS x\n", schema__yml=schema)
    assert message.startswith(f"{tmp_path}/models/schema.yml, line 6: ref('a') closes a cycle: a -> b -> a")


def test_jinja_errors_name_the_file_and_line(tmp_path):
    broken = error(tmp_path / "syntax", a__sql="SELECT 1\n{% if true %}\nFROM x\n{{ ref('a' }}\n")
    assert re.fullmatch(rf"{tmp_path}/syntax/models/a.sql, line 4: Jinja syntax error: .+", broken)
    undefined = error(tmp_path / "undefined", a__sql="SELECT 1\nWHERE x > {{ var('limit') }}\n")
    assert undefined.startswith(f"{tmp_path}/undefined/models/a.sql, line 2: 'var' is undefined; a model may call")
    two = error(tmp_path / "two", a__sql="SELECT 1\n", b__sql="\n\nSELECT * FROM {{ source('raw', 'docs') }}\n")
    assert (
        two == f"{tmp_path}/two/models/b.sql, line 3: source() takes one name in quotes, e.g. source('quality_scores')"
    )


def test_sql_that_does_not_parse_fails_at_load(tmp_path):
    message = error(tmp_path, a__sql="SELECT 1\nFORM x\n")
    assert message.startswith(f"{tmp_path}/models/a.sql: the rendered SQL does not parse: Parser Error")
    assert "LINE 2" in message
    assert "exactly one SELECT" in error(tmp_path / "two", a__sql="SELECT 1; SELECT 2\n")


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    message = error(tmp_path, a__sql="SELECT 1\n", schema__yml="models:\n  - name: a\n    columns: [\n  - name: x\n")
    assert message.startswith(f"{tmp_path}/models/schema.yml: not valid YAML") and "line 4" in message


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ("models:\n  - name: b\n", "line 2: model 'b' has no b.sql in {models}; create it or fix the name (models: a)"),
        (
            "models:\n  - name: a\n    columns:\n      - name: x\n        tests: [unique, {bogus: 1}]\n",
            "line 5: unknown test 'bogus'; tests are unique, not_null, accepted_values, relationships, expression",
        ),
        (
            "models:\n  - name: a\n    columns:\n      - name: x\n        tests:\n          - accepted_values: {}\n",
            "line 6: the accepted_values test needs values, e.g. accepted_values: {values: [a, b]}",
        ),
        (
            "models:\n  - name: a\n    columns:\n      - name: x\n        tests:\n          - relationships: {to: a}\n",
            "line 6: the relationships test needs to and field, "
            "e.g. relationships: {to: \"ref('model')\", field: column}",
        ),
        ("models:\n  - name: a\n    tests: [expression]\n", "line 2: the expression test needs a SQL condition"),
        ("models:\n  - name: a\n    tests: [unique]\n", "line 2: the unique test of model a needs a column"),
        (
            "models:\n  - name: a\n    columns:\n      - name: x\n        tests:\n"
            "          - relationships: {to: \"ref('z')\", field: x}\n",
            "line 6: ref('z'): no model z; models are a",
        ),
        ("models:\n  - name: a\n    colums: []\n", "line 2: models[0]: colums: Extra inputs are not permitted"),
    ],
)
def test_schema_problems_name_the_file_line_and_fix(tmp_path, schema, expected):
    message = error(tmp_path, a__sql="SELECT 1 AS x\n", schema__yml=schema)
    assert message.startswith(f"{tmp_path}/models/schema.yml, {expected.replace('{models}', str(tmp_path / 'models'))}")


def test_a_model_named_like_a_pipeline_asset_is_refused(tmp_path):
    message = error(tmp_path, quality_scores__sql="SELECT 1\n")
    assert (
        message
        == f"{tmp_path}/models/quality_scores.sql: quality_scores is the name of a pipeline asset; rename the model"
    )
    assert "letters, digits and _" in error(tmp_path / "dash", **{"my-model__sql": "SELECT 1\n"})


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT content FROM read_text('/proc/self/environ')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('{outside}')",
    ],
)
def test_a_model_reads_nothing_but_its_sources_and_refs(tmp_path, sql):
    outside = tmp_path / "outside.parquet"
    pl.DataFrame({"secret": ["x"]}).write_parquet(outside)
    models = load_models(recipes(tmp_path / "recipes", a__sql=sql.format(outside=outside) + "\n"))
    with pytest.raises(RecipeError, match=r"a.sql: DuckDB could not run the model: Permission Error"):
        run_model(models["a"], storage(tmp_path / "store"))
    assert not (tmp_path / "store" / "recipe_models" / "a.parquet").exists()


def test_an_expression_test_that_smuggles_a_second_statement_fails_at_load(tmp_path):
    smuggled = "true) ; COPY (SELECT 1) TO '/tmp/x.csv' ; SELECT (1"
    schema = f'models:\n  - name: a\n    tests:\n      - expression: "{smuggled}"\n'
    message = error(tmp_path, a__sql="SELECT 1 AS one\n", schema__yml=schema)
    assert message.startswith(f"{tmp_path}/models/schema.yml, line 4: the expression_1 test of model a is not exactly "
                              "one SELECT statement: it holds 3 (SELECT, COPY, SELECT)")  # fmt: skip
    assert not Path("/tmp/x.csv").exists()
