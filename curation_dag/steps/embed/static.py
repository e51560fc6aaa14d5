"""Static window vectors: the mean of a model2vec model's token vectors over a window's tokens, or
hashed character n-grams for a window its vocabulary cannot read.

model2vec (Tulkens & van Dongen 2024) embeds a text as the mean of its tokens' static vectors,
unknown tokens left out. The windows arrive as the token ids of the model it was distilled from
(`windows.py` tokenizes each text once), so they are looked up here, not tokenized again; a
distilled vocabulary is the source's, less the tokens it never used.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from curation_dag.steps.embed.hashed_ngrams import character_ngram_vectors
from curation_dag.steps.embed.windows import Windows


class StaticEncoder:
    """Unit vectors of windows from `model`, a model2vec `StaticModel`, given in the ids of `source_vocabulary`."""

    def __init__(self, model, source_vocabulary: dict[str, int]):
        static_vocabulary = model.tokenizer.get_vocab()
        unknown = model.tokenizer.id_to_token(model.unk_token_id)
        self.unknown = source_vocabulary[unknown]
        # Each source id's static id; -1 for tokens the static model has no vector of, and its unknown token.
        self.static_of = np.full(max(source_vocabulary.values()) + 1, -1, dtype=np.int64)
        for token, source_id in source_vocabulary.items():
            if token != unknown:
                self.static_of[source_id] = static_vocabulary.get(token, -1)
        self.embedding = np.asarray(model.embedding, dtype=np.float32)
        self.dimension = self.embedding.shape[1]

    def encode(self, windows: Windows, texts: list[str]) -> tuple[np.ndarray, int]:
        """Each window's vector, and how many windows are unreadable: half or more of their tokens
        unknown, as in a script outside the vocabulary. Those get hashed character trigrams of their
        text (`hashed_ngrams.py`), since the mean of their few known tokens, or no token at all,
        would make unrelated texts look identical."""
        lengths = np.array([len(ids) for ids in windows.ids], dtype=np.int64)
        flat = np.fromiter((token for ids in windows.ids for token in ids), dtype=np.int64, count=lengths.sum())
        row = np.repeat(np.arange(len(lengths)), lengths)
        unreadable = 2 * np.bincount(row[flat == self.unknown], minlength=len(lengths)) >= lengths
        static = self.static_of[flat]
        known = static >= 0
        counts = scipy.sparse.csr_matrix(
            (np.ones(known.sum(), dtype=np.float32), (row[known], static[known])),
            shape=(len(lengths), len(self.embedding)),
        )
        vectors = np.asarray(counts @ self.embedding, dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        if unreadable.any():
            pieces = windows.texts(texts, np.flatnonzero(unreadable))
            vectors[unreadable] = character_ngram_vectors(pieces, self.dimension)
        return vectors, int(unreadable.sum())
