"""larq-zoo's BiRealNet and QuickNet, with their blocks built by a `Method`.

The larq-zoo factories keep their stems, transitions and heads; only the binary residual
block (and QuickNet's stem for inputs of 64 px or less) is overridden, so any method runs
on these backbones too. Weights start random: the
larq-zoo ImageNet weights belong to the original blocks.
"""

import larq_methods  # noqa: F401  (Keras 2 before larq-zoo imports TensorFlow)
import tensorflow as tf
from larq_zoo.core import utils
from larq_zoo.literature.birealnet import BiRealNetFactory
from larq_zoo.sota.quicknet import QuickNetFactory, blurpool_initializer
from zookeeper import Field, factory

from larq_methods import compat
from larq_methods.initializers import BlurPool
from larq_methods.method import Method
from larq_methods.methods.plain import HardTanh
from zoo import pretrained
from zoo.common import batch_norm, is_small_input, resolve_input, scaled
from zoo.reactnet import _stem, downsample, residual
from zoo.registry import register_model


class _MethodBlocks:
    """Numbers the blocks so that their layers get readable names."""

    method: Method = Field(lambda: Method())

    def _next_block(self) -> str:
        self._blocks = getattr(self, "_blocks", 0) + 1
        return f"block{self._blocks}"


@factory
class BiRealNetMethodFactory(_MethodBlocks, BiRealNetFactory):
    """Bi-Real Net (Liu et al., ECCV 2018) with method-built blocks:
    out = act(BN(BConv3x3(sign(x))) + shortcut), shortcut = identity or pool -> 1x1 conv -> BN;
    the float counterpart has clip(x, -1, 1) in place of the sign."""

    def residual_block(self, x, double_filters=False, filters=None):
        in_filters = int(x.shape[-1])
        out_filters = filters or (2 * in_filters if double_filters else in_filters)
        stride = 1 if out_filters == in_filters else 2
        name = self._next_block()
        m = self.method
        # the float counterpart clips where the sign was (Bi-Real's real-valued network):
        # these blocks have no other non-linearity
        y = HardTanh(name=f"{name}_clip")(x) if m.binarise == "none" else m.sign(x, name=f"{name}_sign")
        y = m.conv(y, out_filters, 3, stride, groups=m.groups, name=f"{name}_bconv3x3")
        y = batch_norm(f"{name}_bn")(y)
        return residual(m, y, downsample(x, out_filters, stride, m, name=name), name=name)

    def build(self) -> tf.keras.Model:
        """larq-zoo's BiRealNet; small inputs (<= 64 px, ours) get the small-input ResNet
        stem (one 3x3 stride-1 conv + BN, no max-pool). larq-zoo's ImageNet stem takes
        28 px to 7x7 and the last stage to 1x1, where 8 of a 3x3 kernel's 9 taps read only
        padding: those weights only shift the batch mean, which BN removes in training, so
        Adam flips them at random and the moving mean never catches up (a trained
        `birealnet` scored 72.7% on Fashion-MNIST test, 81.5% with its BN statistics
        re-estimated)."""
        if not is_small_input(self.image_input.shape[1:]):
            return super().build()
        x = _stem(self.image_input, self.filters, small=True, large_kernel=True)
        x = self.residual_block(x, filters=self.filters)
        for _ in range(3):
            x = self.residual_block(x)
        for _ in range(3):
            x = self.residual_block(x, double_filters=True)
            for _ in range(3):
                x = self.residual_block(x)
        if self.include_top:
            x = utils.global_pool(x)
            x = tf.keras.layers.Dense(self.num_classes)(x)
            x = tf.keras.layers.Activation("softmax", dtype="float32")(x)
        return tf.keras.Model(inputs=self.image_input, outputs=x, name="birealnet18")


@factory
class QuickNetMethodFactory(_MethodBlocks, QuickNetFactory):
    """QuickNet (Bannink et al., larq-zoo) with method-built residual blocks:
    out = act(BN(ReLU(BConv3x3(sign(x)))) + x). With QuickNet's own method (`QUICKNET`:
    its straight-through signs for inputs and weights, no scale, latent weights clipped to
    1.25) the converted graph is larq-zoo's `QuickNet`: LCE fuses the ReLU and BatchNorm
    into each LceBconv2d."""

    def stem_module(self, filters, x):
        """Small inputs (<= 64 px, ours): one real 3x3 stride-1 conv + BN instead of
        QuickNet's two stride-2 convolutions, which would leave too little to pool."""
        if not is_small_input(x.shape[1:]):
            return super().stem_module(filters, x)
        x = tf.keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem_conv")(x)
        return batch_norm("stem_bn")(x)

    def residual_block(self, x):
        name = self._next_block()
        m = self.method
        y = m.sign(x, name=f"{name}_sign")
        y = m.conv(y, int(x.shape[-1]), 3, groups=m.groups, name=f"{name}_bconv3x3")
        y = tf.keras.layers.ReLU(name=f"{name}_relu")(y)
        y = batch_norm(f"{name}_bn")(y)
        return residual(m, y, x, name=name)


def _build(factory_class, *, input_shape, input_tensor, weights, include_top, num_classes, method, name, **widths):
    inputs, shape = resolve_input(input_shape, input_tensor)
    # larq-zoo's factories type-check `input_tensor` as a tf.Tensor, which a tf-keras
    # KerasTensor is not: build on a fresh input, then call the model on the given one.
    model = factory_class(
        include_top=include_top,
        weights=None,
        input_shape=shape,
        num_classes=num_classes,
        method=method or Method(),
        **widths,
    ).build()
    for layer in model.layers:
        if getattr(layer, "depthwise_initializer", None) is blurpool_initializer:
            # the same filter, as a class that tf-keras can save; the weights are already set
            layer.depthwise_initializer = BlurPool()
    if input_tensor is not None:
        model = tf.keras.Model(inputs, model(inputs))
    compat.rename(model, name)
    if weights is not None:
        pretrained.load_weights(model, weights)
    return model


@register_model(
    "birealnet",
    "larq-zoo BiRealNet (Bi-Real Net ResNet-18), blocks as Bi-Real's: plain sign, no activation",
    method=Method(threshold="none", activation="none"),
    follows="larq-zoo",
)
def BiRealNet(*, input_shape=None, input_tensor=None, weights=None, include_top=True, num_classes=1000, alpha=1.0, method=None, name="birealnet"):
    """larq-zoo's BiRealNet factory with `alpha`-scaled widths and `method`-built blocks."""
    return _build(
        BiRealNetMethodFactory,
        input_shape=input_shape, input_tensor=input_tensor, weights=weights,
        include_top=include_top, num_classes=num_classes, method=method, name=name,
        filters=scaled(64, alpha),
    )  # fmt: skip


# QuickNet's own binarisation, as larq-zoo builds it: SteSign(clip 1.25) on inputs and
# weights, unscaled weights clipped to 1.25, no activation after the addition.
QUICKNET = Method(threshold="ste", activation="none", weights="ste-sign")


@register_model(
    "quicknet",
    "larq-zoo QuickNet, blocks as QuickNet's: straight-through sign (clip 1.25), unscaled weights, ReLU, no activation after the add",
    method=QUICKNET,
    follows="larq-zoo",
)
def QuickNet(*, input_shape=None, input_tensor=None, weights=None, include_top=True, num_classes=1000, alpha=1.0, method=None, name="quicknet"):
    """larq-zoo's QuickNet factory with `alpha`-scaled widths and `method`-built blocks."""
    return _build(
        QuickNetMethodFactory,
        input_shape=input_shape, input_tensor=input_tensor, weights=weights,
        include_top=include_top, num_classes=num_classes, method=method, name=name,
        section_filters=tuple(scaled(f, alpha) for f in (64, 128, 256, 512)),
    )  # fmt: skip
