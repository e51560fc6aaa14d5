"""The check on embeddings: every vector of the written file is usable for cosine similarity."""

import dagster as dg
import polars as pl

from curation_dag.checks.sql import sql_check
from curation_dag.steps.embed.vectors import vector_norms
from curation_dag.store.layout import EMBEDDINGS

UNIT_VECTORS = "vectors_are_finite_unit_length"

UNIT_VECTORS_SPEC = dg.AssetCheckSpec(
    UNIT_VECTORS,
    asset=EMBEDDINGS,
    blocking=True,
    description="Every vector is finite, of the model's dimension, with L2 norm 1.",
)


def check_unit_vectors(written: pl.DataFrame, dimension: int) -> dg.AssetCheckResult:
    return sql_check(
        EMBEDDINGS,
        UNIT_VECTORS,
        f"SELECT * FROM norms WHERE NOT finite OR abs(norm - 1) > 1e-3 OR dimension != {dimension}",
        norms=vector_norms(written),
    )
