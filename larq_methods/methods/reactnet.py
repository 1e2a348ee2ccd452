r"""ReActNet: a learnable threshold before the sign and a shifted PReLU after the block.

Liu et al., ReActNet: Towards Precise Binary Neural Network with Generalized Activation
Functions, ECCV 2020. https://arxiv.org/abs/2003.03488

- `RSign`: \\(x_b = \operatorname{sign}(x - a_c)\\), the "static" threshold.
- `RPReLU`: \\(f(x) = \operatorname{PReLU}_c(x - \gamma_c) + \zeta_c\\), the "rprelu" activation.
- Weights \\(w_b = \operatorname{mean}|W_c| \operatorname{sign}(W)\\) per output channel, "mean-abs".

Preset "reactnet" is the default `Method()`; it follows the authors' released code.
"""

import tensorflow as tf

from larq_methods.layers import BinaryConv2D, PReLUParameters, channel_weight, prelu
from larq_methods.methods.preset import Preset
from larq_methods.quantizers import BinarySign, approx_sign

_register = tf.keras.utils.register_keras_serializable(package="lqm")


@_register
class RSign(BinarySign):
    r"""ReAct-Sign: a sign with a learnable threshold per channel.

    \\[ x_b = \operatorname{sign}(x - a_c), \qquad \operatorname{sign}(0) = +1 \\]

    `a` starts at 0. The backward pass is ApproxSign (Bi-Real Net),
    \\(\partial x_b / \partial x = 2 - 2|x - a_c|\\) for \\(|x - a_c| \le 1\\), else 0,
    and reaches both `x` and `a`. After conversion with LCE the subtraction stays a
    float SUB in front of `LceQuantize`.

    # References
    - Liu et al., ReActNet: Towards Precise Binary Neural Network with Generalized
      Activation Functions, ECCV 2020. https://arxiv.org/abs/2003.03488
    """

    def build(self, input_shape):
        self.threshold = channel_weight(self, "threshold", input_shape, "zeros")
        super().build(input_shape)

    def call(self, inputs):
        return approx_sign(inputs - self.threshold)


@_register
class RPReLU(PReLUParameters, tf.keras.layers.Layer):
    r"""ReAct-PReLU: a PReLU with learnable shifts of its input and output per channel.

    \\[ f(x) = \operatorname{PReLU}_c(x - \gamma_c) + \zeta_c, \qquad
        \operatorname{PReLU}_c(y) = \max(y, 0) + \beta_c \min(y, 0) \\]

    `gamma` and `zeta` start at 0, the slope `beta` at `slope_initializer` (0.25). The slope
    is per channel and shared over height and width. It stays a float op after conversion.

    # References
    - Liu et al., ReActNet: Towards Precise Binary Neural Network with Generalized
      Activation Functions, ECCV 2020. https://arxiv.org/abs/2003.03488
    """

    def call(self, inputs):
        return prelu(inputs - self.gamma, self.slope) + self.zeta


def mean_abs_conv(method, filters, kernel_size, **common):
    """ReActNet's binary convolution: sign(W) scaled by mean|W| per output channel."""
    return BinaryConv2D(filters, kernel_size, kernel_quantizer="magnitude_aware_sign", **common)


THRESHOLDS = {"static": RSign}
ACTIVATIONS = {"rprelu": RPReLU}
WEIGHTS = {"mean-abs": mean_abs_conv}
PRESETS = (Preset("reactnet", {}, "ReActNet: RSign + RPReLU [Liu et al. ECCV 2020]", "code"),)
