"""Mixture specs: loading errors, the verdict of every stage, the token allocation and the order."""

import polars as pl
import pytest

from curation_dag.steps.mixtures.selection import (
    Infeasible,
    MixtureSpec,
    allocate,
    decide,
    load_mixtures,
    manifest_digest,
    order,
    token_counts,
)
from curation_dag.steps.quality.config import GopherQuality, QualityConfig
from curation_dag.steps.quality.rules import RULES, rules_of
from curation_dag.steps.recipes.files import RecipeError


def candidates() -> pl.DataFrame:
    """Eight candidates: one removed by each stage, in stage order, and two kept."""
    return pl.DataFrame(
        {
            "doc_id": ["w", "e", "n", "s", "q", "p", "k1", "k2"],
            "source": ["other", "a", "a", "a", "a", "a", "a", "b"],
            "exact_duplicate_of": [None, "k1", None, None, None, None, None, None],
            "near_duplicate_of": [None, None, "k1", None, None, None, None, None],
            "near_jaccard": [None, None, 0.8123, None, None, None, None, None],
            "semantic_duplicate_of": [None, None, None, "k2", None, None, None, None],
            "semantic_cosine": [None, None, None, 0.97, None, None, None, None],
            "gopher_quality": [True, True, True, True, False, True, True, True],
            "gopher_quality_failure": [None, None, None, None, "gopher_word_count", None, None, None],
            "gopher_words": [100, 100, 100, 100, 12, 100, 100, 100],
            "chars": [10, 10, 10, 10, 10, 5000, 10, 20],
            "cluster": [0, 0, 0, 0, 0, 0, 0, 1],
            "prototypicality": [0.1] * 8,
        }
    )


SPEC = dict(budget_tokens=100, weights={"a": 0.5, "b": 0.5})


def test_each_stage_removes_with_its_evidence_and_the_first_stage_wins():
    spec = MixtureSpec(
        **SPEC,
        filters={"rule_sets": ["gopher_quality"]},
        pruning={"policy": "long_file", "max_chars": 1000},
    )
    decisions = decide(spec, candidates(), RULES)
    by_id = {row["doc_id"]: row for row in decisions.iter_rows(named=True)}
    assert [by_id[d]["stage"] for d in ["w", "e", "n", "s", "q", "p", "k1", "k2"]] == [
        "weights", "exact", "near", "semantic", "filter", "pruning", None, None,
    ]  # fmt: skip
    assert by_id["w"]["reason"] == "source other has no weight"
    assert by_id["e"]["reason"] == "exact duplicate of k1" and by_id["e"]["duplicate_of"] == "k1"
    assert by_id["n"]["reason"] == "near duplicate of k1 (Jaccard 0.812)" and by_id["n"]["similarity"] == 0.8123
    assert by_id["s"]["reason"] == "semantic duplicate of k2 (cosine 0.97)"
    assert (
        by_id["q"]["reason"]
        == "gopher_quality failed: gopher_word_count = 12.0 (passes when 50 <= gopher_words <= 100000)"
    )
    assert (by_id["q"]["rule"], by_id["q"]["value"]) == ("gopher_word_count", 12.0)
    assert by_id["p"]["reason"].startswith("long file: 5000 chars above the cut 1000")


def test_a_filter_reason_names_the_configured_bounds():
    spec = MixtureSpec(**SPEC, filters={"rule_sets": ["gopher_quality"]})
    tuned = rules_of(QualityConfig(gopher_quality=GopherQuality(min_words=30)))
    reason = decide(spec, candidates(), tuned).filter(pl.col("doc_id") == "q")["reason"][0]
    assert reason == "gopher_quality failed: gopher_word_count = 12.0 (passes when 30 <= gopher_words <= 100000)"


def test_dedup_stages_can_be_switched_off_and_sql_filters_apply():
    spec = MixtureSpec(**SPEC, dedup={"exact": False, "near": False, "semantic": True}, filters={"sql": ["chars < 15"]})
    decisions = decide(spec, candidates(), RULES)
    stages = dict(zip(decisions["doc_id"], decisions["stage"], strict=True))
    assert stages["e"] is None and stages["n"] is None and stages["s"] == "semantic"
    assert stages["k2"] == "filter" and stages["p"] == "filter"
    reason = decisions.filter(pl.col("doc_id") == "k2")["reason"][0]
    assert reason == "filter is false: chars < 15"
    with pytest.raises(ValueError, match="filter 'no_such_column > 1' does not run on the candidates"):
        decide(MixtureSpec(**SPEC, filters={"sql": ["no_such_column > 1"]}), candidates(), RULES)


def test_a_filter_reads_only_the_candidates_and_cannot_smuggle_a_statement(tmp_path):
    with pytest.raises(ValueError, match=r"filter .* is not one SQL expression: the query around it is not exactly one "
                                         r"SELECT statement: it holds 3 \(SELECT, COPY, SELECT\)"):  # fmt: skip
        MixtureSpec(**SPEC, filters={"sql": [f"true) AS ok FROM candidates; COPY (SELECT 1) TO '{tmp_path}/x.csv'; "
                                             "SELECT (1"]})  # fmt: skip
    reading = MixtureSpec(**SPEC, filters={"sql": ["doc_id NOT IN (SELECT content FROM read_text('/etc/passwd'))"]})
    with pytest.raises(ValueError, match=r"does not run on the candidates: Permission Error"):
        decide(reading, candidates(), RULES)
    assert not list(tmp_path.iterdir())


def survivors(tokens_a: list[int], tokens_b: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "doc_id": [f"a{i}" for i in range(len(tokens_a))] + [f"b{i}" for i in range(len(tokens_b))],
            "source": ["a"] * len(tokens_a) + ["b"] * len(tokens_b),
            "tokens": tokens_a + tokens_b,
        }
    )


def test_allocation_meets_budget_and_weights_with_whole_documents_and_capped_repeats():
    spec = MixtureSpec(budget_tokens=1000, weights={"a": 0.7, "b": 0.3}, max_repeats=3)
    chosen = allocate(spec, survivors([10] * 100, [7] * 20), "spec.yml")  # b has 140 tokens for a target of 300
    tokens = (
        chosen.with_columns(total=pl.col("tokens") * pl.col("repeats")).group_by("source").agg(pl.col("total").sum())
    )
    got = dict(tokens.iter_rows())
    assert got["a"] == 700 and got["b"] == 301  # 7-token steps: 294 misses the 0.5% window, 301 is in it
    assert chosen["repeats"].max() <= 3 and chosen.filter(pl.col("source") == "b")["repeats"].min() >= 2
    again = allocate(spec, survivors([10] * 100, [7] * 20).reverse(), "spec.yml")
    assert again.sort("doc_id").equals(chosen.sort("doc_id"))  # the input order does not matter


def test_a_gap_no_single_copy_fills_is_filled_with_further_copies_of_small_documents():
    """A long document that does not fit leaves a gap; further copies of short ones close it."""
    spec = MixtureSpec(budget_tokens=100, weights={"a": 1.0}, max_repeats=2)
    chosen = allocate(spec, survivors([1000, 10, 10, 10, 10, 10], []), "spec.yml")
    assert (chosen["tokens"] * chosen["repeats"]).sum() == 100 and chosen["repeats"].max() == 2
    with pytest.raises(Infeasible, match=r"x: source a: .* the nearest reachable totals are 50 and 1000 tokens"):
        allocate(spec.model_copy(update={"max_repeats": 1}), survivors([1000, 10, 10, 10, 10, 10], []), "x")


def test_infeasible_specs_say_which_source_and_what_to_do():
    spec = MixtureSpec(budget_tokens=1000, weights={"a": 0.5, "b": 0.5}, max_repeats=2)
    with pytest.raises(Infeasible, match=r"spec.yml: source b has 140 tokens .* weight 0.5 needs 500 tokens, more "
                                         r"than max_repeats 2 can give"):  # fmt: skip
        allocate(spec, survivors([10] * 100, [7] * 20), "spec.yml")
    with pytest.raises(Infeasible, match=r"spec.yml: budget_tokens 1000 exceeds what the pool can give: 240 tokens"):
        allocate(spec, survivors([10] * 10, [7] * 20), "spec.yml")


def test_order_is_seeded_and_the_manifest_digest_is_stable():
    spec = MixtureSpec(budget_tokens=100, weights={"a": 1.0}, max_repeats=2, seed=7)
    chosen = allocate(spec, survivors([10] * 8, []), "spec.yml")
    first, second = order(spec, chosen), order(spec, chosen.reverse())
    assert first.equals(second) and first.height == 10 and first["position"].to_list() == list(range(10))
    assert manifest_digest(first) == manifest_digest(second)
    other = order(MixtureSpec(budget_tokens=100, weights={"a": 1.0}, max_repeats=2, seed=8), chosen)
    assert other["doc_id"].to_list() != first["doc_id"].to_list()
    ramp = order(MixtureSpec(budget_tokens=100, weights={"a": 1.0}, order={"by": "doc_id", "descending": True}), chosen)
    assert ramp["doc_id"].to_list() == sorted(ramp["doc_id"].to_list(), reverse=True)
    with pytest.raises(ValueError, match="curriculum column 'nope' is not a candidate column"):
        order(MixtureSpec(budget_tokens=100, weights={"a": 1.0}, order={"by": "nope"}), chosen)


def test_token_counts_use_the_bundled_tokenizer():
    assert token_counts(["hello world", ""]).tolist() == [2, 0]
    with pytest.raises(ValueError, match="tokenizer /nope.json not found"):
        token_counts(["x"], "/nope.json")


@pytest.mark.parametrize(
    "text, message",
    [
        ("budget_tokens: [1\n", r"m.yml: not valid YAML"),
        ("budget_tokens: 10\nweights: {a: 0.5, b: 0.4}\n", r"m.yml, line 1: mixture: weights: .*sum to 1"),
        ("budget_tokens: 10\nweights: {a: 1}\nfilters: {rule_sets: [nope]}\n", r"unknown rule set\(s\) \['nope'\]"),
        ("budget_tokens: 10\nweights: {a: 1}\npool: nowhere\n", r"m.yml, line 1: pool 'nowhere' is neither"),
        ("budget_tokens: 10\nweights: {a: 1}\ncolour: red\n", r"colour: Extra inputs are not permitted"),
        ("budget_tokens: 10\nweights: {a: 1}\npruning: {policy: d4}\n", r"policy d4 needs a fraction"),
    ],
)
def test_malformed_specs_name_the_file_line_and_problem(tmp_path, text, message):
    (tmp_path / "m.yml").write_text(text)
    with pytest.raises(RecipeError, match=message):
        load_mixtures(tmp_path, {"candidates"})
