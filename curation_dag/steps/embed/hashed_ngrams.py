"""Hashed character n-gram vectors: an embedding for texts a model's vocabulary cannot read.

A static embedding model averages the vectors of the tokens it knows. A text in a script outside
its vocabulary (Amharic, Thaana, Mongolian for all-MiniLM-L6-v2's WordPiece) has no known token,
or only its punctuation and digits, so it gets a zero vector or one that any other such text
shares, and SemDeDup would call them all duplicates. Character n-grams need no vocabulary, as in
fastText's subwords (Bojanowski et al. 2017); signed feature hashing (Weinberger et al. 2009) puts
them in a vector of any size, in which texts sharing few n-grams are nearly orthogonal.
"""

import numpy as np

from curation_dag.steps.hashing import splitmix64

NGRAM = 3  # character trigrams, the shortest of fastText's default 3- to 6-grams
_MULTIPLIER = np.uint64(0x100000001B3)  # the FNV-1a 64-bit prime, to combine a gram's code points


def character_ngram_vectors(texts: list[str], dimension: int) -> np.ndarray:
    """One L2-normalized float32 row per text: its character trigrams, hashed into `dimension` signed buckets.

    Deterministic across processes and machines (no Python `hash`). A text shorter than three
    characters, the empty text included, is one gram padded with zeros.
    """
    vectors = np.zeros((len(texts), dimension), dtype=np.float32)
    for row, text in enumerate(texts):
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        codes = np.pad(codes, (0, max(NGRAM - codes.size, 0)))
        count = codes.size - NGRAM + 1
        grams = np.zeros(count, dtype=np.uint64)
        for offset in range(NGRAM):
            grams = grams * _MULTIPLIER + codes[offset : offset + count]  # wraps modulo 2**64
        hashed = splitmix64(grams)
        buckets = (hashed % np.uint64(dimension)).astype(np.intp)
        signed = np.bincount(buckets, weights=np.where(hashed >> np.uint64(63), -1.0, 1.0), minlength=dimension)
        # Signs of different grams can cancel out, in a text of a few grams: count them unsigned then.
        vectors[row] = signed if signed.any() else np.bincount(buckets, minlength=dimension)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
