import json

import larq as lq
import pytest
import tensorflow as tf

import zoo
from larq_methods import benchmark, convert, costs
from larq_methods.methods.reactnet import RSign
from tests.helpers import perturb
from tests.test_cli import assert_one_line_error, run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """ReActNet-18 at alpha 0.125 on 28x28x1: its Keras file, .tflite file and Keras counts."""
    folder = tmp_path_factory.mktemp("tiny")
    model = perturb(zoo.create_model("reactnet-18", input_shape=(28, 28, 1), alpha=0.125, num_classes=10), stddev=0.05)
    model.save(folder / "model.h5")
    (folder / "model.tflite").write_bytes(convert.convert(model))
    return folder / "model.h5", folder / "model.tflite", costs.count(model)


def test_benchmark_of_a_converted_model_reports_every_figure(tmp_path, tiny):
    _, tflite, keras_counts = tiny
    report = tmp_path / "figures.json"
    result = run("benchmark", tflite, "--runs", 5, "--warmup", 1, "--json", report)
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    timing = figures["latency_ms"]
    assert (timing["runs"], timing["threads"], timing["kernel"]) == (5, 1, "BGEMM")
    assert 0 < timing["min"] <= timing["median"] <= timing["p90"]
    assert figures["size_bytes"] == tflite.stat().st_size
    # Counted from the flatbuffer alone, BOPs and FLOPs are the Keras model's.
    assert (figures["bops"], figures["flops"]) == (keras_counts.bops, keras_counts.flops) == (7031808, 140032)
    assert figures["ops"] == figures["bops"] / 64 + figures["flops"]
    assert figures["binary_params"] == keras_counts.binary_params
    assert figures["counted_on"] == "tflite"
    assert figures["operators"] == {
        "binary": {"LceBconv2d": 16, "LceQuantize": 16},
        "float": {"ADD": 32, "AVERAGE_POOL_2D": 3, "CONV_2D": 4, "FULLY_CONNECTED": 1, "MEAN": 1, "PRELU": 16, "SOFTMAX": 1, "SUB": 32},
    }  # fmt: skip
    assert "baseline" not in figures  # a file has no backbone to compare with
    # The printout carries the same figures, and says what x86 timings are good for.
    out = result.stdout
    assert f"min {timing['min']:.2f} ms, median {timing['median']:.2f} ms, p90 {timing['p90']:.2f} ms" in out
    assert f"({figures['size_bytes']} bytes)" in out
    assert f"Parameters: {figures['params']:,} ({figures['binary_params']:,} binary; in the .tflite, BatchNorm folded)" in out
    assert "BOPs: 7.032e+06  FLOPs: 1.4e+05  OPs: 2.499e+05" in out
    assert "  LceBconv2d             16\n" in out and "  PRELU                  16\n" in out
    assert benchmark.X86_NOTE in out.splitlines()
    assert figures["note"] == benchmark.X86_NOTE


def test_keras_file_is_converted_and_compared_with_a_baseline(tiny):
    h5, tflite, keras_counts = tiny
    result = run("benchmark", h5, "--runs", 2, "--warmup", 0, "--baseline", tflite, "--indirect-bgemm")
    assert result.exit_code == 0, result.output
    assert "thread(s), LCE interpreter, indirect BGEMM kernel)" in result.stdout
    assert f"Parameters: {keras_counts.params:,} ({keras_counts.binary_params:,} binary; counted on the Keras model)" in result.stdout
    assert f"Operators added over {tflite}: none" in result.stdout  # the same model


def _hand_counted_model():
    """A float stem, RSign, a grouped binary convolution, a depthwise one and a classifier."""
    inputs = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Conv2D(64, 3, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = RSign()(x)
    x = lq.layers.QuantConv2D(
        64, 3, groups=2, padding="same", pad_values=1.0, kernel_quantizer="magnitude_aware_sign",
        kernel_constraint="weight_clip", use_bias=False,
    )(x)  # fmt: skip
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return perturb(tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x)), stddev=0.05)


def test_tflite_counts_agree_with_keras_and_a_hand_count():
    model = _hand_counted_model()
    counted = benchmark.count(convert.convert(model))
    keras = costs.count(model)
    bops = 8 * 8 * 64 * 3 * 3 * 32  # 32 input channels per group
    flops = 8 * 8 * 64 * 3 * 3 * 3 + 8 * 8 * 64 * 3 * 3 + 64 * 10  # stem, depthwise, dense
    assert (counted.bops, counted.flops) == (keras.bops, keras.flops) == (bops, flops)
    assert counted.binary_params == keras.binary_params == 64 * 3 * 3 * 32
    # Keras: stem 1728, BN 4 x 64, RSign 64, bconv 18432, BN 4 x 64, depthwise 576, dense 650.
    assert keras.params == 1728 + 256 + 64 + 18432 + 256 + 576 + 650
    # TFLite: the first BN and the threshold fold into the stem's bias (64), the second BN
    # into LceBconv2d's multiplier and bias (2 x 64), and the depthwise gets a zero bias (64).
    assert counted.params == 1728 + 64 + 18432 + 128 + 576 + 64 + 650


def test_latency_figures_are_ordered(tiny):
    flatbuffer = tiny[1].read_bytes()
    timing = benchmark.latency(flatbuffer, threads=1, warmup=1, runs=7)
    assert 0 < timing["min"] <= timing["median"] <= timing["p90"]
    assert (timing["runs"], timing["threads"]) == (7, 1)
    both = benchmark.latencies({"a": flatbuffer, "b": flatbuffer}, threads=2, warmup=0, runs=3, indirect_bgemm=True)
    assert sorted(both) == ["a", "b"]
    assert (both["b"]["threads"], both["b"]["kernel"]) == (2, "indirect BGEMM")


def test_added_operators():
    ops = [convert.Op(t, (), ()) for t in ("MUL", "MUL", "SUB", "LceBconv2d")]
    baseline = [convert.Op(t, (), ()) for t in ("SUB", "SUB", "LceBconv2d")]
    assert benchmark.added_operators(ops, baseline) == {"MUL": 2, "SUB": -1}
    assert benchmark.operators(ops) == {"binary": {"LceBconv2d": 1}, "float": {"MUL": 2, "SUB": 1}}


def test_expected_failures_are_one_line(tmp_path, tiny):
    assert_one_line_error(run("benchmark", tmp_path / "absent.tflite"), "absent.tflite: no such file")
    assert_one_line_error(run("benchmark", tmp_path / "absent.h5"), "absent.h5: no such file")
    notes = tmp_path / "notes.h5"
    notes.write_text("not a model")
    assert_one_line_error(run("benchmark", notes), "is not a Keras model file")
    fake = tmp_path / "fake.tflite"
    fake.write_text("not a flatbuffer")
    assert_one_line_error(run("benchmark", fake), "is not a TFLite model")
    assert_one_line_error(run("benchmark", "reactnet-19"), "unknown model 'reactnet-19'", "did you mean")
    assert_one_line_error(run("benchmark", tiny[1], "--baseline", "nope"), "unknown model 'nope'")
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert_one_line_error(run("benchmark", tiny[1], "--json", blocker / "out.json"), "cannot write")
    # a binary kernel on a real input: LCE would run it in float, a model not asked for
    inputs = tf.keras.Input((8, 8, 32))
    conv = lq.layers.QuantConv2D(32, 3, kernel_quantizer="ste_sign", name="realinput")
    real = tmp_path / "real_input.h5"
    tf.keras.Model(inputs, conv(inputs)).save(real)
    assert_one_line_error(run("benchmark", real), "1 binary convolution(s) would run in float", "realinput")


@pytest.mark.slow
def test_registered_model_lists_the_operators_its_method_adds(tmp_path):
    report = tmp_path / "insta.json"
    args = ("--image-size", 28, "--alpha", 0.125, "--num-classes", 10, "--runs", 2, "--warmup", 0, "--json", report)
    result = run("benchmark", "insta-resnet18", *args)
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    assert figures["baseline"] == "reactnet-18 (28x28x3, alpha 0.125, 10 classes, untrained, weights perturbed)"
    # INSTA-Th's instance statistics (mean, cube root of the third moment) and the shifts
    # of INSTA-PReLU, in every one of the 16 blocks (the exact cube root adds no epsilon)
    assert figures["added_operators"] == {"ABS": 16, "ADD": 64, "MEAN": 48, "MUL": 112, "POW": 16, "SIGN": 16, "SUB": 48}
    assert "Operators added over reactnet-18 (28x28x3, alpha 0.125, 10 classes, untrained, weights perturbed):\n  ABS                    +16\n" in result.stdout
    keras = costs.count(zoo.create_model("insta-resnet18", input_shape=(28, 28, 3), alpha=0.125, num_classes=10))
    assert (figures["bops"], figures["flops"], figures["params"]) == (keras.bops, keras.flops, keras.params)
    assert figures["counted_on"] == "keras"


@pytest.mark.slow
def test_a_registered_name_means_its_pretrained_configuration():
    result = run("benchmark", "insta-resnet18", "--runs", 1, "--warmup", 0)
    assert result.exit_code == 0, result.output
    weights = zoo.pretrained.get("insta-resnet18", "fashion_mnist")
    first = result.stdout.splitlines()[0]
    assert first == f"insta-resnet18 ({zoo.pretrained.describe(weights)}), converted with LCE"
    assert "28x28x1, alpha 0.25, 10 classes" in first  # what `lqm evaluate insta-resnet18` measures
    assert "Operators added over reactnet-18 (pretrained on fashion_mnist: 28x28x1, alpha 0.25" in result.stdout
