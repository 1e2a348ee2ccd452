r"""FTBNN: a fully parametric ReLU, binary downsampling and group execution.

Su et al., FTBNN: Rethinking Non-linearity for 1-bit CNNs and Going Beyond, arXiv
2010.09294.

- `FPReLU` ("fprelu"): \\(f(x) = p_c \max(x, 0) + q_c \min(x, 0)\\), after the BatchNorm of each
  binary convolution, before the shortcut addition.
- Binary downsampling (`Method(downsample="binary")`) and group execution
  (`Method(groups=2, group_width=1.5)`) are parts of the block that the backbones build.

No code was released; the preset "ftbnn" follows the paper.
"""

import tensorflow as tf

from larq_methods.layers import channel_weight
from larq_methods.methods.preset import Preset

_register = tf.keras.utils.register_keras_serializable(package="lqm")


@_register
class FPReLU(tf.keras.layers.Layer):
    r"""FTBNN's fully parametric ReLU: learnable slopes on both sides, per channel.

    \\[ f(x) = p_c \max(x, 0) + q_c \min(x, 0) \\]

    `p` starts at 1 and `q` at 0.25 (a PReLU). Placed after the BatchNorm of each binary
    convolution, before the shortcut addition.

    # References
    - Su et al., FTBNN: Rethinking Non-linearity for 1-bit CNNs and Going Beyond,
      arXiv 2010.09294.
    """

    def build(self, input_shape):
        self.positive_slope = channel_weight(self, "positive_slope", input_shape, "ones")
        self.negative_slope = channel_weight(
            self, "negative_slope", input_shape, tf.keras.initializers.Constant(0.25)
        )
        super().build(input_shape)

    def call(self, inputs):
        return self.positive_slope * tf.nn.relu(inputs) - self.negative_slope * tf.nn.relu(-inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


ACTIVATIONS = {"fprelu": FPReLU}
BEFORE_ADD = ("fprelu",)
PRESETS = (
    Preset(
        "ftbnn", {"activation": "fprelu", "downsample": "binary", "groups": 2, "group_width": 1.5},
        "FTBNN: FPReLU, binary downsampling, 2 groups in 1.5x wider stages 2-4 [Su et al. 2020]", "paper",
    ),  # fmt: skip
)
