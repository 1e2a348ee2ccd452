"""larq-methods: recent binary-neural-network methods as larq quantizers and Keras layers.

Importing this package selects Keras 2 (`tf-keras`) for TensorFlow, which larq and the
Larq Compute Engine need, so it must be imported before TensorFlow is; it also sets
TensorFlow's log level and oneDNN switch unless you set them (`larq_methods.environment`
says what and why), and checks the pinned versions (`larq_methods.compat`).

- `larq_methods.methods`: one module per method (ReActNet, INSTA-BNN, DyBNN, ReBNN, FTBNN,
  GAAF), its layers, quantizers and presets; `Method` configures a binary block from them.
- `larq_methods.training`: recipes, the training step and loop, checkpoints and resume.
- `larq_methods.data`, `convert`, `costs`, `benchmark`: datasets, LCE conversion and
  verification, BOPs and FLOPs, latency.
"""

from larq_methods import environment

environment.configure()

import tensorflow as tf  # noqa: E402

# What matters is where tf.keras' classes come from: TensorFlow (or larq) imported first
# with TF_USE_LEGACY_KERAS=1 is fine, although `tf.keras.__name__` then reads
# "tensorflow.keras" (a lazy loader in front of tf_keras).
if not tf.keras.layers.Layer.__module__.startswith("tf_keras"):  # pragma: no cover
    raise ImportError(
        "TensorFlow was imported before larq_methods with Keras 3 active; import "
        "larq_methods first or set TF_USE_LEGACY_KERAS=1 in the environment."
    )

from larq_methods import compat  # noqa: E402

compat.check()

# Importing every module registers every layer, loss and model class with Keras, so that
# `tf.keras.models.load_model` reads any saved model after `import larq_methods` alone.
from larq_methods import initializers, layers, losses, method, methods  # noqa: E402
from larq_methods.losses import DistributionalLoss  # noqa: E402
from larq_methods.method import Method  # noqa: E402
from larq_methods.methods.reactnet import RPReLU, RSign  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "DistributionalLoss",
    "Method",
    "RPReLU",
    "RSign",
    "layers",
    "losses",
    "method",
    "methods",
]
