"""Hashing shared by the steps: fixed, our own, so outputs stay the same across library versions."""

import numpy as np


def splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer (Steele, Lea & Flood 2014): a bijective 64-bit mix in which every input bit
    flips each output bit with probability ~1/2. Returns a new array; numpy's uint64 products wrap modulo 2**64."""
    values = values ^ (values >> np.uint64(30))
    values *= np.uint64(0xBF58476D1CE4E5B9)
    values ^= values >> np.uint64(27)
    values *= np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))
