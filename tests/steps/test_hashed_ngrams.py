"""Hashed character trigram vectors, the static embedder's fallback for texts outside its vocabulary."""

import numpy as np

from curation_dag.steps.embed.hashed_ngrams import character_ngram_vectors


def test_vectors_are_unit_length_deterministic_and_lexical():
    texts = ["ስለሰብአዊ፡መብቶች፡ለማስተማር", "ስለሰብአዊ፡መብቶች፡ለማስተማር፡ የሚረዱ", "ރާާއްޖޭގައި ބާއްވާ ފުރަތަމަ", "", "ab"]
    vectors = character_ngram_vectors(texts, 256)
    assert vectors.shape == (5, 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    assert np.array_equal(vectors, character_ngram_vectors(texts, 256))
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.7 and abs(unrelated) < 0.3


def test_hashes_are_fixed_across_processes():
    """Golden buckets: the vectors are cached by content hash, so they must not depend on the process."""
    vector = character_ngram_vectors(["abcd"], 16)[0]  # two trigrams, abc and bcd
    assert np.allclose(vector, np.sqrt(0.5) * np.eye(16)[1] - np.sqrt(0.5) * np.eye(16)[0])
