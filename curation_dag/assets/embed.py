"""Embeddings: sentence vectors of each drop's documents that survive exact and near dedup."""

from pathlib import Path

import dagster as dg

from curation_dag.automation.conditions import once_absorbed_by
from curation_dag.checks.embed import UNIT_VECTORS_SPEC, check_unit_vectors
from curation_dag.metadata import file_digest
from curation_dag.partitions import drops_partitions
from curation_dag.resources import StorageResource
from curation_dag.resources.embedder import EmbedderResource
from curation_dag.steps.embed.vectors import Embedded, embed_drop, kept_documents
from curation_dag.store.files import read_parquet
from curation_dag.store.layout import EXACT_DUPLICATES, MINHASH_SIGNATURES, NEAR_DUPLICATES, RAW_DOCUMENTS
from curation_dag.store.ledger import Ledger

# On Kubernetes (dagster-k8s), each step of this asset asks for one GPU.
GPU_REQUEST = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}


@dg.asset(
    partitions_def=drops_partitions,
    deps=[RAW_DOCUMENTS, NEAR_DUPLICATES],
    group_name="embed",
    kinds={"torch", "parquet"},
    code_version="3",  # 2: whole-document windows; 3: consecutive parts, long texts sliced
    pool="gpu",
    op_tags=GPU_REQUEST,
    automation_condition=once_absorbed_by(dg.AssetKey(NEAR_DUPLICATES)),
    check_specs=[UNIT_VECTORS_SPEC],
)
def embeddings(
    context: dg.AssetExecutionContext, storage: StorageResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """L2-normalized sentence embeddings of the drop's deduplicated documents, cached by content hash."""
    key, layout = context.partition_key, storage.layout
    near = Ledger(layout.asset(NEAR_DUPLICATES))
    if key not in near.keys:
        raise dg.Failure(description=_not_deduplicated(context, storage, key, near))
    documents = kept_documents(near.committed(key), storage.upstream(layout.documents(key), RAW_DOCUMENTS, key))
    out = layout.embeddings(key, embedder.model_id)
    earlier = storage.layout.embeddings_files(embedder.model_id)  # this drop's last run included
    embedded = embed_drop(documents, earlier, embedder.encode, embedder.dimension, out)
    written = read_parquet(out)
    return dg.MaterializeResult(
        metadata=_metadata(written.height, embedded, embedder, out),
        data_version=dg.DataVersion(file_digest(out)),
        check_results=[check_unit_vectors(written, embedder.dimension)],
    )


def _metadata(documents: int, embedded: Embedded, embedder: EmbedderResource, out: Path) -> dict:
    return {
        "documents": documents,
        "embedded_now": embedded.fresh,
        "from_cache": documents - embedded.fresh,
        "docs_per_second": round(embedded.fresh / embedded.seconds, 1) if embedded.fresh and embedded.seconds else None,
        "device": embedder.running_on,
        "backend": embedder.backend,
        "model": embedder.model_id,
        "dimension": embedder.dimension,
        "vectors": dg.MetadataValue.path(str(out)),
    }


def _not_deduplicated(context: dg.AssetExecutionContext, storage: StorageResource, key: str, near: Ledger) -> str:
    """Why a drop is not in near_duplicates yet, and what to materialize."""
    exact = Ledger(storage.layout.asset(EXACT_DUPLICATES)).keys
    waiting = exact[len(near.keys)] if len(exact) > len(near.keys) else None
    if key in exact and waiting not in context.instance.get_materialized_partitions(dg.AssetKey(MINHASH_SIGNATURES)):
        return (f"drop {key} is not deduplicated yet: near_duplicates absorbs drops in arrival order and waits for "
                f"drop {waiting}, which has no minhash_signatures. Materialize minhash_signatures for {waiting}, "
                "then near_duplicates")  # fmt: skip
    return f"drop {key} is not deduplicated yet: materialize near_duplicates (dedup_job) first"
