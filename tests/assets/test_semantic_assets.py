"""Semantic clusters and SemDeDup through Dagster, on embedded demo drops."""

import dagster as dg
import polars as pl

from curation_dag.assets.dedup import exact_duplicates, minhash_signatures, near_duplicates
from curation_dag.assets.embed import embeddings
from curation_dag.assets.ingest import raw_documents
from curation_dag.assets.semantic import semantic_clusters, semantic_duplicates
from curation_dag.resources import DropsResource, EmbedderResource, RecipesResource, StorageResource
from curation_dag.store.ledger import Ledger
from tests.conftest import DEMO_DROPS, MODEL_CACHE, RECIPES

KEYS = ["python_docs/2026-11-01", "python_docs/2026-11-15"]


def resources(storage_root, recipes_folder=RECIPES):
    recipes = RecipesResource(folder=str(recipes_folder))
    return {
        "storage": StorageResource(root=str(storage_root)),
        "recipes": recipes,
        "drops": DropsResource(drops_root=str(DEMO_DROPS), recipes=recipes),
        "embedder": EmbedderResource(cpu_backend="minilm", cache_dir=MODEL_CACHE),
    }


def deduplicated(instance, storage_root) -> dict:
    """Both drops ingested, signed and deduplicated; the `dg.materialize` kwargs for the next steps."""
    run = dict(instance=instance, resources=resources(storage_root))
    instance.add_dynamic_partitions("drops", KEYS)
    for key in KEYS:
        assert dg.materialize([raw_documents, minhash_signatures], partition_key=key, **run).success
    assert dg.materialize([exact_duplicates, near_duplicates], **run).success
    return run


def test_drops_are_clustered_and_semantically_deduplicated_once(instance, tmp_path):
    run = deduplicated(instance, tmp_path)
    assert dg.materialize([embeddings], partition_key=KEYS[0], **run).success

    first = dg.materialize([semantic_clusters, semantic_duplicates], **run)  # fits on the first drop only
    assert first.success and all(c.passed for c in first.get_asset_check_evaluations())
    fit = first.asset_materializations_for_node("semantic_clusters")[0].metadata
    assert fit["fitted_on"].value == [KEYS[0]] and fit["fit_device"].value == "cpu"
    assert fit["cluster_sizes"].value.startswith("![Cluster sizes](data:image/png;base64,")

    assert dg.materialize([embeddings], partition_key=KEYS[1], **run).success
    second = dg.materialize([semantic_clusters, semantic_duplicates], **run)  # joins the existing fit
    assert second.asset_materializations_for_node("semantic_clusters")[0].metadata["assigned_now"].value > 0
    assert second.asset_materializations_for_node("semantic_clusters")[0].metadata["fitted_on"].value == [KEYS[0]]

    vectors = pl.read_parquet(tmp_path / "embeddings" / "*" / "*" / "*.parquet")
    clusters = pl.read_parquet(tmp_path / "semantic_clusters" / "decisions" / "*" / "*.parquet")
    assert sorted(clusters["doc_id"]) == sorted(vectors["doc_id"])  # exactly one cluster per embedded document
    decisions = pl.read_parquet(tmp_path / "semantic_duplicates" / "decisions" / "*" / "*.parquet")
    assert decisions.columns == [
        "doc_id",
        "drop",
        "cluster",
        "distance",
        "source",
        "semantic_duplicate_of",
        "cosine",
        "not_judged",
    ]
    duplicates = decisions.filter(pl.col("semantic_duplicate_of").is_not_null())
    assert (duplicates["cosine"] >= 0.95).all() and (duplicates["doc_id"] != duplicates["semantic_duplicate_of"]).all()

    again = dg.materialize([semantic_clusters, semantic_duplicates], **run)
    assert again.asset_materializations_for_node("semantic_clusters")[0].metadata["assigned_now"].value == 0
    assert pl.read_parquet(tmp_path / "semantic_duplicates" / "decisions" / "*" / "*.parquet").equals(decisions)


def test_changed_settings_refuse_a_silent_refit(instance, tmp_path):
    run = dict(instance=instance, resources=resources(tmp_path / "store"))
    instance.add_dynamic_partitions("drops", KEYS[:1])
    dg.materialize([raw_documents, minhash_signatures], partition_key=KEYS[0], **run)
    dg.materialize([exact_duplicates, near_duplicates], **run)
    dg.materialize([embeddings], partition_key=KEYS[0], **run)
    assert dg.materialize([semantic_clusters], **run).success

    edited = tmp_path / "recipes"
    edited.mkdir()
    (edited / "sources.yml").write_text((RECIPES / "sources.yml").read_text())
    (edited / "semantic.yml").write_text("clusters: 3\n")
    result = dg.materialize(
        [semantic_clusters], instance=instance, resources=resources(tmp_path / "store", edited), raise_on_error=False
    )
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "changed since the clusters were fitted" in failure.step_failure_data.user_failure_data.description


def test_a_refit_reassigns_every_drop_and_semantic_duplicates_judges_them_again(instance, tmp_path):
    run = deduplicated(instance, tmp_path)
    for key in KEYS:  # fitted on the first drop only; the second joins that fit
        assert dg.materialize([embeddings], partition_key=key, **run).success
        assert dg.materialize([semantic_clusters, semantic_duplicates], **run).success

    def refit(mode):
        config = {"ops": {"semantic_clusters": {"config": {"refit": mode}}}}
        result = dg.materialize([semantic_clusters, semantic_duplicates], run_config=config, **run)
        assert result.success
        return {
            node: result.asset_materializations_for_node(node)[0].metadata
            for node in ("semantic_clusters", "semantic_duplicates")
        }

    always = refit("always")
    assert always["semantic_clusters"]["fitted_on"].value == KEYS
    embedded = pl.read_parquet(tmp_path / "embeddings" / "*" / "*" / "*.parquet").height
    assert always["semantic_clusters"]["assigned_now"].value == embedded
    assert always["semantic_duplicates"]["absorbed_now"].value == 2  # every drop judged again, in its new cluster
    fits = {
        e["fit"] for folder in ("semantic_clusters", "semantic_duplicates") for e in Ledger(tmp_path / folder).drops
    }
    assert len(fits) == 1

    again = refit("always")  # the same drops and seed fit the same centroids: nothing downstream to redo
    assert again["semantic_clusters"]["assigned_now"].value == embedded
    assert again["semantic_duplicates"]["absorbed_now"].value == 0

    assert refit("never")["semantic_clusters"]["assigned_now"].value == 0
    drifted = [e["key"] for e in Ledger(tmp_path / "semantic_clusters").drops if e["beyond_p95"] > 0.2]
    on_drift = refit("on_drift")  # refits when more of a drop than drift_share lies beyond the fit's p95
    assert on_drift["semantic_clusters"]["assigned_now"].value == (embedded if drifted else 0)


def test_vectors_of_another_model_are_refused_naming_both(instance, tmp_path, static_embedder):
    run = deduplicated(instance, tmp_path)
    assert dg.materialize([embeddings], partition_key=KEYS[0], **run).success  # MiniLM's vectors
    result = dg.materialize(
        [semantic_clusters],
        instance=instance,
        resources={**run["resources"], "embedder": static_embedder},
        raise_on_error=False,
    )
    failure = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error.message
    assert (
        f"drop {KEYS[0]} was embedded with all-MiniLM-L6-v2-256x4w2-onnx-int8, "
        "not with all-MiniLM-L6-v2-static-256+char3-256x4w2" in failure
    )
    assert "CURATION_EMBEDDER" in failure
