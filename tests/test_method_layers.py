"""INSTA-BNN, DyBNN and FTBNN layers against independent NumPy formulas."""

from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from larq_methods.methods import dybnn, ftbnn, insta, reactnet

RNG = np.random.default_rng(0)
X = RNG.normal(0.3, 1.0, (3, 4, 5, 6)).astype(np.float32)  # N, H, W, C


def np_sign(v):
    return np.where(v >= 0, 1.0, -1.0)


def np_stats(x):
    m1 = x.mean(axis=(1, 2), keepdims=True)
    m3 = np.cbrt((x**3).mean(axis=(1, 2), keepdims=True))
    return m1, m3


def np_prelu(y, slope):
    return np.maximum(y, 0) + slope * np.minimum(y, 0)


def build(layer, x=X):
    layer(x[:1], training=False)
    return layer


def randomise(layer, scale=0.5):
    """Non-zero values for every weight (thresholds, scales, FCs, moving statistics)."""
    for w in layer.weights:
        w.assign(RNG.normal(0, scale, w.shape).astype(np.float32))
    return layer


def test_instance_statistics_cube_root_keeps_sign_and_units():
    x = np.zeros((1, 1, 4, 2), np.float32)
    x[0, 0, :, 0] = [1, 2, 3, 6]  # mean of cubes 63 -> cube root 3.979
    x[0, 0, :, 1] = [-2, -2, -2, -2]  # cube root of -8 is -2
    layer = build(insta.InstaThreshold(), x)
    m1, m3 = layer.centred_statistics(tf.constant(x), training=False)  # moving means are 0
    np.testing.assert_allclose(m1.numpy().ravel(), [3.0, -2.0], rtol=1e-6)
    np.testing.assert_allclose(m3.numpy().ravel(), [63 ** (1 / 3), -2.0], rtol=1e-5)


def test_insta_threshold_inference_matches_numpy():
    layer = randomise(build(insta.InstaThreshold()))
    m1, m3 = np_stats(X)
    a, b, d = layer.threshold.numpy(), layer.mean_scale.numpy(), layer.moment3_scale.numpy()
    M1, M3 = (m.numpy() for m in layer.moving_means)
    t = a + b * (m1 - M1) + d * (m3 - M3)
    np.testing.assert_array_equal(layer(X, training=False).numpy(), np_sign(X - t))


def test_insta_threshold_training_uses_batch_statistics_and_updates_moving_averages():
    layer = randomise(build(insta.InstaThreshold()))
    before = [m.numpy().copy() for m in layer.moving_means]
    m1, m3 = np_stats(X)
    B1, B3 = m1.mean(axis=0).ravel(), m3.mean(axis=0).ravel()
    a, b, d = layer.threshold.numpy(), layer.mean_scale.numpy(), layer.moment3_scale.numpy()
    out = layer(X, training=True).numpy()
    np.testing.assert_array_equal(out, np_sign(X - (a + b * (m1 - B1) + d * (m3 - B3))))
    np.testing.assert_allclose(layer.moving_means[0].numpy(), 0.99 * before[0] + 0.01 * B1, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_means[1].numpy(), 0.99 * before[1] + 0.01 * B3, rtol=1e-5)


def test_insta_threshold_plus_matches_numpy():
    layer = randomise(build(insta.InstaThresholdPlus()))
    assert layer.fc1.units == 8  # max(6 // 16, 8)
    m1, m3 = np_stats(X)
    M1, M3 = (m.numpy() for m in layer.moving_means)
    stats = np.concatenate([m1 - M1, m3 - M3], axis=-1)[:, 0, 0, :]
    w1, b1 = layer.fc1.get_weights()
    w2, b2 = layer.fc2.get_weights()
    shift = (np.maximum(stats @ w1 + b1, 0) @ w2 + b2)[:, None, None, :]
    expected = np_sign(X - (layer.threshold.numpy() + shift))
    np.testing.assert_array_equal(layer(X, training=False).numpy(), expected)


def test_insta_prelu_matches_numpy():
    layer = randomise(build(insta.InstaPReLU()))
    m1, _ = np_stats(X)
    c = m1 - layer.moving_means[0].numpy()
    g = layer.gamma.numpy() + layer.gamma_scale.numpy() * c
    z = layer.zeta.numpy() + layer.zeta_scale.numpy() * c
    expected = np_prelu(X - g, layer.slope.numpy()) + z
    np.testing.assert_allclose(layer(X, training=False).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_dysign_and_dyprelu_match_numpy():
    sign = randomise(build(dybnn.DySign()))
    h = np.maximum(X.mean(axis=(1, 2)) @ sign.fc1.kernel.numpy() + sign.fc1.bias.numpy(), 0)
    w2, b2 = sign.heads[0].get_weights()
    t = sign.threshold.numpy() + (h @ w2 + b2)[:, None, None, :]
    np.testing.assert_array_equal(sign(X).numpy(), np_sign(X - t))

    prelu = randomise(build(dybnn.DyPReLU()))
    h = np.maximum(X.mean(axis=(1, 2)) @ prelu.fc1.kernel.numpy() + prelu.fc1.bias.numpy(), 0)
    (w3, b3), (w4, b4) = (head.get_weights() for head in prelu.heads)
    g = prelu.gamma.numpy() + (h @ w3 + b3)[:, None, None, :]
    z = prelu.zeta.numpy() + (h @ w4 + b4)[:, None, None, :]
    np.testing.assert_allclose(prelu(X).numpy(), np_prelu(X - g, prelu.slope.numpy()) + z, rtol=1e-5, atol=1e-6)


def test_fprelu_hand_computed():
    layer = build(ftbnn.FPReLU(), np.zeros((1, 1, 1, 2), np.float32))
    layer.positive_slope.assign([2.0, 0.5])
    layer.negative_slope.assign([0.25, -1.0])
    x = np.array([[3.0, -2.0], [-4.0, 6.0]], np.float32)[:, None, None, :]
    # [2*3, -1*-2] and [0.25*-4, 0.5*6]
    np.testing.assert_allclose(layer(x).numpy().reshape(2, 2), [[6.0, 2.0], [-1.0, 3.0]])


@pytest.mark.parametrize(
    "dynamic, static",
    [(insta.InstaThreshold, reactnet.RSign), (insta.InstaThresholdPlus, reactnet.RSign), (dybnn.DySign, reactnet.RSign),
     (insta.InstaPReLU, reactnet.RPReLU), (dybnn.DyPReLU, reactnet.RPReLU)],  # fmt: skip
)
def test_dynamic_modules_equal_static_counterparts_at_initialisation(dynamic, static):
    dyn = build(dynamic())
    for m in getattr(dyn, "moving_means", []):  # statistics away from zero must not matter
        m.assign(RNG.normal(0, 1, m.shape).astype(np.float32))
    ref = build(static())
    # give both the same shared parameters
    for name in ("threshold", "gamma", "zeta"):
        if hasattr(ref, name):
            value = RNG.normal(0, 0.3, getattr(ref, name).shape).astype(np.float32)
            getattr(ref, name).assign(value)
            getattr(dyn, name).assign(value)
    for training in (False, True):
        np.testing.assert_allclose(dyn(X, training=training).numpy(), ref(X).numpy(), atol=1e-6)


def _grads(layer, x=X, training=True):
    """Gradients of a random projection of the output, by variable name."""
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x, training=training) * RNG.normal(size=x.shape).astype(np.float32))
    grads = tape.gradient(y, layer.trainable_weights)
    return {w.name: g.numpy() for w, g in zip(layer.trainable_weights, grads)}


@pytest.mark.parametrize("cls", [insta.InstaThreshold, insta.InstaThresholdPlus, dybnn.DySign, insta.InstaPReLU, dybnn.DyPReLU])
def test_gradients_reach_thresholds_and_hyper_functions(cls):
    layer = build(cls())
    grads = _grads(layer)
    for name in ("threshold", "mean_scale", "moment3_scale", "gamma", "zeta", "gamma_scale", "zeta_scale"):
        if hasattr(layer, name):
            assert np.any(grads[getattr(layer, name).name] != 0), name
    if hasattr(layer, "fc1"):
        # zero-initialised output FCs get gradients first; FC1 once they are non-zero
        heads = [layer.fc2] if hasattr(layer, "fc2") else layer.heads
        for head in heads:
            assert np.any(grads[head.kernel.name] != 0)
            head.kernel.assign(RNG.normal(0, 0.5, head.kernel.shape).astype(np.float32))
        assert np.any(_grads(layer)[layer.fc1.kernel.name] != 0)


@pytest.mark.parametrize("cls", [insta.InstaThreshold, insta.InstaThresholdPlus, insta.InstaPReLU, dybnn.DySign, dybnn.DyPReLU, ftbnn.FPReLU])
def test_config_round_trip_and_plain_load_model(cls, tmp_path):
    inputs = tf.keras.Input(X.shape[1:])
    model = tf.keras.Model(inputs, cls(name="probe")(inputs))
    randomise(model.get_layer("probe"))
    assert cls.from_config(model.get_layer("probe").get_config()).get_config() == model.get_layer("probe").get_config()
    model.save(tmp_path / "m.h5")
    loaded = tf.keras.models.load_model(tmp_path / "m.h5")
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))


# -- INSTA's numerics ------------------------------------------------------------------------


def test_moving_statistics_start_from_the_first_batch():
    layer = build(insta.InstaThreshold())
    np.testing.assert_array_equal(layer.moving_means[0].numpy(), 0.0)  # a new layer
    m1, m3 = np_stats(X)
    layer(X, training=True)
    np.testing.assert_allclose(layer.moving_means[0].numpy(), m1.mean(axis=0).ravel(), rtol=1e-6)
    np.testing.assert_allclose(layer.moving_means[1].numpy(), m3.mean(axis=0).ravel(), rtol=1e-5)
    first = [m.numpy().copy() for m in layer.moving_means]
    second = X[::-1, ::-1] * 1.5 + 0.2  # another batch: from now on, the moving average
    n1, n3 = np_stats(second)
    layer(second, training=True)
    np.testing.assert_allclose(layer.moving_means[0].numpy(), 0.99 * first[0] + 0.01 * n1.mean(axis=0).ravel(), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_means[1].numpy(), 0.99 * first[1] + 0.01 * n3.mean(axis=0).ravel(), rtol=1e-5)


def _insta_model():
    inputs = tf.keras.Input(X.shape[1:])
    x = insta.InstaThreshold(name="th")(inputs)
    x = tf.keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    x = insta.InstaPReLU(name="act")(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(2)(tf.keras.layers.GlobalAveragePooling2D()(x)))


def test_inference_after_20_steps_matches_exactly_computed_statistics():
    """20 training steps on one batch: the inference statistics must be that batch's, so
    that inference computes what training did. (Started at zero, they would hold
    1 - 0.99^20 = 18% of it.) The layers in front of INSTA-PReLU are frozen, so that the
    statistics it sees do not move with training."""
    model = _insta_model()
    for name in ("th", "act"):  # the instance terms must matter
        layer = model.get_layer(name)
        for w in layer.trainable_weights:
            w.assign(RNG.normal(0, 0.5, w.shape).astype(np.float32))
    model.get_layer("th").trainable = model.get_layer("conv").trainable = False
    optimizer = tf.keras.optimizers.SGD(0.01)
    y = RNG.normal(size=(len(X), 2)).astype(np.float32)
    for _ in range(20):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(X, training=True) - y))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

    exact = _insta_model()
    exact.set_weights(model.get_weights())
    m1, m3 = np_stats(X)
    th, act = exact.get_layer("th"), exact.get_layer("act")
    th.moving_means[0].assign(m1.mean(axis=0).ravel())
    th.moving_means[1].assign(m3.mean(axis=0).ravel())
    h = exact.get_layer("conv")(th(X, training=False)).numpy()
    act.moving_means[0].assign(h.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(model.get_layer("th").moving_means[1].numpy(), th.moving_means[1].numpy(), rtol=1e-5)
    np.testing.assert_allclose(model(X, training=False), exact(X, training=False), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(X, training=False), model(X, training=True), rtol=1e-5, atol=1e-6)
    # the zero-started averages of before would not have matched
    for m in act.moving_means + th.moving_means:
        m.assign(m * (1 - 0.99**20))
    assert not np.allclose(model(X, training=False), exact(X, training=False), rtol=1e-2)


def test_mean_cube_values_and_gradient_by_hand():
    """mean_HW(x^3) with the gradient 3 x^2 / HW, per instance and channel (a 1x2x2x2 input)."""
    x = tf.constant([[[[1.0, -2.0], [3.0, 0.5]], [[-1.0, 2.0], [0.0, 1.0]]]])  # H, W = 2, 2
    weights = tf.constant([[[[2.0, -1.0]]]])  # dL/d(mean) per channel
    with tf.GradientTape() as tape:
        tape.watch(x)
        cube = insta.mean_cube(x)
        loss = tf.reduce_sum(cube * weights)
    # channel 0: (1 + 27 - 1 + 0) / 4 = 6.75; channel 1: (-8 + 0.125 + 8 + 1) / 4 = 0.28125
    np.testing.assert_allclose(cube.numpy().ravel(), [6.75, 0.28125], rtol=1e-7)
    expected = 3 * x.numpy() ** 2 / 4 * np.array([2.0, -1.0])
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), expected, rtol=1e-7)


@pytest.mark.parametrize("cls", [insta.InstaThreshold, insta.InstaThresholdPlus])
def test_insta_statistics_train_as_automatic_differentiation_would(cls):
    """The custom gradient of the third moment changes no gradient of the INSTA layers."""
    x = tf.constant(np.random.RandomState(0).normal(size=(4, 5, 5, 8)), tf.float32)
    layer = cls()
    layer.build(x.shape)
    for i, w in enumerate(layer.trainable_weights):
        w.assign(np.random.RandomState(i + 1).normal(0, 0.3, w.shape))
    weights = tf.constant(np.random.RandomState(9).normal(size=x.shape), tf.float32)
    grads = []
    for stats in (insta.mean_cube, lambda x: tf.reduce_mean(x * x * x, axis=[1, 2], keepdims=True)):
        with mock.patch.object(insta, "mean_cube", stats), tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=False) * weights)
        grads.append(tape.gradient(loss, [x, *layer.trainable_weights]))
    for ours, autodiff in zip(*grads):
        np.testing.assert_allclose(ours.numpy(), autodiff.numpy(), rtol=1e-5, atol=1e-6)


def test_cube_root_gradient_is_bounded_and_exact_away_from_zero():
    y = tf.constant([0.0, 1e-30, -1e-12, 1e-6, -5e-4, 1e-3, -0.02, 8.0, -27.0])
    with tf.GradientTape() as tape:
        tape.watch(y)
        root = insta.cube_root(y)
    grad = tape.gradient(root, y).numpy()
    np.testing.assert_allclose(root.numpy(), np.cbrt(y.numpy()), rtol=1e-6)
    bound = 1 / (3 * insta.CUBE_ROOT_FLOOR ** (2 / 3))  # 33.3
    np.testing.assert_allclose(grad[:5], bound, rtol=1e-5)  # |y| < 1e-3: clipped
    np.testing.assert_allclose(grad[5:], 1 / (3 * np.abs(y.numpy()[5:]) ** (2 / 3)), rtol=1e-5)  # exact
    # Through INSTA-Th, a channel whose mean cube is 0 gives a finite, bounded gradient.
    x = tf.constant(np.tile([1.0, -1.0, 2.0, -2.0], 4).reshape(1, 4, 4, 1), tf.float32)
    layer = insta.InstaThreshold()
    layer.build(x.shape)
    layer.moment3_scale.assign([1.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=False)
    grad = tape.gradient(out, x).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() < 3 * bound
