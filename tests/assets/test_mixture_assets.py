"""The shipped mixtures on the demo drops: budgets, shares, repeat caps, verdicts, determinism, errors."""

import re
import shutil

import dagster as dg
import polars as pl
import pytest

from curation_dag.assets.mixtures import mixture_assets
from curation_dag.assets.recipe_models import model_assets
from curation_dag.resources import RecipesResource, StorageResource
from curation_dag.steps.audit.lineage import mixture_folder
from curation_dag.steps.mixtures import build
from curation_dag.steps.mixtures.selection import MixtureSpec, load_mixtures
from curation_dag.steps.recipes.files import RecipeError
from tests.assets.test_recipe_model_assets import statuses
from tests.conftest import RECIPES


def recipe_assets(folder=RECIPES) -> tuple[list, list]:
    models = model_assets(str(folder))
    return models, mixture_assets(folder, models)


@pytest.fixture(scope="module")
def built(demo_pipeline):
    """The shipped models and mixtures materialized once on the demo pipeline's outputs."""
    instance, root, run = demo_pipeline
    models, mixtures = recipe_assets()
    result = dg.materialize(models + mixtures, instance=instance, resources=run["resources"])
    assert result.success
    return result, root, models, mixtures


def test_mixture_assets_follow_their_pool_and_declare_blocking_checks(built):
    _, _, models, mixtures = built
    resources = {"storage": StorageResource(), "recipes": RecipesResource()}
    graph = dg.Definitions(assets=models + mixtures, resources=resources).resolve_asset_graph()
    names = {mixture.key.path[-1] for mixture in mixtures}
    assert names == {"mixture_plain_dedup", "mixture_quality_filtered", "mixture_d4_pruned", "mixture_code_long_files"}
    for mixture in mixtures:
        parents = {key.to_user_string() for key in graph.get(mixture.key).parent_keys}
        assert parents == {"candidates", "quality_scores", "raw_documents"}
        checks = {spec.name: spec.blocking for spec in mixture.check_specs}
        assert checks == dict.fromkeys(
            ["one_verdict_per_candidate", "budget_met", "weights_met", "repeats_within_cap", "only_kept_documents"],
            True,
        )


@pytest.mark.parametrize("name", ["plain_dedup", "quality_filtered", "d4_pruned", "code_long_files"])
def test_shipped_mixture_meets_its_spec(built, name):
    result, root, _, _ = built
    spec, _ = load_mixtures(RECIPES / "mixtures", {"candidates", "cluster_summary"})[name]
    assert all(c.passed for c in result.get_asset_check_evaluations() if c.asset_key.path[-1] == f"mixture_{name}")
    folder = mixture_folder(root, name)
    manifest = pl.read_parquet(folder / "manifest.parquet")
    decisions = pl.read_parquet(folder / "decisions.parquet")
    documents = (
        pl.read_ndjson(folder / "documents.jsonl")
        if spec.format == "jsonl"
        else pl.read_parquet(folder / "documents.parquet")
    )
    candidates = pl.read_parquet(root / "recipe_models" / "candidates.parquet")

    tokens = (manifest["tokens"] * manifest["repeats"]).sum()
    assert abs(tokens - spec.budget_tokens) <= spec.budget_tolerance * spec.budget_tokens
    by_source = manifest.group_by("source").agg((pl.col("tokens") * pl.col("repeats")).sum())
    for source, got in by_source.iter_rows():
        target = spec.weights[source] * spec.budget_tokens
        assert abs(got - target) <= spec.budget_tolerance * target, (source, got, target)
    assert manifest["repeats"].max() <= spec.max_repeats
    assert sorted(decisions["doc_id"]) == sorted(candidates["doc_id"])  # exactly one verdict per candidate
    removed = set(decisions.filter(pl.col("verdict") == "removed")["doc_id"])
    assert removed and not removed & set(documents["doc_id"])
    copies = documents.group_by("doc_id").len()
    assert dict(copies.iter_rows()) == dict(manifest.select("doc_id", "repeats").iter_rows())
    assert documents["position"].to_list() == list(range(documents.height))
    assert decisions.filter(pl.col("verdict") == "removed")["reason"].null_count() == 0
    metadata = result.asset_materializations_for_node(f"mixture_{name}")[0].metadata
    assert metadata["funnel_plot"].value.startswith("![funnel](data:image/png;base64,")
    assert metadata["report"].value == str(folder / "report.html") and (folder / "report.html").is_file()


def test_rebuilding_gives_the_same_manifest_and_counts_no_token_again(built, demo_pipeline):
    result, root, models, mixtures = built
    instance, _, run = demo_pipeline
    again = dg.materialize(mixtures, instance=instance, resources=run["resources"],
                           selection=[m.key for m in mixtures])  # fmt: skip
    for mixture in mixtures:
        node = mixture.key.path[-1]
        first = result.asset_materializations_for_node(node)[0].metadata["manifest_sha256"].value
        metadata = again.asset_materializations_for_node(node)[0].metadata
        assert metadata["manifest_sha256"].value == first and metadata["tokens_counted_now"].value == 0


@pytest.mark.parametrize("name", ["d4_pruned", "code_long_files"])  # repeats in Parquet; JSON lines
def test_texts_streamed_in_small_batches_and_runs_give_the_same_documents_file(built, demo_pipeline, monkeypatch, name):
    _, root, _, mixtures = built
    instance, _, run = demo_pipeline
    folder = mixture_folder(root, name)
    path = next(folder.glob("documents.*"))
    whole = path.read_bytes() if path.suffix == ".jsonl" else pl.read_parquet(path)
    monkeypatch.setattr(build, "BATCH_ROWS", 7)
    monkeypatch.setattr(build, "RUN_CHARS", 20_000)  # several runs, each spilled from many batches
    (mixture,) = [m for m in mixtures if m.key.path[-1] == f"mixture_{name}"]
    assert dg.materialize([mixture], instance=instance, resources=run["resources"], selection=[mixture.key]).success
    assert mixture_folder(root, name) == folder and pl.read_parquet(folder / "manifest.parquet")["tokens"].sum() > 0
    chars = sum(
        len(text) for text in (pl.read_ndjson(path) if path.suffix == ".jsonl" else pl.read_parquet(path))["text"]
    )
    assert chars > 3 * build.RUN_CHARS
    assert (path.read_bytes() == whole) if path.suffix == ".jsonl" else pl.read_parquet(path).equals(whole)


def test_a_filter_reason_names_the_bounds_of_the_configured_quality_yml(built, tmp_path):
    _, root, _, _ = built
    recipes = shutil.copytree(RECIPES, tmp_path / "recipes")
    quality = recipes / "quality.yml"
    quality.write_text(quality.read_text().replace("min_line_punct_frac: 0.12", "min_line_punct_frac: 0.15"))
    store = shutil.copytree(root, tmp_path / "store")
    _, mixtures = recipe_assets(recipes)
    mixture = next(m for m in mixtures if m.key.path[-1] == "mixture_quality_filtered")
    resources = {"storage": StorageResource(root=str(store)), "recipes": RecipesResource(folder=str(recipes))}
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize([mixture], instance=instance, resources=resources).success
    decisions = pl.read_parquet(mixture_folder(store, "quality_filtered") / "decisions.parquet")
    reasons = decisions.filter(pl.col("rule") == "fineweb_line_punctuation")["reason"]
    assert reasons.len() and reasons.str.ends_with("(passes when fineweb_line_punct_frac >= 0.15)").all()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "budget_tokens: 150000\npool: candidates\nweights: {python_code: 0.1, python_docs: 0.9}\n",
            "source python_docs has .* its weight 0.9 needs 135000 tokens, more than max_repeats 1 can give",
        ),
        (  # every code file is longer than 5 tokens: whole documents reach 0, then the shortest file
            "budget_tokens: 5\npool: candidates\nweights: {python_code: 1.0}\n",
            r"source python_code: no choice of whole documents .* totals 5 tokens within budget_tolerance 0.005 "
            r"\(5..5\); the nearest reachable totals are 0 and \d+ tokens. Raise budget_tolerance to 1.0000 or more",
        ),
    ],
    ids=["short of tokens", "no whole documents in the window"],
)
def test_an_infeasible_mixture_fails_before_writing_with_the_source_and_numbers(
    built, demo_pipeline, tmp_path, spec, expected
):
    instance, root, run = demo_pipeline
    recipes = shutil.copytree(RECIPES, tmp_path / "recipes")
    for existing in (recipes / "mixtures").glob("*.yml"):
        existing.unlink()
    (recipes / "mixtures" / "greedy.yml").write_text(spec)
    models, mixtures = recipe_assets(recipes)
    result = dg.materialize(mixtures, instance=instance, resources=run["resources"],
                            selection=[m.key for m in mixtures], raise_on_error=False)  # fmt: skip
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.user_failure_data.description
    assert re.match(re.escape(f"{recipes / 'mixtures' / 'greedy.yml'}: ") + expected, message), message
    assert not (root / "mixtures" / "greedy").exists()


def test_a_spec_naming_an_unknown_pool_fails_when_the_code_location_loads(tmp_path):
    recipes = shutil.copytree(RECIPES, tmp_path / "recipes")
    (recipes / "mixtures" / "lost.yml").write_text("budget_tokens: 10\nweights: {licenses: 1}\npool: nowhere\n")
    with pytest.raises(RecipeError, match=r"lost.yml, line 1: pool 'nowhere' is neither a recipe model"):
        recipe_assets(recipes)
    assert MixtureSpec(budget_tokens=1, weights={"a": 1}).pool == "candidates"


def test_editing_a_spec_makes_only_its_mixture_stale(built, demo_pipeline, tmp_path):
    instance, _, _ = demo_pipeline
    recipes = shutil.copytree(RECIPES, tmp_path / "recipes")
    models, mixtures = recipe_assets(recipes)
    assert set(statuses(instance, models + mixtures).values()) == {"FRESH"}
    spec = recipes / "mixtures" / "d4_pruned.yml"
    spec.write_text(spec.read_text().replace("seed: 1", "seed: 2"))
    models, mixtures = recipe_assets(recipes)
    stale = {key for key, status in statuses(instance, models + mixtures).items() if status != "FRESH"}
    assert stale == {"mixture_d4_pruned"}
