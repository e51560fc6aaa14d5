"""Whole-document vectors: a text longer than the model's window is embedded as the mean of its windows.

A transformer sees only its first `max_seq_length` tokens, so two files that share a long header are
identical to it; the mean over all tokens (a static model's) converges for any two long texts. The
windows here are chunk-then-average pooling, the common way to embed inputs longer than a model's
window: a text that at most `cap` windows cover is cut into that many consecutive, equal parts, so that
each of its tokens is embedded once; a longer one gets `cap` windows, the head, evenly spaced middles
and the tail. Every backend embeds the same windows: the token ids of one tokenization of each text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

# Names the way texts are cut into windows, in the vectors' model ids: 2, consecutive equal parts and
# long texts tokenized in slices (1 was overlapping windows of full length over whole tokenizations).
SCHEME = 2
# A window of `length` tokens rarely covers more characters than this many per token (English WordPiece
# averages about 4 with spaces), so a text longer than `cap` such windows is tokenized only in `cap`
# slices of that many characters: its tokenization, not the transformer, is what a long text costs.
CHARS_PER_TOKEN = 6
_SPACE = re.compile(r"\s")


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


def slack(length: int) -> int:
    """How many tokens a part's boundary may move back to the start of a word, keeping parts within `length`."""
    return min(16, length // 4)


def part_bounds(tokens: int, length: int, cap: int) -> list[int] | None:
    """The bounds of the consecutive, equal parts of `tokens` tokens, ceil(tokens / (length - slack)) of
    them, when at most `cap` parts cover them; None when they do not."""
    parts = math.ceil(tokens / (length - slack(length)))
    return [round(i * tokens / parts) for i in range(parts + 1)] if parts <= cap else None


def window_starts(tokens: int, length: int, cap: int) -> list[int]:
    """The first token of each of the `cap` windows of `length` over a text too long for `cap` parts:
    head, tail and evenly spaced middle windows (at most `tokens` / `length` of them)."""
    if tokens <= length:
        return [0]
    count = min(cap, math.ceil(tokens / length))
    return sorted({round(start) for start in np.linspace(0, tokens - length, count)})


def windows(texts: list[str], tokenizer, length: int, cap: int) -> Windows:
    """Each text's windows of at most `length` tokens (`tokenizer`: a `tokenizers.Tokenizer`). A text of
    more than `cap` * `length` * CHARS_PER_TOKEN characters is tokenized in `cap` slices of `length` *
    CHARS_PER_TOKEN characters (head, evenly spaced middles, tail), a window each: the first `length`
    tokens of a slice, the last of the tail."""
    size = length * CHARS_PER_TOKEN
    pieces: list[tuple[int, int, bool | None]] = []  # text, its first character, None or whether the tail
    strings = []
    for index, text in enumerate(texts):
        cuts = [(0, len(text))] if len(text) <= cap * size else _slices(text, cap, size)
        for number, (start, end) in enumerate(cuts):
            pieces.append((index, start, None if len(cuts) == 1 else number == len(cuts) - 1))
            strings.append(text[start:end])
    ids, owners, spans = [], [], []
    encodings = tokenizer.encode_batch(strings, add_special_tokens=False)
    for (index, offset, tail), string, encoding in zip(pieces, strings, encodings, strict=True):
        tokens = encoding.ids
        if not tokens or (tail is None and len(tokens) <= length):  # a whole text, or a blank slice
            ids.append(tokens)
            owners.append(index)
            spans.append((offset, offset + len(string)))
            continue
        for start, end in _cuts(encoding, length, cap, tail):
            ids.append(tokens[start:end])
            owners.append(index)
            spans.append((offset + encoding.token_to_chars(start)[0], offset + encoding.token_to_chars(end - 1)[1]))
    return Windows(ids, np.asarray(owners, dtype=np.int64), spans)


def _slices(text: str, count: int, size: int) -> list[tuple[int, int]]:
    """`count` [start, end) slices of about `size` characters of `text`, evenly spaced from its start to
    its end, each moved to whitespace (within a quarter of `size`) so that no word is cut."""
    reach = size // 4
    cuts = []
    for start in np.linspace(0, len(text) - size, count).round().astype(int).tolist():
        end = start + size
        if start > 0 and (space := _SPACE.search(text, start, start + reach)):
            start = space.end()
        if end < len(text) and (spaces := [m.start() for m in _SPACE.finditer(text, end - reach, end)]):
            end = spaces[-1]
        cuts.append((start, end))
    return cuts


def _cuts(encoding, length: int, cap: int, tail: bool | None) -> list[tuple[int, int]]:
    """The [start, end) tokens of `encoding`'s windows, on word boundaries: its consecutive parts, or its
    `cap` windows, or (for a slice of a long text) its first window, or its last if `tail`."""
    tokens = len(encoding)

    def boundary(token: int) -> bool:
        return token in (0, tokens) or encoding.token_to_word(token) != encoding.token_to_word(token - 1)

    if tail is not None:
        return _inwards(boundary, [max(0, tokens - length) if tail else 0], length, tokens)
    bounds = part_bounds(tokens, length, cap)
    if bounds is None:
        return _inwards(boundary, window_starts(tokens, length, cap), length, tokens)
    for i in range(1, len(bounds) - 1):  # each inner bound back to the start of its word, if near
        start = next((b for b in range(bounds[i], bounds[i] - slack(length) - 1, -1) if boundary(b)), bounds[i])
        bounds[i] = start
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _inwards(boundary, starts: list[int], length: int, tokens: int) -> list[tuple[int, int]]:
    """Windows of at most `length` tokens from `starts`, moved inwards to word boundaries, so that the
    text a window covers tokenizes again into the same tokens (a word longer than a window is cut where
    it falls). Looked up token by token: a long text's whole offset and word lists cost more than its
    tokenization."""
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
