import json

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import zoo
from larq_methods import convert
from larq_methods.methods.reactnet import RPReLU, RSign
from tests.helpers import mini_model, perturb, sign_margins


def _inputs(n=16, shape=(28, 28, 1), seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype(np.float32)


@pytest.mark.parametrize("name", ["reactnet-a", "reactnet-18"])
def test_backbones_convert_fully_binary_with_parity(name):
    model = perturb(zoo.create_model(name, input_shape=(28, 28, 1), alpha=0.25, num_classes=10), stddev=0.05)
    flatbuffer, report = convert.convert_and_verify(model, _inputs(), min_agreement=1.0)
    n_binary = len(convert.binary_convolutions(model))
    assert n_binary == {"reactnet-a": 31, "reactnet-18": 16}[name]
    ops = report["operators"]
    assert ops["LceBconv2d"] == n_binary == report["binary_convolutions"]
    assert ops["LceQuantize"] == sum(isinstance(l, RSign) for l in model.layers)
    assert ops["PRELU"] == sum(isinstance(l, RPReLU) for l in model.layers)
    # The only float convolutions are the stem (and ReActNet-18's three real 1x1 shortcuts).
    assert ops["CONV_2D"] == {"reactnet-a": 1, "reactnet-18": 4}[name]
    assert "LceDequantize" not in ops
    # Outputs agree to rounding, but for the rare sign input within rounding of its threshold.
    parity = report["parity"]
    assert parity["examples_matching"] >= 0.75, parity
    assert parity["top1_agreement"] == 1.0
    assert report["size_bytes"] == len(flatbuffer)


def test_inventory_reads_shapes():
    inputs = tf.keras.Input((8, 8, 32))
    sign = RSign()
    x = sign(inputs)
    sign.threshold.assign(np.full(32, 0.1, np.float32))  # a zero threshold folds away
    x = lq.layers.QuantConv2D(64, 3, strides=2, padding="same", pad_values=1.0, kernel_quantizer="magnitude_aware_sign", kernel_constraint="weight_clip", use_bias=False)(x)
    model = tf.keras.Model(inputs, x)
    ops = convert.inventory(convert.convert(model))
    assert [op.type for op in ops] == ["SUB", "LceQuantize", "LceBconv2d"]
    bconv = ops[-1]
    assert bconv.output_shapes == ((1, 4, 4, 64),)
    # filters are bit-packed: 32 input channels fit one 32-bit word
    assert bconv.input_shapes[:2] == ((1, 8, 8, 1), (64, 3, 3, 1))


def _one_conv_model(conv, channels=64, sign=True):
    inputs = tf.keras.Input((8, 8, channels))
    x = RSign()(inputs) if sign else inputs
    return tf.keras.Model(inputs, conv(x))


def _bconv(name, groups=1):
    return lq.layers.QuantConv2D(
        64, 3, groups=groups, padding="same", pad_values=1.0, kernel_quantizer="magnitude_aware_sign",
        kernel_constraint="weight_clip", use_bias=False, name=name,
    )


def test_grouped_conv_with_16_channels_per_group_is_refused():
    model = _one_conv_model(_bconv("grouped16", groups=4))
    with pytest.raises(convert.ConversionError, match=r"grouped16: not an LceBconv2d \(CONV_2D\).*16 input channels per group"):
        convert.convert_and_verify(model, _inputs(2, (8, 8, 64)))


def test_grouped_conv_with_32_channels_per_group_is_binary():
    model = _one_conv_model(_bconv("grouped32", groups=2))
    flatbuffer, report = convert.convert_and_verify(model, _inputs(4, (8, 8, 64)), min_agreement=1.0)
    assert report["operators"]["LceBconv2d"] == 1
    assert convert.has_grouped_bconv(flatbuffer)  # run with the indirect BGEMM kernel
    assert report["parity"]["examples_matching"] >= 0.75


def test_binary_kernel_on_real_input_is_refused():
    model = _one_conv_model(_bconv("realinput"), sign=False)
    with pytest.raises(convert.ConversionError, match="realinput: .*input is not binary"):
        convert.convert_and_verify(model, _inputs(2, (8, 8, 64)))


def test_low_agreement_is_refused():
    model = perturb(zoo.create_model("reactnet-18", input_shape=(28, 28, 1), alpha=0.25, num_classes=10))
    with pytest.raises(convert.ConversionError, match="agree on the top-1 class"):
        convert.convert_and_verify(model, _inputs(4), min_agreement=1.01)


def test_tflite_with_the_scaling_inside_agrees_with_keras_on_raw_pixels():
    model = perturb(zoo.create_model("reactnet-18", input_shape=(28, 28, 1), alpha=0.25, num_classes=10), stddev=0.05)
    pixels = np.random.default_rng(1).integers(0, 256, (16, 28, 28, 1)).astype(np.float32)
    # One example in 16 may flip (measured on an AVX-512 Xeon: example 14, whose block-13
    # sign input lies 5.2e-7 from its threshold where Keras and LCE differ by up to 7.6e-6);
    # below, every disagreement must be such a near-threshold example.
    flatbuffer, report = convert.convert_and_verify(model, pixels / 127.5 - 1, min_agreement=15 / 16)
    ops = convert.inventory(flatbuffer)
    # the scaling x / 127.5 - 1 is the first two operators, in float on the input image
    assert [op.type for op in ops[:2]] == ["MUL", "ADD"] and ops[0].input_shapes[0] == (1, 28, 28, 1)
    expected = model.predict(pixels / 127.5 - 1, verbose=0)
    lite = convert.TFLiteModel(flatbuffer)
    assert lite.raw and lite.input_shape == (1, 28, 28, 1)
    actual = lite.runner.predict(pixels)  # 0-255 pixels, as an app feeds them
    flipped = expected.argmax(-1) != actual.argmax(-1)
    assert (sign_margins(model, pixels / 127.5 - 1)[flipped] < 1e-5).all()
    assert np.mean(np.abs(expected - actual).max(axis=1) <= 1e-4) >= 0.75  # agrees to rounding
    # TFLiteModel takes [-1, 1] images, like the Keras model, and scales them back itself
    np.testing.assert_allclose(lite.predict(pixels / 127.5 - 1), actual, atol=1e-5)
    assert report["card"]["input"]["range"] == [0.0, 255.0] and report["card"]["input"]["mean"] == 0.0


def test_model_card_round_trips_through_tflite_metadata():
    model = perturb(mini_model(classes=3), stddev=0.1)
    inputs = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 1)).astype(np.float32)
    meta = {"model": "mini", "method": "threshold=insta", "dataset": "pets", "accuracy": 0.75, "class_names": ["cat", "dog", "frog"]}
    flatbuffer, report = convert.convert_and_verify(model, inputs, input="scaled", metadata=meta)
    card = report["card"]
    assert card["class_names"] == ["cat", "dog", "frog"] and card["accuracy"] == 0.75 and card["model"] == "mini"
    assert card["input"]["shape"] == [1, 8, 8, 1] and card["input"]["range"] == [-1.0, 1.0]
    assert (card["input"]["mean"], card["input"]["std"]) == (127.5, 127.5)  # (x - 127.5) / 127.5
    assert card["output"]["meaning"] == "class probabilities (softmax)"
    read = convert.read_metadata(flatbuffer)
    assert json.loads(read["files"][convert.CARD_FILE]) == card
    assert read["files"][convert.LABELS_FILE] == "cat\ndog\nfrog\n"
    assert read["name"] == "mini" and "0.7500 on pets" in read["description"]
    assert read["min_parser_version"] == convert.METADATA_PARSER_VERSION
    assert read["input"] == {"name": "image", "color_space": "GRAYSCALE", "size": [8, 8], "mean": [127.5], "std": [127.5], "min": [-1.0], "max": [1.0]}
    assert read["output"] == {"name": "probability", "labels_file": convert.LABELS_FILE}
    # the interpreter runs the model with its metadata and archive, as it ran it without
    assert not convert.TFLiteModel(flatbuffer).raw
    np.testing.assert_allclose(convert.tflite_predict(flatbuffer, inputs), convert.tflite_predict(convert.convert(model), inputs), atol=1e-6)
    with pytest.raises(convert.ConversionError, match="2 class names for a model of 3 classes"):
        convert.convert_and_verify(model, inputs, metadata={"class_names": ["a", "b"]})
