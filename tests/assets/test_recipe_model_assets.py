"""The shipped SQL recipe models as Dagster assets, on the demo drops: lineage, checks, outputs, staleness."""

import shutil

import dagster as dg
import polars as pl
from dagster._core.definitions.data_version import CachingStaleStatusResolver
from dagster._core.loader import LoadingContextForTest

from curation_dag.assets.dedup import exact_duplicates, minhash_signatures, near_duplicates
from curation_dag.assets.embed import embeddings
from curation_dag.assets.ingest import raw_documents
from curation_dag.assets.quality import quality_scores, quality_signals
from curation_dag.assets.recipe_models import model_assets
from curation_dag.assets.semantic import semantic_clusters, semantic_duplicates
from curation_dag.resources import StorageResource
from tests.assets.test_semantic_assets import resources
from tests.conftest import RECIPES

# One drop of each source. Not the three 2026-11-01 drops: there a singleton cluster's float32 distance comes out
# as -1.2e-7, and quality_scores' blocking scores_within_valid_ranges check fails upstream of the recipes.
PIPELINE = [
    raw_documents,
    minhash_signatures,
    quality_signals,
    exact_duplicates,
    near_duplicates,
    embeddings,
    semantic_clusters,
    semantic_duplicates,
    quality_scores,
]


def statuses(instance: dg.DagsterInstance, assets: list[dg.AssetsDefinition]) -> dict[str, str]:
    """Each recipe model's stale status as the UI shows it, for the code location holding `assets`."""
    graph = dg.Definitions(assets=[*PIPELINE, *assets], resources=resources(".")).resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    return {asset.key.to_user_string(): resolver.get_status(asset.key).value for asset in assets}


def test_shipped_models_materialize_with_lineage_from_ref_and_source_and_passing_checks(demo_pipeline):
    instance, store, run = demo_pipeline
    assets = model_assets(str(RECIPES))
    graph = dg.Definitions(assets=[*PIPELINE, *assets], resources=resources(".")).resolve_asset_graph()
    parents = {
        asset.key.to_user_string(): {k.to_user_string() for k in graph.get(asset.key).parent_keys} for asset in assets
    }
    assert parents == {
        "candidates": {
            "raw_documents",
            "quality_scores",
            "exact_duplicates",
            "near_duplicates",
            "semantic_duplicates",
            "takedowns",
        },
        "cluster_summary": {"candidates"},
    }
    checks = {asset.key.to_user_string(): sorted(spec.name for spec in asset.check_specs) for asset in assets}
    assert checks["cluster_summary"] == [
        "cluster_not_null", "cluster_relationships", "cluster_unique", "documents_expression", "expression_1",
    ]  # fmt: skip
    assert {"doc_id_unique", "source_accepted_values", "near_duplicate_of_relationships", "expression_1"} <= set(
        checks["candidates"]
    )
    assert all(spec.blocking for asset in assets for spec in asset.check_specs)
    assert {asset.group_names_by_key[asset.key] for asset in assets} == {"recipes"}

    result = dg.materialize(assets, **run)
    evaluations = result.get_asset_check_evaluations()
    assert result.success and len(evaluations) == sum(len(c) for c in checks.values())
    assert all(evaluation.passed for evaluation in evaluations)

    documents = pl.read_parquet(store / "raw_documents" / "*" / "*" / "documents.parquet")
    candidates = pl.read_parquet(store / "recipe_models" / "candidates.parquet")
    assert candidates["doc_id"].to_list() == sorted(documents["doc_id"])  # one row per ingested document
    assert "text" not in candidates.columns and candidates["chars"].sum() == documents["n_chars"].sum()
    assert candidates["exact_duplicate_of"].is_not_null().sum() > 0 and candidates["cluster"].is_not_null().sum() > 0
    summary = pl.read_parquet(store / "recipe_models" / "cluster_summary.parquet")
    assert summary["documents"].sum() == candidates["cluster"].is_not_null().sum()

    metadata = result.asset_materializations_for_node("candidates")[0].metadata
    assert metadata["dagster/row_count"].value == documents.height
    assert metadata["sql"].value.startswith("```sql\n-- One row per ingested document")
    assert 'FROM "raw_documents" AS documents' in metadata["sql"].value
    assert metadata["preview"].value.startswith("| doc_id | source | drop |")
    assert metadata["output"].value.endswith("recipe_models/candidates.parquet")


def test_editing_a_model_makes_it_and_its_downstream_stale_and_nothing_else(demo_pipeline, tmp_path):
    instance, store, run = demo_pipeline
    # Edited models write to a copy of the store, so the other tests keep reading the shipped models' outputs.
    copy = StorageResource(root=str(shutil.copytree(store, tmp_path / "store")))
    run = dict(run, resources=dict(run["resources"], storage=copy))
    folder = shutil.copytree(RECIPES, tmp_path / "recipes")
    (folder / "models" / "drop_sizes.sql").write_text(  # adding a file adds an asset
        "SELECT source, drop_id, count(*) AS documents FROM {{ source('raw_documents') }} GROUP BY ALL ORDER BY ALL\n"
    )
    assets = model_assets(str(folder))
    assert statuses(instance, assets)["drop_sizes"] == "MISSING"
    assert dg.materialize(assets, **run).success
    assert statuses(instance, assets) == {"candidates": "FRESH", "cluster_summary": "FRESH", "drop_sizes": "FRESH"}

    sql = folder / "models" / "candidates.sql"
    sql.write_text(sql.read_text().replace("    documents.content_hash,\n", ""))
    edited = model_assets(str(folder))
    assert statuses(instance, edited) == {"candidates": "STALE", "cluster_summary": "STALE", "drop_sizes": "FRESH"}

    summary_version = data_version(instance, "cluster_summary")
    again = dg.materialize([asset for asset in edited if asset.key.path != ["drop_sizes"]], **run)
    assert again.success and set(statuses(instance, edited).values()) == {"FRESH"}
    assert data_version(instance, "cluster_summary") == summary_version  # the summary's output did not change


def data_version(instance: dg.DagsterInstance, key: str) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    return event.asset_materialization.tags["dagster/data_version"]
