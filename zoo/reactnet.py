"""ReActNet backbones: ReActNet-A (MobileNetV1 based) and ReActNet-18 (Bi-Real ResNet-18).

Liu et al., ReActNet: Towards Precise Binary Neural Network with Generalized Activation
Functions, ECCV 2020. https://arxiv.org/abs/2003.03488

Both take a `Method` (default: ReActNet's own, RSign and RPReLU) that decides every sign,
activation and binary convolution. Layer names follow `block{i}_{part}` so that conversion
reports and summaries can be read against the paper's block diagram.
"""

import tensorflow as tf

from larq_methods.method import Method
from zoo.common import avg_pool_2x2, backbone, batch_norm, scaled, stage_blocks
from zoo.registry import register_model

# ReActNet-A: (output channels, stride) of the 13 blocks; the stem gives 32 channels.
REACTNET_A_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip
# ReActNet-18: (channels, blocks) per stage; stride 2 at the first block of stages 2-4.
REACTNET_18_STAGES = ((64, 4), (128, 4), (256, 4), (512, 4))


def reactnet_18_layout(method) -> list[tuple[int, int, int]]:
    """(channels, blocks, groups) of ReActNet-18's four stages at alpha 1 under `method`.

    Grouped 3x3 convolutions do 1/G of the work, so FTBNN's groups add capacity at equal
    cost only with wider layers. With `method.groups` G > 1 and `method.group_width` w != 1
    (Ours, FTBNN's idea): stages 2-4 are w times wider with G groups, and stage 1 keeps 64
    ungrouped channels, the stem's (64 x 1.5 = 96 would not split into groups of 32, as LCE
    needs). FTBNN's w = 1.5, G = 2 gives 64, 192, 384, 768 channels: every group a multiple
    of 32, and 1.85e9 BOPs against ReActNet-18's 1.68e9 (+10%). With w = 1 every stage is
    grouped at its width (half the BOPs at G = 2).
    """
    if method.groups == 1 or method.group_width == 1:
        return [(channels, depth, method.groups) for channels, depth in REACTNET_18_STAGES]
    return [
        (channels, depth, 1) if stage == 0 else (round(channels * method.group_width), depth, method.groups)
        for stage, (channels, depth) in enumerate(REACTNET_18_STAGES)
    ]


def residual(method, y, shortcut, *, name, suffix=""):
    """y + shortcut, with the method's activation before the addition (FTBNN's FPReLU) or
    after it (RPReLU and its instance-aware and dynamic variants)."""
    if method.activation_before_add:
        y = method.activate(y, name=f"{name}_act{suffix}")
    y = tf.keras.layers.Add(name=f"{name}_add{suffix}")([y, shortcut])
    if not method.activation_before_add:
        y = method.activate(y, name=f"{name}_act{suffix}")
    return y


def reactnet_a_block(x, out_channels, stride, method, *, name):
    """One ReActNet-A block (C = input channels; shown with RSign and RPReLU):

        o1 = RPReLU(BN(BConv3x3_{C->C, s}(RSign(x))) + (AvgPool2x2(x) if s == 2 else x))
        o2 = BN(BConv1x1(RSign(o1))) + o1                      if out == C
           = concat(BN(BConv1x1a(s)) + o1, BN(BConv1x1b(s)) + o1),  s = RSign(o1), else
        out = RPReLU(o2)

    With an activation placed before the addition (FPReLU), it follows each BN instead.
    """
    channels = x.shape[-1]
    if out_channels not in (channels, 2 * channels):
        raise ValueError(f"{name}: a block maps C to C or 2C, not {channels}->{out_channels}")
    y = method.sign(x, name=f"{name}_sign1")
    y = method.conv(y, channels, 3, stride, groups=method.groups, name=f"{name}_bconv3x3")
    y = batch_norm(f"{name}_bn1")(y)
    shortcut = avg_pool_2x2(x, name=f"{name}_pool") if stride == 2 else x
    o1 = residual(method, y, shortcut, name=name, suffix="1")

    s = method.sign(o1, name=f"{name}_sign2")
    branches = ["a", "b"] if out_channels == 2 * channels else [""]
    outs = []
    for b in branches:
        y = method.conv(s, channels, 1, name=f"{name}_bconv1x1{b}")
        y = batch_norm(f"{name}_bn2{b}")(y)
        if method.activation_before_add:
            y = method.activate(y, name=f"{name}_act2{b}")
        outs.append(tf.keras.layers.Add(name=f"{name}_add2{b}")([y, o1]))
    y = outs[0] if len(outs) == 1 else tf.keras.layers.Concatenate(name=f"{name}_concat")(outs)
    return y if method.activation_before_add else method.activate(y, name=f"{name}_act2")


def reactnet_18_block(x, channels, stride, method, *, name, groups=None):
    """One ReActNet-18 block: out = RPReLU(BN(BConv3x3(RSign(x))) + shortcut), where the
    shortcut is the identity, or AvgPool2x2 -> 1x1 conv -> BN when the shape changes (a real
    conv, or a binary one after a sign with `method.downsample == "binary"`). The 3x3
    convolution has `groups` groups (default: the method's)."""
    y = method.sign(x, name=f"{name}_sign")
    y = method.conv(y, channels, 3, stride, groups=groups or method.groups, name=f"{name}_bconv3x3")
    y = batch_norm(f"{name}_bn")(y)
    shortcut = downsample(x, channels, stride, method, name=name)
    return residual(method, y, shortcut, name=name)


def downsample(x, channels, stride, method, *, name, pool=True):
    """The shortcut of a residual block: identity, or (pool ->) 1x1 conv -> BN where the
    shape changes: a real conv, or a binary one after a sign with `method.downsample ==
    "binary"` (FTBNN's). With `pool` a stride of 2 is a 2x2 average pool before the conv
    (Bi-Real Net's); without, the conv is strided (ResNetE's)."""
    if stride == 1 and x.shape[-1] == channels:
        return x
    conv_stride = stride
    if pool and stride == 2:
        x, conv_stride = avg_pool_2x2(x, name=f"{name}_pool"), 1
    if method.downsample == "binary":
        x = method.sign(x, name=f"{name}_downsample_sign")
        x = method.conv(x, channels, 1, conv_stride, name=f"{name}_downsample")
    else:
        x = tf.keras.layers.Conv2D(channels, 1, strides=conv_stride, use_bias=False, name=f"{name}_downsample")(x)
    return batch_norm(f"{name}_downsample_bn")(x)


def _stem(x, filters, *, small, large_kernel, name="stem"):
    """Real convolution + BN. ImageNet sizes: stride 2 (7x7 then 3x3 max-pool for the
    ResNet stem). Small inputs (<= 64 px, ours): one 3x3 stride-1 conv, no downsampling."""
    kernel, strides = (3, 1) if small else ((7, 2) if large_kernel else (3, 2))
    x = tf.keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = batch_norm(f"{name}_bn")(x)
    if large_kernel and not small:
        x = tf.keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return x


@register_model("reactnet-a", "ReActNet-A (MobileNetV1 based), RSign + RPReLU [Liu et al. 2020]", Method(), follows="code")
def ReActNetA(
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
    name="reactnet_a",
):
    """ReActNet-A: a real 3x3 stride-2 stem (32 channels) and 13 binary blocks.

    Arguments follow Keras applications; `alpha` scales every width as in MobileNet;
    `method` (a `Method`) chooses the block's parts. Inputs of 64 px or less use a
    stride-1 stem (the first downsampling is dropped).
    """
    method = method or Method()

    def stack(x, small):
        x = _stem(x, scaled(32, alpha), small=small, large_kernel=False)
        for i, (out_channels, stride) in enumerate(REACTNET_A_BLOCKS, start=1):
            x = reactnet_a_block(x, scaled(out_channels, alpha), stride, method, name=f"block{i}")
        return x

    return backbone(stack, input_shape=input_shape, input_tensor=input_tensor, weights=weights, include_top=include_top,
                    num_classes=num_classes, pooling=pooling, classifier_activation=classifier_activation, name=name)  # fmt: skip


@register_model("reactnet-18", "ReActNet-18 (Bi-Real ResNet-18 based), RSign + RPReLU [Liu et al. 2020]", Method(), follows="code")
def ReActNet18(
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
    name="reactnet_18",
):
    """ReActNet-18: a real 7x7 stride-2 stem with 3x3 max-pool, then 16 binary blocks in
    four stages of 64, 128, 256 and 512 channels (times `alpha`; FTBNN's widened grouped
    stages: `reactnet_18_layout`).

    Arguments follow Keras applications; `method` (a `Method`) chooses the block's parts.
    Inputs of 64 px or less use a 3x3 stride-1 stem without max-pool.
    """
    method = method or Method()

    def stack(x, small):
        x = _stem(x, scaled(64, alpha), small=small, large_kernel=True)
        for block, stride, channels, groups in stage_blocks(reactnet_18_layout(method)):
            x = reactnet_18_block(x, scaled(channels, alpha), stride, method, name=f"block{block}", groups=groups)
        return x

    return backbone(stack, input_shape=input_shape, input_tensor=input_tensor, weights=weights, include_top=include_top,
                    num_classes=num_classes, pooling=pooling, classifier_activation=classifier_activation, name=name)  # fmt: skip
