"""Semantic clusters (faiss k-means, assigned drop by drop) and SemDeDup duplicates within clusters."""

import json
from typing import Literal

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from curation_dag.assets.embed import embeddings
from curation_dag.automation.conditions import on_new_data
from curation_dag.checks.sql import sql_check
from curation_dag.metadata import file_digest, histogram_markdown, markdown_table
from curation_dag.partitions import pending_drops
from curation_dag.resources import EmbedderResource, RecipesResource, StorageResource
from curation_dag.steps.dedup.absorb import duplicate_counts
from curation_dag.steps.semantic.semdedup import assign, find_semantic_duplicates, fit_centroids
from curation_dag.store.atomic import atomic_path
from curation_dag.store.ledger import Ledger, exclusive, write_parquet

FIT = "fit.json"
# A cluster this many times the mean size, or an empty one, is flagged: k may not suit the data.
GIANT_FACTOR = 10


class Refit(dg.Config):
    """Whether this run fits the centroids again, on every embedded drop, and reassigns them all."""

    refit: Literal["never", "on_drift", "always"] = Field(
        "never",
        description="never: new drops join the current fit; on_drift: refit when a drop's drift_within_limit "
        "check fails (more of it than drift_share beyond the fit's 95th percentile); always: refit.",
    )


def fit_id(storage: StorageResource) -> str:
    """Names the current fit: the clusters' downstream assets absorb every drop again when it changes."""
    centroids = storage.asset_dir("semantic_clusters") / "centroids.npy"
    if not centroids.is_file():
        raise dg.Failure(description=f"{centroids} is missing: materialize semantic_clusters first")
    return file_digest(centroids)


def _vectors(storage: StorageResource, embedder: EmbedderResource, key: str) -> tuple[pl.DataFrame, np.ndarray]:
    path = storage.upstream_file("embeddings", key, f"{embedder.model_id}.parquet")
    frame = pl.read_parquet(path)
    return frame.select("doc_id"), frame["vector"].to_numpy().reshape(frame.height, -1).astype(np.float32)


@dg.asset(
    deps=[embeddings],
    group_name="embed",
    kinds={"faiss", "parquet"},
    code_version="1",
    pool="semantic_state",
    automation_condition=on_new_data(),
    check_specs=[
        dg.AssetCheckSpec("one_cluster_per_document", asset="semantic_clusters", blocking=True),
        dg.AssetCheckSpec(
            "drift_within_limit", asset="semantic_clusters", description="A warning: refit when it fails."
        ),
        dg.AssetCheckSpec(
            "no_empty_or_giant_clusters",
            asset="semantic_clusters",
            description=f"A warning: every centroid has members, none more than {GIANT_FACTOR}x the mean.",
        ),
    ],
)
def semantic_clusters(
    context: dg.AssetExecutionContext,
    config: Refit,
    storage: StorageResource,
    recipes: RecipesResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    """Each deduplicated document's k-means cluster and cosine distance to its centroid; later drops join the fit."""
    settings = recipes.semantic()
    folder = storage.asset_dir("semantic_clusters")
    with exclusive(folder):
        ledger = Ledger(folder)
        drifted = [e["key"] for e in ledger.drops if e["beyond_p95"] > settings.drift_share]
        if config.refit == "always" or (config.refit == "on_drift" and drifted):
            # The ledger goes first: a crash before the new fit leaves every drop to the old one.
            ledger.reset()
            (folder / FIT).unlink(missing_ok=True)
            context.log.info(f"refitting on every embedded drop ({config.refit}; drifted: {drifted or 'none'})")
        keys = pending_drops(context, embeddings.key, ledger.keys)
        loaded = {key: _vectors(storage, embedder, key) for key in keys}
        fit_path = folder / FIT
        if not fit_path.exists():
            if not loaded:
                raise dg.Failure(description="no embedded drops to fit clusters on: materialize embeddings first")
            sample = np.concatenate([vectors for _, vectors in loaded.values()])
            centroids, device = fit_centroids(sample, settings)
            _, distances = assign(sample, centroids)
            fit = {
                "settings": str(settings),
                "model": embedder.model_id,
                "k": len(centroids),
                "fitted_on": list(loaded),
                "distance_p95": float(np.quantile(distances, 0.95)),
                "device": device,
            }
            with atomic_path(folder / "centroids.npy") as temporary, open(temporary, "wb") as handle:
                np.save(handle, centroids)
            with atomic_path(fit_path) as temporary:
                temporary.write_text(json.dumps(fit, indent=1))
            fallback = " (faiss sees no GPU: CPU fallback)" if device == "cpu" else ""
            context.log.info(f"fitted {len(centroids)} centroids on {len(sample)} vectors on {device}{fallback}")
        fit = json.loads(fit_path.read_text())
        if fit["settings"] != str(settings) or fit["model"] != embedder.model_id:
            raise dg.Failure(
                description=f"the semantic settings or the model changed since the clusters were fitted ({fit_path}). "
                "Refit on every drop: launch recuration_job with semantic_clusters' config refit: always"
            )
        centroids = np.load(folder / "centroids.npy")
        fitted = fit_id(storage)
        new = []
        for key, (documents, vectors) in loaded.items():
            cluster, distance = assign(vectors, centroids)
            frame = documents.with_columns(pl.lit(key).alias("drop"), cluster=cluster, distance=distance)
            write_parquet(frame, ledger.decision_file(key))
            beyond = float((distance > fit["distance_p95"]).mean()) if len(distance) else 0.0
            ledger.commit({"key": key, "documents": frame.height, "beyond_p95": round(beyond, 4), "fit": fitted})
            new.append(frame)
    everything = pl.scan_parquet(ledger.decision_files()).collect() if ledger.drops else pl.DataFrame()
    sizes = everything.group_by("cluster").len().sort("len", descending=True) if everything.height else pl.DataFrame()
    drift = pl.DataFrame(
        [{"drop": e["key"], "beyond_p95": e["beyond_p95"]} for e in ledger.drops if e["key"] in loaded]
    )
    empty = fit["k"] - sizes.height
    giant = (
        sizes.filter(pl.col("len") > GIANT_FACTOR * everything.height / fit["k"])["cluster"].to_list()
        if sizes.height
        else []
    )
    embedded = sum(len(v) for _, v in loaded.values())
    assigned = sum(f.height for f in new)
    return dg.MaterializeResult(
        metadata={
            "k": fit["k"],
            "fitted_on": dg.MetadataValue.json(fit["fitted_on"]),
            "fit_device": fit["device"],
            "assigned_now": assigned,
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
        check_results=[
            dg.AssetCheckResult(
                asset_key="semantic_clusters",
                check_name="one_cluster_per_document",
                passed=assigned == embedded,
                metadata={"embedded": embedded, "assigned": assigned},
            ),
            dg.AssetCheckResult(
                asset_key="semantic_clusters",
                check_name="no_empty_or_giant_clusters",
                passed=not empty and not giant,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"empty": empty, "giant": dg.MetadataValue.json(giant)},
            ),
            sql_check(
                "semantic_clusters",
                "drift_within_limit",
                f"SELECT * FROM drift WHERE beyond_p95 > {settings.drift_share}",
                severity=dg.AssetCheckSeverity.WARN,
                drift=drift if drift.height else pl.DataFrame({"drop": [], "beyond_p95": []}),
            ),
        ],
    )


@dg.asset(
    deps=[semantic_clusters],
    group_name="embed",
    kinds={"numpy", "parquet"},
    code_version="1",
    pool="semantic_state",
    automation_condition=on_new_data(),
    check_specs=[dg.AssetCheckSpec("no_self_duplicates", asset="semantic_duplicates", blocking=True)],
)
def semantic_duplicates(
    context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """SemDeDup: documents within a cluster at cosine >= 1 - eps of a kept one; earlier decisions stand."""
    config = recipes.semantic()
    clusters = Ledger(storage.asset_dir("semantic_clusters"))
    folder = storage.asset_dir("semantic_duplicates")
    fitted = fit_id(storage)
    with exclusive(folder):
        ledger = Ledger(folder)
        if any(entry.get("fit") != fitted for entry in ledger.drops):
            ledger.reset()  # the clusters were refitted: every drop is judged again, in its new cluster
        earlier_ids, earlier_vectors, earlier_clusters = [], [], []
        for entry in ledger.drops:  # the kept documents of every absorbed drop
            decided = pl.read_parquet(ledger.committed(entry["key"])).filter(pl.col("semantic_duplicate_of").is_null())
            documents, vectors = _vectors(storage, embedder, entry["key"])
            rows = documents.with_row_index("row").join(decided, on="doc_id")
            earlier_ids += rows["doc_id"].to_list()
            earlier_vectors.append(vectors[rows["row"].to_numpy()])
            earlier_clusters.append(rows["cluster"].to_numpy())
        new = []
        for entry in clusters.drops[len(ledger.drops) :]:
            assigned = pl.read_parquet(clusters.committed(entry["key"]))
            documents, vectors = _vectors(storage, embedder, entry["key"])
            assigned = documents.join(assigned, on="doc_id", maintain_order="left")
            previous = (
                np.concatenate(earlier_vectors) if earlier_vectors else np.zeros((0, vectors.shape[1]), np.float32)
            )
            previous_clusters = np.concatenate(earlier_clusters) if earlier_clusters else np.zeros(0, np.int64)
            match, cosine = find_semantic_duplicates(
                vectors,
                assigned["cluster"].to_numpy(),
                assigned["distance"].to_numpy(),
                previous,
                previous_clusters,
                config.eps,
                config.keep,
            )
            ids = assigned["doc_id"].to_list()
            duplicate_of = [None if m == -1 else ids[m] if m >= 0 else earlier_ids[-(m + 2)] for m in match.tolist()]
            source = assigned["doc_id"].str.split("/").list.first()
            decisions = assigned.select("doc_id", "drop", "cluster", "distance").with_columns(
                source=source,
                semantic_duplicate_of=pl.Series(duplicate_of, dtype=pl.String),
                cosine=pl.Series(cosine).fill_nan(None),
            )
            write_parquet(decisions, ledger.decision_file(entry["key"]))
            ledger.commit({"key": entry["key"], **duplicate_counts(decisions, "semantic_duplicate_of"), "fit": fitted})
            kept = match == -1
            earlier_ids += [i for i, k in zip(ids, kept, strict=True) if k]
            earlier_vectors.append(vectors[kept])
            earlier_clusters.append(assigned["cluster"].to_numpy()[kept])
            new.append(decisions)
    decided_now = (
        pl.concat(new)
        if new
        else pl.DataFrame(schema={"doc_id": pl.String, "semantic_duplicate_of": pl.String, "cosine": pl.Float32})
    )
    examples = decided_now.filter(pl.col("semantic_duplicate_of").is_not_null()).select(
        "doc_id", "semantic_duplicate_of", "cosine"
    )
    return dg.MaterializeResult(
        metadata={
            "eps": config.eps,
            "keep": config.keep,
            "absorbed_now": len(new),
            "duplicates_now": examples.height,
            "by_drop": dg.MetadataValue.md(
                markdown_table(
                    pl.DataFrame([{k: e[k] for k in ("key", "documents", "duplicates")} for e in ledger.drops])
                )
            ),
            "examples": dg.MetadataValue.md(markdown_table(examples.head(10))),
        },
        data_version=dg.DataVersion(ledger.digest()),
        check_results=[
            sql_check(
                "semantic_duplicates",
                "no_self_duplicates",
                "SELECT doc_id FROM decided WHERE semantic_duplicate_of = doc_id",
                decided=decided_now.select("doc_id", "semantic_duplicate_of"),
            )
        ],
    )
