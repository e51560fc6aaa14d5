"""Takedowns through Dagster, on the demo pipeline: the texts leave every stored output and every
rebuilt mixture, the checks still pass, identical copies and duplicates take over, and explain and
audit tell what happened."""

import shutil

import dagster as dg
import polars as pl
import pytest

from curation_dag.assets.ingest import raw_documents
from curation_dag.assets.takedowns import takedowns
from curation_dag.steps.audit import lineage as audit
from curation_dag.steps.quality.rules import RULES
from curation_dag.store.ledger import Ledger
from tests.assets.test_mixture_assets import recipe_assets


def assets() -> list:
    """The recipe models and one mixture (plain_dedup): a rebuild of every mixture costs four times as much."""
    models, mixtures = recipe_assets()
    return [*models, *(m for m in mixtures if m.key.path[-1] == "mixture_plain_dedup")]


@pytest.fixture(scope="module")
def built(demo_pipeline, tmp_path_factory):
    """A copy of the demo store with the shipped models and mixtures built on it."""
    _, root, run = demo_pipeline
    store = shutil.copytree(root, tmp_path_factory.mktemp("takedowns") / "store")
    resources = {**run["resources"], "storage": type(run["resources"]["storage"])(root=str(store))}
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize(assets(), instance=instance, resources=resources).success
    return store, resources


@pytest.fixture
def store(built, tmp_path):
    root, resources = built
    copy = shutil.copytree(root, tmp_path / "store")
    return copy, {**resources, "storage": type(resources["storage"])(root=str(copy))}


def take_down(store, **request) -> dg.ExecuteInProcessResult:
    root, resources = store
    config = {"doc_ids": [], "content_hashes": [], "drops": [], "reason": "test", "requested_by": "legal", **request}
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize(
            [takedowns, *assets()],
            instance=instance,
            resources=resources,
            run_config={"ops": {"takedowns": {"config": config}}},
            raise_on_error=False,
        )


def texts(root) -> pl.DataFrame:
    """Every stored text: raw documents and every materialization of every mixture."""
    files = sorted(root.glob("raw_documents/*/*/documents.parquet")) + sorted(root.glob("mixtures/*/*/documents.*"))
    frames = [
        (pl.read_ndjson(p) if p.suffix == ".jsonl" else pl.read_parquet(p)).select("doc_id", "text") for p in files
    ]
    return pl.concat(frames)


def exact(root) -> pl.DataFrame:
    return pl.scan_parquet(Ledger(root / "exact_duplicates").decision_files()).collect()


def assert_all_checks_pass(result):
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    failed = [
        (c.asset_key.to_user_string(), c.check_name) for c in result.get_asset_check_evaluations() if not c.passed
    ]
    assert failed == []


def test_a_text_taken_down_leaves_every_output_and_explain_and_audit_say_so(store):
    root, _ = store
    before = audit.mixture_folder(root, "plain_dedup")
    doc_id = pl.read_parquet(before / "manifest.parquet")["doc_id"][0]
    text = texts(root).filter(pl.col("doc_id") == doc_id)["text"][0]
    content_hash = exact(root).filter(pl.col("doc_id") == doc_id)["content_hash"][0]
    copies = set(exact(root).filter(pl.col("content_hash") == content_hash)["doc_id"])

    result = take_down(store, content_hashes=[content_hash], reason="licence withdrawn")

    assert_all_checks_pass(result)
    assert result.asset_materializations_for_node("takedowns")[0].metadata["documents"].value == len(copies)
    stored = texts(root)
    assert stored.filter(pl.col("text") == text).height == 0 and not set(stored["doc_id"]) & copies
    rebuilt = audit.mixture_folder(root, "plain_dedup") / "candidates.parquet"
    for candidates in (root / "recipe_models" / "candidates.parquet", rebuilt):
        assert not set(pl.read_parquet(candidates)["doc_id"]) & copies
    after = audit.mixture_folder(root, "plain_dedup")
    assert after != before and doc_id not in set(pl.read_parquet(after / "manifest.parquet")["doc_id"])

    facts = audit.explain(root, doc_id, RULES)
    assert facts["taken_down"]["reason"] == "licence withdrawn" and facts["taken_down"]["requested_by"] == "legal"
    assert facts["provenance"]["content_hash"] == content_hash  # kept by the log, not the purged text
    earlier = audit.explain(root, doc_id, RULES, before)
    assert earlier["mixture"]["verdict"] == "kept" and "taken_down" in earlier
    assert [row["doc_id"] for row in audit.audit(before)["taken_down"]] == [doc_id]
    assert audit.audit(after)["taken_down"] == []


def test_an_identical_copy_and_the_later_duplicates_take_over_and_a_whole_drop_goes(store):
    root, resources = store
    decisions = exact(root)
    copied = decisions.filter(pl.col("duplicate_of").is_not_null())["duplicate_of"][0]
    heir = decisions.filter(pl.col("duplicate_of") == copied).sort("ordinal")["doc_id"][0]

    assert_all_checks_pass(take_down(store, doc_ids=[copied]))
    candidates = pl.read_parquet(root / "recipe_models" / "candidates.parquet")
    row = candidates.filter(pl.col("doc_id") == heir).row(0, named=True)
    assert row["exact_duplicate_of"] is None and row["cluster"] is not None  # it took the removed copy's place
    assert copied not in set(candidates["doc_id"])
    assert audit.explain(root, heir, RULES)["decisions"][0] == {"stage": "exact", "duplicate": False}

    # The probe's case: a whole drop goes; later drops' duplicates of its documents are kept now.
    first = "licenses/2026-11-01"
    pointed = set(decisions.filter(pl.col("duplicate_of_drop") == first)["doc_id"]) - {copied}
    assert pointed
    assert_all_checks_pass(take_down(store, drops=[first], reason="superseded by a corrected drop"))
    candidates = pl.read_parquet(root / "recipe_models" / "candidates.parquet")
    assert not candidates["drop"].is_in([first]).any()
    assert not candidates["exact_duplicate_of"].str.starts_with(first + "/").any()
    assert candidates.filter(pl.col("doc_id").is_in(list(pointed)))["exact_duplicate_of"].null_count() >= 1

    # Ingesting that drop again keeps its documents out, every row accounted for.
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("drops", [first])
        again = dg.materialize([raw_documents], partition_key=first, instance=instance, resources=resources)
    assert_all_checks_pass(again)
    metadata = again.asset_materializations_for_node("raw_documents")[0].metadata
    assert metadata["accepted"].value == 0 and metadata["quarantined"].value == metadata["input_rows"].value


def test_a_takedown_naming_nothing_stored_fails_and_logs_nothing(store):
    root, _ = store
    result = take_down(store, doc_ids=["licenses/2026-11-01/nope.jsonl#1"])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert "no stored document matches licenses/2026-11-01/nope.jsonl#1" in failure
    assert not (root / "takedowns" / "log.jsonl").exists()
