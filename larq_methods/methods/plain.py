r"""The binarisation of larq-zoo's backbones with no method on top: Bi-Real Net's sign and
QuickNet's straight-through sign.

- `Sign` (threshold "none"): \\(x_b = \operatorname{sign}(x)\\) with the ApproxSign gradient,
  Bi-Real Net's; `HardTanh` is its float stand-in in a float counterpart.
- QuickNet's (threshold "ste", weights "ste-sign"): larq's `SteSign(clip_value=1.25)` for
  inputs and weights, unscaled, latent weights clipped to [-1.25, 1.25], as larq-zoo's
  `QuickNet` builds its blocks; LCE fuses the block's ReLU and BatchNorm into the binary
  convolution.
"""

import larq as lq
import tensorflow as tf

from larq_methods.layers import BinaryConv2D
from larq_methods.quantizers import BinarySign, approx_sign

_register = tf.keras.utils.register_keras_serializable(package="lqm")

QUICKNET_CLIP = 1.25
"""The clip of QuickNet's straight-through signs and latent weights (larq-zoo's)."""


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


def ste_sign(*, name):
    """QuickNet's input sign: larq's `SteSign(clip_value=1.25)` as a layer."""
    return lq.quantizers.SteSign(clip_value=QUICKNET_CLIP, name=name)


def ste_sign_conv(method, filters, kernel_size, **common):
    """QuickNet's binary convolution: unscaled sign(W), straight-through within +-1.25, the
    latent weights clipped there."""
    common["kernel_constraint"] = lq.constraints.WeightClip(QUICKNET_CLIP)
    return BinaryConv2D(filters, kernel_size, kernel_quantizer=lq.quantizers.SteSign(clip_value=QUICKNET_CLIP), **common)


THRESHOLDS = {"none": Sign, "ste": ste_sign}
WEIGHTS = {"ste-sign": ste_sign_conv}
