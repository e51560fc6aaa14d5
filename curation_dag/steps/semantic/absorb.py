"""The incremental semantic assets: each embedded drop joins one k-means fit (fitted on the first drops
absorbed), and each clustered drop's SemDeDup duplicates are judged against every document kept before.

A fit is `centroids.npy` and `fit.json` (the k-means settings, the model, the drops fitted on); a drop's
ledger entry records the fit (and the SemDeDup settings) it was judged with, so a refit or a SemDeDup
edit judges every drop again."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from curation_dag.metadata import file_digest
from curation_dag.steps.dedup.absorb import DuplicateCounts, duplicate_counts
from curation_dag.steps.semantic.config import KMeansConfig, SemDeDupConfig
from curation_dag.steps.semantic.semdedup import assign, find_semantic_duplicates, fit_centroids
from curation_dag.store.atomic import atomic_path
from curation_dag.store.layout import Layout
from curation_dag.store.ledger import Entry, Ledger, write_parquet

# A cluster this many times the mean size, or an empty one, is flagged: k may not suit the data.
GIANT_FACTOR = 10

Vectors = tuple[pl.DataFrame, np.ndarray]  # a drop's doc_id column, and its vectors row by row


class ClusterEntry(Entry):
    documents: int
    beyond_p95: float  # share of the drop beyond the fit's 95th-percentile distance: the drift
    fit: str  # the fit the drop was assigned in (fit_id)


class SemanticDuplicateEntry(Entry, DuplicateCounts):
    fit: str  # the fit its clusters came from
    semdedup: dict  # the SemDeDup settings it was judged with


class FitError(ValueError):
    """The clusters cannot be fitted, or the fit no longer matches the settings or the model."""


def read_vectors(path: Path) -> Vectors:
    """A drop's vectors file: its `doc_id` column, and its vectors as a float32 matrix."""
    frame = pl.read_parquet(path)
    return frame.select("doc_id"), frame["vector"].to_numpy().reshape(frame.height, -1).astype(np.float32)


def fit_id(centroids: Path) -> str:
    """Names the current fit: the clusters' downstream assets absorb every drop again when it changes."""
    return file_digest(centroids)


def drifted_drops(ledger: Ledger, drift_share: float) -> list[str]:
    """The absorbed drops with more than `drift_share` of their documents beyond the fit's 95th percentile."""
    return [entry["key"] for entry in ledger.drops if entry["beyond_p95"] > drift_share]


def forget_fit(layout: Layout, ledger: Ledger) -> None:
    """Start a refit: the ledger goes first, so a crash before the new fit leaves every drop to the old one."""
    ledger.reset()
    layout.fit().unlink(missing_ok=True)


@dataclass(frozen=True)
class Clustered:
    """What one absorb of semantic_clusters did, and the state of every cluster after it."""

    fit: dict
    embedded: int  # vectors of the drops absorbed now
    assigned: int  # of those, the ones given a cluster
    drift: pl.DataFrame  # drop, beyond_p95 of each drop absorbed now
    sizes: pl.DataFrame  # cluster, len over every absorbed drop, largest first
    empty: int  # centroids without members
    giant: list[int]  # clusters over GIANT_FACTOR times the mean size


def absorb_clusters(
    layout: Layout,
    ledger: Ledger,
    loaded: dict[str, Vectors],
    settings: KMeansConfig,
    model_id: str,
    log: Callable[[str], None],
) -> Clustered:
    """Assign each drop of `loaded` (in arrival order) to the fit's centroids, fitting them first on all
    of `loaded` when there is no fit; refuses a fit made with other k-means settings or another model."""
    if not layout.fit().exists():
        if not loaded:
            raise FitError("no embedded drops to fit clusters on: materialize embeddings first")
        _fit(layout, loaded, settings, model_id, log)
    fit = json.loads(layout.fit().read_text())
    if fit["settings"] != str(settings) or fit["model"] != model_id:
        raise FitError(
            f"the semantic settings or the model changed since the clusters were fitted ({layout.fit()}). "
            "Refit on every drop: launch recuration_job with semantic_clusters' config refit: always"
        )
    centroids = np.load(layout.centroids())
    fitted = fit_id(layout.centroids())
    assigned = 0
    for key, (documents, vectors) in loaded.items():
        cluster, distance = assign(vectors, centroids)
        frame = documents.with_columns(pl.lit(key).alias("drop"), cluster=cluster, distance=distance)
        write_parquet(frame, ledger.decision_file(key))
        beyond = float((distance > fit["distance_p95"]).mean()) if len(distance) else 0.0
        ledger.commit(ClusterEntry(key=key, documents=frame.height, beyond_p95=round(beyond, 4), fit=fitted))
        assigned += frame.height
    drift = pl.DataFrame(
        [{"drop": e["key"], "beyond_p95": e["beyond_p95"]} for e in ledger.drops if e["key"] in loaded]
    )
    drift = drift if drift.height else pl.DataFrame({"drop": [], "beyond_p95": []})
    everything = pl.scan_parquet(ledger.decision_files()).collect() if ledger.drops else pl.DataFrame()
    sizes = everything.group_by("cluster").len().sort("len", descending=True) if everything.height else pl.DataFrame()
    giant = (
        sizes.filter(pl.col("len") > GIANT_FACTOR * everything.height / fit["k"])["cluster"].to_list()
        if sizes.height
        else []
    )
    embedded = sum(len(vectors) for _, vectors in loaded.values())
    return Clustered(fit, embedded, assigned, drift, sizes, fit["k"] - sizes.height, giant)


def _fit(
    layout: Layout, loaded: dict[str, Vectors], settings: KMeansConfig, model_id: str, log: Callable[[str], None]
) -> None:
    """Fit the centroids on every vector of `loaded`; write them, then `fit.json`, which names the fit done."""
    sample = np.concatenate([vectors for _, vectors in loaded.values()])
    centroids, device = fit_centroids(sample, settings)
    _, distances = assign(sample, centroids)
    fit = {
        "settings": str(settings),
        "model": model_id,
        "k": len(centroids),
        "fitted_on": list(loaded),
        "distance_p95": float(np.quantile(distances, 0.95)),
        "device": device,
    }
    with atomic_path(layout.centroids()) as temporary, open(temporary, "wb") as handle:
        np.save(handle, centroids)
    with atomic_path(layout.fit()) as temporary:
        temporary.write_text(json.dumps(fit, indent=1))
    fallback = " (faiss sees no GPU: CPU fallback)" if device == "cpu" else ""
    log(f"fitted {len(centroids)} centroids on {len(sample)} vectors on {device}{fallback}")


@dataclass
class _Kept:
    """Every document kept so far, the ones a new drop's documents are judged against."""

    ids: list[str] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    clusters: list[np.ndarray] = field(default_factory=list)

    def add(self, ids: list[str], vectors: np.ndarray, clusters: np.ndarray) -> None:
        self.ids += ids
        self.vectors.append(vectors)
        self.clusters.append(clusters)

    def matrix(self, dimension: int) -> np.ndarray:
        return np.concatenate(self.vectors) if self.vectors else np.zeros((0, dimension), np.float32)

    def cluster_ids(self) -> np.ndarray:
        return np.concatenate(self.clusters) if self.clusters else np.zeros(0, np.int64)


def absorb_semantic_duplicates(
    ledger: Ledger,
    clusters: Ledger,
    vectors_of: Callable[[str], Vectors],
    settings: SemDeDupConfig,
    fitted: str,
) -> list[pl.DataFrame]:
    """Judge each drop semantic_clusters has absorbed and this `ledger` has not, in arrival order; the
    new decision frames. A refit (`fitted` names the fit) or other SemDeDup settings judge every drop again."""
    ledger.reset_unless(fit=fitted, semdedup=settings.model_dump())
    kept = _Kept()
    for entry in ledger.drops:
        decided = pl.read_parquet(ledger.committed(entry["key"])).filter(pl.col("semantic_duplicate_of").is_null())
        documents, vectors = vectors_of(entry["key"])
        rows = documents.with_row_index("row").join(decided, on="doc_id")
        kept.add(rows["doc_id"].to_list(), vectors[rows["row"].to_numpy()], rows["cluster"].to_numpy())
    new = []
    for entry in clusters.drops[len(ledger.drops) :]:
        decisions = _judge(pl.read_parquet(clusters.committed(entry["key"])), vectors_of(entry["key"]), kept, settings)
        write_parquet(decisions, ledger.decision_file(entry["key"]))
        counts = duplicate_counts(decisions, "semantic_duplicate_of")
        ledger.commit(SemanticDuplicateEntry(key=entry["key"], **counts, fit=fitted, semdedup=settings.model_dump()))
        new.append(decisions)
    return new


def _judge(assigned: pl.DataFrame, drop: Vectors, kept: _Kept, settings: SemDeDupConfig) -> pl.DataFrame:
    """One drop's SemDeDup decisions; its kept documents join `kept`."""
    documents, vectors = drop
    assigned = documents.join(assigned, on="doc_id", maintain_order="left")
    clusters = assigned["cluster"].to_numpy()
    match, cosine = find_semantic_duplicates(
        vectors,
        clusters,
        assigned["distance"].to_numpy(),
        kept.matrix(vectors.shape[1]),
        kept.cluster_ids(),
        settings.eps,
        settings.keep,
    )
    ids = assigned["doc_id"].to_list()
    # match: -1 for a kept document, i for new document i, -(2 + j) for earlier kept document j
    duplicate_of = [None if m == -1 else ids[m] if m >= 0 else kept.ids[-(m + 2)] for m in match.tolist()]
    is_kept = match == -1
    kept.add([i for i, k in zip(ids, is_kept, strict=True) if k], vectors[is_kept], clusters[is_kept])
    return assigned.select("doc_id", "drop", "cluster", "distance").with_columns(
        source=assigned["doc_id"].str.split("/").list.first(),
        semantic_duplicate_of=pl.Series(duplicate_of, dtype=pl.String),
        cosine=pl.Series(cosine).fill_nan(None),
    )
