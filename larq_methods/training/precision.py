"""Numerics of a run: Keras mixed precision, and TensorFlow's op determinism."""

from __future__ import annotations

import contextlib

import tensorflow as tf

from larq_methods import compat


def mixed_policy() -> str:
    """The mixed precision policy for this machine: float16 on a GPU (with loss scaling),
    bfloat16 on CPUs and TPUs."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def precision_policy(name: str):
    """Builds models under the Keras dtype policy `name` inside the block.

    Under a mixed policy, layers compute in float16 or bfloat16 and keep float32 weights,
    except where precision matters: every sign (`quantizers.BinarySign`: its threshold and
    comparison), INSTA's and DyBNN's statistics and hyper-functions, the classifier's
    softmax and the loss run in float32, and ReBNN's balance does its arithmetic and sums
    in float32. A mixed_float16 trainer scales its loss (Keras wraps the optimiser).
    """
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def float32_copy(model, build, method):
    """A float32 build of `method` holding `model`'s weights: what a mixed-precision run
    saves, so that its model.h5 loads, evaluates and converts as a float32 model's."""
    with precision_policy("float32"):
        copy = build(method)
    copy.set_weights(model.get_weights())
    return copy


def set_determinism(enabled: bool) -> None:
    """Turns TensorFlow's op determinism on or off for this process: with it, the same
    seed gives bit-identical training on the same machine (kernels pick deterministic
    algorithms and reductions; tf.data keeps its order)."""
    compat.set_op_determinism(enabled)
