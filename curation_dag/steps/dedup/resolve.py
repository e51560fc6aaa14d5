"""Duplicate resolution: candidate pairs from shared keys, verification, and union-find with
one-sided, earliest-wins decisions, so documents absorbed earlier never change their fate."""

from __future__ import annotations

import numpy as np
import polars as pl

# Buckets up to this size yield all their pairs. Larger ones (boilerplate shared by thousands of
# documents) yield a chain through their members plus a star to the first: linear in the bucket,
# and every member stays reachable for union-find.
ALL_PAIRS_BUCKET = 32
# The most earlier documents a new document is compared with per band key, earliest first.
MAX_EARLIER_PER_KEY = 16


def _keyed(band_keys: np.ndarray) -> pl.DataFrame:
    rows, bands = band_keys.shape
    return pl.DataFrame({"band_key": band_keys.ravel(), "member": np.repeat(np.arange(rows, dtype=np.int64), bands)})


def pairs_within(band_keys: np.ndarray) -> np.ndarray:
    """Candidate pairs (i, j), i < j, of rows that share at least one band key."""
    buckets = (
        _keyed(band_keys)
        .group_by("band_key")
        .agg(pl.col("member").unique().sort())
        .filter(pl.col("member").list.len() > 1)
    )
    small = buckets.filter(pl.col("member").list.len() <= ALL_PAIRS_BUCKET).with_row_index("bucket").explode("member")
    pairs = [
        small.join(small, on="bucket", suffix="_other")
        .filter(pl.col("member") < pl.col("member_other"))
        .select(pl.col("member").alias("left"), pl.col("member_other").alias("right"))
        .to_numpy()
    ]
    for members in buckets.filter(pl.col("member").list.len() > ALL_PAIRS_BUCKET)["member"].to_list():
        chain = np.column_stack((members[:-1], members[1:]))
        star = np.column_stack((np.full(len(members) - 2, members[0]), members[2:]))
        pairs += [chain, star]
    return np.unique(np.concatenate(pairs).reshape(-1, 2), axis=0)


def pairs_with_earlier(band_keys: np.ndarray, earlier: pl.LazyFrame) -> pl.DataFrame:
    """Candidate (member, ordinal) pairs of rows and earlier documents (`band_key`, `ordinal`) sharing a key."""
    matches = earlier.join(_keyed(band_keys).lazy(), on="band_key").collect()
    return (
        matches.sort("ordinal")
        .group_by("member", "band_key", maintain_order=True)
        .head(MAX_EARLIER_PER_KEY)
        .select("member", "ordinal")
        .unique()
    )


class UnionFind:
    """Disjoint sets over 0..n-1 whose root is always the smallest (earliest) member."""

    def __init__(self, size: int):
        self.parent = np.arange(size)

    def find(self, item: int) -> int:
        parent = self.parent
        root = item
        while parent[root] != root:
            root = parent[root]
        while parent[item] != root:
            parent[item], item = root, parent[item]
        return root

    def union(self, left: int, right: int) -> None:
        a, b = self.find(left), self.find(right)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


def resolve(size: int, within: np.ndarray, earlier_roots: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Decide every new document, given verified links.

    `within` holds verified pairs of new rows; `earlier_roots` has one row per verified link of a
    new row (`member`) to an earlier document, with that document's kept root (`root`). New rows
    joined by links form components (union-find); a component linked to earlier documents becomes
    duplicates of the earliest of their roots, which never merges earlier components, so earlier
    decisions stand. Otherwise its earliest row is kept and the others point to it.

    Returns (new_root, earlier_root) per row: the row index of its kept new document (itself if
    kept), and the ordinal of its kept earlier document, or -1.
    """
    components = UnionFind(size)
    for left, right in within.tolist():
        components.union(left, right)
    new_root = components.roots()
    earlier_root = np.full(size, -1, dtype=np.int64)
    if earlier_roots.height:
        per_component = (
            earlier_roots.with_columns(pl.Series("component", new_root[earlier_roots["member"].to_numpy()]))
            .group_by("component")
            .agg(pl.col("root").min())
        )
        by_component = np.full(size, -1, dtype=np.int64)
        by_component[per_component["component"].to_numpy()] = per_component["root"].to_numpy()
        earlier_root = by_component[new_root]
    return new_root, earlier_root
