"""Filling one source's token target with whole documents, within a tolerance, or proving it cannot be done.

`fill` gives each document a number of copies (0 to `max_repeats`) whose tokens land in the window
`target * (1 ± tolerance)`. It first takes documents greedily in the given (seeded) order: full
passes while the target exceeds the whole source, then rounds that each give one more copy to every
document that still fits under the target. That lands in the window unless the documents left are
all longer than the gap. Then an exact search finishes the fill:

- A document no longer than the window's width is *short*: adding short copies one at a time can
  never jump over the window, so they can close any gap they add up to.
- The window is therefore reachable exactly when some total X of *long* copies lies in
  [low - (all short copies' tokens), high]. Which totals long copies reach is a bounded subset sum,
  decided by dynamic programming over reachable totals (Bellman 1957), with copies of equal-length
  documents grouped by binary splitting so that thousands of tiny documents cost a few items.
- Of the reachable X, the search takes the one closest to the long documents' share of the source,
  so the fill does not favour either length, then adds short copies in the seeded order.

When no X exists, `Unreachable` carries the reachable totals just below and above the window.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_TOLERANCE = 0.005  # 0.5% of the budget: the mixture asset's budget_met check since issue 6


class Unreachable(ValueError):
    """No whole number of copies lands in the window; `below` and `above` are the nearest totals that do exist."""

    def __init__(self, low: int, high: int, below: int | None, above: int | None):
        self.low, self.high, self.below, self.above = low, high, below, above
        super().__init__(f"no whole documents total {low}..{high} tokens")


def window(target: float, tolerance: float) -> tuple[int, int]:
    """The whole token totals within `tolerance` (a fraction) of `target`."""
    return math.ceil(target * (1 - tolerance) - 1e-9), math.floor(target * (1 + tolerance) + 1e-9)


def fill(tokens: np.ndarray, target: float, tolerance: float, max_repeats: int) -> np.ndarray:
    """Copies of each document (in the given order) whose tokens are within `tolerance` of `target`.
    Raises Unreachable when no choice of at most `max_repeats` copies each gets there."""
    tokens = np.asarray(tokens, dtype=np.int64)
    low, high = window(target, tolerance)
    repeats = _greedy(tokens, round(target), max_repeats)
    if low <= int(tokens @ repeats) <= high:
        return repeats
    return _exact(tokens, low, high, max_repeats)


def _greedy(tokens: np.ndarray, target: int, max_repeats: int) -> np.ndarray:
    """Full passes while the target exceeds the whole source, then rounds that each give one more
    copy, in order, to every document that still fits, until the target is met or every document
    has `max_repeats` copies. Never passes `target`."""
    repeats = np.zeros(len(tokens), dtype=np.int64)
    total = int(tokens.sum())
    if target <= 0 or total == 0:
        return repeats
    passes = min(target // total, max_repeats)
    repeats += passes
    left = target - passes * total
    for _ in range(passes, max_repeats):
        for index in np.flatnonzero((tokens > 0) & (tokens <= left)):
            if tokens[index] <= left:
                repeats[index] += 1
                left -= int(tokens[index])
        if left == 0:
            break
    return repeats


def _exact(tokens: np.ndarray, low: int, high: int, max_repeats: int) -> np.ndarray:
    if low > high:
        raise _unreachable(tokens, low, high, max_repeats)
    long = tokens > high - low
    short_total = max_repeats * int(tokens[~long].sum())
    items = _items(tokens, long, max_repeats)
    via = _subset_sums([weight for _, _, weight in items], high)
    reachable_from = max(0, low - short_total)
    totals = np.flatnonzero(via[reachable_from:] >= 0) + reachable_from
    if not len(totals):
        raise _unreachable(tokens, low, high, max_repeats)
    long_total = max_repeats * int(tokens[long].sum())
    share = (low + high) / 2 * long_total / (long_total + short_total)
    total = int(totals[np.argmin(np.abs(totals - share))])
    repeats = np.zeros(len(tokens), dtype=np.int64)
    left = total
    while left:  # back through the items that first reached each total
        documents, copies, weight = items[int(via[left])]
        repeats[documents] += _spread(copies, repeats[documents])
        left -= weight
    for _ in range(max_repeats):  # short copies close the gap, in order; none can overshoot the window
        for index in np.flatnonzero(~long & (tokens > 0) & (repeats < max_repeats)):
            if total >= low:
                return repeats
            repeats[index] += 1
            total += int(tokens[index])
    return repeats


def _items(tokens: np.ndarray, documents: np.ndarray, max_repeats: int) -> list[tuple[np.ndarray, int, int]]:
    """The copies of `documents` (a mask) as 0/1 items (indices, copies, tokens): per distinct length,
    in first-seen order, the copies of its documents split into chunks of 1, 2, 4, ... copies."""
    items = []
    lengths, first = np.unique(tokens[documents], return_index=True)
    for length in lengths[np.argsort(first)]:
        indices = np.flatnonzero(documents & (tokens == length))
        copies, chunk = len(indices) * max_repeats, 1
        while copies:
            take = min(chunk, copies)
            items.append((indices, take, take * int(length)))
            copies -= take
            chunk *= 2
    return items


def _spread(copies: int, have: np.ndarray) -> np.ndarray:
    """How to add `copies` to documents of equal length holding `have` copies: evenly, earliest first."""
    total = int(have.sum()) + copies
    even = np.full(len(have), total // len(have), dtype=np.int64)
    even[: total % len(have)] += 1
    return even - have


def _subset_sums(weights: list[int], bound: int) -> np.ndarray:
    """For each total 0..bound, the first item with which it is reachable using each item at most once
    (-1: unreachable; total 0 holds len(weights)). An item that first reaches total t extends a total
    reached by earlier items only, so following `via` back from t uses each item once."""
    via = np.full(bound + 1, -1, dtype=np.int64)
    via[0] = len(weights)
    reached = np.zeros(bound + 1, dtype=bool)
    reached[0] = True
    for index, weight in enumerate(weights):
        if 0 < weight <= bound:
            fresh = np.flatnonzero(reached[: bound + 1 - weight] & ~reached[weight:]) + weight
            via[fresh] = index
            reached[fresh] = True
    return via


def _unreachable(tokens: np.ndarray, low: int, high: int, max_repeats: int) -> Unreachable:
    """The error, with the totals closest to the window that whole copies do reach."""
    items = _items(tokens, tokens > 0, max_repeats)
    bound = max(high, low) + int(tokens.max(initial=0))
    reached = np.flatnonzero(_subset_sums([weight for _, _, weight in items], bound) >= 0)
    below, above = reached[reached < low], reached[reached > high]
    return Unreachable(low, high, int(below[-1]) if len(below) else None, int(above[0]) if len(above) else None)
