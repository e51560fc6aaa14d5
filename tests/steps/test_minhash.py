import gzip
import json
import re

import numpy as np
import polars as pl
import pytest
from datasketch import MinHash

from curation_dag.steps.dedup.minhash import (
    MinHashConfig,
    band_keys,
    estimated_jaccard,
    optimal_band_shape,
    read_signatures,
    sign,
    sign_file,
)
from curation_dag.steps.recipes.files import RecipeError, build

CONFIG = MinHashConfig()
WORD = re.compile(r"\S+")


def word_shingles(text: str, n: int = 5) -> set[str]:
    """The reference definition: lower-cased whitespace tokens, n-grams; short texts are one shingle."""
    words = [w.lower() for w in WORD.findall(text)]
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def exact_jaccard(a: str, b: str) -> float:
    sa, sb = word_shingles(a), word_shingles(b)
    return len(sa & sb) / len(sa | sb)


def datasketch_estimate(a: str, b: str, num_perm: int = 128) -> float:
    left, right = MinHash(num_perm=num_perm), MinHash(num_perm=num_perm)
    left.update_batch([s.encode() for s in word_shingles(a)])
    right.update_batch([s.encode() for s in word_shingles(b)])
    return left.jaccard(right)


def mutate(words: list[str], rate: float, rng: np.random.Generator) -> str:
    return " ".join(w if rng.random() > rate else "x" + w for w in words)


def test_identical_texts_match_and_case_and_spacing_do_not_matter():
    texts = pl.Series(["The quick brown fox jumps over the lazy dog", "the  QUICK brown\nfox jumps over the lazy dog"])
    signatures, counts = sign(texts, CONFIG)
    assert signatures.shape == (2, 128) and signatures.dtype == np.uint32
    assert (signatures[0] == signatures[1]).all() and counts.tolist() == [5, 5]


def test_short_texts_are_one_shingle_and_differ_by_word_order():
    signatures, counts = sign(pl.Series(["hello world", "world hello", "hello world"]), CONFIG)
    assert counts.tolist() == [1, 1, 1]
    assert (signatures[0] == signatures[2]).all() and not (signatures[0] == signatures[1]).all()


def test_estimates_are_unbiased_against_exact_jaccard_on_synthetic_pairs():
    rng = np.random.default_rng(7)
    vocabulary = [f"w{i}" for i in range(5000)]
    originals = [list(rng.choice(vocabulary, size=int(rng.integers(20, 600)))) for _ in range(300)]
    copies = [mutate(words, float(rng.uniform(0.01, 0.2)), rng) for words in originals]
    originals = [" ".join(words) for words in originals]
    signatures, _ = sign(pl.Series(originals + copies), CONFIG)
    ours = estimated_jaccard(signatures[:300], signatures[300:])
    exact = np.array([exact_jaccard(a, b) for a, b in zip(originals, copies, strict=True)])
    standard_error = np.sqrt(exact * (1 - exact) / 128)
    assert abs((ours - exact).mean()) < 0.01  # no bias
    assert (np.abs(ours - exact) <= 4 * standard_error + 1e-9).mean() > 0.99


def test_estimates_agree_with_datasketch_on_real_near_duplicates(shared_data):
    pairs = [json.loads(line) for line in open(shared_data / "neardup_eval" / "pairs.jsonl")][:200]
    with gzip.open(shared_data / "neardup_eval" / "docs.jsonl.gz", "rt") as handle:
        texts = {d["id"]: d["text"] for d in map(json.loads, handle)}
    left = pl.Series([texts[p["id1"]] for p in pairs])
    right = pl.Series([texts[p["id2"]] for p in pairs])
    ours = estimated_jaccard(sign(left, CONFIG)[0], sign(right, CONFIG)[0])
    reference = np.array([datasketch_estimate(texts[p["id1"]], texts[p["id2"]]) for p in pairs])
    exact = np.array([p["jaccard"] for p in pairs])
    # Two independent estimates of the same J differ with SD sqrt(2 J (1-J) / 128).
    spread = np.sqrt(2 * exact * (1 - exact) / 128)
    assert (np.abs(ours - reference) <= 4 * spread + 1e-9).mean() > 0.98
    assert abs(np.abs(ours - exact).mean() - np.abs(reference - exact).mean()) < 0.01


def test_byte_shingles():
    config = MinHashConfig(shingle="byte", shingle_size=4)
    signatures, counts = sign(pl.Series(["abcdef", "ABCDEF", "abc"]), config)
    assert counts.tolist() == [3, 3, 1] and (signatures[0] == signatures[1]).all()


def test_band_keys_depend_on_band_content_and_position():
    signatures, _ = sign(pl.Series(["one two three four five six", "one two three four five six"]), CONFIG)
    keys = band_keys(signatures, 25, 5, CONFIG.seed)
    assert keys.shape == (2, 25) and (keys[0] == keys[1]).all()
    assert len(set(keys[0].tolist())) == 25  # equal band contents in two bands still give two keys


def test_band_shape_follows_datasketch_unless_given():
    assert MinHashConfig().band_shape() == (25, 5)
    assert MinHashConfig(lsh_threshold=0.8).band_shape() == (9, 13)
    assert MinHashConfig(bands=16, rows=8).band_shape() == (16, 8)


@pytest.mark.parametrize(
    ("threshold", "num_perm", "weights"),
    [
        (0.5, 128, (0.5, 0.5)),
        (0.8, 128, (0.5, 0.5)),
        (0.3, 64, (0.5, 0.5)),
        (0.9, 256, (0.5, 0.5)),
        (0.7, 96, (0.2, 0.8)),
    ],
)
def test_optimal_band_shape_is_datasketchs(threshold, num_perm, weights):
    from datasketch.lsh import _optimal_param  # the oracle: the private function MinHashLSH calls

    assert optimal_band_shape(threshold, num_perm, *weights) == _optimal_param(threshold, num_perm, *weights)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bands": 16}, "give both 'bands' and 'rows'"),
        ({"bands": 20, "rows": 8}, "exceeds num_perm"),
        ({"shingle": "char"}, "shingle"),
    ],
)
def test_bad_settings_are_refused_with_the_field(tmp_path, settings, message):
    with pytest.raises(RecipeError, match=message):
        build(MinHashConfig, settings, tmp_path / "dedup.yml", "minhash")


def test_sign_file_round_trip(tmp_path):
    texts = [f"document number {i} " * (i + 1) for i in range(50)]
    documents = tmp_path / "documents.parquet"
    pl.DataFrame({"doc_id": [f"d{i}" for i in range(50)], "text": texts}).write_parquet(documents)
    assert sign_file(documents, tmp_path / "signatures.parquet", CONFIG, batch_bytes=500) == 50
    frame, signatures, keys = read_signatures(tmp_path / "signatures.parquet", pl.Series(["d3", "d0"]))
    expected, _ = sign(pl.Series([texts[3], texts[0]]), CONFIG)
    assert frame["doc_id"].to_list() == ["d3", "d0"] and (signatures == expected).all() and keys.shape == (2, 25)


def test_both_densification_paths_fill_bins_identically():
    from curation_dag.steps.dedup.minhash import _EMPTY, _densify

    rng = np.random.default_rng(11)
    values = rng.integers(0, 2**32, size=(400, 128), dtype=np.uint64)
    filled = rng.integers(1, 129, size=400)
    values[np.arange(128)[None, :] >= filled[:, None]] = _EMPTY  # vary how many bins are filled
    values = np.take_along_axis(values, rng.permuted(np.tile(np.arange(128), (400, 1)), axis=1), axis=1)
    ranked, walked = values.copy(), values.copy()
    _densify(ranked, np.ones(400, dtype=bool), seed=1, sparse_bins=128)
    _densify(walked, np.ones(400, dtype=bool), seed=1, sparse_bins=0)
    assert (ranked == walked).all() and not (ranked == _EMPTY).any()


@pytest.mark.parametrize("shingle", ["word", "byte"])
def test_texts_of_zero_to_ten_words_sign_alone_as_in_any_batch(shingle):
    """A batch with fewer units than a shingle once broke the numpy arithmetic ('Errata notice' alone)."""
    config = MinHashConfig(shingle=shingle)
    rng = np.random.default_rng(5)
    words = ["errata", "notice", "a", "licence", "é", "x"]
    texts = [" ".join(rng.choice(words, size=n)) for n in range(11) for _ in range(5)]
    together, together_counts = sign(pl.Series(texts), config)
    for index, text in enumerate(texts):
        alone, counts = sign(pl.Series([text]), config)
        units = len(text.split()) if shingle == "word" else len(text.lower().encode())
        assert counts[0] == together_counts[index] == (max(units - config.shingle_size + 1, 1) if units else 0)
        assert (alone[0] == together[index]).all(), text
