"""SemDeDup on CPU: the static vectors the clusters are fitted on only propose candidates; the
transformer's windowed vectors decide them, and a candidate in a language it cannot read is left
unjudged, with the reason. Real models, real Parquet drops, the shipped demo texts."""

import gzip
import json

import numpy as np
import polars as pl
import pytest
import zstandard

from curation_dag.resources.embedder import bundled_minilm
from curation_dag.steps.semantic.absorb import (
    Transformer,
    absorb_clusters,
    absorb_semantic_duplicates,
    fit_id,
)
from curation_dag.steps.semantic.config import KMeansConfig, SemDeDupConfig
from curation_dag.steps.semantic.semdedup import candidates
from curation_dag.store.layout import SEMANTIC_CLUSTERS, SEMANTIC_DUPLICATES, Layout
from curation_dag.store.ledger import Ledger
from tests.conftest import DEMO_DROPS

# UDHR articles 1 and 2: Amharic, which MiniLM's vocabulary reads as [UNK] only, and Japanese.
AMHARIC = (
    "የሰው ልጅ ሁሉ ሲወለድ ነጻና በክብርና በመብትም እኩልነት ያለው ነው። የተፈጥሮ ማስተዋልና ሕሊና ስላለው አንዱ ሌላውን "
    "በወንድማማችነት መንፈስ መመልከት ይገባዋል። ስለሰብአዊ መብቶች ለማስተማር የሚረዱ አንዳንድ ዘዴዎች በዚህ ክፍል ቀርበዋል። "
)
JAPANESE = (
    "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。人間は、理性と良心とを"
    "授けられており、互いに同胞の精神をもって行動しなければならない。すべて人は、人種、皮膚の色、性、言語、宗教、"
    "政治上その他の意見、国民的若しくは社会的出身、財産、門地その他の地位又はこれに類するいかなる事由による差別をも"
    "受けることなく、この宣言に掲げるすべての権利と自由とを享有することができる。"
)


def demo_licence(package: str) -> str:
    for path in sorted((DEMO_DROPS / "licenses").glob("*/*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            for record in map(json.loads, handle):
                if record["id"] == package:
                    return record["text"]
    raise KeyError(package)


def demo_python_doc(name: str) -> str:
    for path in sorted((DEMO_DROPS / "python_docs").glob("*/*.jsonl.zst")):
        with open(path, "rb") as handle:
            lines = zstandard.ZstdDecompressor().stream_reader(handle).read().decode().splitlines()
        for record in map(json.loads, filter(None, lines)):
            if record["id"] == name:
                return record["text"]
    raise KeyError(name)


def tokens(embedder, text: str) -> int:
    return len(embedder._tokenizer.encode(text, add_special_tokens=False).ids)


def judge(tmp_path, embedder, drops: dict[str, list[str]], settings: SemDeDupConfig) -> pl.DataFrame:
    """Every drop's SemDeDup decisions, in arrival order: each drop a documents Parquet, its static
    vectors in one k-means cluster, the transformer reading the candidates' texts back from Parquet."""
    layout = Layout.at(tmp_path / "store")
    loaded = {}
    for key, texts in drops.items():
        documents = pl.DataFrame(
            {
                "doc_id": [f"{key}/part-0.jsonl#{row}" for row in range(len(texts))],
                "content_hash": [f"{key}#{row}" for row in range(len(texts))],
                "text": texts,
            }
        )
        layout.documents(key).parent.mkdir(parents=True, exist_ok=True)
        documents.write_parquet(layout.documents(key))
        loaded[key] = documents.select("doc_id"), embedder.encode(texts)
    clusters = Ledger(layout.asset(SEMANTIC_CLUSTERS))
    absorb_clusters(layout, clusters, loaded, KMeansConfig(clusters=1), embedder.model_id, lambda _: None)

    def texts_of(key: str, doc_ids: list[str]) -> pl.DataFrame:
        return pl.read_parquet(layout.documents(key)).filter(pl.col("doc_id").is_in(doc_ids))

    def vectors_of(key: str, documents: pl.DataFrame) -> np.ndarray:
        return embedder.confirm(documents["text"].to_list())

    transformer = Transformer(embedder.transformer_name, texts_of, vectors_of)
    ledger = Ledger(layout.asset(SEMANTIC_DUPLICATES))
    decided = absorb_semantic_duplicates(
        ledger, clusters, loaded.__getitem__, transformer, settings, fit_id(layout.centroids())
    )
    assert ledger.keys == list(drops)
    return pl.concat(decided)


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_candidates_are_pairs_of_one_cluster_at_the_threshold_flagged_on_both_sides():
    new = unit([[1, 0, 0], [0.5, np.sqrt(0.75), 0], [0, 0, 1], [0, 1, 0]])  # new 0 and 1: cosine 0.5 exactly
    new_clusters = np.array([0, 0, 0, 1])
    earlier = unit([[0, 1, 0], [0, 0, 1], [1, 0, 0]])  # 0: new 3's twin, 1 and 2: twins of new 2 and 0
    earlier_clusters = np.array([1, 2, 3])

    flagged_new, flagged_earlier = candidates(new, new_clusters, earlier, earlier_clusters, 0.5)
    assert flagged_new.tolist() == [True, True, False, True]  # at the threshold counts
    assert flagged_earlier.tolist() == [True, False, False]  # twins in other clusters are no candidates
    flagged_new, flagged_earlier = candidates(new, new_clusters, earlier, earlier_clusters, 0.75)
    assert flagged_new.tolist() == [False, False, False, True]  # new 1 and 3 (cosine 0.87) are in two clusters
    assert flagged_earlier.tolist() == [True, False, False]


def test_candidates_without_earlier_documents_and_a_document_is_not_its_own_candidate():
    new = unit([[1, 0], [1, 0], [0, 1]])
    flagged_new, flagged_earlier = candidates(new, np.array([0, 0, 0]), np.zeros((0, 2), np.float32), np.zeros(0), 0.9)
    assert flagged_new.tolist() == [True, True, False] and flagged_earlier.tolist() == []


def test_files_sharing_a_long_licence_header_with_different_bodies_are_not_semantic_duplicates(
    static_embedder, tmp_path
):
    """The issue's first case: MiniLM reads only its first 256 tokens, here the header alone, so the two
    are identical to it; its windowed vectors read the bodies too, and tell them apart."""
    from sentence_transformers import SentenceTransformer

    header = demo_licence("libkmod2")
    bodies = demo_python_doc("for"), demo_python_doc("exceptions")
    assert tokens(static_embedder, header) >= 400 and min(tokens(static_embedder, b) for b in bodies) >= 400
    first, second = (f"{header}\n\n{body}" for body in bodies)
    settings = SemDeDupConfig()

    fast = static_embedder.encode([first, second])
    assert fast[0] @ fast[1] >= settings.candidate_cosine  # the static vectors propose the pair
    truncated = SentenceTransformer(bundled_minilm(), device="cpu")
    truncated.max_seq_length = 256
    head = truncated.encode([first, second], normalize_embeddings=True)
    assert head[0] @ head[1] >= 0.95  # what a transformer that sees the header only would call a duplicate
    confirmed = static_embedder.confirm([first, second])
    assert confirmed[0] @ confirmed[1] < 0.95

    decisions = judge(tmp_path, static_embedder, {"lic/2026-01-01": [first], "lic/2026-01-15": [second]}, settings)
    assert decisions["doc_id"].to_list() == ["lic/2026-01-01/part-0.jsonl#0", "lic/2026-01-15/part-0.jsonl#0"]
    assert decisions["semantic_duplicate_of"].is_null().all() and decisions["cosine"].is_null().all()
    assert decisions["not_judged"].is_null().all()  # both were English: the transformer judged them


@pytest.mark.parametrize(
    ("language", "paragraph", "variant"),
    [
        ("am", "አንቀጽ አንድ። " + AMHARIC * 3, "አንቀጽ ሁለት። " + AMHARIC * 3),
        ("ja", "第一条 " + JAPANESE, "第二条 " + JAPANESE.replace("行動しなければならない", "行動すべきである")),
    ],
)
def test_a_candidate_in_a_language_the_transformer_cannot_read_is_not_judged_and_says_why(
    static_embedder, tmp_path, language, paragraph, variant
):
    """The issue's second case: near-identical paragraphs the static vectors propose, in a language
    all-MiniLM-L6-v2 was not trained on."""
    settings = SemDeDupConfig()
    fast = static_embedder.encode([paragraph, variant])
    assert fast[0] @ fast[1] >= settings.candidate_cosine
    decisions = judge(tmp_path, static_embedder, {"udhr/2026-01-01": [paragraph, variant]}, settings)
    assert decisions["semantic_duplicate_of"].is_null().all() and decisions["cosine"].is_null().all()
    reason = f"language {language}: all-MiniLM-L6-v2 reads en"
    assert decisions["not_judged"].to_list() == [reason, reason]
    assert decisions.columns == [
        "doc_id", "drop", "cluster", "distance", "source", "semantic_duplicate_of", "cosine", "not_judged"
    ]  # fmt: skip


def test_to_the_transformer_two_amharic_texts_of_a_length_are_near_identical(static_embedder):
    """Why the language gate is there: all-MiniLM-L6-v2 reads Amharic as [UNK]s only, so a paragraph and
    one word repeated as many times would be semantic duplicates to it."""
    confirmed = static_embedder.confirm([AMHARIC, " ".join(["ዛሬ"] * len(AMHARIC.split()))])
    assert confirmed[0] @ confirmed[1] >= 0.95


def test_a_near_identical_english_pair_is_marked_with_the_transformers_cosine(static_embedder, tmp_path):
    """The issue's third case: a document edited in a few words, in a later drop, duplicates the earlier."""
    original = demo_python_doc("for")
    edited = original.replace("sequence", "series").replace("iterate", "loop")
    unrelated = demo_python_doc("exceptions"), demo_python_doc("import")
    settings = SemDeDupConfig()
    drops = {"docs/2026-01-01": [original, unrelated[0]], "docs/2026-01-15": [edited, unrelated[1]]}

    decisions = judge(tmp_path, static_embedder, drops, settings)
    marked = decisions.filter(pl.col("semantic_duplicate_of").is_not_null())
    assert marked["doc_id"].to_list() == ["docs/2026-01-15/part-0.jsonl#0"]
    assert marked["semantic_duplicate_of"].to_list() == ["docs/2026-01-01/part-0.jsonl#0"]
    assert decisions["not_judged"].is_null().all()
    confirmed, fast = static_embedder.confirm([original, edited]), static_embedder.encode([original, edited])
    recorded = marked["cosine"].item()
    assert recorded >= 1 - settings.eps
    assert recorded == pytest.approx(float(confirmed[0] @ confirmed[1]), abs=1e-4)
    assert abs(recorded - float(fast[0] @ fast[1])) > 1e-3  # the transformer's cosine, not the static one
