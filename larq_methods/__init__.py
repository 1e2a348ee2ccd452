"""larq-methods: recent binary-neural-network methods as larq quantizers and Keras layers.

Importing this package selects Keras 2 (`tf-keras`) for TensorFlow, which larq and the
Larq Compute Engine need, so it must be imported before TensorFlow is.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns its oneDNN kernels on by itself only on some Intel CPUs; elsewhere (AMD
# EPYC here) they train 1.4-1.9x as fast as its own, as deterministically
# (benchmarks/results/onednn.md). Set TF_ENABLE_ONEDNN_OPTS=0 to keep TensorFlow's choice.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import tensorflow as tf  # noqa: E402

# What matters is where tf.keras' classes come from: TensorFlow (or larq) imported first
# with TF_USE_LEGACY_KERAS=1 is fine, although `tf.keras.__name__` then reads
# "tensorflow.keras" (a lazy loader in front of tf_keras).
if not tf.keras.layers.Layer.__module__.startswith("tf_keras"):  # pragma: no cover
    raise ImportError(
        "TensorFlow was imported before larq_methods with Keras 3 active; import "
        "larq_methods first or set TF_USE_LEGACY_KERAS=1 in the environment."
    )

# Importing every module registers every layer, loss and model class with Keras, so that
# `tf.keras.models.load_model` reads any saved model after `import larq_methods` alone.
from larq_methods import gaaf, initializers, layers, losses, method, rebnn  # noqa: E402
from larq_methods.layers import RPReLU, RSign  # noqa: E402
from larq_methods.losses import DistributionalLoss  # noqa: E402
from larq_methods.method import Method  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "DistributionalLoss",
    "Method",
    "RPReLU",
    "RSign",
    "gaaf",
    "layers",
    "losses",
    "method",
    "rebnn",
]
