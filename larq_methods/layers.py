"""What the methods share: the binary convolution, and the building pieces of the methods'
layers (per-channel weights, the PReLU form, small FC bottlenecks). The sign base is
`larq_methods.quantizers.BinarySign`.

Every layer has `get_config`, is registered as a Keras custom object (so
`tf.keras.models.load_model` needs no `custom_objects`), and keeps per-channel parameters
on the last (channels) axis of NHWC inputs. The methods' own layers live in
`larq_methods.methods`, one module per method.
"""

import larq as lq
import numpy as np
import tensorflow as tf

from larq_methods import compat

_register = tf.keras.utils.register_keras_serializable(package="lqm")


def channel_weight(layer, name, input_shape, init):
    return layer.add_weight(
        name=name,
        shape=(int(input_shape[-1]),),
        initializer=tf.keras.initializers.get(init),
        trainable=True,
    )


def dense_sublayer(units, input_dim, name, **kwargs):
    """A Dense sublayer built now, under its own name scope so that its weights are saved
    as `<layer>/<name>/kernel` rather than clashing as `<layer>/kernel`."""
    dense = tf.keras.layers.Dense(units, name=name, **kwargs)
    with tf.name_scope(name):
        dense.build((None, input_dim))
    return dense


def prelu(y, slope):
    # Written as Keras' PReLU is, relu(y) + (-slope) * relu(-y): the TFLite converter fuses
    # exactly this pattern into one PRELU op.
    return tf.nn.relu(y) + (-slope) * tf.nn.relu(-y)


def slope_weight(layer, input_shape, value):
    """A PReLU slope per channel, shaped (1, 1, C) on NHWC as Keras' shared-axes PReLU."""
    return layer.add_weight(
        name="slope",
        shape=(1,) * (len(input_shape) - 2) + (int(input_shape[-1]),),
        initializer=tf.keras.initializers.Constant(value),
    )


class PReLUParameters:
    """The per-channel input shift `gamma`, PReLU `slope` and output shift `zeta` of RPReLU
    and its instance-aware and dynamic variants (a mixin before the Keras layer base)."""

    def __init__(self, slope_initializer=0.25, **kwargs):
        super().__init__(**kwargs)
        self.slope_initializer = slope_initializer

    def build(self, input_shape):
        self.gamma = channel_weight(self, "gamma", input_shape, "zeros")
        self.slope = slope_weight(self, input_shape, self.slope_initializer)
        self.zeta = channel_weight(self, "zeta", input_shape, "zeros")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "slope_initializer": self.slope_initializer}


def training_flag(training):
    return tf.keras.backend.learning_phase() if training is None else training


class Bottleneck:
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
class BinaryConv2D(compat.GroupedConvolutionHook, lq.layers.QuantConv2D):
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
            if compat.native_padding(self):
                return super().call(inputs)
            with compat.zero_padded(self), lq.utils.patch_object(self, "_border_term", True):
                return super().call(inputs)  # padded with zeros ("same"); the border in convolution_op

    def splits_groups(self) -> bool:
        # tf-keras' XLA path for groups > 1; in training, convolution_op splits the groups itself
        return self._training

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
        (top, bottom), (left, right) = compat.padding_same(self, inputs)[1:3]
        border = np.pad(np.zeros(inputs.shape[1:3], np.float32), ((top, bottom), (left, right)), constant_values=1.0)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        windows = np.lib.stride_tricks.sliding_window_view(border, (dh * (kh - 1) + 1, dw * (kw - 1) + 1))
        return windows[::sh, ::sw, ::dh, ::dw]
