"""A transformer over token windows: each distinct window once, in padded batches of similar length.

Both runtimes of the transformer take the windows' token ids (`windows.py`), so every backend embeds
exactly the same tokens: torch through the sentence-transformers modules of the model (its own pooling
and normalization), and the int8 ONNX graph (`onnx_int8.py`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def encode_distinct(
    windows: list[list[int]],
    batch_size: int,
    special: tuple[list[int], list[int]],
    run: Callable[[np.ndarray, np.ndarray], np.ndarray],
    dimension: int,
) -> np.ndarray:
    """`dimension`-sized vectors of token-id `windows` by a transformer: `run(input_ids, attention_mask)`
    embeds one padded batch, each window between the `special` (leading, trailing) ids. Each distinct
    window is run once, in batches of similar length so that little is padding."""
    first: dict[tuple[int, ...], int] = {}
    index = np.array([first.setdefault(tuple(window), len(first)) for window in windows], dtype=np.int64)
    distinct = [[*special[0], *window, *special[1]] for window in first]
    order = np.argsort([len(sequence) for sequence in distinct], kind="stable")
    vectors = np.zeros((len(distinct), dimension), dtype=np.float32)
    for start in range(0, len(distinct), batch_size):
        rows = order[start : start + batch_size]
        longest = max(len(distinct[row]) for row in rows)
        input_ids = np.zeros((len(rows), longest), dtype=np.int64)
        attention_mask = np.zeros((len(rows), longest), dtype=np.int64)
        for line, row in enumerate(rows):
            input_ids[line, : len(distinct[row])] = distinct[row]
            attention_mask[line, : len(distinct[row])] = 1
        vectors[rows] = run(input_ids, attention_mask)
    return vectors[index]


class TorchEncoder:
    """Unit vectors of token-id windows from a loaded sentence-transformers model, on its device."""

    def __init__(self, model):
        self.model = model.eval()
        self.dimension = model.get_embedding_dimension()

    def encode(self, windows: list[list[int]], batch_size: int, special: tuple[list[int], list[int]]) -> np.ndarray:
        return encode_distinct(windows, batch_size, special, self._run, self.dimension)

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        features = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "token_type_ids": torch.zeros_like(torch.from_numpy(input_ids)),
        }
        with torch.inference_mode():
            vectors = self.model({name: value.to(self.model.device) for name, value in features.items()})
        return torch.nn.functional.normalize(vectors["sentence_embedding"].float(), dim=1).cpu().numpy()
