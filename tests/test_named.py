"""Methods on backbones: the Method configuration and every named model."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from larq_methods import convert, costs
from larq_methods.methods import reactnet
from larq_methods.method import GroupedConvolutionError, Method, MethodError
from tests.helpers import perturb

NAMED = [n for n in zoo.list_models() if zoo.get_entry(n).backbone != n and not n.startswith("float-")]
FLOATS = zoo.list_models("float-*")
BACKBONES = ["reactnet-a", "reactnet-18", "birealnet", "quicknet", "resnete-18"]


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
    assert str(Method(groups=2, group_width=1.5)) == "groups=2, group_width=1.5"
    assert str(Method(group_width=1.5)) == str(Method())  # no groups: no widening
    assert str(Method(weights="rebnn-code", gamma=2e-4)) == "weights=rebnn-code, gamma=0.0002"
    assert Method().replace(activation="fprelu").activation_before_add
    assert Method(gaaf="add(sin,x)", threshold="none").threshold == "none"  # the authors' GAAF sign
    for bad in (dict(threshold="median"), dict(activation="gelu"), dict(weights="ternary"), dict(groups=0),
                dict(gamma=-1.0), dict(gamma="often"), dict(downsample="max"), dict(gaaf="nonsense"),
                dict(gaaf="add(sin,x)", threshold="insta"), dict(group_width=0), dict(group_width="wide")):  # fmt: skip
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
        "birealnet": {"Sign"},
    }
    for name, types in expected_layers.items():
        assert types <= layer_types(small(name)), name
    assert "RPReLU" not in layer_types(small("ftbnn-resnet18"))


def test_method_argument_overrides_the_preset():
    model = small("reactnet-18", method=Method(threshold="dynamic", activation="fprelu"))
    assert {"DySign", "FPReLU"} <= layer_types(model) and "RPReLU" not in layer_types(model)


def test_ftbnn_widened_groups_and_binary_downsampling():
    model = small("ftbnn-resnet18")
    convs = [model.get_layer(f"block{i}_bconv3x3") for i in range(1, 17)]
    # stage 1 ungrouped at 64; stages 2-4 1.5x wider (192, 384, 768) in 2 groups
    assert [(c.filters, c.groups) for c in convs] == [(64, 1)] * 4 + [(192, 2)] * 4 + [(384, 2)] * 4 + [(768, 2)] * 4
    assert all(c.input_shape[-1] // c.groups % 32 == 0 for c in convs)  # LCE binarises every group
    assert all(isinstance(model.get_layer(f"block{i}_downsample_sign"), reactnet.RSign) for i in (5, 9, 13))
    # binary downsampling moves the 1x1 shortcut convolutions from FLOPs to BOPs
    c, base = costs.count(model), costs.count(zoo.create_model("reactnet-18", input_shape=(28, 28, 1), num_classes=10))
    assert c.flops < base.flops
    # one group (as the leaderboard trains it at alpha 0.25): the backbone's widths
    plain = zoo.create_model("ftbnn-resnet18", input_shape=(28, 28, 1), num_classes=10, alpha=0.25,
                             method=zoo.PRESETS["ftbnn"].replace(groups=1))  # fmt: skip
    assert plain.get_layer("block16_bconv3x3").filters == 128


@pytest.mark.slow
def test_ftbnn_every_grouped_convolution_becomes_an_lce_bconv2d():
    model = perturb(small("ftbnn-resnet18"), stddev=0.05)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
    _, report = convert.convert_and_verify(model, x, min_agreement=1.0, input="scaled")
    assert report["operators"]["LceBconv2d"] == len(convert.binary_convolutions(model)) == 16 + 3
    assert report["operators"].get("CONV_2D", 0) == 1  # the stem alone stays float


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
                   Method(weights="rebnn-code", gamma="adaptive"), Method(weights="sign"), Method(gaaf="mul(x,cos)"),
                   Method(gaaf="add(sin,x)", threshold="none")):  # fmt: skip
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
    assert proc.stdout.split() == ["Functional", "Functional", "Functional"]  # ReBNN needs no model class


def test_named_models_follow_the_authors_code_where_there_is_one():
    from click.testing import CliRunner

    from cli.main import lqm
    from larq_methods.methods import gaaf, rebnn

    convs = [l for l in small("rebnn-resnet18").layers if isinstance(l, rebnn.ReBNNConv2D)]
    assert len(convs) == 16 and all((c.scale, c.gamma, c.kernel_constraint) == ("code", 2e-4, None) for c in convs)
    signs = [l for l in small("gaaf-resnet18").layers if isinstance(l, gaaf.GAAFSign)]
    assert signs and not any(s.use_threshold for s in signs)  # no threshold in front of f
    # the other versions stay one option away
    paper = small("rebnn-resnet18", method=zoo.PRESETS["rebnn"].replace(weights="learned", gamma="adaptive"))
    assert {(l.scale, l.gamma) for l in paper.layers if isinstance(l, rebnn.ReBNNConv2D)} == {("learned", "adaptive")}
    ours = small("gaaf-resnet18", method=zoo.PRESETS["gaaf"].replace(threshold="static"))
    assert all(l.use_threshold for l in ours.layers if isinstance(l, gaaf.GAAFSign))

    follows = {name: zoo.get_entry(name).follows for name in zoo.list_models()}
    assert {n: follows[n] for n in ("rebnn-resnet18", "gaaf-resnet18", "reactnet-18", "resnete-18")} == dict.fromkeys(
        ("rebnn-resnet18", "gaaf-resnet18", "reactnet-18", "resnete-18"), "code")
    assert {follows[n] for n in ("insta-resnet18", "dybnn-mobilenet", "ftbnn-resnet18")} == {"paper"}
    assert follows["float-resnet18"] == "ours" and follows["quicknet"] == "larq-zoo"
    out = CliRunner().invoke(lqm, ["models"]).stdout
    assert {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]} == follows  # below the header
