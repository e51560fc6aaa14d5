"""Whole-document vectors: the windows a text is cut into (consecutive equal parts where `cap` of them
cover it, else head, evenly spaced middles and tail), as token ids of the bundled MiniLM tokenizer and
the text they cover, a transformer's pass over them, and the mean of their vectors."""

import math

import numpy as np
import pytest
from tokenizers import Tokenizer

from curation_dag.resources.embedder import bundled_minilm
from curation_dag.steps.embed.transformer import encode_distinct
from curation_dag.steps.embed.windows import CHARS_PER_TOKEN, mean_of_windows, part_bounds, window_starts, windows

# Words the WordPiece vocabulary splits into several pieces, accents, curly quotes, CJK and an emoji:
# character offsets, not bytes, must cut them.
WORDS = (
    "internationalization tokenization café naïve — “quoted” 東京 🙂 Überraschungsmoment "
    "overparameterization the quick brown fox jumps over the lazy dog."
).split()


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    tokenizer = Tokenizer.from_file(bundled_minilm() + "/tokenizer.json")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def long_text(words: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), words))


def cut_pieces(texts: list[str], tokenizer, length: int, cap: int) -> tuple[list[str], np.ndarray]:
    cut = windows(texts, tokenizer, length, cap)
    return cut.texts(texts, np.arange(len(cut.ids))), cut.owners


def test_a_text_that_fits_is_one_window():
    assert window_starts(10, 254, 4) == [0]
    assert window_starts(254, 254, 4) == [0]
    assert window_starts(0, 254, 4) == [0]


def test_a_long_text_gets_its_head_and_its_tail_exactly_and_evenly_spaced_middles():
    starts = window_starts(2000, 254, 4)
    assert len(starts) == 4
    assert starts[0] == 0 and starts[-1] == 2000 - 254  # the last window ends on the last token
    gaps = np.diff(starts)
    assert gaps.max() - gaps.min() <= 1  # evenly spaced, up to rounding
    assert starts == sorted(set(starts))


def test_a_text_never_gets_more_windows_than_the_cap():
    for tokens in (255, 600, 1017, 5000, 100_000):
        for cap in (1, 2, 4, 16):
            assert len(window_starts(tokens, 254, cap)) <= cap
    assert window_starts(100_000, 254, 1) == [0]  # a cap of one keeps the head


def test_under_the_cap_a_text_is_cut_into_consecutive_equal_parts_that_hold_each_token_once():
    for tokens in (255, 476, 477, 600, 952, 3000):
        bounds = part_bounds(tokens, 254, 100)
        assert len(bounds) - 1 == math.ceil(tokens / (254 - 16))
        assert bounds[0] == 0 and bounds[-1] == tokens and bounds == sorted(set(bounds))
        sizes = np.diff(bounds)
        assert sizes.max() <= 254 - 16 and sizes.max() - sizes.min() <= 1
    assert part_bounds(600, 254, 4) == [0, 200, 400, 600]
    assert part_bounds(953, 254, 4) is None  # five parts: a text for head, middles and tail


def test_a_text_that_parts_cover_is_its_tokens_once_on_word_boundaries(tokenizer):
    text = long_text(60, seed=2)
    assert len(text) <= 4 * 50 * CHARS_PER_TOKEN  # tokenized whole
    tokens = tokenizer.encode(text, add_special_tokens=False).ids
    cut = windows([text], tokenizer, 50, 4)
    assert 50 < len(tokens) <= 4 * (50 - 12)
    assert len(cut.ids) == math.ceil(len(tokens) / (50 - 12))
    assert [token for ids in cut.ids for token in ids] == tokens  # every token, once, in order
    for ids, piece in zip(cut.ids, cut.texts([text], np.arange(len(cut.ids))), strict=True):
        assert len(ids) <= 50
        assert tokenizer.encode(piece, add_special_tokens=False).ids == ids


def test_a_long_text_is_tokenized_in_slices_whose_windows_run_from_its_start_to_its_end(tokenizer):
    text = long_text(900)
    assert len(text) > 4 * 50 * CHARS_PER_TOKEN
    encoding = tokenizer.encode(text, add_special_tokens=False)
    assert len(encoding.ids) > 4 * 50  # more windows than the cap would take to cover it
    pieces, owners = cut_pieces([text], tokenizer, 50, 4)
    assert len(pieces) == 4 and owners.tolist() == [0, 0, 0, 0]
    assert all(piece in text for piece in pieces)
    assert text.startswith(pieces[0]) and text.endswith(pieces[-1])
    positions = [text.index(piece) for piece in pieces]
    assert positions == sorted(positions)  # head, middles, tail in the text's order


def test_each_window_spans_at_most_length_of_the_texts_tokens(tokenizer):
    text = long_text(900, seed=1)
    offsets = tokenizer.encode(text, add_special_tokens=False).offsets
    pieces, _ = cut_pieces([text], tokenizer, 50, 4)
    cursor = 0
    for piece in pieces:
        begin = text.index(piece, cursor)
        end, cursor = begin + len(piece), begin
        inside = [start for start, stop in offsets if start >= begin and stop <= end]
        assert 40 <= len(inside) <= 50  # full, but for the word split at either end
        assert begin in {start for start, _ in offsets} and end in {stop for _, stop in offsets}


def test_each_window_is_the_tokens_of_the_text_it_covers(tokenizer):
    """Windows begin and end on word boundaries, so the text a window covers tokenizes again into
    exactly its tokens: no '##' piece at its start that would split differently on its own."""
    text = long_text(900)
    cut = windows([text], tokenizer, 50, 4)
    for ids, piece in zip(cut.ids, cut.texts([text], np.arange(len(cut.ids))), strict=True):
        assert len(ids) <= 50
        assert tokenizer.encode(piece, add_special_tokens=False).ids == ids


def test_a_short_text_is_its_own_window_and_owners_map_windows_back(tokenizer):
    short, other = "Hello world.", "A café in 東京 🙂."
    text = long_text(900)
    pieces, owners = cut_pieces([short, text, other], tokenizer, 50, 4)
    assert owners.tolist() == [0, 1, 1, 1, 1, 2]
    assert pieces[0] == short and pieces[-1] == other
    assert all(piece in text for piece, owner in zip(pieces, owners, strict=True) if owner == 1)
    assert owners.dtype == np.int64


def test_the_mean_of_windows_is_the_normalized_mean_of_unit_window_vectors():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((6, 8)).astype(np.float32) * rng.uniform(0.1, 10, (6, 1)).astype(np.float32)
    owners = np.array([0, 1, 1, 1, 2, 2])
    means = mean_of_windows(vectors, owners, 3)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for text in range(3):
        mean = unit[owners == text].mean(axis=0)
        assert np.allclose(means[text], mean / np.linalg.norm(mean), atol=1e-6)
    assert means.dtype == np.float32 and np.allclose(np.linalg.norm(means, axis=1), 1, atol=1e-6)
    assert np.allclose(means[0], unit[0], atol=1e-6)  # one window: its own unit vector


def test_a_transformer_runs_each_distinct_window_once_between_its_special_tokens():
    seen = []

    def run(input_ids, attention_mask):
        rows = [row[mask == 1] for row, mask in zip(input_ids, attention_mask, strict=True)]
        seen.extend(tuple(row) for row in rows)
        assert ((input_ids == 0) | (attention_mask == 1)).all()  # what the mask hides is padding
        return np.stack([np.full(3, row.sum(), np.float32) for row in rows])

    windows_ = [[5, 6], [7], [5, 6], [8, 9, 10], []]
    vectors = encode_distinct(windows_, 2, ([1], [2]), run, 3)
    assert sorted(seen) == sorted([(1, 5, 6, 2), (1, 7, 2), (1, 8, 9, 10, 2), (1, 2)])
    assert vectors[:, 0].tolist() == [14, 10, 14, 30, 3]  # in the order of the windows, repeats included
