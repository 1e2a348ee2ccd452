r"""INSTA-BNN: instance-aware thresholds and PReLU shifts from each input's statistics.

Lee et al., INSTA-BNN: Binary Neural Network with INSTAnce-aware Threshold, ICCV 2023.
https://arxiv.org/abs/2204.07439

- `InstaThreshold` (INSTA-Th, "insta"): the threshold moves with the instance's mean and
  third moment per channel, centred on the batch's.
- `InstaThresholdPlus` (INSTA-Th+, "insta+"): the same statistics through a small SE-like
  network.
- `InstaPReLU` ("insta-prelu"): RPReLU whose shifts get an instance-aware term.

No code was released; the presets "insta" and "insta-plus" follow the paper.
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


CUBE_ROOT_FLOOR = 1e-3
"""Below this |y| the cube root's gradient stays at its value at |y| = 1e-3 (33.3)."""


@tf.custom_gradient
def cube_root(y):
    r"""Real cube root that keeps the sign, with a bounded gradient.

    \\[ \operatorname{cbrt}(y) = \operatorname{sign}(y)\,|y|^{1/3}, \qquad
        \frac{\partial}{\partial y} = \frac{1}{3 \max(|y|, \delta)^{2/3}}, \quad
        \delta = 10^{-3} \\]

    The exact derivative grows without bound as E[x^3] goes to 0 (3.3e7 at 0 with the
    former epsilon of 1e-12 inside the power), so the gradient is clipped there (Ours):
    exact for |y| >= 1e-3, at most 1 / (3e-2) = 33.3 below. The forward pass is exact
    and written with SIGN, ABS, POW and MUL, TFLite built-ins.
    """
    root = tf.sign(y) * tf.pow(tf.abs(y), 1.0 / 3.0)

    def grad(dy):
        return dy / (3.0 * tf.pow(tf.maximum(tf.abs(y), CUBE_ROOT_FLOOR), 2.0 / 3.0))

    return root, grad


@tf.custom_gradient
def mean_cube(x):
    r"""The third moment per instance and channel, over height and width, NHWC:

    \\[ \operatorname{mean}_{HW}(x^3), \qquad
        \frac{\partial}{\partial x} = \frac{3 x^2}{HW} \\]

    The forward pass is `x * x * x` (two MULs and a MEAN in TFLite); the backward pass scales
    the kept x^2 once, where automatic differentiation of the two products makes five passes
    over the tensor. That halves what INSTA-Th costs over RSign in training, to float
    rounding: at 32x28x28x64 on this CPU, 7.5 ms a step instead of 10.6 (RSign 4.3).
    """
    square = x * x

    def grad(dy):
        count = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], x.dtype)
        return square * (dy * (3.0 / count))

    return tf.reduce_mean(square * x, axis=[1, 2], keepdims=True), grad


class InstanceStatistics(tf.keras.layers.Layer):
    r"""Per-instance channel statistics centred on the batch's, for INSTA-BNN.

    \\[ m_1 = \operatorname{mean}_{HW}(x), \qquad
        m_3 = \sqrt[3]{\operatorname{mean}_{HW}(x^3)} \\]

    returned as \\(m_1 - M_1\\) (and \\(m_3 - M_3\\)), shaped (N, 1, 1, C). In training
    \\(M\\) is the batch mean of \\(m\\) and the moving averages follow it with `momentum`,
    as in BatchNorm (Ours, as BatchNorm does); at inference the moving averages are used, and
    fold to constants in conversion. `x * x * x` rather than POW keeps it a MUL in TFLite;
    the cube root's gradient is bounded (`cube_root`).

    The moving averages start from the first batch (Ours): an average that is still exactly
    0, as a new layer's is, takes the batch's value, and follows
    \\(M \leftarrow \mu M + (1 - \mu) m\\) from then on. Started at 0 with
    \\(\mu = 0.99\\), they would hold only \\(1 - 0.99^{79}\\) = 55% of the batches'
    value after 79 steps, so short runs would centre on stale values at inference. No extra
    state is needed: loaded statistics are non-zero and simply continue.
    """

    moments = (1,)

    def __init__(self, momentum=0.99, **kwargs):
        kwargs["dtype"] = "float32"  # statistics keep float32's resolution under mixed precision
        super().__init__(**kwargs)
        self.momentum = momentum

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.moving_means = [
            self.add_weight(
                name=f"moving_m{k}",
                shape=(channels,),
                initializer="zeros",
                trainable=False,
                # as BatchNorm's moving statistics: each replica's, averaged on read
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.MEAN,
            )
            for k in self.moments
        ]
        super().build(input_shape)

    def centred_statistics(self, x, training):
        stats = [tf.reduce_mean(x, axis=[1, 2], keepdims=True)]
        if 3 in self.moments:
            stats.append(cube_root(mean_cube(x)))
        if not training:
            return [m - moving for m, moving in zip(stats, self.moving_means)]
        centred = []
        for m, moving in zip(stats, self.moving_means):
            batch = tf.reduce_mean(m, axis=[0, 1, 2])
            average = self.momentum * moving + (1.0 - self.momentum) * batch
            moving.assign(tf.where(tf.equal(moving, 0.0), batch, average))
            centred.append(m - batch)
        return centred

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


@_register
class InstaThreshold(InstanceStatistics, BinarySign):
    r"""INSTA-Th: a sign with an instance-aware threshold.

    \\[ t_{nc} = a_c + b_c\,(m_{1,nc} - M_{1,c}) + d_c\,(m_{3,nc} - M_{3,c}), \qquad
        x_b = \operatorname{sign}(x - t) \\]

    with the statistics of `InstanceStatistics` (the third moment mixes mean, variance and
    skewness). `a`, `b`, `d` start at 0, so the layer starts as RSign. ApproxSign gradient.

    # References
    - Lee et al., INSTA-BNN: Binary Neural Network with INSTAnce-aware Threshold,
      ICCV 2023. https://arxiv.org/abs/2204.07439
    """

    moments = (1, 3)

    def build(self, input_shape):
        self.threshold = channel_weight(self, "threshold", input_shape, "zeros")
        self.mean_scale = channel_weight(self, "mean_scale", input_shape, "zeros")
        self.moment3_scale = channel_weight(self, "moment3_scale", input_shape, "zeros")
        super().build(input_shape)

    def call(self, inputs, training=None):
        m1, m3 = self.centred_statistics(inputs, training_flag(training))
        t = self.threshold + self.mean_scale * m1 + self.moment3_scale * m3
        return approx_sign(inputs - t)


@_register
class InstaThresholdPlus(Bottleneck, InstanceStatistics, BinarySign):
    r"""INSTA-Th+: the instance-aware threshold through a small SE-like network.

    \\[ t_{nc} = a_c + \mathrm{FC}_2\big(\mathrm{ReLU}(\mathrm{FC}_1(
        [m_1 - M_1,\; m_3 - M_3]))\big)_{nc}, \qquad x_b = \operatorname{sign}(x - t) \\]

    FC1: 2C -> max(C / `reduction`, `min_hidden`), FC2: -> C, zero-initialised so that the
    layer starts as RSign. ApproxSign gradient.

    # References
    - Lee et al., INSTA-BNN: Binary Neural Network with INSTAnce-aware Threshold,
      ICCV 2023. https://arxiv.org/abs/2204.07439
    """

    moments = (1, 3)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.threshold = channel_weight(self, "threshold", input_shape, "zeros")
        hidden = self.hidden_units(channels)
        self.fc1 = dense_sublayer(hidden, 2 * channels, "fc1", dtype=self.dtype_policy)
        self.fc2 = dense_sublayer(channels, hidden, "fc2", kernel_initializer="zeros", dtype=self.dtype_policy)
        super().build(input_shape)

    def call(self, inputs, training=None):
        m1, m3 = self.centred_statistics(inputs, training_flag(training))
        stats = tf.concat([m1, m3], axis=-1)[:, 0, 0, :]
        shift = self.fc2(tf.nn.relu(self.fc1(stats)))[:, None, None, :]
        return approx_sign(inputs - (self.threshold + shift))


@_register
class InstaPReLU(PReLUParameters, InstanceStatistics):
    r"""INSTA-PReLU: RPReLU whose shifts get an instance-aware term.

    \\[ f(x) = \operatorname{PReLU}_c(x - g_{nc}) + z_{nc}, \quad
        g_{nc} = g_c + e_c\,(m_{1,nc} - M_{1,c}), \quad
        z_{nc} = z_c + f_c\,(m_{1,nc} - M_{1,c}) \\]

    `g`, `z`, `e`, `f` start at 0 and the slope at 0.25, so the layer starts as RPReLU.

    # References
    - Lee et al., INSTA-BNN: Binary Neural Network with INSTAnce-aware Threshold,
      ICCV 2023. https://arxiv.org/abs/2204.07439
    """

    def build(self, input_shape):
        self.gamma_scale = channel_weight(self, "gamma_scale", input_shape, "zeros")
        self.zeta_scale = channel_weight(self, "zeta_scale", input_shape, "zeros")
        super().build(input_shape)

    def call(self, inputs, training=None):
        (m1,) = self.centred_statistics(inputs, training_flag(training))
        g = self.gamma + self.gamma_scale * m1
        z = self.zeta + self.zeta_scale * m1
        return prelu(inputs - g, self.slope) + z


THRESHOLDS = {"insta": InstaThreshold, "insta+": InstaThresholdPlus}
ACTIVATIONS = {"insta-prelu": InstaPReLU}
PRESETS = (
    Preset("insta", {"threshold": "insta", "activation": "insta-prelu"}, "INSTA-BNN: INSTA-Th + INSTA-PReLU [Lee et al. ICCV 2023]", "paper"),
    Preset(
        "insta-plus", {"threshold": "insta+", "activation": "insta-prelu"},
        "INSTA-BNN: INSTA-Th+ (SE-like) + INSTA-PReLU [Lee et al. ICCV 2023]", "paper",
    ),  # fmt: skip
)
