"""Quality signals per drop and quality scores across drops, through Dagster on the demo drops."""

import dagster as dg
import polars as pl

from curation_dag.assets.dedup import exact_duplicates, minhash_signatures, near_duplicates
from curation_dag.assets.embed import embeddings
from curation_dag.assets.ingest import raw_documents
from curation_dag.assets.quality import quality_scores, quality_signals
from curation_dag.assets.semantic import semantic_clusters
from curation_dag.steps.quality.rules import RULE_SETS
from tests.assets.test_semantic_assets import resources

KEYS = ["licenses/2026-11-01", "python_docs/2026-11-01"]


def test_signals_per_drop_then_scores_with_prototypicality_and_complexity(instance, tmp_path):
    run = dict(instance=instance, resources=resources(tmp_path))
    instance.add_dynamic_partitions("drops", KEYS)
    for key in KEYS:
        result = dg.materialize([raw_documents, minhash_signatures, quality_signals], partition_key=key, **run)
        assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    metadata = result.asset_materializations_for_node("quality_signals")[0].metadata
    rates = metadata["pass_rates"].value
    assert "gopher_quality" in rates and "| fineweb_line_punctuation | fineweb_line_punct_frac >= 0.12 |" in rates
    assert metadata["signal_distributions"].value.startswith("![Quality signals of python_docs/2026-11-01")
    assert "| rule | passes | doc_id | value | opening |" in metadata["failing_examples"].value

    signals = pl.read_parquet(tmp_path / "quality_signals" / "python_docs" / "2026-11-01" / "signals.parquet")
    documents = pl.read_parquet(tmp_path / "raw_documents" / "python_docs" / "2026-11-01" / "documents.parquet")
    assert signals["doc_id"].to_list() == documents["doc_id"].to_list()  # every document, in order
    assert signals.null_count().select(pl.exclude("^.*_failure$")).sum_horizontal().item() == 0
    assert signals.filter(pl.col("language") == "en").height > 0.9 * signals.height  # the Python docs are English

    assert dg.materialize([exact_duplicates, near_duplicates], **run).success
    for key in KEYS:
        assert dg.materialize([embeddings], partition_key=key, **run).success
    result = dg.materialize([semantic_clusters, quality_scores], **run)
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    metadata = result.asset_materializations_for_node("quality_scores")[0].metadata
    assert metadata["absorbed_now"].value == 2 and "| source | documents |" in metadata["pass_rates_by_source"].value

    scores = pl.read_parquet(tmp_path / "quality_scores" / "decisions" / "*" / "*.parquet")
    assert scores.height == signals.height + pl.read_parquet(tmp_path / "quality_signals" / "licenses").height
    clustered = scores.filter(pl.col("cluster").is_not_null())
    near = pl.read_parquet(tmp_path / "near_duplicates" / "decisions" / "*" / "*.parquet")
    assert clustered.height == near.filter(pl.col("duplicate_of").is_null()).height  # the embedded survivors
    assert clustered["prototypicality"].is_between(0, 2).all()
    assert set(RULE_SETS) <= set(scores.columns)
    complexity = pl.read_parquet(tmp_path / "quality_scores" / "cluster_complexity.parquet")
    assert complexity["size"].sum() == clustered.height and (complexity["complexity"] >= 0).all()

    again = dg.materialize([quality_scores], **run)  # nothing new: the same data version
    assert again.asset_materializations_for_node("quality_scores")[0].metadata["absorbed_now"].value == 0
    versions = [
        r.asset_materializations_for_node("quality_scores")[0].tags["dagster/data_version"] for r in (result, again)
    ]
    assert versions[0] == versions[1]
