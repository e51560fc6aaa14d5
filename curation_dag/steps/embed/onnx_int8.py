"""A sentence-transformers model on CPU through ONNX Runtime, its MatMul weights quantized to int8.

Made offline from the model's own weights: `torch.onnx.export` of the transformer, then ONNX
Runtime's dynamic quantization (per-channel int8 weights, int8 activations computed per batch,
Jacob et al. 2018) of the MatMul nodes only; quantizing the embedding lookups as well (the
default) costs agreement with torch for no speed (BENCHMARKS.md). Pooling is the model's mean over
tokens, then L2 normalization, as in all-MiniLM-L6-v2's sentence-transformers modules.
sentence-transformers' own ONNX backend needs `optimum`, whose releases pin transformers < 4.58.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MODEL_FILE = "model-int8.onnx"
AGREEMENT_FILE = "agreement.json"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_int8(model, out: Path) -> None:
    """Write `out`/MODEL_FILE: the int8 ONNX graph of `model`, a loaded sentence-transformers model."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class LastHiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = model[0].auto_model.eval()

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    out.mkdir(parents=True, exist_ok=True)
    full = out / "model-fp32.onnx"
    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    torch.onnx.export(
        LastHiddenState(), example, str(full), input_names=list(INPUTS), output_names=["last_hidden_state"],
        dynamic_axes=axes, opset_version=17, dynamo=False,
    )  # fmt: skip
    quantize_dynamic(
        str(full),
        str(out / MODEL_FILE),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    full.unlink()


class OnnxEncoder:
    """Unit mean-pooled vectors from the int8 graph in `folder`, tokenized with `model_folder`'s tokenizer."""

    def __init__(self, folder: Path, model_folder: str, max_seq_length: int):
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(Path(model_folder) / "tokenizer.json"))
        self.tokenizer.no_padding()  # the file pads every text to 128 tokens; batches pad to their longest here
        self.tokenizer.enable_truncation(max_seq_length)
        self.session = onnxruntime.InferenceSession(str(folder / MODEL_FILE), providers=["CPUExecutionProvider"])
        self.dimension = self.session.get_outputs()[0].shape[-1]

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Vectors in the order of `texts`, batched by length so that little is padding."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch_fast(texts)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            longest = max(len(encodings[row].ids) for row in rows)
            batch = {name: np.zeros((len(rows), longest), dtype=np.int64) for name in INPUTS}
            for line, row in enumerate(rows):
                encoding = encodings[row]
                for name, values in zip(
                    INPUTS, (encoding.ids, encoding.attention_mask, encoding.type_ids), strict=True
                ):
                    batch[name][line, : len(values)] = values
            hidden = self.session.run(None, batch)[0]
            mask = batch["attention_mask"][..., None].astype(np.float32)
            vectors[rows] = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def agreement(onnx_vectors: np.ndarray, torch_vectors: np.ndarray) -> dict:
    """Per-text cosine of the int8 vectors with torch's: its minimum and median, and the texts compared."""
    cosine = (onnx_vectors * torch_vectors).sum(axis=1)
    return {"texts": len(cosine), "min_cosine": float(cosine.min()), "median_cosine": float(np.median(cosine))}


def write_agreement(folder: Path, measured: dict) -> None:
    (folder / AGREEMENT_FILE).write_text(json.dumps(measured))


def read_agreement(folder: Path) -> dict:
    return json.loads((folder / AGREEMENT_FILE).read_text())
