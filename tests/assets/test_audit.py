"""The lineage audit on the demo drops: explain names the right stage and evidence, audit agrees with
the manifest, diff lists exactly what a new drop added; and the commands' output."""

import json
import shutil

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from curation_dag.assets.dedup import exact_duplicates, minhash_signatures, near_duplicates
from curation_dag.assets.embed import embeddings
from curation_dag.assets.ingest import raw_documents
from curation_dag.assets.quality import quality_scores, quality_signals
from curation_dag.assets.semantic import semantic_clusters, semantic_duplicates
from curation_dag.cli import main
from curation_dag.resources import StorageResource
from curation_dag.steps.audit import lineage as audit
from curation_dag.steps.quality.rules import RULES
from tests.assets.test_mixture_assets import recipe_assets
from tests.conftest import RECIPES


@pytest.fixture(scope="module")
def mixtures(demo_pipeline):
    """The shipped mixtures built on the demo pipeline's store; yields the store root."""
    instance, root, run = demo_pipeline
    models, built = recipe_assets()
    assert dg.materialize(models + built, instance=instance, resources=run["resources"]).success
    return root


def ledger(root, name: str) -> pl.DataFrame:
    return pl.read_parquet(audit.mixture_folder(root, name) / "decisions.parquet")


@pytest.mark.parametrize(
    "name, stage", [("plain_dedup", s) for s in ("exact", "near", "semantic", "budget")]
    + [("quality_filtered", "filter"), ("d4_pruned", "pruning"), ("d4_pruned", "weights")],
)  # fmt: skip
def test_explain_names_the_stage_that_removed_a_document_and_its_evidence(mixtures, name, stage):
    decisions = ledger(mixtures, name)
    removed = decisions.filter(pl.col("stage") == stage).row(0, named=True)
    facts = audit.explain(mixtures, removed["doc_id"], RULES, audit.mixture_folder(mixtures, name))
    assert facts["mixture"]["verdict"] == "removed" and facts["mixture"]["stage"] == stage
    assert facts["mixture"]["reason"] == removed["reason"]
    assert facts["provenance"]["source"] == removed["doc_id"].split("/")[0]
    if stage in ("exact", "near", "semantic"):
        step = next(d for d in facts["decisions"] if d["stage"] == stage)
        assert step["duplicate"] and step["duplicate_of"] == removed["duplicate_of"]
        matched = step["matched_provenance"]
        assert (
            removed["duplicate_of"] == f"{matched['source']}/{matched['drop_id']}/{matched['shard']}#{matched['row']}"
        )
        if stage != "exact":
            similarity = step["jaccard" if stage == "near" else "cosine"]
            assert similarity == pytest.approx(removed["similarity"])
    if stage == "filter":
        rule_set = removed["reason"].split(" ")[0]
        step = next(d for d in facts["decisions"] if d["stage"] == f"quality:{rule_set}")
        assert not step["passes"] and step["first_failure"] == removed["rule"]
        assert step["value"] == pytest.approx(removed["value"])


def test_explain_a_kept_document_with_its_repeats_and_the_runs_behind_each_fact(mixtures):
    kept = ledger(mixtures, "d4_pruned").filter(pl.col("verdict") == "kept").sort("repeats").row(-1, named=True)
    facts = audit.explain(mixtures, kept["doc_id"], RULES, audit.mixture_folder(mixtures, "d4_pruned"))
    assert facts["mixture"]["verdict"] == "kept" and facts["mixture"]["repeats"] == kept["repeats"]
    assert not any(d.get("duplicate") for d in facts["decisions"])
    partition = "/".join(kept["doc_id"].split("/")[:2])
    provenance_run = facts["produced_by"]["provenance"]["partitions"][partition]
    assert provenance_run["code_version"] == "1" and provenance_run["run_id"]
    assert facts["produced_by"]["scores"]["data_version"]


def test_audit_totals_agree_with_the_manifest(mixtures):
    folder = audit.mixture_folder(mixtures, "plain_dedup")
    facts = audit.audit(folder)
    manifest = pl.read_parquet(folder / "manifest.parquet")
    assert facts["documents"] == manifest.height and facts["copies"] == manifest["repeats"].sum()
    assert facts["tokens"] == (manifest["tokens"] * manifest["repeats"]).sum()
    assert sum(row["documents"] for row in facts["funnel"]) == facts["candidates"]
    kept = next(row for row in facts["funnel"] if row["stage"] == "kept")
    assert kept["documents"] == manifest.height and kept["tokens"] == facts["tokens"]
    assert sum(row["tokens"] for row in facts["by_source"]) == facts["tokens"]
    assert sum(row["tokens"] for row in facts["by_cluster"]) == facts["tokens"]
    assert len(facts["drops"]) == 6 and "mixtures/plain_dedup.yml" in facts["recipes"]
    assert set(facts["upstream"]) >= {"raw_documents", "quality_scores", "candidates"}


def test_the_commands_print_and_emit_json(mixtures, monkeypatch):
    monkeypatch.setenv("CURATION_STORAGE_ROOT", str(mixtures))
    runner = CliRunner()
    near = ledger(mixtures, "plain_dedup").filter(pl.col("stage") == "near").row(0, named=True)
    shown = runner.invoke(main, ["explain", near["doc_id"], "--mixture", "plain_dedup"])
    assert shown.exit_code == 0, shown.output
    assert "REMOVED at near" in shown.output and f"duplicate of {near['duplicate_of']} (Jaccard" in shown.output
    as_json = json.loads(runner.invoke(main, ["audit", "plain_dedup", "--json"]).output)
    assert as_json["mixture"] == "plain_dedup" and as_json["tokens"] > 0
    unknown = runner.invoke(main, ["audit", "no_such_mix"])
    assert unknown.exit_code != 0 and "no mixture 'no_such_mix'" in unknown.output
    missing = runner.invoke(main, ["explain", "licenses/2026-11-01/nope#0"])
    assert missing.exit_code != 0 and "no document 'licenses/2026-11-01/nope#0'" in missing.output


def test_explain_names_the_bounds_of_the_configured_quality_yml(mixtures, monkeypatch, tmp_path):
    recipes = shutil.copytree(RECIPES, tmp_path / "recipes")
    quality = recipes / "quality.yml"
    quality.write_text(quality.read_text().replace("min_sentences: 5 ", "min_sentences: 7 "))
    monkeypatch.setenv("CURATION_STORAGE_ROOT", str(mixtures))
    monkeypatch.setenv("CURATION_RECIPES", str(recipes))
    candidates = pl.read_parquet(audit.mixture_folder(mixtures, "plain_dedup") / "candidates.parquet")
    doc_id = candidates.filter(pl.col("c4_failure") == "c4_min_sentences")["doc_id"][0]
    shown = CliRunner().invoke(main, ["explain", doc_id, "--mixture", "plain_dedup", "--json"])
    assert shown.exit_code == 0, shown.output
    c4 = next(d for d in json.loads(shown.output)["decisions"] if d["stage"] == "quality:c4")
    assert c4["first_failure"] == "c4_min_sentences" and c4["passes_when"] == "c4_sentences >= 7"


def test_diff_before_and_after_a_new_drop_lists_exactly_the_added_documents(instance, tmp_path, demo_pipeline):
    _, _, run = demo_pipeline
    storage = StorageResource(root=str(tmp_path / "store"))
    resources = dict(run["resources"], storage=storage)
    recipes = shutil.copytree(RECIPES, tmp_path / "recipes")
    for spec in (recipes / "mixtures").glob("*.yml"):
        spec.unlink()
    (recipes / "mixtures" / "docs.yml").write_text("budget_tokens: 40000\nweights: {python_docs: 1.0}\nseed: 3\n")
    models, mixtures = recipe_assets(recipes)
    step = dict(instance=instance, resources=resources)
    folders = []
    for key in ("python_docs/2026-11-01", "python_docs/2026-11-15"):
        instance.add_dynamic_partitions("drops", [key])
        assert dg.materialize([raw_documents, minhash_signatures, quality_signals], partition_key=key, **step).success
        assert dg.materialize([exact_duplicates, near_duplicates], **step).success
        assert dg.materialize([embeddings], partition_key=key, **step).success
        assert dg.materialize([semantic_clusters, semantic_duplicates, quality_scores], **step).success
        assert dg.materialize(models + mixtures, **step).success
        folders.append(audit.mixture_folder(storage.root, "docs"))

    change = audit.diff(*folders)
    before, after = (set(pl.read_parquet(f / "manifest.parquet")["doc_id"]) for f in folders)
    assert set(change["added"]["doc_ids"]) == after - before and change["added"]["documents"] > 0
    assert set(change["removed"]["doc_ids"]) == before - after
    assert sum(row["documents"] for row in change["removed"]["by_reason"]) == len(before - after)
    by_name = audit.diff(audit.mixture_folder(storage.root, f"docs@{folders[0].name[:8]}"), folders[1])
    assert by_name["added"]["doc_ids"] == change["added"]["doc_ids"]
