"""MinHash signing and near-dup quality: ours against datasketch and rensa, in one run, on one core.

The corpus is every ../shared/data corpus but deb_dictionaries (one-line entries), about 100k real
documents, with neardup_eval's injected near-duplicates inside it. Every method signs the same
texts with 128 permutations over lower-cased word 5-gram shingles. Quality is measured the same way
for all: reported pairs go through union-find; recall is the share of neardup_eval's listed pairs
with exact Jaccard >= 0.8 that end in one group, and precision the share of reported pairs whose
exact Jaccard is >= 0.7.

    taskset -c 0 env POLARS_MAX_THREADS=1 python benchmarks/minhash.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl

from curation_dag.steps.dedup.minhash import MinHashConfig, band_keys, estimated_jaccard, sign_all
from curation_dag.steps.dedup.resolve import UnionFind, pairs_within

PROJECT = Path(__file__).resolve().parents[1]
WORD = re.compile(r"\S+")
CONFIG = MinHashConfig()


def shingles(text: str, n: int = 5) -> list[str]:
    words = [w.lower() for w in WORD.findall(text)]
    if len(words) < n:
        return [" ".join(words)] if words else []
    return list({" ".join(words[i : i + n]) for i in range(len(words) - n + 1)})


def load(data: Path) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    for corpus in sorted(data.glob("*/docs.jsonl.gz")):
        if corpus.parent.name == "deb_dictionaries":
            continue
        with gzip.open(corpus, "rt", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                ids.append(f"{corpus.parent.name}:{record['id']}")
                texts.append(record["text"])
    return ids, texts


def sign_ours(texts: list[str]) -> np.ndarray:
    return sign_all(pl.Series(texts), CONFIG)[0]


def sign_datasketch(texts: list[str]) -> np.ndarray:
    from datasketch import MinHash

    minhashes = MinHash.bulk([[s.encode() for s in shingles(t)] for t in texts], num_perm=128)
    return np.array([m.hashvalues for m in minhashes])


def sign_rensa(mode: str):
    def run(texts: list[str]) -> np.ndarray:
        import rensa

        token_sets = [shingles(t) for t in texts]
        if mode == "cminhash":
            return np.array(rensa.CMinHash.digests_from_token_sets(token_sets, 128, 42))
        matrix = getattr(
            rensa.RMinHash,
            {"rminhash": "digest_matrix_from_token_sets", "rho": "digest_matrix_from_token_sets_rho"}[mode],
        )
        return np.array(matrix(token_sets, 128, 42).to_rows())

    return run


def verified_pairs(signatures: np.ndarray, bands: int, rows: int, threshold: float | None) -> np.ndarray:
    """Our LSH: candidate pairs of shared band keys, verified by estimated Jaccard when a threshold is given."""
    candidates = pairs_within(band_keys(signatures.astype(np.uint32, copy=False), bands, rows, CONFIG.seed))
    if threshold is None:
        return candidates
    return candidates[estimated_jaccard(signatures[candidates[:, 0]], signatures[candidates[:, 1]]) >= threshold]


def datasketch_lsh_pairs(signatures: np.ndarray) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    minhashes = [MinHash(num_perm=128, hashvalues=row, scheme="affine32") for row in signatures]
    for key, minhash in enumerate(minhashes):
        lsh.insert(key, minhash)
    pairs = {(min(a, b), max(a, b)) for a, m in enumerate(minhashes) for b in lsh.query(m) if a != b}
    return np.array(sorted(pairs)).reshape(-1, 2)


def quality(
    pairs: np.ndarray, ids: list[str], texts: list[str], listed: list[dict], cache: dict
) -> tuple[float, float]:
    components = UnionFind(len(ids))
    for a, b in pairs.tolist():
        components.union(a, b)
    index = {doc: i for i, doc in enumerate(ids)}
    strong = [p for p in listed if p["jaccard"] >= 0.8]
    recall = np.mean(
        [
            components.find(index[f"neardup_eval:{p['id1']}"]) == components.find(index[f"neardup_eval:{p['id2']}"])
            for p in strong
        ]
    )

    def shingle_set(i: int) -> set[str]:
        if i not in cache:
            cache[i] = set(shingles(texts[i]))
        return cache[i]

    exact = [
        len(shingle_set(a) & shingle_set(b)) / max(len(shingle_set(a) | shingle_set(b)), 1) for a, b in pairs.tolist()
    ]
    return float(recall), float(np.mean(np.array(exact) >= 0.7)) if exact else 1.0


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ids, texts = load(args.data)
    listed = [json.loads(line) for line in open(args.data / "neardup_eval" / "pairs.jsonl")]
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    print(f"{len(texts):,} documents, {megabytes:.1f} MB of text; signing time: median of {args.repeats}\n")

    wide = CONFIG.band_shape()
    methods = {
        "curation_dag (OPH + densification, numpy)": (sign_ours, [("LSH 25x5 + verify >= 0.75", wide, 0.75)]),
        "datasketch MinHash.bulk": (
            sign_datasketch,
            [("MinHashLSH threshold 0.8", None, None), ("LSH 25x5 + verify >= 0.75", wide, 0.75)],
        ),
        "rensa CMinHash": (sign_rensa("cminhash"), [("LSH 25x5 + verify >= 0.75", wide, 0.75)]),
        "rensa RMinHash": (sign_rensa("rminhash"), [("LSH 25x5 + verify >= 0.75", wide, 0.75)]),
        "rensa RMinHash rho": (sign_rensa("rho"), [("LSH 25x5 + verify >= 0.75", wide, 0.75)]),
    }
    shingling = statistics.median(_timed(lambda: [shingles(t) for t in texts]) for _ in range(args.repeats))
    cache: dict = {}
    rows = []
    for name, (signer, matchers) in methods.items():
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            signatures = signer(texts)
            seconds.append(time.perf_counter() - started)
        median = statistics.median(seconds)
        for label, shape, threshold in matchers:
            started = time.perf_counter()
            pairs = datasketch_lsh_pairs(signatures) if shape is None else verified_pairs(signatures, *shape, threshold)
            matching = time.perf_counter() - started
            recall, precision = quality(pairs, ids, texts, listed, cache)
            rows.append((name, median, label, matching, len(pairs), recall, precision))
            print(f"done: {name} / {label}", flush=True)

    ours = rows[0][1]
    print(f"\nBuilding the baselines' shingle sets in Python: {shingling:.1f} s (included in their signing time;")
    print("'excl.' leaves it out, as if the sets came for free). Ours tokenizes and shingles inside signing.\n")
    print(
        "| signing | MB/s | MB/s excl. shingling | docs/s | time / ours | matching | matching s | pairs"
        " | recall J>=0.8 | precision J>=0.7 |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for name, seconds, label, matching, n_pairs, recall, precision in rows:
        alone = megabytes / (seconds - shingling) if name != rows[0][0] else megabytes / seconds
        print(
            f"| {name} | {megabytes / seconds:.1f} | {alone:.1f} | {len(texts) / seconds:,.0f}"
            f" | {seconds / ours:.2f}x | {label} | {matching:.1f} | {n_pairs:,} | {recall:.3f} | {precision:.3f} |"
        )


if __name__ == "__main__":
    main()
