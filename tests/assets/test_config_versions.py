"""Recipe settings in code versions: an edit changes the versions of exactly the assets whose output it
steers, and editing SemDeDup's eps judges every drop again without a refit."""

import shutil

import dagster as dg
import pytest

from curation_dag.assets.embed import embeddings
from curation_dag.assets.semantic import semantic_clusters, semantic_duplicates
from curation_dag.definitions import build_definitions
from curation_dag.resources import EmbedderResource, RecipesResource
from curation_dag.store.ledger import Ledger
from tests.assets.test_semantic_assets import KEYS, deduplicated, resources
from tests.conftest import DEMO_DROPS, RECIPES

# An edit of each recipe file, and the assets whose code version it changes.
EDITS = {
    "eps": ("semantic.yml", "eps: 0.05", "eps: 0.1", {"semantic_duplicates"}),
    "keep": ("semantic.yml", "keep: farthest", "keep: closest", {"semantic_duplicates"}),
    "drift warning": ("semantic.yml", "drift_share: 0.2", "drift_share: 0.3", set()),
    "k-means seed": ("semantic.yml", "seed: 1", "seed: 2", {"semantic_clusters"}),
    "quality threshold": ("quality.yml", "min_words: 50", "min_words: 40", {"quality_signals", "quality_scores"}),
    "minhash": ("dedup.yml", "num_perm: 128", "num_perm: 64", {"minhash_signatures", "near_duplicates"}),
    "dedup rate band": ("dedup.yml", "exact_rate: {low: 0.0, high: 0.5}", "exact_rate: {low: 0.0, high: 0.4}", set()),
    "sources": ("sources.yml", "text_field: content", "text_field: body", {"raw_documents"}),
}


def edited(tmp_path, file: str, old: str, new: str):
    folder = tmp_path / "recipes"
    shutil.copytree(RECIPES, folder)
    text = (folder / file).read_text()
    assert old in text
    (folder / file).write_text(text.replace(old, new))
    return folder


def test_shipped_recipes_version_every_asset_they_steer():
    versions = RecipesResource(folder=str(RECIPES)).code_versions()
    assert set(versions) == {
        "raw_documents", "minhash_signatures", "near_duplicates", "semantic_clusters", "semantic_duplicates",
        "quality_signals", "quality_scores",
    }  # fmt: skip
    assert all(len(version) == 12 for version in versions.values())
    assert versions == RecipesResource(folder=str(RECIPES)).code_versions()  # stable


@pytest.mark.parametrize("edit", EDITS, ids=str)
def test_an_edit_changes_exactly_the_versions_of_the_assets_it_steers(tmp_path, edit):
    file, old, new, changed = EDITS[edit]
    before = RecipesResource(folder=str(RECIPES)).code_versions()
    after = RecipesResource(folder=str(edited(tmp_path, file, old, new))).code_versions()
    assert {name for name in before if before[name] != after[name]} == changed


def test_the_code_location_carries_the_versions(tmp_path):
    folder = edited(tmp_path, *EDITS["eps"][:3])
    graphs = [
        build_definitions(
            str(recipes), str(DEMO_DROPS), str(tmp_path / "store"), EmbedderResource()
        ).resolve_asset_graph()
        for recipes in (RECIPES, folder)
    ]
    versions = [
        {key.to_user_string(): graph.get(key).code_version for key in graph.get_all_asset_keys()} for graph in graphs
    ]
    assert (
        versions[0]["semantic_duplicates"]
        == RecipesResource(folder=str(RECIPES)).code_versions()["semantic_duplicates"]
    )
    assert versions[0]["exact_duplicates"] == versions[0]["takedowns"] == "1" and versions[0]["embeddings"] == "3"
    assert {name for name in versions[0] if versions[0][name] != versions[1][name]} == {"semantic_duplicates"}


def test_editing_eps_judges_every_drop_again_without_a_refit(instance, tmp_path):
    run = deduplicated(instance, tmp_path / "store")
    for key in KEYS:
        assert dg.materialize([embeddings], partition_key=key, **run).success
    assert dg.materialize([semantic_clusters, semantic_duplicates], **run).success
    fit = (tmp_path / "store" / "semantic_clusters" / "fit.json").read_text()
    assert all(
        e["semdedup"] == {"eps": 0.05, "keep": "farthest", "candidate_cosine": 0.95, "languages": ["en"]}
        for e in Ledger(tmp_path / "store" / "semantic_duplicates").drops
    )

    recipes = edited(tmp_path, "semantic.yml", "eps: 0.05", "eps: 0.1")
    (recipes / "semantic.yml").write_text(
        (recipes / "semantic.yml").read_text().replace("drift_share: 0.2", "drift_share: 0.3")
    )
    result = dg.materialize(
        [semantic_clusters, semantic_duplicates], instance=instance, resources=resources(tmp_path / "store", recipes)
    )
    assert result.success
    assert result.asset_materializations_for_node("semantic_clusters")[0].metadata["assigned_now"].value == 0
    assert (tmp_path / "store" / "semantic_clusters" / "fit.json").read_text() == fit  # no refit
    duplicates = result.asset_materializations_for_node("semantic_duplicates")[0].metadata
    assert duplicates["absorbed_now"].value == len(KEYS) and duplicates["eps"].value == 0.1
    assert [e["semdedup"] for e in Ledger(tmp_path / "store" / "semantic_duplicates").drops] == [
        {"eps": 0.1, "keep": "farthest", "candidate_cosine": 0.95, "languages": ["en"]}
    ] * len(KEYS)
