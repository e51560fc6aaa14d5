"""Embeddings: sentence vectors of each drop's documents that survive exact and near dedup."""

import time

import dagster as dg
import numpy as np
import polars as pl

from curation_dag.assets.dedup import near_duplicates
from curation_dag.assets.ingest import raw_documents
from curation_dag.automation.conditions import once_absorbed_by
from curation_dag.checks.sql import sql_check
from curation_dag.metadata import file_digest
from curation_dag.partitions import drops_partitions
from curation_dag.resources import StorageResource
from curation_dag.resources.embedder import EmbedderResource
from curation_dag.store.atomic import atomic_path
from curation_dag.store.ledger import Ledger

# On Kubernetes (dagster-k8s), each step of this asset asks for one GPU.
GPU_REQUEST = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}


@dg.asset(
    partitions_def=drops_partitions,
    deps=[raw_documents, near_duplicates],
    group_name="embed",
    kinds={"torch", "parquet"},
    code_version="1",
    pool="gpu",
    op_tags=GPU_REQUEST,
    automation_condition=once_absorbed_by(near_duplicates.key),
    check_specs=[
        dg.AssetCheckSpec(
            "vectors_are_finite_unit_length",
            asset="embeddings",
            blocking=True,
            description="Every vector is finite, of the model's dimension, with L2 norm 1.",
        )
    ],
)
def embeddings(
    context: dg.AssetExecutionContext, storage: StorageResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """L2-normalized sentence embeddings of the drop's deduplicated documents, cached by content hash."""
    key = context.partition_key
    near = Ledger(storage.asset_dir("near_duplicates"))
    if key not in near.keys:
        raise dg.Failure(description=_not_deduplicated(context, storage, key, near))
    kept = pl.read_parquet(near.committed(key)).filter(pl.col("duplicate_of").is_null()).select("doc_id")
    documents = pl.read_parquet(
        storage.upstream_file("raw_documents", key, "documents.parquet"), columns=["doc_id", "content_hash", "text"]
    ).join(kept, on="doc_id")

    folder = storage.asset_dir("embeddings")
    out = storage.asset_dir("embeddings", key) / f"{embedder.model_id}.parquet"
    vector = pl.Array(pl.Float32, embedder.dimension)
    earlier = sorted(folder.glob(f"*/*/{embedder.model_id}.parquet"))  # this drop's last run included
    cached = _cached_vectors(earlier, documents["content_hash"], vector)
    missing = documents.join(cached, on="content_hash", how="anti")
    started = time.perf_counter()
    fresh = (
        pl.DataFrame(
            {
                "content_hash": missing["content_hash"],
                "vector": pl.Series(embedder.encode(missing["text"].to_list()), dtype=vector),
            }
        )
        if missing.height
        else cached.clear()
    )
    seconds = time.perf_counter() - started
    vectors = pl.concat([cached, fresh]).unique("content_hash")
    table = documents.select("doc_id", "content_hash").join(vectors, on="content_hash", maintain_order="left")
    with atomic_path(out) as temporary:
        table.write_parquet(temporary, compression="zstd")

    written = pl.read_parquet(out)
    matrix = written["vector"].to_numpy().reshape(written.height, -1)
    norms = pl.DataFrame(
        {
            "doc_id": written["doc_id"],
            "dimension": matrix.shape[1],
            "norm": np.linalg.norm(matrix, axis=1),
            "finite": np.isfinite(matrix).all(axis=1),
        }
    )
    check = sql_check(
        "embeddings",
        "vectors_are_finite_unit_length",
        f"SELECT * FROM norms WHERE NOT finite OR abs(norm - 1) > 1e-3 OR dimension != {embedder.dimension}",
        norms=norms,
    )
    return dg.MaterializeResult(
        metadata={
            "documents": written.height,
            "embedded_now": missing.height,
            "from_cache": written.height - missing.height,
            "docs_per_second": round(missing.height / seconds, 1) if missing.height and seconds else None,
            "device": embedder.running_on,
            "backend": embedder.backend,
            "model": embedder.model_id,
            "dimension": embedder.dimension,
            "vectors": dg.MetadataValue.path(str(out)),
        },
        data_version=dg.DataVersion(file_digest(out)),
        check_results=[check],
    )


def _cached_vectors(files: list, hashes: pl.Series, vector: pl.DataType) -> pl.DataFrame:
    """Vectors of the wanted texts that earlier drops or runs computed with the same model.

    Reads only the content hashes of earlier files, and the vectors that match."""
    if not files:
        return pl.DataFrame(schema={"content_hash": pl.String, "vector": vector})
    wanted = hashes.unique().implode()
    found = pl.scan_parquet(files).filter(pl.col("content_hash").is_in(wanted)).select("content_hash", "vector")
    return found.collect().unique("content_hash").with_columns(pl.col("vector").cast(vector))


def _not_deduplicated(context: dg.AssetExecutionContext, storage: StorageResource, key: str, near: Ledger) -> str:
    """Why a drop is not in near_duplicates yet, and what to materialize."""
    exact = Ledger(storage.asset_dir("exact_duplicates")).keys
    waiting = exact[len(near.keys)] if len(exact) > len(near.keys) else None
    if key in exact and waiting not in context.instance.get_materialized_partitions(dg.AssetKey("minhash_signatures")):
        return (f"drop {key} is not deduplicated yet: near_duplicates absorbs drops in arrival order and waits for "
                f"drop {waiting}, which has no minhash_signatures. Materialize minhash_signatures for {waiting}, "
                "then near_duplicates")  # fmt: skip
    return f"drop {key} is not deduplicated yet: materialize near_duplicates (dedup_job) first"
