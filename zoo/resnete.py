"""ResNetE-18: the proxy network of GAAF's search, as in the authors' code.

Li et al., Searching Complementary Activation Functions for Binary Neural Networks (GAAF),
Tsinghua Science and Technology, 2023 (flying-Yan/GAAF, `net_01.py`, "ResnetE18"); the
ResNetE name is Bethge et al.'s, Back to Simplicity, 2019.
"""

from larq_methods.method import Method
from zoo.common import backbone, batch_norm, scaled, stage_blocks
from zoo.reactnet import _stem, downsample, residual
from zoo.registry import register_model

# (channels, blocks) per stage; stride 2 at the first block of stages 2-4.
RESNETE_18_STAGES = ((64, 2), (128, 2), (256, 2), (512, 2))

# The code's method: unscaled sign weights (straight-through, latent weights clipped to
# +-1.3), binary 1x1 shortcuts, no activation, and, with a genome, f before hardtanh(1.3)
# and the sign without a threshold (`lqm search-af` adds the genome).
RESNETE_METHOD = Method(threshold="none", activation="none", weights="sign", downsample="binary")


def resnete_block(x, channels, stride, method, *, name):
    """One basic block with two binary convolutions and one shortcut:

        y = BN(BConv3x3(sign(BN(BConv3x3_{stride}(sign(x))))))
        out = y + shortcut,  shortcut = x, or BN(BConv1x1_{stride}(sign(x))) where the shape
        changes (a real 1x1 convolution with `method.downsample == "real"`)

    "sign" is the method's (with GAAF: f, hardtanh(1.3), sign); the method's activation, if
    any, goes where `residual` puts it. The shortcut is strided, without pooling, as in the
    code.
    """
    y = method.sign(x, name=f"{name}_sign1")
    y = method.conv(y, channels, 3, stride, name=f"{name}_bconv3x3a")
    y = batch_norm(f"{name}_bn1")(y)
    y = method.sign(y, name=f"{name}_sign2")
    y = method.conv(y, channels, 3, name=f"{name}_bconv3x3b")
    y = batch_norm(f"{name}_bn2")(y)
    shortcut = downsample(x, channels, stride, method, name=name, pool=False)
    return residual(method, y, shortcut, name=name)


@register_model(
    "resnete-18",
    "ResNetE-18, GAAF's proxy network: binary 1x1 shortcuts, unscaled sign weights, no activation [Li et al. 2023 code]",
    RESNETE_METHOD,
    follows="code",
)
def ResNetE18(
    *,
    input_shape=None,
    input_tensor=None,
    weights=None,
    include_top=True,
    num_classes=1000,
    alpha=1.0,
    pooling=None,
    classifier_activation="softmax",
    method=None,
    name="resnete_18",
):
    """ResNetE-18 as GAAF's code builds it for CIFAR-10: a BatchNorm without scale or shift
    on the input image, a real 3x3 stride-1 stem (64 channels) with BN, then four stages of
    two `resnete_block`s (64, 128, 256, 512 channels, times `alpha`), and ReLU, global
    average pooling and a real classifier.

    Inputs above 64 px get ReActNet-18's 7x7 stride-2 stem with 3x3 max-pool (Ours; the
    code has CIFAR-10's 32x32 only). Arguments follow Keras applications.
    """
    method = method or RESNETE_METHOD

    def stack(x, small):
        x = batch_norm("input_bn", center=False, scale=False)(x)
        x = _stem(x, scaled(64, alpha), small=small, large_kernel=True)
        for block, stride, channels in stage_blocks(RESNETE_18_STAGES):
            x = resnete_block(x, scaled(channels, alpha), stride, method, name=f"block{block}")
        return x

    return backbone(stack, input_shape=input_shape, input_tensor=input_tensor, weights=weights, include_top=include_top,
                    num_classes=num_classes, pooling=pooling, classifier_activation=classifier_activation, name=name,
                    head_relu=True)  # fmt: skip
