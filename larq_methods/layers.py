"""Keras layers of the binary-network methods.

Every layer has `get_config`, is registered as a Keras custom object (so
`tf.keras.models.load_model` needs no `custom_objects`), and keeps per-channel parameters
on the last (channels) axis of NHWC inputs.
"""

import larq as lq
import numpy as np
import tensorflow as tf

from larq_methods.quantizers import BinarySign, approx_sign

_register = tf.keras.utils.register_keras_serializable(package="lqm")


def _channel_weight(layer, name, input_shape, init):
    return layer.add_weight(
        name=name,
        shape=(int(input_shape[-1]),),
        initializer=tf.keras.initializers.get(init),
        trainable=True,
    )


def _dense(units, input_dim, name, **kwargs):
    """A Dense sublayer built now, under its own name scope so that its weights are saved
    as `<layer>/<name>/kernel` rather than clashing as `<layer>/kernel`."""
    dense = tf.keras.layers.Dense(units, name=name, **kwargs)
    with tf.name_scope(name):
        dense.build((None, input_dim))
    return dense


def _prelu(y, slope):
    # Written as Keras' PReLU is, relu(y) + (-slope) * relu(-y): the TFLite converter fuses
    # exactly this pattern into one PRELU op.
    return tf.nn.relu(y) + (-slope) * tf.nn.relu(-y)


def _slope_weight(layer, input_shape, value):
    """A PReLU slope per channel, shaped (1, 1, C) on NHWC as Keras' shared-axes PReLU."""
    return layer.add_weight(
        name="slope",
        shape=(1,) * (len(input_shape) - 2) + (int(input_shape[-1]),),
        initializer=tf.keras.initializers.Constant(value),
    )


class _PReLUParameters:
    """The per-channel input shift `gamma`, PReLU `slope` and output shift `zeta` of RPReLU
    and its instance-aware and dynamic variants (a mixin before the Keras layer base)."""

    def __init__(self, slope_initializer=0.25, **kwargs):
        super().__init__(**kwargs)
        self.slope_initializer = slope_initializer

    def build(self, input_shape):
        self.gamma = _channel_weight(self, "gamma", input_shape, "zeros")
        self.slope = _slope_weight(self, input_shape, self.slope_initializer)
        self.zeta = _channel_weight(self, "zeta", input_shape, "zeros")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "slope_initializer": self.slope_initializer}


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
        self.threshold = _channel_weight(self, "threshold", input_shape, "zeros")
        super().build(input_shape)

    def call(self, inputs):
        return approx_sign(inputs - self.threshold)


@_register
class Sign(BinarySign):
    r"""Bi-Real Net's sign, without a threshold.

    \\[ x_b = \operatorname{sign}(x), \qquad \operatorname{sign}(0) = +1 \\]

    with the ApproxSign backward pass, \\(2 - 2|x|\\) for \\(|x| \le 1\\), else 0: larq's
    `ApproxSign`, through the cheaper `quantizers.approx_sign`.

    # References
    - Liu et al., Bi-Real Net: Enhancing the Performance of 1-bit CNNs with Improved
      Representational Capability and Advanced Training Algorithm, ECCV 2018.
      https://arxiv.org/abs/1808.00278
    """

    def call(self, inputs):
        return approx_sign(inputs)


@_register
class HardTanh(tf.keras.layers.Layer):
    r"""Bi-Real Net's real-valued stand-in for the sign.

    \\[ f(x) = \min(\max(x, -1), 1) \\]

    Bi-Real Net pre-trains its real-valued network with this clip in place of ReLU, as
    closer to the sign. The float counterpart of a backbone whose blocks have no other
    non-linearity (Bi-Real's) puts it where the sign was; the identity there would make
    the whole network linear.

    # References
    - Liu et al., Bi-Real Net, ECCV 2018, section 3.3. https://arxiv.org/abs/1808.00278
    """

    def call(self, inputs):
        return tf.clip_by_value(inputs, -1.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape


@_register
class RPReLU(_PReLUParameters, tf.keras.layers.Layer):
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
        return _prelu(inputs - self.gamma, self.slope) + self.zeta


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


class _InstanceStatistics(tf.keras.layers.Layer):
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


def _training(training):
    return tf.keras.backend.learning_phase() if training is None else training


@_register
class InstaThreshold(_InstanceStatistics, BinarySign):
    r"""INSTA-Th: a sign with an instance-aware threshold.

    \\[ t_{nc} = a_c + b_c\,(m_{1,nc} - M_{1,c}) + d_c\,(m_{3,nc} - M_{3,c}), \qquad
        x_b = \operatorname{sign}(x - t) \\]

    with the statistics of `_InstanceStatistics` (the third moment mixes mean, variance and
    skewness). `a`, `b`, `d` start at 0, so the layer starts as RSign. ApproxSign gradient.

    # References
    - Lee et al., INSTA-BNN: Binary Neural Network with INSTAnce-aware Threshold,
      ICCV 2023. https://arxiv.org/abs/2204.07439
    """

    moments = (1, 3)

    def build(self, input_shape):
        self.threshold = _channel_weight(self, "threshold", input_shape, "zeros")
        self.mean_scale = _channel_weight(self, "mean_scale", input_shape, "zeros")
        self.moment3_scale = _channel_weight(self, "moment3_scale", input_shape, "zeros")
        super().build(input_shape)

    def call(self, inputs, training=None):
        m1, m3 = self.centred_statistics(inputs, _training(training))
        t = self.threshold + self.mean_scale * m1 + self.moment3_scale * m3
        return approx_sign(inputs - t)


class _Bottleneck:
    """The hidden width of a small FC -> ReLU -> FC network: max(C / reduction, min_hidden)
    (a mixin before the Keras layer base)."""

    def __init__(self, reduction=16, min_hidden=8, **kwargs):
        super().__init__(**kwargs)
        self.reduction = reduction
        self.min_hidden = min_hidden

    def hidden_units(self, channels):
        return max(channels // self.reduction, self.min_hidden)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "min_hidden": self.min_hidden}


@_register
class InstaThresholdPlus(_Bottleneck, _InstanceStatistics, BinarySign):
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
        self.threshold = _channel_weight(self, "threshold", input_shape, "zeros")
        hidden = self.hidden_units(channels)
        self.fc1 = _dense(hidden, 2 * channels, "fc1", dtype=self.dtype_policy)
        self.fc2 = _dense(channels, hidden, "fc2", kernel_initializer="zeros", dtype=self.dtype_policy)
        super().build(input_shape)

    def call(self, inputs, training=None):
        m1, m3 = self.centred_statistics(inputs, _training(training))
        stats = tf.concat([m1, m3], axis=-1)[:, 0, 0, :]
        shift = self.fc2(tf.nn.relu(self.fc1(stats)))[:, None, None, :]
        return approx_sign(inputs - (self.threshold + shift))


@_register
class InstaPReLU(_PReLUParameters, _InstanceStatistics):
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
        self.gamma_scale = _channel_weight(self, "gamma_scale", input_shape, "zeros")
        self.zeta_scale = _channel_weight(self, "zeta_scale", input_shape, "zeros")
        super().build(input_shape)

    def call(self, inputs, training=None):
        (m1,) = self.centred_statistics(inputs, _training(training))
        g = self.gamma + self.gamma_scale * m1
        z = self.zeta + self.zeta_scale * m1
        return _prelu(inputs - g, self.slope) + z


class _HyperFunction(_Bottleneck, tf.keras.layers.Layer):
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
        self.fc1 = _dense(hidden, channels, "fc1", dtype=self.dtype_policy)
        self.heads = [
            _dense(channels, hidden, name, kernel_initializer="zeros", dtype=self.dtype_policy)
            for name in self.outputs
        ]
        super().build(input_shape)

    def dynamic_terms(self, x, training=None):
        h = tf.nn.relu(self.fc1(tf.reduce_mean(x, axis=[1, 2])))
        if len(self.heads) == 1 or not _training(training):  # inference: one FULLY_CONNECTED each
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
        self.threshold = _channel_weight(self, "threshold", input_shape, "zeros")
        super().build(input_shape)

    def call(self, inputs):
        (shift,) = self.dynamic_terms(inputs)
        return approx_sign(inputs - (self.threshold + shift))


@_register
class DyPReLU(_PReLUParameters, _HyperFunction):
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
        return _prelu(inputs - (self.gamma + g), self.slope) + (self.zeta + z)


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
        self.positive_slope = _channel_weight(self, "positive_slope", input_shape, "ones")
        self.negative_slope = _channel_weight(
            self, "negative_slope", input_shape, tf.keras.initializers.Constant(0.25)
        )
        super().build(input_shape)

    def call(self, inputs):
        return self.positive_slope * tf.nn.relu(inputs) - self.negative_slope * tf.nn.relu(-inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


@_register
class BinaryConv2D(lq.layers.QuantConv2D):
    r"""larq's `QuantConv2D` whose padding with a constant (`pad_values`, ones for LCE)
    trains at the cost of zero padding.

    A convolution of x padded with v is the convolution of x padded with zeros plus v
    times the kernel's weights that fall on the padding:

    \\[ \mathrm{conv}(\mathrm{pad}_v(x), W) = \mathrm{conv}(\mathrm{pad}_0(x), W)
        + v\, \mathrm{conv}(B, \textstyle\sum_c W_{\cdot,\cdot,c,\cdot}) \\]

    where B is one image that is 1 on the padded border and 0 inside. In training the layer
    computes the right-hand side, the second term as a matrix product of B's patches (a
    constant) and the kernel summed over input channels, so the step costs what zero
    padding costs. larq's left-hand side copies every input into a padded tensor, which
    made one-padded binary networks train 1.3x slower than their float twins on this CPU
    (1.06x this way, ReActNet-18 at 112x112, batch 32).
    Inference (`training` false), and so the graph LCE converts, is larq's own padding;
    the two agree to float rounding.

    Grouped convolutions (FTBNN's) train as one convolution per group, concatenated.
    tf-keras compiles every grouped convolution with XLA instead (a workaround from before
    TensorFlow's CPU kernels took groups), and XLA's CPU convolutions made FTBNN's 2-group
    ResNet-18 train 3x slower than ReActNet-18 here; TensorFlow's own grouped kernel, in
    turn, needs oneDNN on CPU for its weight gradient. Inference keeps tf-keras' op, the
    single grouped convolution LCE converts.
    """

    _border_term = False
    _training = False

    def call(self, inputs, training=None):
        if not training:
            return super().call(inputs)
        with lq.utils.patch_object(self, "_training", True):
            if self._is_native_padding:
                return super().call(inputs)
            with lq.utils.patch_object(self, "_is_native_padding", True), lq.utils.patch_object(self, "_border_term", True):
                return super().call(inputs)  # padded with zeros ("same"); the border in convolution_op

    def _jit_compiled_convolution_op(self, inputs, kernel):
        # tf-keras' path for groups > 1; in training, convolution_op splits the groups itself
        if self._training:
            return self.convolution_op(inputs, kernel)
        return super()._jit_compiled_convolution_op(inputs, kernel)

    def convolution_op(self, inputs, kernel):
        if self._training and self.groups > 1:
            pairs = zip(tf.split(inputs, self.groups, axis=-1), tf.split(kernel, self.groups, axis=-1))
            outputs = tf.concat([super(BinaryConv2D, self).convolution_op(x, k) for x, k in pairs], axis=-1)
        else:
            outputs = super().convolution_op(inputs, kernel)
        if not self._border_term:
            return outputs
        # conv(B, sum_c W) as patches of B times the kernel: a convolution of one channel
        # would meet a oneDNN bug (its weight gradient corrupted the heap, aborting 7 of 12
        # runs of a small ResNetE-18 on this CPU)
        patches = tf.constant(self._border_patches(inputs), kernel.dtype)
        term = tf.einsum("hwij,ijo->hwo", patches, tf.reduce_sum(kernel, axis=2))
        return outputs + tf.cast(self.pad_values, outputs.dtype) * term

    def _border_patches(self, inputs):
        """B's window under the kernel at each output position, (out_h, out_w, k_h, k_w):
        1 where the kernel falls on the padding. A constant of the input's shape."""
        (top, bottom), (left, right) = self._get_padding_same(inputs)[1:3]
        border = np.pad(np.zeros(inputs.shape[1:3], np.float32), ((top, bottom), (left, right)), constant_values=1.0)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        windows = np.lib.stride_tricks.sliding_window_view(border, (dh * (kh - 1) + 1, dw * (kw - 1) + 1))
        return windows[::sh, ::sw, ::dh, ::dw]
