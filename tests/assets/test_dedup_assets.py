"""Exact and near duplicates materialized through Dagster: incremental, order-preserving, checked."""

import dagster as dg
import polars as pl

from curation_dag.assets.dedup import exact_duplicates, minhash_signatures, near_duplicates
from curation_dag.assets.embed import embeddings
from curation_dag.assets.ingest import raw_documents
from curation_dag.checks.dedup import KEPT_AND_EARLIER
from curation_dag.checks.sql import sql_check
from curation_dag.resources import DropsResource, EmbedderResource, RecipesResource, StorageResource
from curation_dag.store.ledger import Ledger
from tests.conftest import DEMO_DROPS, MODEL_CACHE, RECIPES, mark_complete, write_jsonl

DEMO_KEYS = [  # arrival order
    "licenses/2026-11-01",
    "python_code/2026-11-01",
    "python_docs/2026-11-01",
    "licenses/2026-11-15",
    "python_code/2026-11-15",
    "python_docs/2026-11-15",
]


def resources(storage_root):
    recipes = RecipesResource(folder=str(RECIPES))
    return {
        "storage": StorageResource(root=str(storage_root)),
        "recipes": recipes,
        "drops": DropsResource(drops_root=str(DEMO_DROPS), recipes=recipes),
    }


def curate_drop(instance, storage_root, key):
    instance.add_dynamic_partitions("drops", [key])
    result = dg.materialize(
        [raw_documents, minhash_signatures], partition_key=key, instance=instance, resources=resources(storage_root)
    )
    assert result.success


def deduplicate(instance, storage_root):
    result = dg.materialize([exact_duplicates, near_duplicates], instance=instance, resources=resources(storage_root))
    assert result.success
    return result


def decisions(storage_root, asset):
    return pl.read_parquet(storage_root / asset / "decisions" / "*" / "*.parquet").sort("ordinal")


def test_demo_dedup_marks_repeated_documents_as_duplicates_of_the_earlier_ones(instance, tmp_path):
    for key in DEMO_KEYS:
        curate_drop(instance, tmp_path, key)
    result = deduplicate(instance, tmp_path)

    checks = {(c.asset_key.path[0], c.check_name): c for c in result.get_asset_check_evaluations()}
    assert len(checks) == 6 and all(c.passed for c in checks.values())
    exact = decisions(tmp_path, "exact_duplicates")
    documents = pl.read_parquet(tmp_path / "raw_documents" / "*" / "*" / "documents.parquet")
    by_source_id = dict(zip(documents["doc_id"], documents["source_id"], strict=True))
    planted = exact.filter(pl.col("doc_id").replace_strict(by_source_id).str.ends_with("-copy"))
    assert planted.height == 3
    assert (planted["duplicate_of_drop"] == "licenses/2026-11-01").all()
    originals = planted["duplicate_of"].replace_strict(by_source_id).to_list()
    assert sorted(originals) == ["libasound2-data", "libgcrypt20-dev", "libnss3"]

    near = decisions(tmp_path, "near_duplicates")
    assert near.height == exact.filter(pl.col("duplicate_of").is_null()).height  # only exact-kept documents
    duplicates = near.filter(pl.col("duplicate_of").is_not_null())
    assert duplicates.height > 0 and duplicates["jaccard"].is_between(0, 1).all()
    assert near.filter(pl.col("duplicate_of").is_null())["jaccard"].is_null().all()
    metadata = result.asset_materializations_for_node("exact_duplicates")[0].metadata
    assert (
        metadata["drops_absorbed"].value == 6
        and "| drop | documents | duplicates | rate |" in metadata["by_drop"].value
    )


def test_absorbing_drops_one_by_one_decides_exactly_as_all_at_once(tmp_path):
    with dg.DagsterInstance.ephemeral() as one_by_one, dg.DagsterInstance.ephemeral() as all_at_once:
        for key in DEMO_KEYS:
            curate_drop(one_by_one, tmp_path / "a", key)
            deduplicate(one_by_one, tmp_path / "a")
            curate_drop(all_at_once, tmp_path / "b", key)
        deduplicate(all_at_once, tmp_path / "b")
        again = deduplicate(all_at_once, tmp_path / "b")  # nothing new: nothing absorbed, nothing changes

    for asset in ("exact_duplicates", "near_duplicates"):
        assert decisions(tmp_path / "a", asset).equals(decisions(tmp_path / "b", asset)), asset
    assert again.asset_materializations_for_node("exact_duplicates")[0].metadata["absorbed_now"].value == []


def test_the_kept_and_earlier_check_catches_bad_decisions(tmp_path):
    history = tmp_path / "decisions.parquet"
    pl.DataFrame({"doc_id": ["a", "b", "c"], "ordinal": [1, 2, 3], "duplicate_of": [None, "a", None]}).write_parquet(
        history
    )
    new = pl.DataFrame(
        {"doc_id": ["d", "e", "f", "g"], "ordinal": [4, 5, 6, 0], "duplicate_of": ["a", "b", "zzz", "c"]}
    )
    result = sql_check(
        "near_duplicates", "duplicate_of_is_kept_and_earlier", KEPT_AND_EARLIER, new=new, decisions=str(history)
    )
    assert not result.passed and result.metadata["violations"].value == 3  # e: dup of a dup, f: unknown, g: later


def test_signing_a_drop_that_was_not_ingested_says_what_to_do(instance, tmp_path):
    instance.add_dynamic_partitions("drops", ["licenses/2026-11-01"])
    result = dg.materialize(
        [minhash_signatures],
        partition_key="licenses/2026-11-01",
        instance=instance,
        resources=resources(tmp_path),
        raise_on_error=False,
    )
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "materialize raw_documents for drop licenses/2026-11-01 first" in message


def test_a_drop_whose_only_document_has_two_words_goes_through_dedup_to_embeddings(instance, tmp_path):
    """'Errata notice' alone once broke MinHash signing, and every later drop then waited at embeddings."""
    drops = tmp_path / "drops"
    drop = mark_complete(drops / "licenses" / "2026-12-01")
    write_jsonl(drop / "part-0.jsonl", [{"id": "e", "text": "Errata notice"}])
    recipes = RecipesResource(folder=str(RECIPES))
    run = dict(
        instance=instance,
        resources={
            "storage": StorageResource(root=str(tmp_path / "store")),
            "recipes": recipes,
            "drops": DropsResource(drops_root=str(drops), recipes=recipes),
            "embedder": EmbedderResource(cpu_backend="minilm", cache_dir=MODEL_CACHE),
        },
    )
    instance.add_dynamic_partitions("drops", ["licenses/2026-12-01"])
    signed = dg.materialize([raw_documents, minhash_signatures], partition_key="licenses/2026-12-01", **run)
    assert signed.asset_materializations_for_node("minhash_signatures")[0].metadata["documents"].value == 1
    assert dg.materialize([exact_duplicates, near_duplicates], **run).success
    assert Ledger(tmp_path / "store" / "near_duplicates").keys == ["licenses/2026-12-01"]
    assert dg.materialize([embeddings], partition_key="licenses/2026-12-01", **run).success
