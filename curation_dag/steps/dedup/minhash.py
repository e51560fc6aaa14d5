"""MinHash signatures and LSH band keys for whole batches of documents at once, in numpy.

Signing uses one permutation hashing (Li, Owen & Zhang, NeurIPS 2012): each shingle is hashed
once, the hash picks one of `num_perm` bins and the bin keeps its smallest value, so the cost is
O(shingles) instead of O(shingles x num_perm). Bins a short document leaves empty are filled by
optimal densification (Shrivastava, ICML 2017), which keeps the fraction of equal bins an unbiased
estimate of Jaccard similarity, as with classic MinHash (Broder 1997).

Shingles follow the common near-dedup convention: lower-cased, whitespace-separated word n-grams
(a document shorter than n words is one shingle), or byte n-grams of the lower-cased UTF-8 text.
All hashing is our own and fixed, so signatures stay comparable across drops and library versions.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curation_dag.steps.hashing import splitmix64
from curation_dag.store.atomic import atomic_path
from curation_dag.store.files import parquet_file

# An empty bin before densification; real bin values are < 2**32.
_EMPTY = np.uint64(1 << 32)
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True  # what Python's str.split() splits ASCII text on
_BASE = np.uint64(0x100000001B3)  # the FNV-1 64-bit prime: odd, so invertible modulo 2**64
_MAX_SHINGLE = 32  # distinct odd multipliers, one per position in a shingle
# Text signed per numpy pass; the working set is about 40 bytes per byte of text.
BATCH_BYTES = 4 << 20


class MinHashConfig(BaseModel):
    """MinHash and LSH parameters; `str()` is stable, so the config can be hashed into a version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_perm: int = Field(128, ge=16, le=1024, description="Signature length; datasketch's default.")
    shingle: Literal["word", "byte"] = Field("word", description="Word n-grams or byte n-grams.")
    shingle_size: int = Field(
        5, ge=1, le=_MAX_SHINGLE, description="n; 5-word shingles as in Gopher (Rae et al. 2021)."
    )
    seed: int = Field(1, ge=0, description="Seed of every hash; signatures are only comparable with one seed.")
    threshold: float = Field(
        0.75,
        gt=0,
        le=1,
        description="Estimated Jaccard at which a candidate pair counts as a duplicate. With 128 bins "
        "the estimate's SD at J=0.8 is 0.035, so 0.75 keeps ~92% of pairs at exactly 0.8 and almost "
        "all above it, while pairs under 0.7 rarely pass.",
    )
    lsh_threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Jaccard at which LSH bands start to propose candidates; below `threshold`, so that "
        "recall is decided by the verification, not by the banding.",
    )
    bands: int | None = Field(None, ge=1, description="Bands; with `rows`, overrides the choice by `lsh_threshold`.")
    rows: int | None = Field(None, ge=1, description="Rows per band.")

    @model_validator(mode="after")
    def _bands_fit(self) -> MinHashConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both 'bands' and 'rows', or neither")
        if self.bands and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def band_shape(self) -> tuple[int, int]:
        """(bands, rows): as given, else the optimum for `lsh_threshold` (equal FP/FN weights)."""
        if self.bands:
            return self.bands, self.rows
        return optimal_band_shape(self.lsh_threshold, self.num_perm)


def _shares_a_band(similarity: float, bands: int, rows: int) -> float:
    """The probability that two documents of this Jaccard similarity share at least one band."""
    return 1 - (1 - similarity**rows) ** bands


def _shares_no_band(similarity: float, bands: int, rows: int) -> float:
    return 1 - _shares_a_band(similarity, bands, rows)


@functools.cache
def optimal_band_shape(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """The (bands, rows), bands x rows <= num_perm, that minimize the weighted false positive and false
    negative probabilities: the area under LSH's S-curve 1 - (1 - s**rows)**bands below `threshold`, and
    the area above it under 1 minus the curve (Leskovec, Rajaraman & Ullman, Mining of Massive Datasets,
    ch. 3.4). The same search, and the same choice, as datasketch's `MinHashLSH`."""
    from scipy.integrate import quad

    least, best = float("inf"), (0, 0)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            false_positive = quad(_shares_a_band, 0.0, threshold, args=(bands, rows))[0]
            false_negative = quad(_shares_no_band, threshold, 1.0, args=(bands, rows))[0]
            error = false_positive * false_positive_weight + false_negative * false_negative_weight
            if error < least:
                least, best = error, (bands, rows)
    return best


def _constants(seed: int, count: int, salt: int) -> np.ndarray:
    """`count` odd 64-bit constants derived from the seed."""
    return splitmix64(
        np.arange(count, dtype=np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + salt) % 2**64)
    ) | np.uint64(1)


_powers_cache: list[np.ndarray] = []


def _power_table(base: int, size: int, block: int = 4096) -> np.ndarray:
    """base**i modulo 2**64 for i < size, as an outer product of two short cumulative products."""
    low = np.cumprod(np.full(block, base, dtype=np.uint64))
    high = np.cumprod(np.full(-(-size // block), pow(base, block, 2**64), dtype=np.uint64))
    one = np.ones(1, dtype=np.uint64)
    low, high = np.concatenate((one, low[:-1])), np.concatenate((one, high[:-1]))
    return (high[:, None] * low[None, :]).ravel()[:size]


def _powers(size: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**i and BASE**-i modulo 2**64 for i < size (numpy's uint64 products wrap modulo 2**64).

    One pair of tables is kept, grown to the largest batch seen, so memory stays at 16 bytes per
    byte of the largest batch.
    """
    if not _powers_cache or len(_powers_cache[0]) < size:
        _powers_cache[:] = [_power_table(int(_BASE), size), _power_table(pow(int(_BASE), -1, 2**64), size)]
    return _powers_cache[0], _powers_cache[1]


def _substring_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Polynomial hash of data[start:end] for every pair at once, through prefix sums.

    sum_j data[j] * BASE**(end-1-j) = BASE**(end-1) * (Q[end-1] - Q[start-1]), Q = cumsum(data * BASE**-j).
    """
    forward, backward = _powers(1 << max(len(data) - 1, 1).bit_length())
    prefix = np.concatenate(([np.uint64(0)], np.cumsum(data.astype(np.uint64) * backward[: len(data)])))
    return forward[ends - 1] * (prefix[ends] - prefix[starts])


def _shingle_hashes(texts: pl.Series, config: MinHashConfig) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every shingle, and the index of the document each belongs to."""
    array = texts.str.to_lowercase().to_arrow().cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    n = config.shingle_size
    if config.shingle == "byte":
        unit_starts = np.arange(len(data), dtype=np.int64)
        unit_doc = np.repeat(np.arange(len(texts)), np.diff(offsets))
        unit_hashes = data.astype(np.uint64) + np.uint64(1)
    else:
        space = _WHITESPACE[data]
        first = np.zeros(len(data), dtype=bool)
        first[offsets[:-1][np.diff(offsets) > 0]] = True
        previous_space = np.concatenate(([True], space[:-1])) | first
        next_space = np.concatenate((space[1:], [True]))
        next_space[offsets[1:][np.diff(offsets) > 0] - 1] = True
        unit_starts = np.flatnonzero(~space & previous_space)
        unit_ends = np.flatnonzero(~space & next_space) + 1
        unit_doc = np.searchsorted(offsets, unit_starts, side="right") - 1
        unit_hashes = splitmix64(_substring_hashes(data, unit_starts, unit_ends))
    # A shingle starts at every unit with n-1 more units in the same document, and at the first
    # unit of a document shorter than n units; terms past the document's end are left out.
    multipliers = _constants(config.seed, n, salt=1)
    total = len(unit_hashes)
    combined = unit_hashes * multipliers[0]
    for position in range(1, min(n, total)):  # a batch may hold fewer than n units in all
        same_doc = unit_doc[position:] == unit_doc[: total - position]
        combined[: total - position] += np.where(same_doc, unit_hashes[position:] * multipliers[position], 0)
    full = np.zeros(total, dtype=bool)
    starts = max(total - n + 1, 0)
    full[:starts] = unit_doc[n - 1 :] == unit_doc[:starts]
    units_per_doc = np.bincount(unit_doc, minlength=len(texts))
    first_unit = np.concatenate(([0], np.cumsum(units_per_doc)[:-1]))
    short_docs = np.flatnonzero((units_per_doc > 0) & (units_per_doc < n))
    full[first_unit[short_docs]] = True
    return combined[full], unit_doc[full]


def sign(texts: pl.Series, config: MinHashConfig) -> tuple[np.ndarray, np.ndarray]:
    """Signatures (documents x num_perm, uint32) and shingle counts of a batch of texts.

    A document without any shingle (no non-space character) has count 0 and an all-zero
    signature; callers leave such documents out of near-duplicate matching.
    """
    k = config.num_perm
    shingles, doc = _shingle_hashes(texts, config)
    hashed = splitmix64(shingles ^ _constants(config.seed, 1, salt=2)[0])
    bins = ((hashed >> np.uint64(32)) * np.uint64(k)) >> np.uint64(32)
    flat = np.full(len(texts) * k, _EMPTY, dtype=np.uint64)
    np.minimum.at(flat, doc.astype(np.uint64) * np.uint64(k) + bins, hashed & np.uint64(0xFFFFFFFF))
    signatures = flat.reshape(len(texts), k)
    counts = np.bincount(doc, minlength=len(texts))
    _densify(signatures, counts > 0, config.seed)
    signatures[counts == 0] = 0
    return signatures.astype(np.uint32), counts


# Documents with at most this many non-empty bins are densified by ranking their non-empty bins
# (cost (k - m) x m); denser ones by walking the probe order (expected k / m steps per empty bin).
SPARSE_BINS = 32
_SPARSE_CHUNK = 4096


@functools.cache
def _probe_order(bins: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per bin j, a seeded permutation of all bins (`order[j]`) and each bin's place in it (`rank[j]`)."""
    order = np.argsort(np.random.default_rng([seed, 0xD3A5]).random((bins, bins)), axis=1)
    rank = np.empty((bins, bins + 1), dtype=np.int16)
    np.put_along_axis(rank, order, np.arange(bins)[None, :].repeat(bins, axis=0), axis=1)
    rank[:, bins] = bins  # the padding bin ranks after every real one
    return order, rank


def _densify(signatures: np.ndarray, has_shingles: np.ndarray, seed: int, sparse_bins: int = SPARSE_BINS) -> None:
    """Fill each empty bin j from the first non-empty bin in j's probe order.

    The order depends only on the bin, never on the document: that is what makes the filled bins
    of two documents agree with probability equal to their Jaccard (Shrivastava, ICML 2017). The
    order is a permutation, so the probe always ends within `num_perm` steps.
    """
    empty = signatures == _EMPTY
    bins = signatures.shape[1]
    order, rank = _probe_order(bins, seed)
    filled = bins - empty.sum(axis=1)
    needs = has_shingles & (filled < bins)
    sparse = np.flatnonzero(needs & (filled <= sparse_bins))
    width = 1 << np.ceil(np.log2(np.maximum(filled[sparse], 1))).astype(np.int64)  # group by padded width
    for padded in np.unique(width):
        group = sparse[width == padded]
        for chunk in np.array_split(group, -(-len(group) // _SPARSE_CHUNK)):
            _densify_sparse(signatures, empty, chunk, int(padded), rank)
    dense = np.flatnonzero(needs & (filled > sparse_bins))
    rows, columns = np.nonzero(empty[dense])
    rows = dense[rows]
    for step in range(bins):
        if not rows.size:
            break
        candidates = order[columns, step]
        found = ~empty[rows, candidates]
        signatures[rows[found], columns[found]] = signatures[rows[found], candidates[found]]
        rows, columns = rows[~found], columns[~found]


def _densify_sparse(signatures: np.ndarray, empty: np.ndarray, chunk: np.ndarray, width: int, rank: np.ndarray) -> None:
    """For documents with at most `width` non-empty bins: each empty bin takes the non-empty bin of
    smallest rank in its probe order."""
    bins = signatures.shape[1]
    rows, columns = np.nonzero(~empty[chunk])
    slot = np.arange(len(rows)) - np.searchsorted(rows, rows)  # position of each bin within its row
    candidates = np.full((len(chunk), width), bins)
    candidates[rows, slot] = columns
    ranks = rank[np.arange(bins)[None, :, None], candidates[:, None, :]]  # documents x bins x candidates
    source = np.take_along_axis(candidates, ranks.argmin(axis=2), axis=1)
    own = signatures[chunk]
    signatures[chunk] = np.where(empty[chunk], np.take_along_axis(own, source, axis=1), own)


def band_keys(signatures: np.ndarray, bands: int, rows: int, seed: int) -> np.ndarray:
    """One 64-bit key per band (documents x bands); the band's index is part of its key."""
    blocks = signatures[:, : bands * rows].reshape(len(signatures), bands, rows).astype(np.uint64)
    multipliers = _constants(seed, rows, salt=3)
    keys = (blocks * multipliers).sum(axis=2, dtype=np.uint64)
    return splitmix64(keys + _constants(seed, bands, salt=4))


def estimated_jaccard(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Row-wise share of equal bins between two stacks of signatures."""
    return (left == right).mean(axis=1)


def sign_file(documents: Path, out: Path, config: MinHashConfig, batch_bytes: int = BATCH_BYTES) -> int:
    """Sign every text of a `raw_documents` file into `out` (Parquet, atomic): `doc_id`,
    `n_shingles`, `signature` (num_perm x uint32) and `band_keys` (bands x uint64). Returns the count."""
    bands, rows = config.band_shape()
    schema = pa.schema(
        [
            ("doc_id", pa.string()),
            ("n_shingles", pa.int64()),
            ("signature", pa.list_(pa.uint32(), config.num_perm)),
            ("band_keys", pa.list_(pa.uint64(), bands)),
        ]
    )
    count = 0
    with atomic_path(out) as temporary, pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
        for batch in parquet_file(documents).iter_batches(batch_size=1024, columns=["doc_id", "text"]):
            frame = pl.from_arrow(batch)
            for start, end in _slices(frame["text"].str.len_bytes().to_list(), batch_bytes):
                signatures, counts = sign(frame["text"][start:end], config)
                keys = band_keys(signatures, bands, rows, config.seed)
                columns = [
                    frame["doc_id"][start:end].to_arrow(),
                    pa.array(counts, pa.int64()),
                    pa.FixedSizeListArray.from_arrays(pa.array(signatures.ravel()), config.num_perm),
                    pa.FixedSizeListArray.from_arrays(pa.array(keys.ravel()), bands),
                ]
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))
                count += end - start
    return count


def sign_all(texts: pl.Series, config: MinHashConfig, batch_bytes: int = BATCH_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """`sign` over slices of about `batch_bytes` of text each, which bounds the working memory."""
    parts = [sign(texts[start:end], config) for start, end in _slices(texts.str.len_bytes().to_list(), batch_bytes)]
    if not parts:
        return np.zeros((0, config.num_perm), dtype=np.uint32), np.zeros(0, dtype=np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _slices(sizes: list[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive (start, end) ranges whose sizes add up to about `budget` (at least one item each)."""
    slices, start, total = [], 0, 0
    for end, size in enumerate(sizes, start=1):
        total += size
        if total >= budget:
            slices.append((start, end))
            start, total = end, 0
    if start < len(sizes):
        slices.append((start, len(sizes)))
    return slices


def read_signatures(path: Path, doc_ids: pl.Series | None = None) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """(doc_id and n_shingles, signatures, band keys) of a `sign_file` output, in `doc_ids` order if given."""
    table = parquet_file(path).read()
    frame = pl.from_arrow(table.select(["doc_id", "n_shingles"]))
    signatures = _matrix(table["signature"])
    keys = _matrix(table["band_keys"])
    if doc_ids is not None:
        order = frame.with_row_index("position").join(doc_ids.to_frame("doc_id"), on="doc_id", how="right")["position"]
        positions = order.to_numpy()
        frame, signatures, keys = frame[positions], signatures[positions], keys[positions]
    return frame, signatures, keys


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    array = column.combine_chunks()
    return array.flatten().to_numpy().reshape(len(array), array.type.list_size)
