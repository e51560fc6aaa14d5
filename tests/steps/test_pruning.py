"""Pruning policies: hand-worked allocations, cuts and reasons, then Density-Based Pruning on real corpora."""

import gzip
import itertools
import json
import math

import numpy as np
import polars as pl
import pytest

from curation_dag.steps.quality.pruning import (
    cluster_complexity,
    concept_keep_counts,
    d4,
    keep_by_prototypicality,
    keep_concept_specific,
    long_file_cut,
)
from curation_dag.steps.semantic.config import KMeansConfig
from curation_dag.steps.semantic.semdedup import assign, fit_centroids


def scores(rows: list[tuple[str, int, float]], **extra: list) -> pl.DataFrame:
    doc_ids, clusters, distances = zip(*rows, strict=True)
    return pl.DataFrame(
        {"doc_id": doc_ids, "cluster": clusters, "distance": np.array(distances, dtype=np.float32), **extra}
    )


def complexities(values: list[float], sizes: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"cluster": range(len(values)), "size": sizes, "complexity": values})


def kept(decisions: pl.DataFrame) -> list[str]:
    return sorted(decisions.filter("keep")["doc_id"])


# Cluster 0 has a tie at the top (b, d); input rows are shuffled to show the output follows them.
SIX = scores([("d", 0, 0.4), ("a", 0, 0.1), ("b", 0, 0.4), ("f", 1, 0.1), ("e", 1, 0.3), ("g", 1, 0.2)])


def test_complexity_is_mean_distance_to_centroid_times_mean_distance_to_nearest_centroids():
    # Cosines between centroids: c0.c1 = 0, c0.c2 = 0.6, c1.c2 = 0.8.
    centroids = np.array([[1, 0, 0], [0, 1, 0], [0.6, 0.8, 0]], dtype=np.float32)
    frame = scores([("a", 0, 0.1), ("b", 0, 0.3), ("c", 2, 0.05)])

    one = cluster_complexity(frame, centroids, neighbours=1)
    assert one["cluster"].to_list() == [0, 2]  # cluster 1 has no documents here
    assert np.allclose(one["d_intra"], [0.2, 0.05]) and np.allclose(one["d_inter"], [1 - 0.6, 1 - 0.8])
    both = cluster_complexity(frame, centroids)  # the default 20 neighbours is capped at k - 1 = 2
    assert np.allclose(both["d_inter"], [(0.4 + 1.0) / 2, (0.2 + 0.4) / 2])
    assert np.allclose(both["complexity"], [0.2 * 0.7, 0.05 * 0.3], atol=1e-7)

    with pytest.raises(ValueError, match="name clusters 0..5, but there are only 3 centroids"):
        cluster_complexity(scores([("x", 5, 0.1), ("y", 0, 0.2)]), centroids)
    with pytest.raises(ValueError, match="at least 2 centroids"):
        cluster_complexity(frame, centroids[:1])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['distance'\]"):
        cluster_complexity(frame.drop("distance"), centroids)


def test_keep_counts_follow_the_softmax_and_break_remainder_ties_by_cluster_id():
    # softmax([ln 2, 0, 0]) = [1/2, 1/4, 1/4]: of 10 documents, 5, 2.5 and 2.5.
    counts = concept_keep_counts(complexities([math.log(2), 0, 0], [100] * 3), 10, temperature=1.0)
    assert np.allclose(counts["weight"], [0.5, 0.25, 0.25]) and np.allclose(counts["wanted"], [5, 2.5, 2.5])
    assert counts["keep"].to_list() == [5, 3, 2]
    # A lower temperature sharpens the same complexities: softmax([2 ln 2, 0, 0]) = [2/3, 1/6, 1/6].
    sharper = concept_keep_counts(complexities([math.log(2), 0, 0], [100] * 3), 12, temperature=0.5)
    assert sharper["keep"].to_list() == [8, 2, 2]


def test_a_full_cluster_passes_its_excess_to_the_others_in_proportion():
    # Wanted 5, 2.5, 2.5; cluster 0 holds 3, so its 2 extra go half and half: 3.5 and 3.5.
    counts = concept_keep_counts(complexities([math.log(2), 0, 0], [3, 100, 100]), 10, temperature=1.0)
    assert counts["keep"].to_list() == [3, 4, 3]
    # Weights 4:2:1 of 14 want 8, 4, 2. Cluster 0 holds 3, so the other 11 split 2:1 as 7.33 and
    # 3.67. Cluster 1 holds only 5 of its 7.33, so cluster 2 takes the remaining 6.
    cascade = concept_keep_counts(complexities([math.log(4), math.log(2), 0], [3, 5, 100]), 14, temperature=1.0)
    assert cascade["keep"].to_list() == [3, 5, 6]


def test_keep_counts_sum_exactly_to_the_total_and_do_not_depend_on_row_order():
    rng = np.random.default_rng(7)
    frame = complexities(rng.uniform(0, 0.3, 50).tolist(), rng.integers(1, 40, 50).tolist())
    documents = int(frame["size"].sum())
    for total in (0, 1, 17, documents // 3, documents - 1, documents):
        counts = concept_keep_counts(frame, total, temperature=0.05)
        assert counts["keep"].sum() == total and (counts["keep"] <= counts["size"]).all()
    shuffled = concept_keep_counts(frame.sample(fraction=1, shuffle=True, seed=3), 100, temperature=0.05)
    assert shuffled.equals(concept_keep_counts(frame, 100, temperature=0.05))
    assert concept_keep_counts(frame, 0.25)["keep"].sum() == math.floor(0.25 * documents + 0.5)
    assert concept_keep_counts(frame, 1.0)["keep"].to_list() == frame["size"].to_list()


def test_impossible_totals_and_temperatures_say_what_is_wrong():
    frame = complexities([0.1, 0.2], [4, 6])
    with pytest.raises(ValueError, match="cannot keep 11 documents: the clusters hold only 10"):
        concept_keep_counts(frame, 11)
    with pytest.raises(ValueError, match="total must be at least 0 documents, got -1"):
        concept_keep_counts(frame, -1)
    with pytest.raises(ValueError, match=r"a fractional total must lie in \(0, 1\], got 1.5"):
        concept_keep_counts(frame, 1.5)
    with pytest.raises(ValueError, match="temperature must be positive, got 0"):
        concept_keep_counts(frame, 5, temperature=0)


def test_prototype_pruning_keeps_the_farthest_of_each_cluster_and_says_why_the_rest_go():
    decisions = keep_by_prototypicality(SIX, 1 / 3)  # 2 of 6: one per cluster
    assert decisions["doc_id"].to_list() == SIX["doc_id"].to_list()  # one row per input row, in order
    assert kept(decisions) == ["b", "e"]  # b and d tie at 0.4; the smaller doc_id wins
    reasons = dict(zip(decisions["doc_id"], decisions["reason"], strict=True))
    assert reasons["b"] is None
    assert (
        reasons["d"]
        == "prototype: distance 0.4 ties cluster 0's cut, after it by doc_id; rank 2 of 3, the 1 farthest are kept"
    )
    assert reasons["g"] == "prototype: distance 0.2 below cluster 1's cut 0.3; rank 2 of 3, the 1 farthest are kept"

    easiest = keep_by_prototypicality(SIX, 1 / 3, hardest=False)
    assert kept(easiest) == ["a", "f"]
    assert easiest.filter(pl.col("doc_id") == "e")["reason"][0].startswith(
        "prototype: distance 0.3 above cluster 1's cut 0.1"
    )
    again = keep_by_prototypicality(SIX.reverse(), 1 / 3)
    assert kept(again) == ["b", "e"]


def test_prototype_fraction_is_shared_across_clusters_to_an_exact_total():
    # 0.5 of 6 is 3: each cluster wants 1.5; the tie on the remainder goes to cluster 0.
    decisions = keep_by_prototypicality(SIX, 0.5)
    assert kept(decisions) == ["b", "d", "e"]
    assert keep_by_prototypicality(SIX, 0.0)["keep"].sum() == 0
    with pytest.raises(ValueError, match=r"fraction must lie in \[0, 1\], got 1.2"):
        keep_by_prototypicality(SIX, 1.2)


def test_concept_specific_pruning_keeps_each_clusters_count_of_its_hardest_documents():
    counts = pl.DataFrame({"cluster": [0, 1], "keep": [0, 2]})
    decisions = keep_concept_specific(SIX, counts)
    assert kept(decisions) == ["e", "g"]
    reasons = dict(zip(decisions["doc_id"], decisions["reason"], strict=True))
    assert reasons["a"] == "concept: cluster 0 keeps none of its 3 documents"
    assert reasons["f"] == "concept: distance 0.1 below cluster 1's cut 0.2; rank 3 of 3, the 2 farthest are kept"
    assert decisions.filter(pl.col("cluster") == 1)["cut"].unique().to_list() == [pytest.approx(0.2)]

    with pytest.raises(ValueError, match=r"counts have no row for cluster\(s\) \[1\]"):
        keep_concept_specific(SIX, counts.filter(pl.col("cluster") == 0))
    with pytest.raises(ValueError, match="counts ask cluster 1 to keep 4 documents, but it has 3"):
        keep_concept_specific(SIX, pl.DataFrame({"cluster": [0, 1], "keep": [0, 4]}))


def test_d4_drops_semantic_duplicates_then_prunes_prototypes_among_the_rest():
    flagged = SIX.with_columns(semantic_duplicate=pl.Series([False, False, True, False, True, False]))
    decisions = d4(flagged, 0.5)  # 4 left after SemDeDup (d, a | f, g): 2 kept, one per cluster
    assert kept(decisions) == ["d", "g"]
    reasons = dict(zip(decisions["doc_id"], decisions["reason"], strict=True))
    assert reasons["b"] == reasons["e"] == "semdedup: a semantic duplicate, removed before prototype pruning"
    assert reasons["a"].startswith("prototype: distance 0.1 below cluster 0's cut 0.4")
    with pytest.raises(ValueError, match="semantic_duplicate must be a boolean column without nulls"):
        d4(SIX.with_columns(semantic_duplicate=pl.Series([True, None, False, False, False, False])), 0.5)


def test_long_file_cut_drops_files_above_a_length_or_a_length_quantile():
    chars = [100, 5000, 300, 40, 300]
    absolute = long_file_cut(chars, max_chars=300)
    assert absolute["keep"].to_list() == [True, False, True, True, True]
    assert absolute["reason"][1] == "long file: 5000 chars above the cut 300 (max_chars 300)"
    # Sorted: 40, 100, 300, 300, 5000. The 0.4 quantile (inverted CDF) is the 2nd shortest, 100.
    by_quantile = long_file_cut(pl.Series("n_chars", chars), quantile=0.4)
    assert by_quantile["keep"].to_list() == [True, False, False, True, False]
    assert by_quantile["reason"][2] == "long file: 300 chars above the cut 100 (the 0.4 length quantile of 5 files)"
    assert long_file_cut(chars, max_chars=1000, quantile=0.4)["keep"].sum() == 2  # the lower cut wins
    with pytest.raises(ValueError, match="needs max_chars, quantile or both"):
        long_file_cut(chars)
    with pytest.raises(ValueError, match=r"quantile must lie in \(0, 1\], got 0"):
        long_file_cut(chars, quantile=0)


# Real data: ../shared/data. A tight, duplicate-heavy corpus (Debian copyright notices) beside
# diverse ones. Each text is cut to its first 1,500 characters to keep the embedding fast.
REAL_CORPORA = {
    "deb_copyright_files": 732,
    "web_pages_main": 800,
    "wikipedia_en_gensim": 106,
    "reuters21578": 600,
    "code_python_stdlib": 400,
    "enron1_spam_ham": 400,
}
DUPLICATE_HEAVY = "deb_copyright_files"


def test_real_data_concept_keep_shares_sum_to_the_total_and_favour_complex_clusters(shared_data, static_embedder):
    """REAL DATA: Density-Based Pruning on about 3,000 documents from six corpora."""
    doc_ids, texts, corpora = [], [], []
    for corpus, limit in REAL_CORPORA.items():
        with gzip.open(shared_data / corpus / "docs.jsonl.gz", "rt") as handle:
            for document in itertools.islice(map(json.loads, handle), limit):
                doc_ids.append(f"{corpus}/{document['id']}")
                texts.append(document["text"][:1500])
                corpora.append(corpus)
    vectors = static_embedder.encode(texts)
    centroids, _ = fit_centroids(vectors, KMeansConfig(seed=1))  # k = sqrt(3,038), about 55
    clusters, distances = assign(vectors, centroids)
    frame = pl.DataFrame({"doc_id": doc_ids, "cluster": clusters, "distance": distances, "corpus": corpora})

    complexity = cluster_complexity(frame, centroids)
    total = round(0.3 * frame.height)
    # The static model's complexities here span about 0 to 0.12, so the reference default
    # temperature 0.5 gives nearly equal weights (e^(0.12 / 0.5) = 1.3); 0.05 lets complexity matter.
    counts = concept_keep_counts(complexity, total, temperature=0.05)
    equal = concept_keep_counts(complexity.with_columns(complexity=pl.lit(0.0)), total).select("cluster", equal="keep")
    counts = counts.join(equal, on="cluster").sort("complexity").with_columns(share=pl.col("keep") / pl.col("size"))
    assert counts["keep"].sum() == total and (counts["keep"] <= counts["size"]).all()

    third = counts.height // 3
    simplest, most_complex = counts.head(third), counts.tail(third)
    assert most_complex["share"].mean() > simplest["share"].mean() + 0.2
    # Against the same allocation with equal weights, complexity moves documents from simple to complex clusters.
    assert most_complex["keep"].sum() > most_complex["equal"].sum()
    assert simplest["keep"].sum() < simplest["equal"].sum()

    duplicate_heavy = frame.group_by("cluster").agg(heavy=(pl.col("corpus") == DUPLICATE_HEAVY).mean() >= 0.9)
    by_kind = counts.join(duplicate_heavy, on="cluster").group_by("heavy").agg(pl.col("complexity").median(), pl.len())
    medians = dict(zip(by_kind["heavy"], by_kind["complexity"], strict=True))
    assert by_kind.filter("heavy")["len"][0] >= 5
    assert medians[True] < medians[False] / 1.5  # the copyright notices' clusters are simple concepts

    decisions = keep_concept_specific(frame, counts)
    assert decisions["keep"].sum() == total
    assert decisions.filter(~pl.col("keep"))["reason"].str.starts_with("concept: ").all()
