"""Helpers shared by the tests."""

import gzip
import struct

import numpy as np


def write_idx(path, array, compress=True):
    """Writes an IDX file of unsigned bytes, gzipped if `compress`."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(payload)


def perturb(model, seed=0, stddev=0.1):
    """Moves every trainable weight and moving statistic off its initial value, so tests
    see non-trivial parameters (other state, such as ReBNN's bookkeeping, is left alone)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.trainable or "moving" in w.name:
            w.assign(w.numpy() + rng.normal(0, stddev, w.shape).astype(np.float32))
    return model
