import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from larq_methods.layers import BinaryConv2D

from larq_methods.methods.plain import HardTanh

from larq_methods.methods.reactnet import RPReLU, RSign


def _rsign(threshold):
    layer = RSign()
    layer.build((None, len(threshold)))
    layer.threshold.assign(threshold)
    return layer


def test_rsign_forward_hand_computed():
    layer = _rsign([0.4, -0.2])
    x = tf.constant([[0.3, -0.2], [0.5, 0.1], [-3.0, 5.0]])
    # x - a = [[-0.1, 0.0], [0.1, 0.3], [-3.4, 5.2]]; sign(0) = +1
    expected = [[-1.0, 1.0], [1.0, 1.0], [-1.0, 1.0]]
    np.testing.assert_array_equal(layer(x).numpy(), expected)


def test_rsign_gradient_is_approx_sign():
    layer = _rsign([0.4, -0.2])
    x = tf.constant([[0.3, -0.2], [0.5, 0.1], [1.9, 0.3]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
    # x - a = [[-0.1, 0.0], [0.1, 0.3], [1.5, 0.5]] -> 2 - 2|x - a| inside |x - a| <= 1
    dx = [[1.8, 2.0], [1.8, 1.4], [0.0, 1.0]]
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), dx, rtol=1e-6)
    # y depends on x - a, so dy/da = -dy/dx, summed over the batch
    np.testing.assert_allclose(tape.gradient(y, layer.threshold).numpy(), [-3.6, -4.4], rtol=1e-6)


def _rprelu(gamma, slope, zeta):
    layer = RPReLU()
    layer.build((None, 1, 1, len(gamma)))
    layer.gamma.assign(gamma)
    layer.slope.assign(np.reshape(slope, (1, 1, -1)))
    layer.zeta.assign(zeta)
    return layer


def test_rprelu_forward_hand_computed():
    layer = _rprelu(gamma=[0.5, 1.0], slope=[0.25, 0.1], zeta=[0.2, -0.3])
    x = tf.constant([[-1.0, 2.0], [1.0, 0.5]])[:, None, None, :]
    # c0: -1 - 0.5 = -1.5 -> 0.25 * -1.5 + 0.2 = -0.175;   1 - 0.5 = 0.5 -> 0.5 + 0.2 = 0.7
    # c1:  2 - 1.0 =  1.0 -> 1.0 - 0.3 = 0.7;  0.5 - 1 = -0.5 -> 0.1 * -0.5 - 0.3 = -0.35
    expected = np.array([[-0.175, 0.7], [0.7, -0.35]])[:, None, None, :]
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-6)


def test_rprelu_gradients_hand_computed():
    layer = _rprelu(gamma=[0.5, 1.0], slope=[0.25, 0.1], zeta=[0.2, -0.3])
    x = tf.constant([[-1.0, 2.0], [1.0, 0.5]])[:, None, None, :]
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x))
    d_gamma, d_slope, d_zeta = tape.gradient(y, [layer.gamma, layer.slope, layer.zeta])
    # d/dgamma = -1 (positive side) or -slope (negative side); d/dslope = min(x - gamma, 0)
    np.testing.assert_allclose(d_gamma.numpy(), [-0.25 - 1.0, -1.0 - 0.1], rtol=1e-6)
    np.testing.assert_allclose(d_slope.numpy().ravel(), [-1.5, -0.5], rtol=1e-6)
    np.testing.assert_allclose(d_zeta.numpy(), [2.0, 2.0], rtol=1e-6)


def test_initial_state_is_sign_and_prelu():
    x = tf.constant(np.linspace(-2, 2, 24, dtype=np.float32).reshape(1, 2, 3, 4))
    np.testing.assert_array_equal(RSign()(x).numpy(), np.where(x.numpy() >= 0, 1.0, -1.0))
    np.testing.assert_allclose(
        RPReLU()(x).numpy(), tf.keras.layers.PReLU(tf.keras.initializers.Constant(0.25))(x).numpy()
    )


def test_hard_tanh_clips_to_minus_one_one_hand_computed():
    x = tf.constant([[-2.5, -1.0, -0.3, 0.0, 0.7, 1.0, 4.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = HardTanh()(x)
    np.testing.assert_allclose(y.numpy(), [[-1.0, -1.0, -0.3, 0.0, 0.7, 1.0, 1.0]])
    # slope 1 inside [-1, 1] (tf.clip_by_value passes the bounds themselves), 0 outside
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [[0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]])


@pytest.mark.parametrize("cls", [RSign, RPReLU, HardTanh])
def test_config_round_trip_and_plain_load_model(cls, tmp_path):
    layer = cls.from_config(cls(name="probe").get_config())
    assert layer.get_config() == cls(name="probe").get_config()

    inputs = tf.keras.Input((4, 4, 3))
    model = tf.keras.Model(inputs, cls()(inputs))
    for w in model.weights:
        w.assign(w + tf.random.normal(w.shape, seed=1))
    x = tf.random.normal((2, 4, 4, 3), seed=2)
    for name in ("m.h5", "m.keras"):
        model.save(tmp_path / name)
        loaded = tf.keras.models.load_model(tmp_path / name)  # no custom_objects
        np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_rprelu_slope_initializer_is_configurable():
    layer = RPReLU(slope_initializer=0.1)
    layer.build((None, 2, 2, 3))
    np.testing.assert_allclose(layer.slope.numpy().ravel(), [0.1] * 3)
    assert RPReLU.from_config(layer.get_config()).slope_initializer == 0.1


def test_layers_work_in_larq_summary(capsys):
    inputs = tf.keras.Input((8, 8, 4))
    x = RSign()(inputs)
    x = lq.layers.QuantConv2D(4, 3, padding="same", pad_values=1.0, kernel_quantizer="ste_sign", kernel_constraint="weight_clip")(x)
    x = RPReLU()(x)
    lq.models.summary(tf.keras.Model(inputs, x))
    out = capsys.readouterr().out
    assert "r_sign" in out and "rp_re_lu" in out


def test_blurpool_matches_the_binomial_filter():
    from larq_methods.initializers import BlurPool

    kernel = BlurPool()((3, 3, 2, 1)).numpy()
    expected = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    np.testing.assert_allclose(kernel[:, :, 0, 0], expected)
    np.testing.assert_allclose(kernel[:, :, 1, 0], expected)
    with pytest.raises(ValueError, match="size 2, 3 or 5"):
        BlurPool()((4, 4, 1, 1))


def test_every_sign_layer_shares_the_binary_sign_base():
    from larq_methods.methods import gaaf
    from larq_methods.methods import dybnn, insta, plain, reactnet
    from larq_methods.quantizers import BinarySign, is_binary

    signs = [plain.Sign(), reactnet.RSign(), insta.InstaThreshold(), insta.InstaThresholdPlus(), dybnn.DySign(), gaaf.GAAFSign("add(sin,x)")]
    assert all(isinstance(s, BinarySign) and is_binary(s) for s in signs)
    assert all("precision" not in vars(type(s)) for s in signs)  # declared once, in the base
    # larq's own quantizers, as layers or kernel quantizers, are binary too; nothing else is
    assert is_binary(lq.quantizers.ApproxSign()) and is_binary(lq.quantizers.SteSign(clip_value=None))
    assert not any(is_binary(o) for o in (RPReLU(), insta.InstaPReLU(), lq.quantizers.ste_sign, None, lq.quantizers.NoOp(precision=8)))


def test_fused_approx_sign_equals_larqs_forward_and_backward():
    from larq_methods.quantizers import approx_sign

    rng = np.random.default_rng(0)
    edges = [-2.0, -1.0, -1.0 + 1e-7, -0.5, -1e-30, 0.0, 1e-30, 0.5, 1.0 - 1e-7, 1.0, 1.5, 3.0]
    x = tf.constant(np.concatenate([edges, rng.normal(0, 1, 4096)]).astype(np.float32))
    dy = tf.constant(rng.normal(0, 1, x.shape).astype(np.float32))
    grads = []
    for sign in (approx_sign, lq.quantizers.approx_sign):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = sign(x)
        grads.append((y.numpy(), tape.gradient(y, x, output_gradients=dy).numpy()))
    (ours, our_grad), (larqs, larq_grad) = grads
    np.testing.assert_array_equal(ours, larqs)  # sign(0) = +1 in both
    np.testing.assert_array_equal(our_grad, larq_grad)  # bit for bit (+0 and -0 compare equal)
    assert our_grad[edges.index(0.5)] == dy.numpy()[edges.index(0.5)]  # 2 - 2 * 0.5 = 1
    assert our_grad[edges.index(1.5)] == 0 and our_grad[edges.index(1.0)] == 0


def test_dyprelu_trains_its_heads_in_one_product_with_the_same_values():
    from larq_methods.methods.dybnn import DyPReLU

    layer = DyPReLU()
    x = tf.constant(np.random.default_rng(1).normal(0, 1, (4, 5, 5, 16)).astype(np.float32))
    layer.build(x.shape)
    for i, head in enumerate(layer.heads):  # non-zero heads, so that both terms matter
        head.kernel.assign(np.random.default_rng(2 + i).normal(0, 0.3, head.kernel.shape))
        head.bias.assign(np.random.default_rng(4 + i).normal(0, 0.3, head.bias.shape))
    outputs, grads = [], []
    for training in (True, False):
        with tf.GradientTape() as tape:
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * y)
        outputs.append(y.numpy())
        grads.append([g.numpy() for g in tape.gradient(loss, layer.trainable_weights)])
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-6, atol=1e-6)
    for fused, separate in zip(*grads):
        np.testing.assert_allclose(fused, separate, rtol=1e-5, atol=1e-6)


def _conv_pair(kernel_size, strides, channels, groups, quantizer, dilation=1):
    """Our BinaryConv2D and larq's QuantConv2D, built alike with the same weights."""
    config = dict(
        filters=4 * groups, kernel_size=kernel_size, strides=strides, padding="same", pad_values=1.0,
        groups=groups, kernel_quantizer=quantizer, use_bias=False, dilation_rate=dilation,
    )  # fmt: skip
    ours, theirs = BinaryConv2D(**config), lq.layers.QuantConv2D(**config)
    shape = (None, 7, 7, channels)
    ours.build(shape), theirs.build(shape)
    ours.kernel.assign(tf.random.normal(ours.kernel.shape, seed=3))
    theirs.set_weights(ours.get_weights())
    return ours, theirs


@pytest.mark.parametrize(
    "kernel_size,strides,size,groups,quantizer,dilation",
    [
        (3, 1, 7, 1, "magnitude_aware_sign", 1), (3, 2, 7, 1, "magnitude_aware_sign", 1),  # odd size, stride 2
        (3, 2, 8, 1, "ste_sign", 1), (5, 1, 6, 1, None, 1),  # even size: TF pads one more below
        (3, 1, 6, 2, "magnitude_aware_sign", 1), (3, 2, 7, 4, "ste_sign", 1),  # grouped
        (1, 1, 5, 1, "magnitude_aware_sign", 1),  # no padding
        (3, 1, 7, 1, "ste_sign", 2),  # dilated
    ],
)  # fmt: skip
def test_binary_conv_trains_padding_with_ones_exactly_as_larq_pads(kernel_size, strides, size, groups, quantizer, dilation):
    """In training, the zero-padded convolution plus the border's term equals larq's
    explicit padding with ones, forward and backward (input and kernel gradients); at
    inference it is larq's own op, bit for bit. The border's term is a matrix product, not
    a convolution of one channel, whose oneDNN weight gradient corrupted the heap: the
    training graph holds one convolution per group."""
    channels = 8 * groups
    ours, theirs = _conv_pair(kernel_size, strides, channels, groups, quantizer, dilation)
    x = lq.math.sign(tf.random.normal((2, size, size, channels), seed=4))
    weights = tf.random.normal(theirs(x).shape, seed=5)
    outputs = []
    for layer, kwargs in ((ours, {"training": True}), (theirs, {})):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, **kwargs)
            loss = tf.reduce_sum(y * weights)
        outputs.append((y, *tape.gradient(loss, [x, layer.kernel])))
    for a, b in zip(*outputs):
        scale = float(tf.reduce_max(tf.abs(b)))
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6 * scale)
    np.testing.assert_array_equal(ours(x, training=False).numpy(), theirs(x).numpy())
    graph = tf.function(lambda x: ours(x, training=True)).get_concrete_function(x).graph
    assert [op.type for op in graph.get_operations()].count("Conv2D") == groups


def _xla_compiled_functions(fn, *args) -> list[str]:
    """Names of the functions in `fn`'s graph that TensorFlow must compile with XLA."""
    graph = fn.get_concrete_function(*args).graph.as_graph_def()
    return [f.signature.name for f in graph.library.function if f.attr["_XlaMustCompile"].b]


@pytest.mark.parametrize("pad_values", [1.0, 0.0])  # binary, and a float counterpart's zero padding
def test_grouped_binary_conv_trains_per_group_without_xla(pad_values):
    """tf-keras compiles a grouped convolution with XLA (3x slower training on CPU); ours
    trains one convolution per group, with the same values and gradients, and keeps
    tf-keras' compiled op at inference."""
    config = dict(filters=8, kernel_size=3, padding="same", pad_values=pad_values, groups=2, use_bias=False)
    ours, keras = BinaryConv2D(**config), lq.layers.QuantConv2D(**config)
    x = tf.random.normal((2, 6, 6, 8), seed=6)
    ours.build(x.shape), keras.build(x.shape)
    keras.set_weights(ours.get_weights())

    def step(layer, **kwargs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, **kwargs)
            loss = tf.reduce_sum(y * y)
        return [y, *tape.gradient(loss, [x, layer.kernel])]

    train = tf.function(lambda x: step(ours, training=True))
    for a, b in zip(train(x), step(keras)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
    assert _xla_compiled_functions(train, x) == []
    assert _xla_compiled_functions(tf.function(lambda x: ours(x, training=False)), x)  # tf-keras' op


def test_binary_conv_config_round_trip_and_plain_load_model(tmp_path):
    layer = BinaryConv2D(6, 3, padding="same", pad_values=1.0, kernel_quantizer="ste_sign", name="probe")
    assert BinaryConv2D.from_config(layer.get_config()).get_config() == layer.get_config()
    inputs = tf.keras.Input((5, 5, 3))
    model = tf.keras.Model(inputs, BinaryConv2D(6, 3, padding="same", pad_values=1.0, kernel_quantizer="ste_sign")(inputs))
    x = tf.random.normal((2, 5, 5, 3), seed=2)
    model.save(tmp_path / "m.h5")
    loaded = tf.keras.models.load_model(tmp_path / "m.h5")  # no custom_objects
    assert isinstance(loaded.layers[-1], BinaryConv2D)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
