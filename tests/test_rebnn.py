import csv

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from larq_methods import convert, costs
from larq_methods.layers import RSign
from larq_methods.rebnn import (
    OscillationLogger,
    ReBNNConv2D,
    ReBNNModel,
    adaptive_gamma,
    oscillation_ratio,
    rebnn_layers,
)

# A 1x1 kernel, 3 inputs -> 2 channels; channel 1 holds an exact 0, whose sign is +1.
KERNEL = np.array([[0.1, -0.4], [-0.2, 0.8], [0.3, 0.0]], np.float32).reshape(1, 1, 3, 2)


def _constant(array):
    return lambda shape, dtype=None: tf.constant(array, dtype=dtype)


def _layer(kernel, gamma=0.5, alpha=None):
    layer = ReBNNConv2D(kernel.shape[-1], kernel.shape[:2], gamma=gamma, kernel_initializer=_constant(kernel))
    layer.build((None, 4, 4, kernel.shape[2]))
    if alpha is not None:
        layer.alpha.assign(alpha)
    return layer


def _conv_same_ones(x, w):
    """Stride-1 convolution in NumPy, padding with +1 as `pad_values=1.0` does."""
    kh, kw = w.shape[:2]
    h, wd = x.shape[1:3]
    p = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), constant_values=1.0)
    patches = np.array([[p[:, i : i + h, j : j + wd] for j in range(kw)] for i in range(kh)])
    return np.einsum("abnhwi,abio->nhwo", patches, w), patches


def test_forward_is_conv_with_alpha_times_sign():
    rng = np.random.default_rng(0)
    kernel = rng.uniform(-0.5, 0.5, (3, 3, 2, 2)).astype(np.float32)
    kernel[1, 1, 0, 0] = 0.0  # sign(0) = +1
    layer = _layer(kernel, alpha=[0.5, 2.0])
    x = rng.uniform(-1, 1, (2, 4, 4, 2)).astype(np.float32)
    w_hat = np.where(kernel >= 0, 1.0, -1.0) * np.array([0.5, 2.0])
    expected, _ = _conv_same_ones(x, w_hat)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_alpha_starts_at_mean_abs_per_output_channel():
    layer = _layer(KERNEL)
    # (0.1 + 0.2 + 0.3) / 3 = 0.2;  (0.4 + 0.8 + 0.0) / 3 = 0.4
    np.testing.assert_allclose(layer.alpha.numpy(), [0.2, 0.4], rtol=1e-6)


def test_defaults_and_config():
    layer = ReBNNConv2D(8, 3)
    assert (layer.padding, layer.pad_values, layer.use_bias, layer.gamma) == ("same", 1.0, False, 2e-4)
    assert isinstance(layer.kernel_quantizer, lq.quantizers.SteSign)
    assert isinstance(layer.kernel_constraint, lq.constraints.WeightClip)
    config = ReBNNConv2D(8, 3, gamma="adaptive", name="c").get_config()
    assert config["gamma"] == "adaptive"
    assert ReBNNConv2D.from_config(config).get_config() == config
    for bad in ("paper", -1.0, None, True):
        with pytest.raises(ValueError, match="gamma must be"):
            ReBNNConv2D(8, 3, gamma=bad)


# With alpha = [0.25, 0.5] and b = sign(w) = [[1, -1, 1], [-1, 1, 1]] per channel:
# residuals w - alpha * b: c0 = [-0.15, 0.05, 0.05], c1 = [0.1, 0.3, -0.5]
# squared norms: c0 = 0.0275, c1 = 0.35.
ALPHA = [0.25, 0.5]


def test_reconstruction_loss_with_a_float_gamma():
    layer = _layer(KERNEL, gamma=0.5, alpha=ALPHA)
    np.testing.assert_allclose(layer.balance.numpy(), [0.5, 0.5])
    (loss,) = layer.losses  # registered with add_loss
    np.testing.assert_allclose(loss.numpy(), 0.5 / 2 * (0.0275 + 0.35), rtol=1e-5)


def test_reconstruction_loss_and_gradients_with_per_channel_gamma():
    layer = _layer(KERNEL, gamma="adaptive", alpha=ALPHA)
    assert not layer.balance.trainable
    np.testing.assert_array_equal(layer.balance.numpy(), [0.0, 0.0])  # adaptive starts at 0
    layer.balance.assign([1.0, 3.0])
    latent = layer.kernel.latent_variable
    with tf.GradientTape() as tape:
        loss = tf.add_n(layer.losses)
    d_kernel, d_alpha = tape.gradient(loss, [latent, layer.alpha])
    np.testing.assert_allclose(loss.numpy(), 1.0 / 2 * 0.0275 + 3.0 / 2 * 0.35, rtol=1e-5)
    # dL/dw = gamma_c * residual (sign held constant)
    expected_dw = [[-0.15, 0.3], [0.05, 0.9], [0.05, -1.5]]
    np.testing.assert_allclose(d_kernel.numpy().reshape(3, 2), expected_dw, rtol=1e-5, atol=1e-7)
    # dL/dalpha_c = -gamma_c * sum_j b_j * residual_j: c0 = -1 * -0.15, c1 = -3 * (-0.1 + 0.3 - 0.5)
    np.testing.assert_allclose(d_alpha.numpy(), [0.15, 0.9], rtol=1e-5)


def test_adaptive_gamma_two_steps():
    # Kernel (1, 1, 4, 2) at step 1 and step 2. Channel 0 flips 1 of 4 (-0.1 -> 0.0, as
    # sign(0) = +1); 0.0 -> 0.2 is no flip. Channel 1 flips 2 of 4.
    step1 = np.array([[-0.1, 0.3], [0.0, -0.2], [0.5, 0.4], [-0.3, -0.1]], np.float32)
    step2 = np.array([[0.0, -0.1], [0.2, 0.2], [0.4, 0.1], [-0.6, -0.3]], np.float32)
    grad = np.array([[0.2, -0.05], [-0.6, 0.3], [0.1, -0.8], [0.0, 0.4]], np.float32)
    flipped = (step1 >= 0) != (step2 >= 0)
    gamma = adaptive_gamma(flipped.reshape(1, 1, 4, 2), grad.reshape(1, 1, 4, 2))
    # c0: 1/4 * 0.6 = 0.15;  c1: 2/4 * 0.8 = 0.4
    np.testing.assert_allclose(gamma.numpy(), [0.15, 0.4], rtol=1e-6)


def test_oscillation_ratio():
    before = np.array([1, -1, 1, 1, -1, -1, 1, 1])
    after = np.array([1, 1, 1, -1, -1, 1, 1, 1])
    assert float(oscillation_ratio(before, after)) == pytest.approx(3 / 8)
    assert float(oscillation_ratio(before, before)) == 0.0


def _train_model(gamma, kernel, lr):
    inputs = tf.keras.Input((3, 3, 1))
    conv = ReBNNConv2D(2, 3, gamma=gamma, kernel_initializer=_constant(kernel), name="rebnn")
    outputs = tf.keras.layers.GlobalAveragePooling2D()(conv(inputs))
    model = ReBNNModel(inputs, outputs)
    model.compile(tf.keras.optimizers.SGD(lr), "mse")
    return model, conv


def _grad_wrt_binary(x, y, w_hat):
    """dL/dw_hat for GAP(conv(x, w_hat)) under mean squared error, by hand in NumPy."""
    out, patches = _conv_same_ones(x, w_hat)
    pred = out.mean(axis=(1, 2))
    d_pred = 2 * (pred - y) / pred.size
    return np.einsum("no,abni->abio", d_pred, patches.mean(axis=(3, 4)))


def test_rebnn_model_updates_gamma_by_the_rule():
    rng = np.random.default_rng(1)
    kernel = rng.uniform(-0.05, 0.05, (3, 3, 1, 2)).astype(np.float32)
    x = np.where(rng.uniform(size=(4, 3, 3, 1)) > 0.5, 1.0, -1.0).astype(np.float32)
    y = np.array([[2.0, -1.0], [1.5, -2.0], [3.0, 0.5], [-1.0, 1.0]], np.float32)
    model, conv = _train_model("adaptive", kernel, lr=2.0)
    assert rebnn_layers(model) == [conv]
    for step in range(2):
        w0, alpha = conv.kernel.latent_variable.numpy(), conv.alpha.numpy()
        grad = _grad_wrt_binary(x, y, np.where(w0 >= 0, 1.0, -1.0) * alpha)
        model.train_on_batch(x, y)
        w1 = conv.kernel.latent_variable.numpy()
        flip_fraction = ((w0 >= 0) != (w1 >= 0)).reshape(9, 2).mean(axis=0)
        expected = flip_fraction * np.abs(grad).reshape(9, 2).max(axis=0)
        assert expected.max() > 0, f"step {step}: no flip, the test proves nothing"
        np.testing.assert_allclose(conv.balance.numpy(), expected, rtol=1e-4)


def test_constant_gamma_stays_constant():
    rng = np.random.default_rng(1)
    kernel = rng.uniform(-0.05, 0.05, (3, 3, 1, 2)).astype(np.float32)
    model, conv = _train_model(0.125, kernel, lr=2.0)
    x = rng.uniform(-1, 1, (4, 3, 3, 1)).astype(np.float32)
    for _ in range(2):
        model.train_on_batch(x, rng.normal(size=(4, 2)).astype(np.float32))
    assert not np.array_equal(conv.kernel.latent_variable.numpy(), kernel)  # it did train
    np.testing.assert_array_equal(conv.balance.numpy(), [0.125, 0.125])


def test_oscillation_logger_writes_ratios(tmp_path):
    tf.keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    inputs = tf.keras.Input((4, 4, 2))
    x = ReBNNConv2D(2, 3, name="rebnn")(inputs)
    x = lq.layers.QuantConv2D(
        2, 3, padding="same", kernel_quantizer="ste_sign", kernel_constraint="weight_clip", name="plain"
    )(x)
    x = tf.keras.layers.Conv2D(2, 1, name="real")(x)  # not binary: not logged
    model = ReBNNModel(inputs, tf.keras.layers.GlobalAveragePooling2D()(x))
    model.compile(tf.keras.optimizers.SGD(5.0), "mse")
    latent = {n: model.get_layer(n).kernel.latent_variable for n in ("rebnn", "plain")}
    before = {n: v.numpy() >= 0 for n, v in latent.items()}
    history = model.fit(
        rng.uniform(-1, 1, (8, 4, 4, 2)), rng.normal(size=(8, 2)) * 3, batch_size=8, verbose=0,
        callbacks=[OscillationLogger(), tf.keras.callbacks.CSVLogger(tmp_path / "log.csv")],
    ).history
    flips = {n: np.mean(before[n] != (v.numpy() >= 0)) for n, v in latent.items()}
    assert min(flips.values()) > 0, "no flip: the test would prove nothing"
    assert set(history) == {"loss", "oscillation/rebnn", "oscillation/plain", "oscillation/mean"}
    for n in flips:
        assert history[f"oscillation/{n}"][0] == pytest.approx(flips[n])
    assert history["oscillation/mean"][0] == pytest.approx(np.mean(list(flips.values())))
    with open(tmp_path / "log.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["oscillation/rebnn"]) == pytest.approx(flips["rebnn"])


def test_h5_round_trip(tmp_path):
    inputs = tf.keras.Input((4, 4, 32))
    x = RSign()(inputs)
    x = ReBNNConv2D(32, 3, gamma="adaptive", name="adaptive")(x)
    x = ReBNNConv2D(32, 3, gamma=0.125, name="constant")(RSign()(x))
    model = ReBNNModel(inputs, x)
    model.get_layer("adaptive").balance.assign(np.linspace(0, 1, 32))
    model.get_layer("adaptive").alpha.assign(np.linspace(0.1, 2, 32))
    # The probe is training-only: it is no weight, so model files and costs skip it.
    assert [w.name.split("/")[-1] for w in model.get_layer("adaptive").weights] == ["kernel:0", "alpha:0", "gamma:0"]
    model.save(tmp_path / "m.h5")
    loaded = tf.keras.models.load_model(tmp_path / "m.h5")  # no custom_objects
    assert type(loaded) is ReBNNModel
    assert [layer.gamma for layer in rebnn_layers(loaded)] == ["adaptive", 0.125]
    np.testing.assert_array_equal(loaded.get_layer("adaptive").balance.numpy(), np.linspace(0, 1, 32, dtype=np.float32))
    x = np.random.default_rng(3).uniform(-1, 1, (2, 4, 4, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_converts_to_one_lce_bconv2d_counted_as_bops():
    inputs = tf.keras.Input((8, 8, 32))
    sign = RSign()
    x = sign(inputs)
    conv = ReBNNConv2D(32, 3)
    x = tf.keras.layers.BatchNormalization()(conv(x))
    model = ReBNNModel(inputs, x)
    rng = np.random.default_rng(4)
    sign.threshold.assign(rng.uniform(-0.2, 0.2, 32))
    conv.alpha.assign(rng.uniform(0.05, 2.0, 32))  # learned, so no longer mean|W|
    x = rng.uniform(-1, 1, (8, 8, 8, 32)).astype(np.float32)
    flatbuffer, report = convert.convert_and_verify(model, x, min_agreement=1.0)
    assert report["operators"]["LceBconv2d"] == 1
    assert "CONV_2D" not in report["operators"]
    assert report["parity"]["top1_agreement"] == 1.0
    # Outputs reach about 100 (sums of 288 terms of +-alpha_c): they agree to float32
    # rounding of such sums, far below the 2 * alpha_c >= 0.1 of one wrong bit.
    assert report["parity"]["max_abs_diff"] <= 1e-5 * np.abs(model(x).numpy()).max()
    counted = costs.count(model)
    assert (counted.bops, counted.flops) == (8 * 8 * 3 * 3 * 32 * 32, 0)
