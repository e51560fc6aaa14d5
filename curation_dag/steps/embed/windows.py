"""Whole-document vectors: a text longer than the model's window is embedded as the mean of its windows.

A transformer sees only its first `max_seq_length` tokens, so two files that share a long header are
identical to it; the mean over all tokens (a static model's) converges for any two long texts. The
windows here are the head, evenly spaced middle windows and the tail, at most `cap` of them, as in
chunk-then-average pooling, the common way to embed inputs longer than a model's window. Every backend
cuts the same windows.
"""

from __future__ import annotations

import math

import numpy as np

# Tokens a window leaves to the transformer's [CLS] and [SEP].
SPECIAL_TOKENS = 2


def window_starts(tokens: int, length: int, cap: int) -> list[int]:
    """The first token of each window over `tokens` tokens: one window when they fit, else head, tail
    and evenly spaced middle windows, ceil(tokens / length) of them but at most `cap`."""
    if tokens <= length:
        return [0]
    count = min(cap, math.ceil(tokens / length))
    return sorted({round(start) for start in np.linspace(0, tokens - length, count)})


def windows(texts: list[str], tokenizer, length: int, cap: int) -> tuple[list[str], np.ndarray]:
    """Each text's windows of at most `length` tokens (`tokenizer`: a `tokenizers.Tokenizer`), cut from
    the text at token offsets, and the index of the text each window belongs to."""
    pieces, owners = [], []
    for index, (text, encoding) in enumerate(
        zip(texts, tokenizer.encode_batch(texts, add_special_tokens=False), strict=True)
    ):
        offsets = encoding.offsets
        if len(offsets) <= length:
            pieces.append(text)
            owners.append(index)
            continue
        for start, end in _whole_words(encoding.word_ids, window_starts(len(offsets), length, cap), length):
            pieces.append(text[offsets[start][0] : offsets[end - 1][1]])
            owners.append(index)
    return pieces, np.asarray(owners, dtype=np.int64)


def _whole_words(word_ids: list[int | None], starts: list[int], length: int) -> list[tuple[int, int]]:
    """Each window's [start, end) tokens, moved inwards to word boundaries so that the piece cut
    from the text tokenizes again into the same tokens, at most `length` of them (a word longer
    than a window is cut where it falls)."""

    def boundary(token: int) -> bool:
        return token in (0, len(word_ids)) or word_ids[token] != word_ids[token - 1]

    spans = []
    for start in starts:
        end = min(start + length, len(word_ids))
        first, last = start, end
        while first < last and not boundary(first):
            first += 1
        while last > first and not boundary(last):
            last -= 1
        spans.append((first, last) if last > first else (start, end))
    return spans


def mean_of_windows(vectors: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """Unit vectors of `count` texts: the mean of each text's unit window vectors, normalized."""
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sums = np.zeros((count, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, vectors)
    return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)
