"""Methods on backbones: the Method configuration and every named model."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from larq_methods import convert, costs
from larq_methods import layers as L
from larq_methods.method import GroupedConvolutionError, Method, MethodError
from tests.helpers import perturb

NAMED = [n for n in zoo.list_models() if zoo.get_entry(n).backbone != n and not n.startswith("float-")]
FLOATS = zoo.list_models("float-*")
BACKBONES = ["reactnet-a", "reactnet-18", "birealnet", "quicknet"]


def small(name, **kwargs):
    # FTBNN's two groups need 64 channels (32 per group) in the narrowest stage
    alpha = 1.0 if zoo.get_entry(name).method.groups > 1 else 0.25
    return zoo.create_model(name, input_shape=(28, 28, 1), num_classes=10, alpha=alpha, **kwargs)


def layer_types(model):
    found = set()
    for layer in model.layers:
        found.update(type(l).__name__ for l in ([layer] + (layer.layers if isinstance(layer, tf.keras.Model) else [])))
    return found


def test_method_validates_and_describes_itself():
    assert str(Method()) == "ReActNet (static threshold, RPReLU)"
    assert str(Method(threshold="insta", groups=2)) == "threshold=insta, groups=2"
    assert Method().replace(activation="fprelu").activation_before_add
    for bad in (dict(threshold="median"), dict(activation="gelu"), dict(weights="ternary"), dict(groups=0),
                dict(gamma=-1.0), dict(gamma="often"), dict(downsample="max"), dict(gaaf="nonsense"),
                dict(gaaf="add(sin,x)", threshold="insta")):  # fmt: skip
        with pytest.raises(MethodError):
            Method(**bad)


def test_named_models_are_presets_of_backbones():
    assert {"insta-mobilenet", "insta-plus-mobilenet", "insta-resnet18", "dybnn-mobilenet", "dybnn-resnet18",
            "rebnn-resnet18", "ftbnn-resnet18", "gaaf-resnet18", "insta-quicknet", "dybnn-birealnet"} <= set(NAMED)  # fmt: skip
    expected_layers = {
        "insta-mobilenet": {"InstaThreshold", "InstaPReLU"},
        "insta-plus-resnet18": {"InstaThresholdPlus", "InstaPReLU"},
        "dybnn-resnet18": {"DySign", "DyPReLU"},
        "rebnn-resnet18": {"ReBNNConv2D", "RSign", "RPReLU"},
        "ftbnn-resnet18": {"FPReLU", "RSign"},
        "gaaf-resnet18": {"GAAFSign", "RPReLU"},
        "insta-quicknet": {"InstaThreshold", "InstaPReLU"},
        "dybnn-birealnet": {"DySign", "DyPReLU"},
        "birealnet": {"ApproxSign"},
    }
    for name, types in expected_layers.items():
        assert types <= layer_types(small(name)), name
    assert "RPReLU" not in layer_types(small("ftbnn-resnet18"))


def test_method_argument_overrides_the_preset():
    model = small("reactnet-18", method=Method(threshold="dynamic", activation="fprelu"))
    assert {"DySign", "FPReLU"} <= layer_types(model) and "RPReLU" not in layer_types(model)


def test_ftbnn_groups_and_binary_downsampling():
    model = small("ftbnn-resnet18")
    grouped = [l for l in model.layers if l.name.endswith("_bconv3x3")]
    assert grouped and all(l.groups == 2 for l in grouped)
    assert all(isinstance(model.get_layer(f"block{i}_downsample_sign"), L.RSign) for i in (5, 9, 13))
    # binary downsampling moves the 1x1 shortcut convolutions from FLOPs to BOPs
    c, base = costs.count(model), costs.count(zoo.create_model("reactnet-18", input_shape=(28, 28, 1), num_classes=10))
    assert c.flops < base.flops and c.bops < base.bops


@pytest.mark.parametrize("name", ["reactnet-18", "reactnet-a", "birealnet", "quicknet"])
def test_grouped_convolutions_that_lce_would_leave_float_are_refused(name):
    with pytest.raises(GroupedConvolutionError, match=r"bconv3x3: 16 input channels in 2 groups.*nearest valid widths are 64"):
        zoo.create_model(name, input_shape=(32, 32, 3), alpha=0.25 if name != "reactnet-a" else 0.5, method=Method(groups=2))


def test_group_error_names_both_neighbours():
    with pytest.raises(GroupedConvolutionError, match="96 input channels in 2 groups.*64 or 128"):
        zoo.create_model("reactnet-18", input_shape=(32, 32, 3), alpha=1.5, method=Method(groups=2))


@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_takes_every_threshold_and_activation(name):
    for method in (Method(threshold="insta+", activation="dyprelu"), Method(threshold="dynamic", activation="insta-prelu"),
                   Method(threshold="insta", activation="fprelu", downsample="binary"), Method(weights="learned", gamma=2e-4),
                   Method(gaaf="mul(x,cos)")):  # fmt: skip
        model = zoo.create_model(name, input_shape=(32, 32, 3), num_classes=4, alpha=0.25, method=method)
        assert model.output_shape == (None, 4)
        assert costs.count(model).bops > 0
        tf.keras.backend.clear_session()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMED)
def test_named_model_round_trips_and_converts_fully_binary(name, tmp_path):
    model = perturb(small(name), stddev=0.05)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
    model.save(tmp_path / "m.h5")
    loaded = tf.keras.models.load_model(tmp_path / "m.h5")  # no custom_objects
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))

    flatbuffer, report = convert.convert_and_verify(loaded, x, min_agreement=1.0)
    assert report["operators"]["LceBconv2d"] == len(convert.binary_convolutions(model)) > 0
    assert report["parity"]["examples_matching"] >= 0.75, report["parity"]
    allowed_custom = {"LceQuantize", "LceBconv2d"}
    assert not {op for op in report["operators"] if op.startswith("Lce")} - allowed_custom
    assert not any(op.startswith("Flex") or op.isdigit() for op in report["operators"])


@pytest.mark.slow
@pytest.mark.parametrize("name", FLOATS)
def test_float_counterparts_have_no_quantizer_and_convert_to_float(name, tmp_path):
    model = perturb(small(name), stddev=0.05)
    assert zoo.get_entry(name).method.binarise == "none"
    assert not convert.binary_convolutions(model)
    assert not [layer.name for layer in model.layers if "sign" in layer.name]
    x = np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
    _, report = convert.convert_and_verify(model, x, min_agreement=1.0)
    assert not [op for op in report["operators"] if op.startswith("Lce")]
    assert report["parity"]["max_abs_diff"] < 1e-4


@pytest.mark.parametrize("preset", sorted(zoo.PRESETS))
def test_every_preset_works_in_larq_summary(preset, capsys):
    import larq as lq

    method = zoo.PRESETS[preset].replace(groups=1)  # two groups need wider layers
    model = zoo.create_model("reactnet-18", input_shape=(32, 32, 3), num_classes=10, alpha=0.25, method=method)
    lq.models.summary(model)
    out = capsys.readouterr().out
    assert "block16_bconv3x3" in out and "Total params" in out


def test_saved_models_load_after_importing_larq_methods_alone(tmp_path):
    """A fresh process that imports nothing but larq_methods loads every custom class."""
    import subprocess
    import sys

    method = Method(threshold="insta+", activation="dyprelu", weights="learned", gamma="adaptive")
    paths = []
    for name, kwargs in (("reactnet-18", dict(method=method)), ("quicknet", {}), ("gaaf-resnet18", {})):
        paths.append(tmp_path / f"{name}.h5")
        zoo.create_model(name, input_shape=(32, 32, 3), num_classes=10, alpha=0.25, **kwargs).save(paths[-1])
    code = "import sys, larq_methods, tensorflow as tf\nfor p in sys.argv[1:]: print(type(tf.keras.models.load_model(p)).__name__)"
    proc = subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["ReBNNModel", "Functional", "Functional"]
