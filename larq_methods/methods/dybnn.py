r"""DyBNN: a threshold and PReLU shifts computed per instance by a small hyper-network.

Zhang et al., Dynamic Binary Neural Network by learning channel-wise thresholds, ICASSP
2022. https://arxiv.org/abs/2110.05185

- `DySign` ("dynamic"): \\(t_{nc} = a_c + \mathrm{FC}_2(\mathrm{ReLU}(\mathrm{FC}_1(\mathrm{GAP}(x))))\\).
- `DyPReLU` ("dyprelu"): RPReLU whose shifts come from the same kind of hyper-function.

No code was released; the preset "dybnn" follows the paper.
"""

import tensorflow as tf

from larq_methods.layers import (
    Bottleneck,
    PReLUParameters,
    channel_weight,
    dense_sublayer,
    prelu,
    training_flag,
)
from larq_methods.methods.preset import Preset
from larq_methods.quantizers import BinarySign, approx_sign

_register = tf.keras.utils.register_keras_serializable(package="lqm")


class _HyperFunction(Bottleneck, tf.keras.layers.Layer):
    """DyBNN's hyper-function: h = ReLU(FC1(GAP(x))), FC1: C -> max(C / reduction, min_hidden),
    feeding zero-initialised output FCs (one per dynamic parameter) of C units each.

    In training, the output FCs (DyPReLU's `fc3` and `fc4`, each with its own weights) run
    as one matrix product over their concatenated kernels; at inference, and so in the
    converted model, each stays one FULLY_CONNECTED."""

    outputs = ()

    def __init__(self, **kwargs):
        kwargs["dtype"] = "float32"  # as INSTA's statistics: float32 under mixed precision
        super().__init__(**kwargs)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        hidden = self.hidden_units(channels)
        self.fc1 = dense_sublayer(hidden, channels, "fc1", dtype=self.dtype_policy)
        self.heads = [
            dense_sublayer(channels, hidden, name, kernel_initializer="zeros", dtype=self.dtype_policy)
            for name in self.outputs
        ]
        super().build(input_shape)

    def dynamic_terms(self, x, training=None):
        h = tf.nn.relu(self.fc1(tf.reduce_mean(x, axis=[1, 2])))
        if len(self.heads) == 1 or not training_flag(training):  # inference: one FULLY_CONNECTED each
            return [head(h)[:, None, None, :] for head in self.heads]
        kernel = tf.concat([tf.cast(head.kernel, h.dtype) for head in self.heads], axis=1)
        bias = tf.concat([tf.cast(head.bias, h.dtype) for head in self.heads], axis=0)
        terms = tf.split(tf.matmul(h, kernel) + bias, len(self.heads), axis=1)
        return [t[:, None, None, :] for t in terms]

    def compute_output_shape(self, input_shape):
        return input_shape


@_register
class DySign(_HyperFunction, BinarySign):
    r"""DyBNN's dynamic sign: a channel-wise threshold computed per instance.

    \\[ h = \mathrm{ReLU}(\mathrm{FC}_1(\mathrm{GAP}(x))), \qquad
        t_{nc} = a_c + \mathrm{FC}_2(h)_{nc}, \qquad x_b = \operatorname{sign}(x - t) \\]

    FC2 is zero-initialised, so the layer starts as RSign. ApproxSign gradient.

    # References
    - Zhang et al., Dynamic Binary Neural Network by learning channel-wise thresholds,
      ICASSP 2022. https://arxiv.org/abs/2110.05185
    """

    outputs = ("fc2",)

    def build(self, input_shape):
        self.threshold = channel_weight(self, "threshold", input_shape, "zeros")
        super().build(input_shape)

    def call(self, inputs):
        (shift,) = self.dynamic_terms(inputs)
        return approx_sign(inputs - (self.threshold + shift))


@_register
class DyPReLU(PReLUParameters, _HyperFunction):
    r"""DyBNN's dynamic PReLU: RPReLU whose shifts are computed per instance.

    \\[ h' = \mathrm{ReLU}(\mathrm{FC}_1(\mathrm{GAP}(x))), \quad
        g_{nc} = g_c + \mathrm{FC}_3(h')_{nc}, \quad z_{nc} = z_c + \mathrm{FC}_4(h')_{nc}, \quad
        f(x) = \operatorname{PReLU}_c(x - g_{nc}) + z_{nc} \\]

    with a static slope (init 0.25). FC3 and FC4 are zero-initialised, so the layer starts
    as RPReLU.

    # References
    - Zhang et al., Dynamic Binary Neural Network by learning channel-wise thresholds,
      ICASSP 2022. https://arxiv.org/abs/2110.05185
    """

    outputs = ("fc3", "fc4")

    def call(self, inputs, training=None):
        g, z = self.dynamic_terms(inputs, training)
        return prelu(inputs - (self.gamma + g), self.slope) + (self.zeta + z)


THRESHOLDS = {"dynamic": DySign}
ACTIVATIONS = {"dyprelu": DyPReLU}
PRESETS = (Preset("dybnn", {"threshold": "dynamic", "activation": "dyprelu"}, "DyBNN: DySign + DyPReLU [Zhang et al. ICASSP 2022]", "paper"),)
