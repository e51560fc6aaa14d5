"""Embedding throughput and agreement: plain SentenceTransformer.encode, our MiniLM path, the fast path.

Real documents from ../shared/data (web pages, news, docs, mail). MiniLM runs at 256 tokens on
`--minilm-docs` of them (both MiniLM rows embed the same documents; on two CPU cores MiniLM
manages ~20 long documents a second, so all 10k would take a quarter of an hour); the fast path
embeds all `--docs`. Agreement of the fast path with MiniLM, on the MiniLM documents: the mean
overlap of each document's 10 nearest neighbours, and the share of MiniLM's semantic-duplicate
pairs (cosine >= 1 - eps) that the fast path also has at the same eps, or at a looser cosine.
Then SemDeDup on mrpc_paraphrase for both backends: how many labelled paraphrase pairs
(and non-paraphrase pairs) it marks as duplicates at several eps.

    python benchmarks/embed.py [--data ../shared/data] [--docs 10000] [--minilm-docs 3000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import dagster as dg
import numpy as np

from curation_dag.resources.embedder import EmbedderResource, bundled_minilm
from curation_dag.steps.semantic.config import KMeansConfig
from curation_dag.steps.semantic.semdedup import assign, find_semantic_duplicates, fit_centroids

PROJECT = Path(__file__).resolve().parents[1]
CORPORA = ["web_pages_fulltext", "web_pages_main", "cc_web_samples", "reuters21578", "deb_manpages",
           "deb_python_docs", "enron1_spam_ham", "misc_domain_samples", "wikipedia_en_gensim"]  # fmt: skip
EPS = 0.05


def read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def documents(data: Path, count: int) -> list[str]:
    rng = np.random.default_rng(20261122)
    pool = [d["text"] for c in CORPORA for d in read(data / c / "docs.jsonl.gz") if len(d["text"]) >= 500]
    return [pool[i] for i in rng.choice(len(pool), size=min(count, len(pool)), replace=False)]


def embedder(backend: str, cache: Path) -> EmbedderResource:
    resource = EmbedderResource(device="cpu", cpu_backend=backend, cache_dir=str(cache))
    resource.setup_for_execution(dg.build_init_resource_context())
    return resource


def timed(work) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def neighbour_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    def top(vectors):
        similarity = vectors @ vectors.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argsort(-similarity, axis=1)[:, :k]

    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(top(a), top(b), strict=True)]))


def pairs(vectors: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    similarity = np.triu(vectors @ vectors.T, 1)
    return set(zip(*np.nonzero(similarity >= threshold), strict=True))


def semdedup_marks(vectors: np.ndarray, eps: float) -> np.ndarray:
    """Group root of each vector after SemDeDup (keep: earliest) on sqrt(N) k-means clusters."""
    centroids, _ = fit_centroids(vectors, KMeansConfig())
    clusters, distances = assign(vectors, centroids)
    none = np.zeros((0, vectors.shape[1]), np.float32), np.zeros(0, np.int64)
    match, _ = find_semantic_duplicates(vectors, clusters, distances, *none, eps=eps, keep="earliest")
    return np.where(match >= 0, match, np.arange(len(vectors)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--minilm-docs", type=int, default=3_000)
    parser.add_argument("--cache", type=Path, default=PROJECT / ".curation" / "models")
    args = parser.parse_args()
    texts = documents(args.data, args.docs)
    subset = texts[: args.minilm_docs]
    megabytes = sum(len(t.encode()) for t in texts) / len(texts) / 1e3
    print(f"{len(texts):,} documents (mean {megabytes:.1f} KB); MiniLM rows on the first {len(subset):,}\n")

    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(bundled_minilm(), device="cpu")
    plain.max_seq_length = 256
    minilm, static = embedder("minilm", args.cache), embedder("static", args.cache)
    baseline_s, _ = timed(lambda: plain.encode(subset, batch_size=32, normalize_embeddings=True))
    ours_s, reference = timed(lambda: minilm.encode(subset))
    static_s, fast = timed(lambda: static.encode(texts))
    baseline_rate = len(subset) / baseline_s
    print("| path | documents | seconds | docs/s | vs baseline |")
    print("|---|---:|---:|---:|---:|")
    for name, count, seconds in [
        ("SentenceTransformer.encode, MiniLM 256 tokens (baseline)", len(subset), baseline_s),
        ("curation_dag MiniLM path", len(subset), ours_s),
        ("curation_dag fast path (static, distilled from MiniLM)", len(texts), static_s),
    ]:
        print(
            f"| {name} | {count:,} | {seconds:.1f} | {count / seconds:,.0f} | {count / seconds / baseline_rate:.1f}x |"
        )

    fast_subset = fast[: len(subset)]
    truth = pairs(reference, 1 - EPS)
    overlap = neighbour_overlap(reference, fast_subset)
    print(f"\nAgreement with MiniLM on {len(subset):,} documents: top-10 neighbour overlap {overlap:.2f}")
    for threshold in (1 - EPS, 0.9, 0.85, 0.8):
        found = pairs(fast_subset, threshold)
        share = len(truth & found) / len(truth) if truth else float("nan")
        print(f"- fast path at cosine >= {threshold:.2f}: {len(found):,} pairs, {share:.2f} of MiniLM's {len(truth):,}")

    texts_by_id = {d["id"]: d["text"] for d in read(args.data / "mrpc_paraphrase" / "docs.jsonl.gz")}
    ids = sorted(texts_by_id)
    index = {doc: i for i, doc in enumerate(ids)}
    labelled = [json.loads(line) for line in open(args.data / "mrpc_paraphrase" / "pairs.jsonl")]
    sentences = [texts_by_id[i] for i in ids]
    spaces = {"MiniLM": minilm.encode(sentences), "fast path": static.encode(sentences)}
    positives = sum(p["label"] == 1 for p in labelled)
    print(
        f"\nSemDeDup on mrpc_paraphrase: {len(ids):,} sentences, {positives:,} paraphrase pairs of {len(labelled):,}\n"
    )
    print("| backend | eps | paraphrase pairs marked | share | non-paraphrase pairs marked |")
    print("|---|---:|---:|---:|---:|")
    for name, vectors in spaces.items():
        for eps in (0.02, 0.05, 0.1, 0.15, 0.2):
            root = semdedup_marks(vectors, eps)
            marked = {
                label: sum(root[index[p["id1"]]] == root[index[p["id2"]]] for p in labelled if p["label"] == label)
                for label in (0, 1)
            }
            print(f"| {name} | {eps} | {marked[1]:,} | {marked[1] / positives:.2f} | {marked[0]:,} |")


if __name__ == "__main__":
    main()
