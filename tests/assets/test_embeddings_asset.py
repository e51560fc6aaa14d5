"""Embeddings with the real bundled MiniLM through Dagster, on deduplicated demo drops."""

import dagster as dg
import numpy as np
import polars as pl
import pydantic
import pytest

from curation_dag.assets.dedup import exact_duplicates, minhash_signatures, near_duplicates
from curation_dag.assets.embed import embeddings
from curation_dag.assets.ingest import raw_documents
from curation_dag.resources import DropsResource, EmbedderResource, RecipesResource, StorageResource
from tests.conftest import DEMO_DROPS, MODEL_CACHE, RECIPES

KEYS = ["python_docs/2026-11-01", "python_docs/2026-11-15"]


def resources(storage_root, device="auto"):
    recipes = RecipesResource(folder=str(RECIPES))
    return {
        "storage": StorageResource(root=str(storage_root)),
        "recipes": recipes,
        "drops": DropsResource(drops_root=str(DEMO_DROPS), recipes=recipes),
        "embedder": EmbedderResource(device=device, cpu_backend="minilm", cache_dir=MODEL_CACHE),
    }


def embed(instance, storage_root, key, device="auto"):
    return dg.materialize(
        [embeddings],
        partition_key=key,
        instance=instance,
        resources=resources(storage_root, device),
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def deduplicated(tmp_path_factory):
    """Two demo drops, ingested, signed and deduplicated, on one instance."""
    storage_root = tmp_path_factory.mktemp("store")
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("drops", KEYS)
        for key in KEYS:
            dg.materialize(
                [raw_documents, minhash_signatures],
                partition_key=key,
                instance=instance,
                resources=resources(storage_root),
            )
        dg.materialize([exact_duplicates, near_duplicates], instance=instance, resources=resources(storage_root))
        yield instance, storage_root


def test_vectors_of_every_kept_document_are_unit_length(deduplicated):
    instance, storage_root = deduplicated
    result = embed(instance, storage_root, KEYS[0])
    assert result.success
    metadata = result.asset_materializations_for_node("embeddings")[0].metadata
    assert metadata["device"].value == "cpu" and metadata["backend"].value == "onnxruntime int8"
    near = pl.read_parquet(storage_root / "near_duplicates" / "decisions" / f"{KEYS[0]}.parquet")
    vectors = pl.read_parquet(storage_root / "embeddings" / KEYS[0] / "all-MiniLM-L6-v2-256x4w2-onnx-int8.parquet")
    assert set(vectors["doc_id"]) == set(near.filter(pl.col("duplicate_of").is_null())["doc_id"])
    matrix = vectors["vector"].to_numpy().reshape(vectors.height, -1)
    assert matrix.shape[1] == 384 and np.allclose(np.linalg.norm(matrix, axis=1), 1, atol=1e-4)
    assert all(check.passed for check in result.get_asset_check_evaluations())

    again = embed(instance, storage_root, KEYS[0])  # a re-run embeds nothing twice
    rerun = again.asset_materializations_for_node("embeddings")[0].metadata
    assert rerun["embedded_now"].value == 0 and rerun["from_cache"].value == vectors.height
    assert pl.read_parquet(storage_root / "embeddings" / KEYS[0] / "all-MiniLM-L6-v2-256x4w2-onnx-int8.parquet").equals(
        vectors
    )


def test_similar_texts_are_closer_than_unrelated_ones():
    embedder = EmbedderResource(cpu_backend="minilm", cache_dir=MODEL_CACHE)
    embedder.setup_for_execution(dg.build_init_resource_context())
    a, b, c = embedder.encode(
        ["How do I open a file in Python?", "Opening files with Python", "The cat sat on the mat."]
    )
    assert a @ b > a @ c + 0.2


def test_embedding_a_drop_before_dedup_says_what_to_run(deduplicated):
    instance, storage_root = deduplicated
    instance.add_dynamic_partitions("drops", ["licenses/2026-11-01"])
    result = embed(instance, storage_root, "licenses/2026-11-01")
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert (
        "not deduplicated yet: materialize near_duplicates" in failure.step_failure_data.user_failure_data.description
    )


def test_asking_for_cuda_without_a_gpu_fails_clearly():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here; this test is about machines without one")
    with pytest.raises(dg.Failure, match="no GPU is visible; use auto or cpu"):
        EmbedderResource(device="cuda").setup_for_execution(dg.build_init_resource_context())


@pytest.mark.parametrize(("field", "value"), [("device", "gpu"), ("cpu_backend", "onnx")])
def test_an_unknown_device_or_cpu_backend_is_refused_by_its_config(field, value):
    with pytest.raises(pydantic.ValidationError, match=field):
        EmbedderResource(**{field: value})


def test_the_gpu_path_embeds_on_cuda(deduplicated):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no GPU visible: the CUDA path runs only where one is")
    instance, storage_root = deduplicated
    result = embed(instance, storage_root, KEYS[1], device="cuda")
    assert result.asset_materializations_for_node("embeddings")[0].metadata["device"].value == "cuda"
