"""The CPU fast path: a static model distilled once from the bundled MiniLM, on a larger real sample."""

import gzip
import json
from pathlib import Path

import dagster as dg
import numpy as np
from model2vec import StaticModel

from curation_dag.resources import EmbedderResource


def test_auto_on_cpu_picks_the_static_model_and_caches_it(static_embedder):
    assert (static_embedder.running_on, static_embedder.backend) == ("cpu", "model2vec static")
    assert static_embedder.model_id == "all-MiniLM-L6-v2-static-256+char3-256x4w2" and static_embedder.dimension == 256
    again = EmbedderResource(cache_dir=static_embedder.cache_dir)
    again.setup_for_execution(dg.build_init_resource_context())  # loads the cached model, distils nothing
    texts = ["How do I open a file in Python?", "Opening files with Python", "The cat sat on the mat."]
    a, b, c = vectors = again.encode(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5) and a @ b > a @ c
    assert np.allclose(vectors, static_embedder.encode(texts), atol=1e-6)


def test_paraphrases_are_closer_than_other_pairs_on_mrpc(static_embedder, shared_data):
    with gzip.open(shared_data / "mrpc_paraphrase" / "docs.jsonl.gz", "rt") as handle:
        texts = {d["id"]: d["text"] for d in map(json.loads, handle)}
    pairs = [json.loads(line) for line in open(shared_data / "mrpc_paraphrase" / "pairs.jsonl")]
    ids = sorted(texts)
    vectors = dict(zip(ids, static_embedder.encode([texts[i] for i in ids]), strict=True))
    cosine = {
        label: np.mean([vectors[p["id1"]] @ vectors[p["id2"]] for p in pairs if p["label"] == label])
        for label in (0, 1)
    }
    rng = np.random.default_rng(0)
    unrelated = np.mean([vectors[ids[i]] @ vectors[ids[j]] for i, j in rng.integers(0, len(ids), (2000, 2))])
    assert len(ids) > 10_000
    assert cosine[1] > cosine[0] > unrelated + 0.2


def test_texts_outside_the_vocabulary_get_distinct_character_vectors(static_embedder):
    """Scripts MiniLM's WordPiece cannot read would get a zero vector, or the same few punctuation
    tokens as any other such text; they get hashed character trigrams instead."""
    texts = [
        "ስለሰብአዊ፡መብቶች፡ለማስተማር፡ የሚረዱ፡አንዳን፡ዘዴዎች።",  # Amharic: no known token
        "ރާާއްޖޭގައި ބާއްވާ ފުރަތަމަ ބައިނަލްއަޤްވާމީ ބޭންކިންގ, 2024.",  # Thaana: only "," "2024" "." known
        "ᠬᠦᠮᠦᠨ ᠪᠦᠷ ᠲᠥᠷᠥᠵᠦ ᠮᠡᠨᠳᠡᠯᠡᠬᠦ ᠡᠷᠬᠡ, 2024.",
        "The cat sat on the mat.",
    ]
    vectors = static_embedder.encode(texts)
    assert np.isfinite(vectors).all() and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[np.triu_indices(4, 1)].max() < 0.5
    model2vec = StaticModel.from_pretrained(str(Path(static_embedder.cache_dir) / "all-MiniLM-L6-v2-static-256"))
    assert np.allclose(vectors[3], model2vec.encode(texts[3:]), atol=1e-3)  # a readable text: the model's own mean
