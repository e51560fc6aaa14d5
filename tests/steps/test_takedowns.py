"""The takedown overlay on the ledgers: replacement by an identical copy, re-election of the earliest
remaining duplicate, and later copies of a removed text."""

import polars as pl

from curation_dag.steps.takedowns.removal import Removed, overlay

# A, B and C share one text (A kept); D and E are near duplicates of A; G of F.
EXACT = pl.DataFrame(
    {
        "doc_id": ["s/1/a#1", "s/1/a#2", "s/2/a#5", "s/2/a#6", "s/3/a#1", "s/3/a#2", "s/3/a#3"],
        "ordinal": [1, 2, 5, 6, 9, 10, 11],
        "content_hash": ["h1", "h2", "h1", "h3", "h1", "h4", "h5"],
        "duplicate_of": [None, None, "s/1/a#1", None, "s/1/a#1", None, None],
    }
)
A, D, B, E, C, F, G = EXACT["doc_id"]
NEAR = pl.DataFrame(
    {
        "doc_id": [A, D, E, F, G],
        "drop": ["s/1", "s/1", "s/2", "s/3", "s/3"],
        "duplicate_of": [None, A, A, None, F],
        "duplicate_of_drop": [None, "s/1", "s/1", None, "s/3"],
        "jaccard": [None, 0.9, 0.85, None, 0.8],
    }
)
SCORES = pl.DataFrame({"doc_id": [A, D, B, E, C, F, G], "drop": ["s/1", "s/1", "s/2", "s/2", "s/3", "s/3", "s/3"],
                       "cluster": [3, 1, None, 2, None, 4, 4]})  # fmt: skip


def rows(frame: pl.DataFrame, *columns: str) -> dict:
    return {row[0]: row[1:] for row in frame.select("doc_id", *columns).iter_rows()}


def test_an_identical_copy_replaces_a_removed_kept_document_at_every_stage():
    current = overlay(EXACT, Removed({A: "t1"}, {}))
    assert current.replaced_by == {A: B}
    exact = current.apply(EXACT, "duplicate_of", takes_over=False)
    assert rows(exact, "duplicate_of") == {B: (None,), C: (B,), D: (None,), E: (None,), F: (None,), G: (None,)}
    near = current.apply(NEAR, "duplicate_of", "jaccard")
    assert rows(near, "drop", "duplicate_of", "duplicate_of_drop", "jaccard") == {
        B: ("s/2", None, None, None),  # takes over A's row: B's text is A's
        D: ("s/1", B, "s/2", 0.9),
        E: ("s/2", B, "s/2", 0.85),
        F: ("s/3", None, None, None),
        G: ("s/3", F, "s/3", 0.8),
    }
    assert rows(current.apply(SCORES), "cluster") == {B: (3,), D: (1,), E: (2,), C: (None,), F: (4,), G: (4,)}


def test_without_a_copy_the_earliest_remaining_duplicate_is_elected_and_later_copies_go_too():
    later_copy = pl.concat([EXACT, pl.DataFrame({"doc_id": ["s/4/a#1"], "ordinal": [12], "content_hash": ["h1"],
                                                 "duplicate_of": [A]})])  # fmt: skip
    current = overlay(later_copy, Removed({A: "t1", B: "t1", C: "t1"}, {"h1": "t1"}))
    assert current.removed == {A, B, C, "s/4/a#1"} and current.replaced_by == {}
    near = current.apply(NEAR, "duplicate_of", "jaccard")
    assert rows(near, "duplicate_of", "jaccard") == {D: (None, None), E: (D, None), F: (None, None), G: (F, 0.8)}
    assert rows(current.apply(later_copy, "duplicate_of", takes_over=False), "duplicate_of") == {
        D: (None,),
        E: (None,),
        F: (None,),
        G: (None,),
    }


def test_a_removed_original_without_copies_hands_over_to_its_duplicate():
    near = overlay(EXACT, Removed({F: "t2"}, {})).apply(NEAR, "duplicate_of", "jaccard")
    assert rows(near, "duplicate_of")[G] == (None,) and F not in rows(near)
