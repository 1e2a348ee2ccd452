"""Keras initializers."""

import numpy as np
import tensorflow as tf

# Binomial filter taps per kernel size: rows of Pascal's triangle.
_BINOMIAL = {2: [1, 1], 3: [1, 2, 1], 5: [1, 4, 6, 4, 1]}


@tf.keras.utils.register_keras_serializable(package="lqm")
class BlurPool(tf.keras.initializers.Initializer):
    """A normalised binomial (blur) filter for every channel of a depthwise kernel, for
    anti-aliased pooling as QuickNet's transitions use it.

    larq-zoo writes this initializer as a plain function, which tf-keras saves as
    `{"class_name": "function"}` and cannot load again; as a registered class it can.

    # References
    - Zhang, Making Convolutional Networks Shift-Invariant Again, ICML 2019.
      https://arxiv.org/abs/1904.11486
    """

    def __call__(self, shape, dtype=None, **kwargs):
        size, _, channels, multiplier = shape
        if size not in _BINOMIAL or shape[1] != size:
            raise ValueError(f"BlurPool needs a square kernel of size 2, 3 or 5; got {shape}")
        taps = np.array(_BINOMIAL[size], dtype=np.float64)
        kernel = np.outer(taps, taps) / taps.sum() ** 2
        kernel = np.broadcast_to(kernel[:, :, None, None], (size, size, channels, multiplier))
        return tf.constant(kernel, dtype=dtype or tf.float32)


# Layer configs inside an .h5 file name initializers by their bare class name.
tf.keras.utils.get_custom_objects()["BlurPool"] = BlurPool
