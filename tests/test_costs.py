import larq as lq
import pytest
import tensorflow as tf

import zoo
from larq_methods import costs
from larq_methods.methods.reactnet import RSign

# The counts the papers publish: BOPs, FLOPs, OPs at 224x224, 1000 classes.
PUBLISHED = {
    "reactnet-a": (4.82e9, 0.12e8, 0.87e8),
    "reactnet-18": (1.68e9, 1.38e8, 1.63e8),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_counts_within_two_percent(name):
    c = costs.count(zoo.create_model(name))
    for ours, published in zip((c.bops, c.flops, c.ops), PUBLISHED[name]):
        assert ours == pytest.approx(published, rel=0.02)


def test_binary_only_when_kernel_and_input_are_binary():
    inputs = tf.keras.Input((8, 8, 4))
    signed = RSign(name="sign")(inputs)
    binary = lq.layers.QuantConv2D(6, 3, padding="same", pad_values=1.0, kernel_quantizer="ste_sign", name="binary")(signed)
    # binary weights on real input: not binary, counts as FLOPs
    half = lq.layers.QuantConv2D(6, 3, padding="same", kernel_quantizer="ste_sign", name="half")(inputs)
    # input quantizer inside the layer: binary
    inner = lq.layers.QuantConv2D(6, 1, input_quantizer="ste_sign", kernel_quantizer="ste_sign", name="inner")(inputs)
    real = tf.keras.layers.Conv2D(2, 1, groups=2, name="real_grouped")(inputs)
    merged = tf.keras.layers.Concatenate()([binary, half, inner, real])
    out = tf.keras.layers.Dense(5, name="dense")(tf.keras.layers.GlobalAveragePooling2D()(merged))
    c = costs.count(tf.keras.Model(inputs, out))
    bops = 8 * 8 * 3 * 3 * 4 * 6 + 8 * 8 * 1 * 1 * 4 * 6  # binary + inner
    # half + real_grouped (2 input channels per group, 2 outputs) + dense (20 -> 5)
    flops = 8 * 8 * 3 * 3 * 4 * 6 + 8 * 8 * 2 * 2 + 20 * 5
    assert (c.bops, c.flops) == (bops, flops)
    assert c.ops == bops / 64 + flops
    binary_params = 2 * 3 * 3 * 4 * 6 + 4 * 6  # kernels of binary, half, inner
    # + RSign thresholds, three conv biases, real_grouped kernel 1x1x2x2 and bias, dense
    params = binary_params + 4 + 3 * 6 + (4 + 2) + (20 * 5 + 5)
    assert (c.binary_params, c.params) == (binary_params, params)
    assert c.size_bytes == (binary_params + 32 * (params - binary_params)) / 8


def test_ftbnn_widened_groups_cost_within_15_percent_of_reactnet_18():
    """Two groups in 1.5x wider stages 2-4 (stage 1 ungrouped) add capacity at about the
    baseline's BOPs, as the paper's group execution does; unwidened, they would halve them."""
    ftbnn, base = costs.count(zoo.create_model("ftbnn-resnet18")), costs.count(zoo.create_model("reactnet-18"))
    assert base.bops < ftbnn.bops <= 1.15 * base.bops
    assert ftbnn.params > base.params
    halved = costs.count(zoo.create_model("reactnet-18", method=zoo.PRESETS["ftbnn"].replace(group_width=1.0)))
    assert halved.bops < 0.6 * base.bops
