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
from curation_dag.steps.quality.rules import languages
from curation_dag.steps.semantic.config import KMeansConfig, SemDeDupConfig
from curation_dag.steps.semantic.semdedup import assign, candidates, find_semantic_duplicates, fit_centroids
from curation_dag.store.atomic import atomic_path
from curation_dag.store.files import load_array, read_parquet, scan_parquet
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
    frame = read_parquet(path)
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
    centroids = load_array(layout.centroids())
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
    everything = scan_parquet(ledger.decision_files()).collect() if ledger.drops else pl.DataFrame()
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


@dataclass(frozen=True)
class Transformer:
    """What decides the candidates the fast vectors propose: the transformer's vectors of documents.

    `texts_of(drop, doc_ids)`: `doc_id`, `content_hash` and `text` of those documents of a drop.
    `vectors_of(drop, documents)`: the transformer's vectors of such a frame (cached by content hash
    under the drop being judged); None where the clustered vectors are the transformer's already.
    """

    name: str
    texts_of: Callable[[str, list[str]], pl.DataFrame]
    vectors_of: Callable[[str, pl.DataFrame], np.ndarray] | None


@dataclass
class _Kept:
    """Every document kept so far, the ones a new drop's documents are judged against."""

    ids: list[str] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    clusters: list[np.ndarray] = field(default_factory=list)

    def add(self, drop: str, ids: list[str], vectors: np.ndarray, clusters: np.ndarray) -> None:
        self.ids += ids
        self.drops += [drop] * len(ids)
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
    transformer: Transformer,
    settings: SemDeDupConfig,
    fitted: str,
) -> list[pl.DataFrame]:
    """Judge each drop semantic_clusters has absorbed and this `ledger` has not, in arrival order; the
    new decision frames. A refit (`fitted` names the fit) or other SemDeDup settings judge every drop again."""
    ledger.reset_unless(fit=fitted, semdedup=settings.model_dump())
    kept = _Kept()
    for entry in ledger.drops:
        decided = read_parquet(ledger.committed(entry["key"])).filter(
            pl.col("semantic_duplicate_of").is_null() & pl.col("not_judged").is_null()
        )
        documents, vectors = vectors_of(entry["key"])
        rows = documents.with_row_index("row").join(decided, on="doc_id")
        kept.add(entry["key"], rows["doc_id"].to_list(), vectors[rows["row"].to_numpy()], rows["cluster"].to_numpy())
    new = []
    for entry in clusters.drops[len(ledger.drops) :]:
        key = entry["key"]
        assigned = read_parquet(clusters.committed(key))
        decisions = _judge(key, assigned, vectors_of(key), kept, transformer, settings)
        write_parquet(decisions, ledger.decision_file(key))
        counts = duplicate_counts(decisions, "semantic_duplicate_of")
        ledger.commit(SemanticDuplicateEntry(key=key, **counts, fit=fitted, semdedup=settings.model_dump()))
        new.append(decisions)
    return new


def _judge(
    key: str, assigned: pl.DataFrame, drop: Vectors, kept: _Kept, transformer: Transformer, settings: SemDeDupConfig
) -> pl.DataFrame:
    """One drop's SemDeDup decisions, by the transformer's cosine among the candidates the clustered
    vectors propose; its kept documents that were judged join `kept`."""
    documents, vectors = drop
    assigned = documents.join(assigned, on="doc_id", maintain_order="left")
    clusters, ids = assigned["cluster"].to_numpy(), assigned["doc_id"].to_list()
    earlier_vectors, earlier_clusters = kept.matrix(vectors.shape[1]), kept.cluster_ids()
    threshold = 1 - settings.eps if transformer.vectors_of is None else min(settings.candidate_cosine, 1 - settings.eps)
    new_candidates, earlier_candidates = candidates(vectors, clusters, earlier_vectors, earlier_clusters, threshold)
    wanted = [(key, ids[i]) for i in np.flatnonzero(new_candidates)]
    wanted += [(kept.drops[j], kept.ids[j]) for j in np.flatnonzero(earlier_candidates)]
    texts = _readable_texts(wanted, transformer, settings.languages)
    readable = set(texts.filter(pl.col("not_judged").is_null())["doc_id"].to_list())
    new_rows = [i for i in np.flatnonzero(new_candidates) if ids[i] in readable]
    earlier_rows = [j for j in np.flatnonzero(earlier_candidates) if kept.ids[j] in readable]
    match, cosine = np.full(len(ids), -1, dtype=np.int64), np.full(len(ids), np.nan, dtype=np.float32)
    if new_rows:
        if transformer.vectors_of is None:  # the clustered vectors are the transformer's
            confirmed_new, confirmed_earlier = vectors[new_rows], earlier_vectors[earlier_rows]
        else:
            judged = texts.filter(pl.col("not_judged").is_null())
            confirmed = transformer.vectors_of(key, judged)
            row_of = {doc: row for row, doc in enumerate(judged["doc_id"].to_list())}
            confirmed_new = confirmed[[row_of[ids[i]] for i in new_rows]]
            confirmed_earlier = confirmed[[row_of[kept.ids[j]] for j in earlier_rows]]
        # The others get zero vectors, cosine 0 with every vector: no candidate is never a duplicate.
        new_confirmed = np.zeros((len(ids), confirmed_new.shape[1]), np.float32)
        new_confirmed[new_rows] = confirmed_new
        earlier_confirmed = np.zeros((len(kept.ids), confirmed_new.shape[1]), np.float32)
        earlier_confirmed[earlier_rows] = confirmed_earlier
        match, cosine = find_semantic_duplicates(
            new_confirmed, clusters, assigned["distance"].to_numpy(), earlier_confirmed, earlier_clusters,
            settings.eps, settings.keep,
        )  # fmt: skip
    # match: -1 for a kept document, i for new document i, -(2 + j) for earlier kept document j
    duplicate_of = [None if m == -1 else ids[m] if m >= 0 else kept.ids[-(m + 2)] for m in match.tolist()]
    decisions = assigned.select("doc_id", "drop", "cluster", "distance").with_columns(
        source=assigned["doc_id"].str.split("/").list.first(),
        semantic_duplicate_of=pl.Series(duplicate_of, dtype=pl.String),
        cosine=pl.Series(cosine).fill_nan(None),
    )
    decisions = decisions.join(texts.select("doc_id", "not_judged"), on="doc_id", how="left", maintain_order="left")
    joins = (match == -1) & decisions["not_judged"].is_null().to_numpy()
    kept.add(key, [i for i, k in zip(ids, joins, strict=True) if k], vectors[joins], clusters[joins])
    return decisions


def _readable_texts(wanted: list[tuple[str, str]], transformer: Transformer, readable: list[str]) -> pl.DataFrame:
    """`doc_id`, `content_hash`, `text` and `not_judged` of the (drop, doc_id) documents: why the
    transformer does not judge one (a language it does not read, by fastText language id), else null."""
    frames = [
        transformer.texts_of(drop, group["doc_id"].to_list())
        for (drop,), group in pl.DataFrame(wanted, schema=["drop", "doc_id"], orient="row").group_by("drop")
    ]
    schema = {"doc_id": pl.String, "content_hash": pl.String, "text": pl.String}
    texts = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    language = languages(texts["text"])["language"]
    reason = pl.format(
        "language {}: {} reads {}", pl.col("language"), pl.lit(transformer.name), pl.lit(", ".join(readable))
    )
    return (
        texts.with_columns(language=language)
        .with_columns(not_judged=pl.when(pl.col("language").is_in(readable)).then(None).otherwise(reason))
        .drop("language")
    )
