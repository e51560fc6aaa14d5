"""Semantic clusters (faiss k-means, assigned drop by drop) and SemDeDup duplicates within clusters."""

from functools import partial
from typing import Literal

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from curation_dag.automation.conditions import on_new_data
from curation_dag.checks.semantic import CLUSTERS_SPECS, DUPLICATES_SPECS, clusters_checks, duplicates_checks
from curation_dag.metadata import histogram_markdown, markdown_table
from curation_dag.partitions import pending_drops
from curation_dag.resources import EmbedderResource, RecipesResource, StorageResource
from curation_dag.steps.embed.vectors import embed_drop
from curation_dag.steps.semantic.absorb import (
    Clustered,
    FitError,
    Transformer,
    Vectors,
    absorb_clusters,
    absorb_semantic_duplicates,
    drifted_drops,
    fit_id,
    forget_fit,
    read_vectors,
)
from curation_dag.steps.semantic.config import SemDeDupConfig
from curation_dag.store.files import read_parquet
from curation_dag.store.layout import EMBEDDINGS, SEMANTIC_CLUSTERS, SEMANTIC_DUPLICATES
from curation_dag.store.ledger import Ledger, exclusive


class Refit(dg.Config):
    """Whether this run fits the centroids again, on every embedded drop, and reassigns them all."""

    refit: Literal["never", "on_drift", "always"] = Field(
        "never",
        description="never: new drops join the current fit; on_drift: refit when a drop's drift_within_limit "
        "check fails (more of it than drift_share beyond the fit's 95th percentile); always: refit.",
    )


def _vectors(storage: StorageResource, embedder: EmbedderResource, key: str) -> Vectors:
    """A drop's vectors from the embedder's model, checked (storage.upstream); never another model's."""
    path = storage.layout.embeddings(key, embedder.model_id)
    if not path.is_file() and (others := storage.layout.embedded_models(key)):
        raise dg.Failure(
            description=f"drop {key} was embedded with {', '.join(others)}, not with {embedder.model_id}, the model "
            "this run uses: run every job with the same embedder (CURATION_EMBEDDER, or the embedder resource's "
            f"config), or materialize embeddings for drop {key} with this one"
        )
    return read_vectors(storage.upstream(path, EMBEDDINGS, key))


def _transformer(storage: StorageResource, embedder: EmbedderResource) -> Transformer:
    """The texts of candidate documents, and their transformer vectors, cached by content hash."""
    layout = storage.layout

    def texts_of(key: str, doc_ids: list[str]) -> pl.DataFrame:
        documents = read_parquet(layout.documents(key), columns=["doc_id", "content_hash", "text"])
        return documents.filter(pl.col("doc_id").is_in(doc_ids))

    def vectors_of(key: str, documents: pl.DataFrame) -> np.ndarray:
        model = embedder.confirm_model_id
        out = layout.transformer_vectors(key, model)
        earlier = layout.transformer_vectors_files(model) + layout.embeddings_files(model)
        embed_drop(documents, earlier, embedder.confirm, embedder.confirm_dimension, out)
        return read_vectors(out)[1]

    return Transformer(embedder.transformer_name, texts_of, vectors_of if embedder.confirms else None)


def _fit_id(storage: StorageResource) -> str:
    """The current fit's name, or a failure saying to materialize semantic_clusters first."""
    return fit_id(storage.upstream(storage.layout.centroids(), SEMANTIC_CLUSTERS))


@dg.asset(
    deps=[EMBEDDINGS],
    group_name="embed",
    kinds={"faiss", "parquet"},
    code_version="1",
    pool="semantic_state",
    automation_condition=on_new_data(),
    check_specs=CLUSTERS_SPECS,
)
def semantic_clusters(
    context: dg.AssetExecutionContext,
    config: Refit,
    storage: StorageResource,
    recipes: RecipesResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    """Each deduplicated document's k-means cluster and cosine distance to its centroid; later drops join the fit."""
    settings, layout = recipes.semantic(), storage.layout
    folder = layout.asset(SEMANTIC_CLUSTERS)
    with exclusive(folder):
        ledger = Ledger(folder)
        drifted = drifted_drops(ledger, settings.drift_share)
        if config.refit == "always" or (config.refit == "on_drift" and drifted):
            forget_fit(layout, ledger)
            context.log.info(f"refitting on every embedded drop ({config.refit}; drifted: {drifted or 'none'})")
        keys = pending_drops(context, dg.AssetKey(EMBEDDINGS), ledger.keys)
        loaded = {key: _vectors(storage, embedder, key) for key in keys}
        try:
            clustered = absorb_clusters(layout, ledger, loaded, settings.kmeans, embedder.model_id, context.log.info)
        except FitError as error:
            raise dg.Failure(description=str(error)) from None
    return _clusters_result(ledger, clustered, settings.drift_share)


def _clusters_result(ledger: Ledger, clustered: Clustered, drift_share: float) -> dg.MaterializeResult:
    fit, sizes = clustered.fit, clustered.sizes
    return dg.MaterializeResult(
        metadata={
            "k": fit["k"],
            "fitted_on": dg.MetadataValue.json(fit["fitted_on"]),
            "fit_device": fit["device"],
            "assigned_now": clustered.assigned,
            "largest_clusters": dg.MetadataValue.md(markdown_table(sizes.head(10)) if sizes.height else "none"),
            "cluster_size_min_median_max": dg.MetadataValue.json(
                [int(sizes["len"].min()), float(sizes["len"].median()), int(sizes["len"].max())] if sizes.height else []
            ),
            "cluster_sizes": dg.MetadataValue.md(
                histogram_markdown(sizes["len"].to_numpy(), "Cluster sizes", "documents in the cluster", log_x=True)
                if sizes.height
                else "none"
            ),
        },
        data_version=dg.DataVersion(ledger.digest()),
        check_results=clusters_checks(clustered, drift_share),
    )


@dg.asset(
    deps=[SEMANTIC_CLUSTERS],
    group_name="embed",
    kinds={"numpy", "parquet"},
    code_version="1",
    pool="semantic_state",
    automation_condition=on_new_data(),
    check_specs=DUPLICATES_SPECS,
)
def semantic_duplicates(
    context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """SemDeDup: documents within a cluster at cosine >= 1 - eps of a kept one; earlier decisions stand."""
    settings, layout = recipes.semantic().semdedup, storage.layout
    clusters = Ledger(layout.asset(SEMANTIC_CLUSTERS))
    folder = layout.asset(SEMANTIC_DUPLICATES)
    fitted = _fit_id(storage)
    with exclusive(folder):
        ledger = Ledger(folder)
        vectors_of, transformer = partial(_vectors, storage, embedder), _transformer(storage, embedder)
        new = absorb_semantic_duplicates(ledger, clusters, vectors_of, transformer, settings, fitted)
    return _duplicates_result(ledger, new, settings)


def _duplicates_result(ledger: Ledger, new: list[pl.DataFrame], settings: SemDeDupConfig) -> dg.MaterializeResult:
    decided_now = (
        pl.concat(new)
        if new
        else pl.DataFrame(
            schema={
                "doc_id": pl.String,
                "semantic_duplicate_of": pl.String,
                "cosine": pl.Float32,
                "not_judged": pl.String,
            }
        )
    )
    examples = decided_now.filter(pl.col("semantic_duplicate_of").is_not_null()).select(
        "doc_id", "semantic_duplicate_of", "cosine"
    )
    return dg.MaterializeResult(
        metadata={
            "eps": settings.eps,
            "keep": settings.keep,
            "absorbed_now": len(new),
            "duplicates_now": examples.height,
            "not_judged_now": decided_now["not_judged"].is_not_null().sum(),
            "by_drop": dg.MetadataValue.md(
                markdown_table(
                    pl.DataFrame([{k: e[k] for k in ("key", "documents", "duplicates")} for e in ledger.drops])
                )
            ),
            "examples": dg.MetadataValue.md(markdown_table(examples.head(10))),
        },
        data_version=dg.DataVersion(ledger.digest()),
        check_results=duplicates_checks(decided_now),
    )
