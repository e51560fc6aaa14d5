"""The vectors of one drop: its documents that survive dedup, embedded once per text and model, the
vectors of texts that earlier drops or runs embedded with the same model reused by content hash."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from curation_dag.store.atomic import atomic_path
from curation_dag.store.files import read_parquet, scan_parquet


@dataclass
class Embedded:
    """What `embed_drop` did: `fresh` texts encoded now in `seconds`, the rest from the cache."""

    fresh: int
    seconds: float


def kept_documents(near_decisions: Path, documents: Path) -> pl.DataFrame:
    """`doc_id`, `content_hash` and `text` of a drop's documents that near dedup kept (exact dedup's
    duplicates never reach near dedup), in the order of the documents file."""
    kept = read_parquet(near_decisions).filter(pl.col("duplicate_of").is_null()).select("doc_id")
    return read_parquet(documents, columns=["doc_id", "content_hash", "text"]).join(kept, on="doc_id")


def embed_drop(
    documents: pl.DataFrame,
    earlier: list[Path],
    encode: Callable[[list[str]], np.ndarray],
    dimension: int,
    out: Path,
) -> Embedded:
    """Write `out` (Parquet, atomic): `doc_id`, `content_hash` and `vector` of each document, the
    vectors of texts in `earlier` files read from them and the others encoded."""
    vector = pl.Array(pl.Float32, dimension)
    cached = _cached_vectors(earlier, documents["content_hash"], vector)
    missing = documents.join(cached, on="content_hash", how="anti")
    started = time.perf_counter()
    fresh = (
        pl.DataFrame(
            {
                "content_hash": missing["content_hash"],
                "vector": pl.Series(encode(missing["text"].to_list()), dtype=vector),
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
    return Embedded(missing.height, seconds)


def _cached_vectors(files: list[Path], hashes: pl.Series, vector: pl.DataType) -> pl.DataFrame:
    """Vectors of the wanted texts that earlier drops or runs computed with the same model.

    Reads only the content hashes of earlier files, and the vectors that match."""
    if not files:
        return pl.DataFrame(schema={"content_hash": pl.String, "vector": vector})
    wanted = hashes.unique().implode()
    found = scan_parquet(files).filter(pl.col("content_hash").is_in(wanted)).select("content_hash", "vector")
    return found.collect().unique("content_hash").with_columns(pl.col("vector").cast(vector))


def vector_norms(table: pl.DataFrame) -> pl.DataFrame:
    """Per document of a vectors file: the dimension, L2 norm and finiteness of its vector."""
    matrix = table["vector"].to_numpy().reshape(table.height, -1)
    return pl.DataFrame(
        {
            "doc_id": table["doc_id"],
            "dimension": matrix.shape[1],
            "norm": np.linalg.norm(matrix, axis=1),
            "finite": np.isfinite(matrix).all(axis=1),
        }
    )
