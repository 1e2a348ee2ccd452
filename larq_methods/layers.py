"""Keras layers of the binary-network methods.

Every layer has `get_config`, is registered as a Keras custom object (so
`tf.keras.models.load_model` needs no `custom_objects`), and keeps per-channel parameters
on the last (channels) axis of NHWC inputs.
"""

import larq as lq
import tensorflow as tf

_register = tf.keras.utils.register_keras_serializable(package="lqm")


def _channel_weight(layer, name, input_shape, init):
    return layer.add_weight(
        name=name,
        shape=(int(input_shape[-1]),),
        initializer=tf.keras.initializers.get(init),
        trainable=True,
    )


@_register
class RSign(tf.keras.layers.Layer):
    r"""ReAct-Sign: a sign with a learnable threshold per channel.

    \\[ x_b = \operatorname{sign}(x - a_c), \qquad \operatorname{sign}(0) = +1 \\]

    `a` starts at 0. The backward pass is ApproxSign (Bi-Real Net),
    \\(\partial x_b / \partial x = 2 - 2|x - a_c|\\) for \\(|x - a_c| \le 1\\), else 0,
    and reaches both `x` and `a`. After conversion with LCE the subtraction stays a
    float SUB in front of `LceQuantize`.

    `precision = 1` marks the output as binary for cost counting, as larq's quantizers do.

    # References
    - Liu et al., ReActNet: Towards Precise Binary Neural Network with Generalized
      Activation Functions, ECCV 2020. https://arxiv.org/abs/2003.03488
    """

    precision = 1

    def build(self, input_shape):
        self.threshold = _channel_weight(self, "threshold", input_shape, "zeros")
        super().build(input_shape)

    def call(self, inputs):
        return lq.quantizers.approx_sign(inputs - self.threshold)

    def compute_output_shape(self, input_shape):
        return input_shape


@_register
class RPReLU(tf.keras.layers.Layer):
    r"""ReAct-PReLU: a PReLU with learnable shifts of its input and output per channel.

    \\[ f(x) = \operatorname{PReLU}_c(x - \gamma_c) + \zeta_c, \qquad
        \operatorname{PReLU}_c(y) = \max(y, 0) + \beta_c \min(y, 0) \\]

    `gamma` and `zeta` start at 0, the slope `beta` at `slope_initializer` (0.25). The slope
    is per channel and shared over height and width. It stays a float op after conversion.

    # References
    - Liu et al., ReActNet: Towards Precise Binary Neural Network with Generalized
      Activation Functions, ECCV 2020. https://arxiv.org/abs/2003.03488
    """

    def __init__(self, slope_initializer=0.25, **kwargs):
        super().__init__(**kwargs)
        self.slope_initializer = slope_initializer

    def build(self, input_shape):
        self.gamma = _channel_weight(self, "gamma", input_shape, "zeros")
        # Shaped (1, 1, C) on NHWC, as Keras' PReLU with shared H and W axes.
        self.slope = self.add_weight(
            name="slope",
            shape=(1,) * (len(input_shape) - 2) + (int(input_shape[-1]),),
            initializer=tf.keras.initializers.Constant(self.slope_initializer),
        )
        self.zeta = _channel_weight(self, "zeta", input_shape, "zeros")
        super().build(input_shape)

    def call(self, inputs):
        y = inputs - self.gamma
        # Written as Keras' PReLU is, relu(y) + (-slope) * relu(-y): the TFLite converter
        # fuses exactly this pattern into one PRELU op.
        return tf.nn.relu(y) + (-self.slope) * tf.nn.relu(-y) + self.zeta

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "slope_initializer": self.slope_initializer}
