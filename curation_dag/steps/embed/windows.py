"""Whole-document vectors: a text longer than the model's window is embedded as the mean of its windows.

A transformer sees only its first `max_seq_length` tokens, so two files that share a long header are
identical to it; the mean over all tokens (a static model's) converges for any two long texts. The
windows here are the head, evenly spaced middle windows and the tail, at most `cap` of them, as in
chunk-then-average pooling, the common way to embed inputs longer than a model's window. Every backend
embeds the same windows: the token ids of one tokenization of each text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Windows:
    """The windows of some texts: each one's token ids (no special tokens), the index of the text it
    belongs to, and the [start, end) characters of that text it covers."""

    ids: list[list[int]]
    owners: np.ndarray
    spans: list[tuple[int, int]]

    def texts(self, texts: list[str], which: np.ndarray) -> list[str]:
        """The text of the windows at the positions `which`, cut from their `texts`."""
        return [texts[self.owners[i]][slice(*self.spans[i])] for i in which]


def window_starts(tokens: int, length: int, cap: int) -> list[int]:
    """The first token of each window over `tokens` tokens: one window when they fit, else head, tail
    and evenly spaced middle windows, ceil(tokens / length) of them but at most `cap`."""
    if tokens <= length:
        return [0]
    count = min(cap, math.ceil(tokens / length))
    return sorted({round(start) for start in np.linspace(0, tokens - length, count)})


def windows(texts: list[str], tokenizer, length: int, cap: int) -> Windows:
    """Each text's windows of at most `length` tokens (`tokenizer`: a `tokenizers.Tokenizer`)."""
    ids, owners, spans = [], [], []
    for index, (text, encoding) in enumerate(
        zip(texts, tokenizer.encode_batch(texts, add_special_tokens=False), strict=True)
    ):
        tokens = encoding.ids
        if len(tokens) <= length:
            ids.append(tokens)
            owners.append(index)
            spans.append((0, len(text)))
            continue
        for start, end in _whole_words(encoding, window_starts(len(tokens), length, cap), length):
            ids.append(tokens[start:end])
            owners.append(index)
            spans.append((encoding.token_to_chars(start)[0], encoding.token_to_chars(end - 1)[1]))
    return Windows(ids, np.asarray(owners, dtype=np.int64), spans)


def _whole_words(encoding, starts: list[int], length: int) -> list[tuple[int, int]]:
    """Each window's [start, end) tokens of `encoding`, moved inwards to word boundaries, so that the
    text a window covers tokenizes again into the same tokens, at most `length` of them (a word
    longer than a window is cut where it falls). Looked up token by token: a long text's whole
    offset and word lists cost more than its tokenization."""
    tokens = len(encoding)

    def boundary(token: int) -> bool:
        return token in (0, tokens) or encoding.token_to_word(token) != encoding.token_to_word(token - 1)

    spans = []
    for start in starts:
        end = min(start + length, tokens)
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
