"""The budget fill: every feasible target is met within its tolerance, every infeasible one refused."""

import numpy as np
import polars as pl
import pytest

from curation_dag.steps.mixtures.budget_fill import Unreachable, fill, window
from curation_dag.steps.mixtures.selection import Infeasible, MixtureSpec, allocate


def reachable(tokens: list[int], max_repeats: int, low: int, high: int) -> bool:
    """The oracle: some choice of 0..max_repeats copies of each document totals low..high (a bitset of totals)."""
    totals, mask = 1, (1 << (high + 1)) - 1
    for length in tokens:
        for _ in range(max_repeats):
            totals = (totals | (totals << length)) & mask
    return low <= high and (totals >> low) != 0


def test_the_greedy_fill_stands_when_it_lands_in_the_window():
    tokens = np.array([30, 30, 30, 30])
    assert fill(tokens, 60, 0.005, 1).tolist() == [1, 1, 0, 0]
    assert fill(tokens, 150, 0.005, 2).tolist() == [2, 1, 1, 1]  # a full pass, then one more round in order


def test_a_gap_only_long_documents_could_close_is_closed_by_the_exact_search():
    """Greedy takes 600 and then nothing fits; 500 + 400 is the one way to 900 (within 0.5%)."""
    tokens = np.array([600, 500, 400])
    repeats = fill(tokens, 900, 0.005, 1)
    assert repeats.tolist() == [0, 1, 1]


def test_short_documents_close_what_the_long_ones_leave_and_repeats_stay_capped():
    tokens = np.array([5000] * 3 + [7] * 40)
    repeats = fill(tokens, 10_400, 0.001, 2)
    low, high = window(10_400, 0.001)
    assert low <= int(tokens @ repeats) <= high and repeats.max() <= 2


def test_an_unreachable_target_names_the_nearest_totals_on_each_side():
    with pytest.raises(Unreachable) as raised:
        fill(np.array([5000, 7000]), 6000, 0.005, 3)
    assert (raised.value.low, raised.value.high) == (5970, 6030)
    assert (raised.value.below, raised.value.above) == (5000, 7000)


def test_thousands_of_random_pools_are_met_exactly_when_they_can_be():
    """Random pools (lengths from tens to tens of thousands of tokens, one to four sources, repeats on and
    off, tolerances from 0.1% to 2%): allocate meets every source's window when the oracle says whole
    documents can, and refuses with Infeasible otherwise."""
    rng = np.random.default_rng(13)
    outcomes = {"met": 0, "refused": 0}
    for case in range(2000):
        sources = [f"s{i}" for i in range(rng.integers(1, 5))]
        lengths = {s: np.exp(rng.uniform(np.log(10), np.log(30_000), rng.integers(1, 30))).astype(int) for s in sources}
        weights = dict(zip(sources, rng.dirichlet(np.ones(len(sources))).round(6), strict=True))
        weights[sources[-1]] = round(1 - sum(weights[s] for s in sources[:-1]), 6)
        max_repeats = int(rng.choice([1, 1, 2, 3]))
        tolerance = float(rng.choice([0.001, 0.005, 0.005, 0.02]))
        capacity = min(lengths[s].sum() * max_repeats / weights[s] for s in sources if weights[s] > 0)
        budget = max(1, int(capacity * rng.uniform(0.02, 1.0)))
        if any(w <= 0 for w in weights.values()):
            continue
        spec = MixtureSpec(budget_tokens=budget, weights=weights, max_repeats=max_repeats, budget_tolerance=tolerance)
        survivors = pl.DataFrame(
            {
                "doc_id": [f"{s}-{i}" for s in sources for i in range(len(lengths[s]))],
                "source": [s for s in sources for _ in lengths[s]],
                "tokens": np.concatenate([lengths[s] for s in sources]),
            }
        )
        feasible = all(
            reachable(lengths[s].tolist(), max_repeats, *window(weights[s] * budget, tolerance)) for s in sources
        )
        if not feasible:
            with pytest.raises(Infeasible):
                allocate(spec, survivors, f"case{case}.yml")
            outcomes["refused"] += 1
            continue
        chosen = allocate(spec, survivors, f"case{case}.yml")
        assert chosen["repeats"].min() >= 0 and chosen["repeats"].max() <= max_repeats, case
        got = dict(chosen.group_by("source").agg((pl.col("tokens") * pl.col("repeats")).sum()).iter_rows())
        for source in sources:
            target = weights[source] * budget
            assert abs(got[source] - target) <= tolerance * target, (case, source, got[source], target)
        assert abs(sum(got.values()) - budget) <= tolerance * budget, case
        outcomes["met"] += 1
    assert min(outcomes.values()) > 300, outcomes  # both kinds are well represented


def test_one_huge_document_per_source_is_refused_with_the_file_the_source_and_what_to_change():
    spec = MixtureSpec(budget_tokens=10_000, weights={"books": 0.5, "news": 0.5})
    survivors = pl.DataFrame({"doc_id": ["b", "n1", "n2"], "source": ["books", "news", "news"],
                              "tokens": [40_000, 3000, 2000]})  # fmt: skip
    with pytest.raises(Infeasible) as raised:
        allocate(spec, survivors, "mixtures/huge.yml")
    message = str(raised.value)
    assert message.startswith("mixtures/huge.yml: source books: no choice of whole documents")
    assert "totals 5000 tokens within budget_tolerance 0.005 (4975..5025)" in message
    assert "the nearest reachable totals are 0 and 40000 tokens. Raise budget_tolerance to 1.0000 or more" in message
