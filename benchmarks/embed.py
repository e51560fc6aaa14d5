"""Semantic dedup on CPU against MiniLM: the default path's SemDeDup pairs and speed, in one run.

Real documents of at least 1,000 characters from ../shared/data (web pages, news, man pages, Python
docs, mail, Wikipedia). Every SemDeDup below runs through the pipeline's own steps
(`absorb_clusters`, `absorb_semantic_duplicates`, default `semantic.yml` settings but keep:
earliest, so that which copy is kept does not depend on the clusters):
- the baseline for speed: plain `SentenceTransformer.encode` of every document (256 tokens);
- the reference for decisions, "full MiniLM": torch MiniLM over every document's windows, the
  clusters and SemDeDup on those vectors;
- the default CPU path: static vectors (the same windows) cluster and propose candidates at
  `candidate_cosine`; int8 MiniLM embeds only the candidates and decides. Its time is the whole
  semantic stage: static encode + k-means + candidates + confirmation;
- the old CPU path: static vectors decide alone.
A pair is a removed document and the kept one it duplicates, unordered. Then k-means on static vs
MiniLM vectors (AMI, Spearman of prototypicality), and mrpc_paraphrase: SemDeDup marks per backend
and the Spearman correlation of each backend's cosine with the paraphrase labels.

    python benchmarks/embed.py [--data ../shared/data] [--docs 3000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from curation_dag.resources.embedder import EmbedderResource, bundled_minilm
from curation_dag.steps.semantic.absorb import Transformer, absorb_clusters, absorb_semantic_duplicates, fit_id
from curation_dag.steps.semantic.config import SemanticConfig
from curation_dag.store.layout import SEMANTIC_CLUSTERS, SEMANTIC_DUPLICATES, Layout
from curation_dag.store.ledger import Ledger

PROJECT = Path(__file__).resolve().parents[1]
CORPORA = ["web_pages_fulltext", "web_pages_main", "cc_web_samples", "reuters21578", "deb_manpages",
           "deb_python_docs", "enron1_spam_ham", "misc_domain_samples", "wikipedia_en_gensim"]  # fmt: skip
DROP = "bench/2026-01-01"
CANDIDATE_COSINES = (0.9, 0.95)  # the candidates' cosine is never above 1 - eps


def read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def documents(data: Path, count: int) -> pl.DataFrame:
    rng = np.random.default_rng(20261203)
    pool = [d["text"] for c in CORPORA for d in read(data / c / "docs.jsonl.gz") if len(d["text"]) >= 1000]
    texts = [pool[i] for i in rng.choice(len(pool), size=min(count, len(pool)), replace=False)]
    return frame_of(texts)


def frame_of(texts: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"doc_id": [f"bench/2026-01-01/part.jsonl#{i}" for i in range(len(texts))], "text": texts}
    ).with_columns(content_hash=pl.col("doc_id"))


def embedder(backend: str, cache: Path, transformer: str = "onnx-int8") -> EmbedderResource:
    resource = EmbedderResource(device="cpu", cpu_backend=backend, cpu_transformer=transformer, cache_dir=str(cache))
    resource.setup_for_execution(dg.build_init_resource_context())
    return resource


def timed(work):
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


class Confirmations:
    """The default path's transformer: int8 MiniLM on the candidates only, counted."""

    def __init__(self, model: EmbedderResource):
        self.model, self.documents, self.vectors = model, 0, {}

    def __call__(self, drop: str, frame: pl.DataFrame) -> np.ndarray:
        vectors = self.model.confirm(frame["text"].to_list())
        self.documents += frame.height
        self.vectors.update(zip(frame["doc_id"].to_list(), vectors, strict=True))
        return vectors


def semdedup(
    frame: pl.DataFrame, vectors: np.ndarray, settings: SemanticConfig, confirm=None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(clusters, decisions) of one drop, through the pipeline's absorb steps in a throwaway store."""
    with tempfile.TemporaryDirectory() as root:
        layout = Layout.at(root)
        clusters = Ledger(layout.asset(SEMANTIC_CLUSTERS))
        loaded = {DROP: (frame.select("doc_id"), vectors)}
        absorb_clusters(layout, clusters, loaded, settings.kmeans, "bench", lambda message: None)
        texts = frame.select("doc_id", "content_hash", "text")
        transformer = Transformer(
            "all-MiniLM-L6-v2", lambda drop, ids: texts.filter(pl.col("doc_id").is_in(ids)), confirm
        )
        ledger = Ledger(layout.asset(SEMANTIC_DUPLICATES))
        [decisions] = absorb_semantic_duplicates(
            ledger, clusters, loaded.__getitem__, transformer, settings.semdedup, fit_id(layout.centroids())
        )
        return pl.read_parquet(clusters.committed(DROP)), decisions


def pairs(decisions: pl.DataFrame) -> set[frozenset]:
    marked = decisions.filter(pl.col("semantic_duplicate_of").is_not_null())
    return {frozenset(p) for p in zip(marked["doc_id"], marked["semantic_duplicate_of"], strict=True)}


def agreement(found: set, truth: set) -> tuple[float, float]:
    precision = len(found & truth) / len(found) if found else float("nan")
    recall = len(found & truth) / len(truth) if truth else float("nan")
    return precision, recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--docs", type=int, default=3_000)
    parser.add_argument("--cache", type=Path, default=PROJECT / ".curation" / "models")
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(bundled_minilm(), device="cpu")
    plain.max_seq_length = 256
    backends = plain, embedder("minilm", args.cache, "torch"), embedder("static", args.cache)
    int8 = embedder("minilm", args.cache)
    settings = SemanticConfig(keep="earliest")

    frame = documents(args.data, args.docs)
    kilobytes = frame["text"].str.len_bytes().mean() / 1e3
    print(f"## {frame.height:,} long documents (mean {kilobytes:.1f} KB), eps {settings.eps}\n")
    compare(frame, *backends, int8, settings, CANDIDATE_COSINES)

    texts_by_id = {d["id"]: d["text"] for d in read(args.data / "mrpc_paraphrase" / "docs.jsonl.gz")}
    ids = sorted(texts_by_id)
    sentences = frame_of([texts_by_id[i] for i in ids])
    print(f"\n## mrpc_paraphrase: {sentences.height:,} sentences, eps {settings.eps}\n")
    spaces = compare(sentences, *backends, int8, settings, (0.85, 0.9, 0.95))
    labels(args.data, sentences, ids, spaces, int8, settings)


def compare(frame, plain, torch_minilm, static, int8, settings, candidate_cosines) -> dict[str, np.ndarray]:
    """The speed and agreement table of every path on `frame`; the vectors of each backend."""
    texts = frame["text"].to_list()
    baseline_s, plain_vectors = timed(lambda: plain.encode(texts, batch_size=32, normalize_embeddings=True))
    reference_embed_s, reference_vectors = timed(lambda: torch_minilm.encode(texts))
    reference_cluster_s, (reference_clusters, reference) = timed(lambda: semdedup(frame, reference_vectors, settings))
    truth = pairs(reference)
    static_s, fast = timed(lambda: static.encode(texts))
    old_s, (fast_clusters, old) = timed(lambda: semdedup(frame, fast, settings))
    rows = [
        ("SentenceTransformer.encode, 256 tokens (speed baseline)", baseline_s, "all", None),
        ("full MiniLM (torch, windows), its own clusters (reference)", reference_embed_s + reference_cluster_s, "all",
         truth),
        ("static vectors alone (the old CPU default)", static_s + old_s, "none", pairs(old)),
    ]  # fmt: skip
    confirmed = {}
    for candidate_cosine in candidate_cosines:
        confirmations = Confirmations(int8)
        tuned = settings.model_copy(update={"candidate_cosine": candidate_cosine})
        seconds, (_, decisions) = timed(lambda: semdedup(frame, fast, tuned, confirmations))  # noqa: B023
        name = f"static candidates at {candidate_cosine}, int8 MiniLM confirms"
        rows.append((name, static_s + seconds, f"{confirmations.documents:,}", pairs(decisions)))
        confirmed.update(confirmations.vectors)
    print("| path | seconds | vs plain encode | transformer docs | pairs | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, seconds, embedded, found in rows:
        cells = [name, f"{seconds:.1f}", f"{baseline_s / seconds:.1f}x", embedded]
        if found is not None:
            precision, recall = agreement(found, truth)
            cells += [f"{len(found):,}", f"{precision:.3f}", f"{recall:.3f}"]
        print("| " + " | ".join(cells) + " |" + " |" * (7 - len(cells)))

    index = {doc: i for i, doc in enumerate(frame["doc_id"].to_list())}
    cosine = np.array([vector @ reference_vectors[index[doc]] for doc, vector in confirmed.items()])
    if len(cosine):
        print(f"\nint8 vs torch MiniLM on the {len(cosine):,} documents the int8 path confirmed: per-document "
              f"cosine min {cosine.min():.4f}, median {np.median(cosine):.4f}")  # fmt: skip
    from scipy.stats import spearmanr
    from sklearn.metrics import adjusted_mutual_info_score

    both = reference_clusters.join(fast_clusters, on="doc_id", suffix="_fast")
    ami = adjusted_mutual_info_score(both["cluster"], both["cluster_fast"])
    rho = spearmanr(both["distance"], both["distance_fast"]).statistic
    print(f"k-means (k = {both['cluster'].n_unique()}) on static vs MiniLM vectors of the same documents: "
          f"AMI {ami:.3f}, Spearman of prototypicality (distance to the centroid) {rho:.3f}")  # fmt: skip
    return {"torch MiniLM": plain_vectors, "static": fast}


def labels(data: Path, frame: pl.DataFrame, ids: list[str], spaces: dict, int8, settings: SemanticConfig) -> None:
    """mrpc's paraphrase labels: each backend's Spearman with them, and the pairs SemDeDup puts in one group."""
    from scipy.stats import spearmanr

    spaces["int8 MiniLM"] = int8.encode(frame["text"].to_list())
    row = dict(zip(ids, range(len(ids)), strict=True))
    doc_of = dict(zip(ids, frame["doc_id"], strict=True))
    labelled = [json.loads(line) for line in open(data / "mrpc_paraphrase" / "pairs.jsonl")]
    gold = [p["label"] for p in labelled]
    correlations = {
        name: spearmanr([v[row[p["id1"]]] @ v[row[p["id2"]]] for p in labelled], gold).statistic
        for name, v in spaces.items()
    }
    print(f"\n{sum(gold):,} paraphrase pairs of {len(labelled):,} labelled. Spearman of each backend's cosine "
          "with the label: " + ", ".join(f"{name} {rho:.3f}" for name, rho in correlations.items()))  # fmt: skip
    print("\n| path | eps | paraphrase pairs in one group | share | non-paraphrase pairs in one group |")
    print("|---|---:|---:|---:|---:|")
    for eps in (0.05, 0.1, 0.15):
        tuned = settings.model_copy(update={"eps": eps})
        runs = {
            "torch MiniLM": semdedup(frame, spaces["torch MiniLM"], tuned)[1],
            "static alone": semdedup(frame, spaces["static"], tuned)[1],
            "default (static candidates, int8)": semdedup(frame, spaces["static"], tuned, Confirmations(int8))[1],
        }  # fmt: skip
        for name, decisions in runs.items():
            kept_as = decisions["semantic_duplicate_of"].fill_null(decisions["doc_id"])
            root = dict(zip(decisions["doc_id"], kept_as, strict=True))
            marked = {
                label: sum(root[doc_of[p["id1"]]] == root[doc_of[p["id2"]]] for p in labelled if p["label"] == label)
                for label in (0, 1)
            }
            print(f"| {name} | {eps} | {marked[1]:,} | {marked[1] / sum(gold):.2f} | {marked[0]:,} |")


if __name__ == "__main__":
    main()
