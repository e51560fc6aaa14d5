"""A sentence-transformers model on CPU through ONNX Runtime, its MatMul weights quantized to int8.

Made offline from the model's own weights: `torch.onnx.export` of the transformer, then ONNX
Runtime's dynamic quantization (per-channel int8 weights, int8 activations computed per batch,
Jacob et al. 2018) of the MatMul nodes only; quantizing the embedding lookups as well (the
default) costs agreement with torch for no speed (BENCHMARKS.md). The export traces the eager
attention, whose plain MatMul and Softmax nodes run faster here than the traced scaled-dot-product
attention. Pooling is the model's mean over tokens, then L2 normalization, as in all-MiniLM-L6-v2's
sentence-transformers modules.
sentence-transformers' own ONNX backend needs `optimum`, whose releases pin transformers < 4.58.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from curation_dag.steps.embed.transformer import encode_distinct

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
            self.transformer = model[0].auto_model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    out.mkdir(parents=True, exist_ok=True)
    full = out / "model-fp32.onnx"
    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    transformer = model[0].auto_model
    attention = transformer.config._attn_implementation
    transformer.set_attn_implementation("eager")
    try:
        torch.onnx.export(
            LastHiddenState().eval(), example, str(full), input_names=list(INPUTS), output_names=["last_hidden_state"],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
    finally:
        transformer.set_attn_implementation(attention)
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
    """Unit mean-pooled vectors of token-id windows from the int8 graph in `folder`."""

    def __init__(self, folder: Path):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(folder / MODEL_FILE), providers=["CPUExecutionProvider"])
        self.dimension = self.session.get_outputs()[0].shape[-1]

    def encode(self, windows: list[list[int]], batch_size: int, special: tuple[list[int], list[int]]) -> np.ndarray:
        return encode_distinct(windows, batch_size, special, self._run, self.dimension)

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = self.session.run(None, inputs)[0]
        mask = attention_mask[..., None].astype(np.float32)
        vectors = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def agreement(onnx_vectors: np.ndarray, torch_vectors: np.ndarray) -> dict:
    """Per-text cosine of the int8 vectors with torch's: its minimum and median, and the texts compared."""
    cosine = (onnx_vectors * torch_vectors).sum(axis=1)
    return {"texts": len(cosine), "min_cosine": float(cosine.min()), "median_cosine": float(np.median(cosine))}


def write_agreement(folder: Path, measured: dict) -> None:
    (folder / AGREEMENT_FILE).write_text(json.dumps(measured))


def read_agreement(folder: Path) -> dict:
    return json.loads((folder / AGREEMENT_FILE).read_text())
