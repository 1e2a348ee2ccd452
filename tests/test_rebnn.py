import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from larq_methods import convert, costs, hooks
from larq_methods.methods.reactnet import RSign
from larq_methods.methods.rebnn import ReBNNConv2D, adaptive_gamma, oscillation_ratio

# A 1x1 kernel, 3 inputs -> 2 channels; channel 1 holds an exact 0, whose sign is +1.
KERNEL = np.array([[0.1, -0.4], [-0.2, 0.8], [0.3, 0.0]], np.float32).reshape(1, 1, 3, 2)


def _constant(array):
    return lambda shape, dtype=None: tf.constant(array, dtype=dtype)


def _layer(kernel, gamma=0.5, alpha=None, scale="learned"):
    layer = ReBNNConv2D(kernel.shape[-1], kernel.shape[:2], gamma=gamma, scale=scale, kernel_initializer=_constant(kernel))
    layer.build((None, 4, 4, kernel.shape[2]))
    if alpha is not None:
        layer.alpha.assign(alpha)
    return layer


def _sign(w):
    return np.where(w >= 0, 1.0, -1.0)  # sign(0) = +1


def _conv_same_ones(x, w):
    """Stride-1 convolution in NumPy, padding with +1 as `pad_values=1.0` does."""
    kh, kw = w.shape[:2]
    h, wd = x.shape[1:3]
    p = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), constant_values=1.0)
    patches = np.array([[p[:, i : i + h, j : j + wd] for j in range(kw)] for i in range(kh)])
    return np.einsum("abnhwi,abio->nhwo", patches, w), patches


# -- the authors' released code (scale="code") -------------------------------------------


def _code_case(seed=0):
    """A 3x3 kernel with some |w| > 1, s of both signs, inputs and an output weighting R."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.8, (3, 3, 2, 3)).astype(np.float32)
    w[0, 0, 0, 0], w[1, 1, 1, 2], w[2, 2, 0, 1] = 1.7, -2.3, 0.0  # beyond the clip; sign(0) = +1
    s = np.array([0.9, -1.6, 0.3], np.float32)
    x = rng.uniform(-1, 1, (2, 4, 4, 2)).astype(np.float32)
    r = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    return w, s, x, r


def test_code_forward_is_conv_with_0_02_abs_s_sign_w():
    w, s, x, _ = _code_case()
    layer = _layer(w, gamma=2e-4, alpha=s, scale="code")
    w_hat = 0.02 * np.abs(s) * _sign(w)
    expected, _ = _conv_same_ones(x, w_hat)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(layer.channel_scale().numpy(), 0.02 * np.abs(s), rtol=1e-6)
    assert layer.losses == []  # L_R's gradient is in the backward pass, not a loss


@pytest.mark.parametrize("gamma", [2e-4, 0.3])
def test_code_gradients_match_a_numpy_transcription(gamma):
    """dL/dw = gamma (w - w_hat) + |s| g with no clipping mask, and
    dL/d|s| = sum(g w) - gamma sum((w - w_hat) 0.02 sign(w)), per output channel
    (`2_step2_rebnn/rebnn.py`); dL/ds = sign(s) dL/d|s|. L = sum(R * conv(x, w_hat))."""
    w, s, x, r = _code_case()
    layer = _layer(w, gamma=gamma, alpha=s, scale="code")
    latent = layer.kernel.latent_variable
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(r * layer(x))
    d_w, d_s = tape.gradient(loss, [latent, layer.alpha])

    b = _sign(w)
    w_hat = 0.02 * np.abs(s) * b
    _, patches = _conv_same_ones(x, w_hat)
    g = np.einsum("nhwo,abnhwi->abio", r, patches)  # dL/dw_hat
    expected_w = gamma * (w - w_hat) + np.abs(s) * g
    expected_abs_s = (g * w).sum(axis=(0, 1, 2)) - gamma * ((w - w_hat) * 0.02 * b).sum(axis=(0, 1, 2))
    np.testing.assert_allclose(d_w.numpy(), expected_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d_s.numpy(), np.sign(s) * expected_abs_s, rtol=1e-4, atol=1e-6)
    assert np.all(d_w.numpy()[np.abs(w) > 1] != 0)  # no straight-through clipping mask


def test_code_defaults_follow_the_authors_code():
    layer = _layer(KERNEL, gamma=2e-4, scale="code")
    assert ReBNNConv2D(8, 3).scale == "code" and ReBNNConv2D(8, 3).gamma == 2e-4
    np.testing.assert_array_equal(layer.balance.numpy(), np.float32([2e-4, 2e-4]))
    assert layer.kernel_constraint is None  # latent weights are not clipped
    assert layer.kernel_quantizer.precision == 1 and layer.kernel_quantizer.clip_value is None
    # s starts from a standard normal, and keeps it when a kernel is transferred
    big = ReBNNConv2D(512, 3)
    big.build((None, 4, 4, 8))
    start = big.alpha.numpy()
    assert abs(start.mean()) < 0.15 and 0.85 < start.std() < 1.15
    big.init_alpha()
    np.testing.assert_array_equal(big.alpha.numpy(), start)


def test_code_reconstruction_loss_value():
    w, s, _, _ = _code_case()
    layer = _layer(w, gamma=0.3, alpha=s, scale="code")
    residual = w - 0.02 * np.abs(s) * _sign(w)
    np.testing.assert_allclose(layer.reconstruction_loss().numpy(), 0.3 / 2 * np.sum(residual**2), rtol=1e-5)


# -- our learned scale (scale="learned") ---------------------------------------------------


def test_learned_forward_is_conv_with_alpha_times_sign():
    rng = np.random.default_rng(0)
    kernel = rng.uniform(-0.5, 0.5, (3, 3, 2, 2)).astype(np.float32)
    kernel[1, 1, 0, 0] = 0.0  # sign(0) = +1
    layer = _layer(kernel, alpha=[0.5, 2.0])
    x = rng.uniform(-1, 1, (2, 4, 4, 2)).astype(np.float32)
    expected, _ = _conv_same_ones(x, _sign(kernel) * np.array([0.5, 2.0]))
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_alpha_starts_at_mean_abs_per_output_channel():
    layer = _layer(KERNEL)
    # (0.1 + 0.2 + 0.3) / 3 = 0.2;  (0.4 + 0.8 + 0.0) / 3 = 0.4
    np.testing.assert_allclose(layer.alpha.numpy(), [0.2, 0.4], rtol=1e-6)


def test_defaults_and_config():
    layer = ReBNNConv2D(8, 3, scale="learned")
    assert (layer.padding, layer.pad_values, layer.use_bias, layer.gamma) == ("same", 1.0, False, 2e-4)
    assert isinstance(layer.kernel_quantizer, lq.quantizers.SteSign) and layer.kernel_quantizer.clip_value == 1.0
    assert isinstance(layer.kernel_constraint, lq.constraints.WeightClip)
    for scale in ("code", "learned"):
        config = ReBNNConv2D(8, 3, gamma="adaptive", scale=scale, name="c").get_config()
        assert (config["gamma"], config["scale"]) == ("adaptive", scale)
        assert ReBNNConv2D.from_config(config).get_config() == config
    for bad in ("paper", -1.0, None, True):
        with pytest.raises(ValueError, match="gamma must be"):
            ReBNNConv2D(8, 3, gamma=bad)
    with pytest.raises(ValueError, match="scale must be one of code, learned"):
        ReBNNConv2D(8, 3, scale="mean")


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


# -- the adaptive gamma, through the training hook -----------------------------------------


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


def _model(gamma, kernel, scale="learned", s=None):
    inputs = tf.keras.Input((3, 3, 1))
    conv = ReBNNConv2D(2, 3, gamma=gamma, scale=scale, kernel_initializer=_constant(kernel), name="rebnn")
    outputs = tf.keras.layers.GlobalAveragePooling2D()(conv(inputs))
    model = tf.keras.Model(inputs, outputs)  # a plain functional model: the hook does the rest
    if s is not None:
        conv.alpha.assign(s)
    return model, conv


def _hooked_step(model, optimizer, x, y):
    """One training step as `hooks` specifies it: watch the hook variables, take their
    gradients from the same tape, and call before_update / after_update around the update."""
    layers = hooks.hooked_layers(model)
    watched = [layer.hook_variables() for layer in layers]
    extra = [v for vs in watched for v in vs]
    with tf.GradientTape() as tape:
        tape.watch(extra)
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y)) + tf.add_n([0.0, *model.losses])
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables + extra)
    states = [layer.before_update() for layer in layers]
    optimizer.apply_gradients(zip(grads[: len(variables)], variables))
    extra_grads = grads[len(variables) :]
    for layer, state, vs in zip(layers, states, watched):
        layer.after_update(state, extra_grads[: len(vs)])
        extra_grads = extra_grads[len(vs) :]


def _grad_wrt_binary(x, y, w_hat):
    """dL/dw_hat for GAP(conv(x, w_hat)) under mean squared error, by hand in NumPy."""
    out, patches = _conv_same_ones(x, w_hat)
    pred = out.mean(axis=(1, 2))
    d_pred = 2 * (pred - y) / pred.size
    return np.einsum("no,abni->abio", d_pred, patches.mean(axis=(3, 4)))


@pytest.mark.parametrize("scale", ["learned", "code"])
def test_hooks_update_adaptive_gamma_by_the_rule(scale):
    rng = np.random.default_rng(1)
    kernel = rng.uniform(-0.05, 0.05, (3, 3, 1, 2)).astype(np.float32)
    x = np.where(rng.uniform(size=(4, 3, 3, 1)) > 0.5, 1.0, -1.0).astype(np.float32)
    y = np.array([[2.0, -1.0], [1.5, -2.0], [3.0, 0.5], [-1.0, 1.0]], np.float32)
    model, conv = _model("adaptive", kernel, scale, s=[30.0, -45.0] if scale == "code" else None)
    assert hooks.hooked_layers(model) == [conv] and conv.hook_variables() == [conv.probe]
    optimizer = tf.keras.optimizers.SGD(2.0)
    for step in range(2):
        w0 = conv.kernel.latent_variable.numpy()
        grad = _grad_wrt_binary(x, y, _sign(w0) * conv.channel_scale().numpy())
        _hooked_step(model, optimizer, x, y)
        w1 = conv.kernel.latent_variable.numpy()
        flip_fraction = ((w0 >= 0) != (w1 >= 0)).reshape(9, 2).mean(axis=0)
        expected = flip_fraction * np.abs(grad).reshape(9, 2).max(axis=0)
        assert expected.max() > 0, f"step {step}: no flip, the test proves nothing"
        np.testing.assert_allclose(conv.balance.numpy(), expected, rtol=1e-4)


def test_constant_gamma_needs_no_hook_and_stays_constant():
    rng = np.random.default_rng(1)
    kernel = rng.uniform(-0.05, 0.05, (3, 3, 1, 2)).astype(np.float32)
    model, conv = _model(0.125, kernel)
    assert conv.hook_variables() == [] and conv.before_update() is None
    x = rng.uniform(-1, 1, (4, 3, 3, 1)).astype(np.float32)
    optimizer = tf.keras.optimizers.SGD(2.0)
    for _ in range(2):
        _hooked_step(model, optimizer, x, rng.normal(size=(4, 2)).astype(np.float32))
    assert not np.array_equal(conv.kernel.latent_variable.numpy(), kernel)  # it did train
    np.testing.assert_array_equal(conv.balance.numpy(), [0.125, 0.125])


# -- saving and conversion -------------------------------------------------------------------


def test_h5_round_trip(tmp_path):
    inputs = tf.keras.Input((4, 4, 32))
    x = RSign()(inputs)
    x = ReBNNConv2D(32, 3, gamma="adaptive", scale="learned", name="adaptive")(x)
    x = ReBNNConv2D(32, 3, gamma=0.125, name="constant")(RSign()(x))
    model = tf.keras.Model(inputs, x)
    model.get_layer("adaptive").balance.assign(np.linspace(0, 1, 32))
    model.get_layer("adaptive").alpha.assign(np.linspace(0.1, 2, 32))
    # The probe is training-only: it is no weight, so model files and costs skip it.
    assert [w.name.split("/")[-1] for w in model.get_layer("adaptive").weights] == ["kernel:0", "alpha:0", "gamma:0"]
    model.save(tmp_path / "m.h5")
    loaded = tf.keras.models.load_model(tmp_path / "m.h5")  # no custom_objects
    assert [(layer.gamma, layer.scale) for layer in loaded.layers if isinstance(layer, ReBNNConv2D)] == [("adaptive", "learned"), (0.125, "code")]
    np.testing.assert_array_equal(loaded.get_layer("adaptive").balance.numpy(), np.linspace(0, 1, 32, dtype=np.float32))
    x = np.random.default_rng(3).uniform(-1, 1, (2, 4, 4, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


@pytest.mark.parametrize("scale", ["code", "learned"])
def test_converts_to_one_lce_bconv2d_counted_as_bops(scale):
    inputs = tf.keras.Input((8, 8, 32))
    sign = RSign()
    x = sign(inputs)
    conv = ReBNNConv2D(32, 3, scale=scale, gamma="adaptive")
    x = tf.keras.layers.BatchNormalization()(conv(x))
    model = tf.keras.Model(inputs, x)
    rng = np.random.default_rng(4)
    sign.threshold.assign(rng.uniform(-0.2, 0.2, 32))
    conv.alpha.assign(rng.uniform(0.05, 2.0, 32) * (50 if scale == "code" else 1))  # learned scales
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
