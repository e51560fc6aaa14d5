"""raw_documents materialized through a real ephemeral Dagster instance."""

import json

import dagster as dg
import polars as pl
import pytest

from curation_dag.assets.ingest import raw_documents
from curation_dag.definitions import defs
from curation_dag.resources import DropsResource, RecipesResource, StorageResource
from tests.conftest import DEMO_DROPS, RECIPES, mark_complete, write_jsonl

DEMO_ROWS = {  # (input rows, accepted) per demo drop; demo_data/README.md explains the two bad records
    "licenses/2026-11-01": (60, 60),
    "licenses/2026-11-15": (65, 63),
    "python_code/2026-11-01": (40, 40),
    "python_code/2026-11-15": (40, 40),
    "python_docs/2026-11-01": (40, 40),
    "python_docs/2026-11-15": (39, 39),
}


def materialize(instance, key, drops_root, storage_root, recipes=RECIPES):
    instance.add_dynamic_partitions("drops", [key])
    return dg.materialize(
        [raw_documents],
        partition_key=key,
        instance=instance,
        resources={
            "storage": StorageResource(root=str(storage_root)),
            "drops": DropsResource(drops_root=str(drops_root), recipes=RecipesResource(folder=str(recipes))),
        },
        raise_on_error=False,
    )


@pytest.mark.parametrize("key", sorted(DEMO_ROWS))
def test_demo_drops_materialize_with_exact_counts_and_passing_checks(instance, tmp_path, key):
    result = materialize(instance, key, DEMO_DROPS, tmp_path)
    assert result.success
    metadata = result.asset_materializations_for_node("raw_documents")[0].metadata
    input_rows, accepted = DEMO_ROWS[key]
    assert (metadata["input_rows"].value, metadata["accepted"].value) == (input_rows, accepted)
    assert metadata["quarantined"].value == input_rows - accepted
    documents = pl.read_parquet(tmp_path / "raw_documents" / key / "documents.parquet")
    assert documents.height == accepted and documents["doc_id"].str.starts_with(key + "/").all()
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"every_input_row_accounted_for", "raw_documents_expectations"}
    assert all(c.passed for c in checks.values())
    assert checks["every_input_row_accounted_for"].metadata["input_rows"].value == input_rows
    outcomes = checks["raw_documents_expectations"].metadata["outcomes"].value
    assert {o["expectation"] for o in outcomes} >= {
        "expect_column_values_to_be_unique",
        "expect_column_values_to_not_be_null",
    }


def test_demo_quarantine_is_in_the_metadata(instance, tmp_path):
    result = materialize(instance, "licenses/2026-11-15", DEMO_DROPS, tmp_path)
    metadata = result.asset_materializations_for_node("raw_documents")[0].metadata
    reasons = {r["reason"]: r["rows"] for r in metadata["quarantined_by_reason"].value}
    assert reasons == {"empty_text": 1, "duplicate_id": 1}
    assert "| doc_id | n_chars | text |" in metadata["preview"].value
    assert result.asset_materializations_for_node("raw_documents")[0].tags["dagster/data_version"]


def test_a_bad_drop_is_accounted_for_row_by_row(instance, tmp_path):
    drops_root = tmp_path / "drops"
    drop = mark_complete(drops_root / "web" / "d1")
    write_jsonl(drop / "a.jsonl", [{"id": "1", "text": "good"}, b"{oops", {"id": "1", "text": "dup"}, {"id": "2"}])
    (drop / "notes.docx").write_bytes(b"PK")
    sources = tmp_path / "sources.yml"
    sources.write_text("sources:\n  - name: web\n    id_field: id\n")

    result = materialize(instance, "web/d1", drops_root, tmp_path / "out", tmp_path)

    assert result.success
    metadata = result.asset_materializations_for_node("raw_documents")[0].metadata
    assert (metadata["input_rows"].value, metadata["accepted"].value, metadata["quarantined"].value) == (5, 1, 4)
    reasons = {r["reason"]: r["rows"] for r in metadata["quarantined_by_reason"].value}
    assert reasons == {"malformed_json": 1, "duplicate_id": 1, "missing_text": 1, "unknown_file_type": 1}
    accounting = next(
        c for c in result.get_asset_check_evaluations() if c.check_name == "every_input_row_accounted_for"
    )
    assert accounting.passed and accounting.metadata["quarantined"].value == 4


def test_every_bad_input_class_is_quarantined_through_dagster(instance, tmp_path, bad_drop):
    (tmp_path / "sources.yml").write_text(
        "sources:\n  - name: crafted\n    id_field: id\n    metadata_fields: [lang]\n    max_text_bytes: 1000\n"
    )
    result = materialize(instance, "crafted/d1", bad_drop.parent.parent, tmp_path / "out", tmp_path)

    assert result.success
    metadata = result.asset_materializations_for_node("raw_documents")[0].metadata
    reasons = {r["reason"]: r["rows"] for r in metadata["quarantined_by_reason"].value}
    assert reasons == {
        "malformed_json": 2,
        "invalid_utf8": 1,
        "missing_text": 2,
        "non_string_text": 1,
        "empty_text": 1,
        "text_too_large": 1,
        "duplicate_id": 1,
        "blank_line": 1,
        "invalid_id": 2,
        "truncated_file": 1,
        "missing_text_column": 3,
        "unknown_file_type": 1,
        "unreadable_file": 1,
    }
    accepted, quarantined = metadata["accepted"].value, metadata["quarantined"].value
    assert quarantined == sum(reasons.values()) and metadata["input_rows"].value == accepted + quarantined
    documents = pl.read_parquet(tmp_path / "out" / "raw_documents" / "crafted" / "d1" / "documents.parquet")
    per_shard = dict(documents.group_by("shard").len().iter_rows())
    assert accepted == documents.height and 0 < per_shard.pop("b.jsonl.gz") < 40  # the lines before the cut
    assert per_shard == {"a.jsonl": 2, "e.jsonl.zst": 2, "f.parquet": 2}
    assert all(check.passed for check in result.get_asset_check_evaluations())


def test_a_drop_with_nothing_readable_fails_with_one_clear_message(instance, tmp_path):
    drops_root = tmp_path / "drops"
    write_jsonl(mark_complete(drops_root / "web" / "d1") / "a.jsonl", [b"{oops", {"id": "1", "text": " "}])
    sources = tmp_path / "sources.yml"
    sources.write_text("sources:\n  - name: web\n")

    result = materialize(instance, "web/d1", drops_root, tmp_path / "out", tmp_path)

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "drop web/d1" in message and "nothing readable (1 malformed_json, 1 empty_text)" in message


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("web/../../etc", "invalid drop name '../../etc'"),
        ("nosuch/d1", "source 'nosuch' is not declared"),
        ("web/d9", "no _SUCCESS"),
    ],
)
def test_bad_partitions_fail_with_what_to_fix(instance, tmp_path, key, message):
    sources = tmp_path / "sources.yml"
    sources.write_text("sources:\n  - name: web\n")
    result = materialize(instance, key, tmp_path / "drops", tmp_path / "out", tmp_path)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert message in failure.step_failure_data.user_failure_data.description


def test_a_failing_expectation_is_reported_with_examples(tmp_path):
    import pandas as pd

    from curation_dag.checks.raw_documents import RAW_DOCUMENTS_SUITE

    frame = pd.DataFrame({"doc_id": ["a", "a", None], "text": [3, 0, 2], "content_hash": ["0" * 64] * 3})
    result = RAW_DOCUMENTS_SUITE.validate("raw_documents", frame)
    assert not result.passed
    outcomes = {(o["expectation"], o["column"]): o for o in result.metadata["outcomes"].value}
    unique = outcomes[("expect_column_values_to_be_unique", "doc_id")]
    assert not unique["success"] and unique["unexpected_count"] == 2 and unique["unexpected_examples"] == ["a", "a"]
    assert outcomes[("expect_column_values_to_not_be_null", "doc_id")]["unexpected_count"] == 1
    assert outcomes[("expect_column_values_to_be_between", "text")]["unexpected_examples"] == [0]
    json.dumps(result.metadata["outcomes"].value)  # metadata must stay JSON


def test_every_asset_says_group_kinds_code_version_and_description():
    specs = list(defs.resolve_all_asset_specs())
    assert specs
    for spec in specs:
        assert spec.group_name and spec.group_name != "default", spec.key
        assert spec.kinds, spec.key
        assert spec.code_version, spec.key
        assert spec.description and "\n" not in spec.description.strip(), spec.key
