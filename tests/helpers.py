"""Helpers shared by the tests."""

import gzip
import struct

import numpy as np

from larq_methods import benchmark


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
    return benchmark.perturb(model, seed=seed, stddev=stddev)


def sign_margins(model, inputs):
    """Per example, how near any RSign's input comes to its threshold: min |x - a_c|.

    Keras and LCE round differently (LCE folds BatchNorm into the binary convolution's
    output transform), so a sign input nearer its threshold than the two runtimes' difference
    there may legitimately flip, and with it the example's outputs."""
    import tensorflow as tf

    from larq_methods.methods.reactnet import RSign

    signs = [layer for layer in model.layers if isinstance(layer, RSign)]
    values = tf.keras.Model(model.inputs, [layer.input for layer in signs]).predict(inputs, verbose=0)
    return np.min(
        [np.abs(v - layer.threshold.numpy()).reshape(len(inputs), -1).min(axis=1) for layer, v in zip(signs, values)],
        axis=0,
    )


def mini_model(method=None, *, shape=(8, 8, 1), classes=4, filters=32):
    """A small network with one binary block of `method` (default ReActNet's): real stem,
    sign -> binary 3x3 conv -> BN, shortcut, activation, pooling and a real classifier.
    Its layers have fixed names, so that two builds line up."""
    import tensorflow as tf

    from larq_methods.method import Method
    from zoo.common import batch_norm, finish

    method = method or Method()
    inputs = tf.keras.Input(shape, name="input")
    x = tf.keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = batch_norm("stem_bn")(x)
    y = method.sign(x, name="b1_sign")
    y = method.conv(y, filters, 3, name="b1_bconv")
    y = batch_norm("b1_bn")(y)
    y = tf.keras.layers.Add(name="b1_add")([y, x])
    y = method.activate(y, name="b1_act")
    y = tf.keras.layers.GlobalAveragePooling2D(name="pool")(y)
    y = tf.keras.layers.Dense(classes, name="logits")(y)
    y = tf.keras.layers.Activation("softmax", name="predictions")(y)
    return finish(inputs, y, name="mini", weights=None)


def mini_data(n=64, *, shape=(8, 8, 1), classes=4, seed=0):
    """Inputs whose mean brightness depends on the label, so a model can learn them."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(0, 1, (n, *shape)).astype(np.float32) + (y[:, None, None, None] - classes / 2) * 0.5
    return x.astype(np.float32), y.astype(np.int32)
