import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import zoo
from larq_methods.methods.plain import HardTanh
from larq_methods.methods.reactnet import RPReLU, RSign
from tests.helpers import perturb

CONSTRUCTORS = {"reactnet-a": zoo.ReActNetA, "reactnet-18": zoo.ReActNet18}


def _binary_convs(model):
    return [l for l in model.layers if isinstance(l, lq.layers.QuantConv2D)]


def test_registry_lists_and_creates():
    assert zoo.list_models("reactnet-*") == ["reactnet-18", "reactnet-a"]
    assert {"birealnet", "quicknet", "insta-mobilenet"} <= set(zoo.list_models())
    assert zoo.list_models("reactnet-a*") == ["reactnet-a"]
    assert zoo.list_models("nothing*") == []
    model = zoo.create_model("reactnet-18", input_shape=(32, 32, 3), num_classes=7)
    assert model.output_shape == (None, 7)


def test_unknown_model_name_suggests_the_closest():
    with pytest.raises(zoo.UnknownModelError, match="did you mean 'reactnet-18'"):
        zoo.create_model("reactnet18")


def test_reactnet_a_structure_at_224():
    model = zoo.ReActNetA()
    assert model.input_shape == (None, 224, 224, 3)
    assert model.get_layer("stem_conv").strides == (2, 2)
    # (in -> out, stride) of the 13 blocks; spatial size after each
    expected = [(32, 64, 112), (64, 128, 56), (128, 128, 56), (128, 256, 28), (256, 256, 28),
                (256, 512, 14)] + [(512, 512, 14)] * 5 + [(512, 1024, 7), (1024, 1024, 7)]  # fmt: skip
    for i, (c_in, c_out, size) in enumerate(expected, start=1):
        conv3 = model.get_layer(f"block{i}_bconv3x3")
        assert conv3.kernel_size == (3, 3) and conv3.filters == c_in and conv3.groups == 1
        assert model.get_layer(f"block{i}_act2").output_shape == (None, size, size, c_out)
        pointwise = [l for l in model.layers if l.name.startswith(f"block{i}_bconv1x1")]
        assert len(pointwise) == (1 if c_in == c_out else 2)
    assert len(_binary_convs(model)) == 13 + 13 + 5
    assert model.get_layer("logits").units == 1000


def test_reactnet_18_structure_at_224():
    model = zoo.ReActNet18()
    assert model.get_layer("stem_conv").kernel_size == (7, 7)
    assert model.get_layer("stem_pool").output_shape == (None, 56, 56, 64)
    sizes = [56] * 4 + [28] * 4 + [14] * 4 + [7] * 4
    channels = [64] * 4 + [128] * 4 + [256] * 4 + [512] * 4
    for i, (size, c) in enumerate(zip(sizes, channels), start=1):
        assert model.get_layer(f"block{i}_act").output_shape == (None, size, size, c)
    downsample = [l.name for l in model.layers if l.name.endswith("_downsample")]
    assert downsample == ["block5_downsample", "block9_downsample", "block13_downsample"]
    assert len(_binary_convs(model)) == 16


@pytest.mark.parametrize("name", [*sorted(CONSTRUCTORS), "birealnet"])
def test_small_input_stem_and_width_multiplier(name):
    model = zoo.create_model(name, input_shape=(28, 28, 1), alpha=0.25, num_classes=10)
    stem = model.get_layer("stem_conv")
    assert stem.kernel_size == (3, 3) and stem.strides == (1, 1)
    assert "stem_pool" not in [l.name for l in model.layers]
    widths = [l.filters for l in _binary_convs(model)]
    assert min(widths) == (8 if name == "reactnet-a" else 16) and max(widths) == (256 if name == "reactnet-a" else 128)
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("name", ["reactnet-a", "reactnet-18", "birealnet", "quicknet"])
def test_small_inputs_give_no_binary_3x3_a_1x1_map(name):
    # on a 1x1 map 8 of the 9 taps read padding alone, at every position alike: BN hides
    # what they do in training and the moving mean cannot follow (BiRealNet with larq-zoo's
    # stem: 72.7% on Fashion-MNIST, 81.5% with its BN statistics re-estimated)
    model = zoo.create_model(name, input_shape=(28, 28, 1), alpha=0.25, num_classes=10)
    sizes = [conv.input_shape[1] for conv in _binary_convs(model) if conv.kernel_size == (3, 3)]
    assert len(sizes) >= 13 and min(sizes) >= 2


def test_birealnet_keeps_larq_zoos_stem_at_imagenet_sizes():
    model = zoo.create_model("birealnet", alpha=0.25)
    sizes = [conv.input_shape[1] for conv in _binary_convs(model)]
    assert sizes == [56] * 5 + [28] * 4 + [14] * 4 + [7] * 3
    assert any(isinstance(l, tf.keras.layers.MaxPool2D) for l in model.layers)
    small = zoo.create_model("birealnet", input_shape=(28, 28, 1), alpha=0.25, num_classes=10)
    assert [conv.input_shape[1] for conv in _binary_convs(small)] == [28] * 5 + [14] * 4 + [7] * 4 + [4] * 3


def test_float_birealnet_clips_where_birealnet_signs():
    # with the identity there, its blocks (no activation) would leave the network linear
    binary = zoo.create_model("birealnet", input_shape=(28, 28, 1), alpha=0.25, num_classes=10)
    twin = zoo.create_model("float-birealnet", input_shape=(28, 28, 1), alpha=0.25, num_classes=10)
    signs = [l.name for l in binary.layers if l.name.endswith("_sign")]
    clips = [l.name for l in twin.layers if isinstance(l, HardTanh)]
    assert len(clips) == 16 and [n.replace("_clip", "_sign") for n in clips] == signs
    assert not [l for l in twin.layers if l.name.endswith("_sign")]


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_binary_convolutions_are_one_padded_with_sign_in_front(name):
    model = CONSTRUCTORS[name](input_shape=(32, 32, 3), alpha=0.25)
    for conv in _binary_convs(model):
        assert conv.padding == "same" and conv.pad_values == 1.0
        assert conv.kernel_quantizer.precision == 1
        assert isinstance(conv.inbound_nodes[0].inbound_layers, RSign)


def test_keras_application_arguments(tmp_path):
    features = zoo.ReActNet18(input_shape=(32, 32, 3), include_top=False, alpha=0.25)
    assert features.output_shape == (None, 4, 4, 128)
    pooled = zoo.ReActNet18(input_shape=(32, 32, 3), include_top=False, pooling="avg", alpha=0.25)
    assert pooled.output_shape == (None, 128)
    tensor = tf.keras.Input((40, 40, 3))
    assert zoo.ReActNetA(input_tensor=tensor, alpha=0.25).input_shape == (None, 40, 40, 3)
    logits = zoo.ReActNetA(input_shape=(32, 32, 3), alpha=0.25, classifier_activation=None)
    assert logits.layers[-1].name == "logits"
    with pytest.raises(ValueError, match="pooling"):
        zoo.ReActNet18(input_shape=(32, 32, 3), include_top=False, pooling="median")
    with pytest.raises(ValueError, match="weights"):
        zoo.ReActNet18(input_shape=(32, 32, 3), weights="imagenet")

    model = perturb(zoo.ReActNet18(input_shape=(32, 32, 3), alpha=0.25, num_classes=5))
    model.save_weights(tmp_path / "w.h5")
    again = zoo.ReActNet18(input_shape=(32, 32, 3), alpha=0.25, num_classes=5, weights=tmp_path / "w.h5")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_save_and_plain_load_model_give_identical_outputs(name, tmp_path):
    model = perturb(CONSTRUCTORS[name](input_shape=(28, 28, 1), alpha=0.25, num_classes=10))
    x = np.random.default_rng(1).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
    model.save(tmp_path / "model.h5")
    loaded = tf.keras.models.load_model(tmp_path / "model.h5")  # no custom_objects
    assert sum(isinstance(l, (RSign, RPReLU)) for l in loaded.layers) > 0
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def _resnete(**kwargs):
    method = zoo.get_entry("resnete-18").method.replace(gaaf="add(sin,x)")
    return zoo.create_model("resnete-18", input_shape=(32, 32, 3), num_classes=10, method=method, **kwargs)


def test_resnete_18_is_gaafs_proxy_network():
    from larq_methods.methods.gaaf import GAAFSign

    model = _resnete()
    assert not model.get_layer("input_bn").center and not model.get_layer("input_bn").scale
    assert model.get_layer("stem_conv").kernel_size == (3, 3) and model.get_layer("stem_conv").strides == (1, 1)
    convs = _binary_convs(model)
    assert len(convs) == 16 + 3  # two 3x3 per block, and the binary 1x1 shortcuts
    for conv in convs:  # unscaled signs, straight-through without a mask, latent weights within +-1.3
        assert isinstance(conv.kernel_quantizer, lq.quantizers.SteSign) and conv.kernel_quantizer.clip_value is None
        assert conv.kernel_constraint.clip_value == 1.3
    for i, size in zip((3, 5, 7), (16, 8, 4)):
        shortcut = model.get_layer(f"block{i}_downsample")
        assert (shortcut.kernel_size, shortcut.strides) == ((1, 1), (2, 2)) and shortcut.output_shape[1] == size
    signs = [l for l in model.layers if isinstance(l, GAAFSign)]
    assert len(signs) == 16 + 3 and not any(s.use_threshold for s in signs) and {s.clip_value for s in signs} == {1.3}
    assert not [l for l in model.layers if isinstance(l, RPReLU)]
    assert model.get_layer("block8_add").output_shape == (None, 4, 4, 512)


@pytest.mark.slow
@pytest.mark.parametrize("genome", ["mul(x,cos)", "gate(scale,abs)"])
def test_resnete_18_converts_fully_binary(genome):
    from larq_methods import convert

    # mul(x, cos) leaves a float op between each BN and sign; gate(scale, abs) folds to a
    # sign of the BN output at inference, so LCE fuses BN and sign into bconvs that write
    # bitpacked outputs, which the binarisation check must still pair with their layers.
    method = zoo.get_entry("resnete-18").method.replace(gaaf=genome)
    model = zoo.create_model("resnete-18", input_shape=(32, 32, 3), num_classes=10, alpha=0.5, method=method)
    model = perturb(model, stddev=0.05)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    _, report = convert.convert_and_verify(model, x, min_agreement=1.0, input="scaled")
    assert report["operators"]["LceBconv2d"] == 19


@pytest.mark.slow
def test_quicknet_converts_to_larq_zoos_quicknet():
    """`quicknet` at ImageNet's size converts to exactly the operators, with the same shapes
    and options, that larq-zoo's own QuickNet converts to: QuickNet's signs and unscaled
    weights let LCE fuse each block's ReLU and BatchNorm into its LceBconv2d."""
    import larq_zoo

    from larq_methods import convert

    def ops(model):
        return sorted(convert.inventory(convert.convert(model)), key=repr)

    ours = ops(zoo.create_model("quicknet", input_shape=(224, 224, 3), num_classes=1000))
    theirs = ops(larq_zoo.sota.QuickNet(weights=None, input_shape=(224, 224, 3), num_classes=1000))
    assert convert.op_counts(ours)["LceBconv2d"] == 16 and "RELU" not in convert.op_counts(ours)
    assert ours == theirs


def test_a_method_on_quicknet_keeps_quicknets_weights_unless_it_changes_them():
    from larq_methods.methods import plain

    for name, threshold in (("insta-quicknet", "insta"), ("dybnn-quicknet", "dynamic")):
        method = zoo.get_entry(name).method
        assert (method.threshold, method.weights) == (threshold, "ste-sign")
    model = zoo.create_model("quicknet", input_shape=(28, 28, 1), num_classes=10, alpha=0.25)
    conv = model.get_layer("block1_bconv3x3")
    assert isinstance(conv.kernel_quantizer, lq.quantizers.SteSign) and conv.kernel_quantizer.clip_value == plain.QUICKNET_CLIP
    assert isinstance(conv.kernel_constraint, lq.constraints.WeightClip) and conv.kernel_constraint.clip_value == 1.25
    sign = model.get_layer("block1_sign")
    assert isinstance(sign, lq.quantizers.SteSign) and sign.clip_value == 1.25
