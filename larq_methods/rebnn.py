r"""ReBNN: binary convolution with a learned scale and an oscillation-damping loss.

Xu et al., Resilient Binary Neural Network, AAAI 2023. https://arxiv.org/abs/2302.00956

\\[ \hat w_c = \alpha_c \operatorname{sign}(w_c), \qquad
    \mathcal{L}_R = \sum_c \frac{\gamma_c}{2} \lVert w_c - \alpha_c b(w_c) \rVert^2, \qquad
    \gamma_c = \frac{\lVert b(w_c^{t}) - b(w_c^{t-1}) \rVert_0}{n_c}
               \max_j \left|\frac{\partial \mathcal{L}}{\partial \hat w_{c,j}}\right| \\]

`c` is an output channel (the last axis of the HWIO kernel), `n_c` its number of weights,
`b(w) = sign(w)` taken as a constant. Training with `gamma="adaptive"` needs `ReBNNModel`,
whose `train_step` recomputes gamma after every optimiser step; with a float gamma (the
authors' released code uses 2e-4) any Keras model trains it. At export, alpha * sign(W) is a
per-channel constant that LCE folds into the LceBconv2d multiplier; gamma is training-only.
"""

import larq as lq
import numpy as np
import tensorflow as tf

from larq_methods import costs

_register = tf.keras.utils.register_keras_serializable(package="lqm")

AUTHORS_GAMMA = 2e-4
"""The constant gamma of the authors' released code."""


def _sign_bits(w):
    """True where sign(w) = +1 (larq's convention, sign(0) = +1)."""
    return tf.greater_equal(w, 0)


def _latent(layer):
    """The real-valued kernel under a larq quantizer (or the kernel itself)."""
    return getattr(layer.kernel, "latent_variable", layer.kernel)


def adaptive_gamma(flipped, grad_wrt_binary):
    r"""The paper's balance per output channel.

    \\[ \gamma_c = \frac{\#\{j : \text{sign of } w_{c,j} \text{ flipped}\}}{n_c}
        \max_j \left|\frac{\partial \mathcal{L}}{\partial \hat w_{c,j}}\right| \\]

    `flipped` (booleans or 0/1) and `grad_wrt_binary` have the kernel's shape; the channel
    is the last axis. Returns a vector with one gamma per channel.
    """
    grad = tf.convert_to_tensor(grad_wrt_binary)
    axes = list(range(grad.shape.rank - 1))
    flip_fraction = tf.reduce_mean(tf.cast(flipped, grad.dtype), axis=axes)
    return flip_fraction * tf.reduce_max(tf.abs(grad), axis=axes)


def oscillation_ratio(previous_sign, sign):
    """Fraction of latent weights whose sign differs between two snapshots."""
    return tf.reduce_mean(tf.cast(tf.not_equal(previous_sign, sign), tf.float32))


def _check_gamma(gamma):
    if isinstance(gamma, str):
        if gamma == "adaptive":
            return gamma
    elif isinstance(gamma, (int, float, np.number)) and not isinstance(gamma, bool) and gamma >= 0:
        return float(gamma)
    raise ValueError(f'gamma must be "adaptive" or a float >= 0, got {gamma!r}')


@_register
class ReBNNConv2D(lq.layers.QuantConv2D):
    r"""Binary convolution with a learned per-channel scale and ReBNN's reconstruction loss.

    \\[ \hat w_c = \alpha_c \operatorname{sign}(w_c), \qquad
        \mathcal{L}_R = \sum_c \frac{\gamma_c}{2}
            \lVert w_c - \alpha_c\, \mathrm{sg}[\operatorname{sign}(w_c)] \rVert^2 \\]

    `alpha` is a trainable weight per output channel (Paper); it starts at mean|W| per
    output channel of the initial kernel (Ours; the authors' code starts it at random).
    The sign's backward pass is larq's `ste_sign` (straight-through, clipped at |w| <= 1);
    keep `kernel_quantizer` an unscaled +-1 sign, since alpha already scales it. `L_R` is
    added with `add_loss` and reaches W directly (not through the straight-through sign)
    and alpha; the sign inside it is a constant (`stop_gradient`).

    `gamma`: `"adaptive"` recomputes gamma_c after every step from the sign flips and the
    gradient with respect to the binary weights (Paper; needs `ReBNNModel`, and starts at
    0); a float is a constant gamma for every channel, as in the authors' code (default
    2e-4). The per-channel values live in the non-trainable weight `balance` (named
    "gamma"), so they are saved with the model.

    `probe` (adaptive layers only, else None) is a zero variable of the kernel's shape
    added to w_hat: the gradient of the loss with respect to it is exactly dL/dw_hat,
    which the adaptive rule needs. It is a training-only device, kept out of
    `layer.weights` (so neither model files nor the cost counter see a second, float
    kernel), and it folds away at conversion.

    Defaults as the project's binary convolutions: "same" padding with ones, so that LCE
    binarises it on every target; weights clipped to [-1, 1]; no bias.

    # References
    - Xu et al., Resilient Binary Neural Network, AAAI 2023.
      https://arxiv.org/abs/2302.00956
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="same",
        *,
        gamma=AUTHORS_GAMMA,
        pad_values=1.0,
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            pad_values=pad_values,
            kernel_quantizer=kernel_quantizer,
            kernel_constraint=kernel_constraint,
            use_bias=use_bias,
            **kwargs,
        )
        self.gamma = _check_gamma(gamma)

    @property
    def adaptive(self) -> bool:
        return self.gamma == "adaptive"

    def build(self, input_shape):
        super().build(input_shape)
        latent = _latent(self)
        self.alpha = self.add_weight(name="alpha", shape=(self.filters,), initializer="ones")
        self.init_alpha()
        self.balance = self.add_weight(
            name="gamma",
            shape=(self.filters,),
            initializer=tf.keras.initializers.Constant(0.0 if self.adaptive else self.gamma),
            trainable=False,
            # every replica computes the same gamma from all-reduced gradients
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        probe = None
        if self.adaptive:
            probe = tf.Variable(tf.zeros(latent.shape, latent.dtype), trainable=False, name="probe")
            # Kept a checkpoint dependency, so that SavedModel export can capture it.
            self._track_trackable(probe, name="probe")
        # Set past Keras' attribute tracking, which would list the probe among the weights.
        object.__setattr__(self, "probe", probe)
        self.add_loss(self.reconstruction_loss)

    def init_alpha(self):
        """Sets alpha to mean|W| per output channel of the current kernel (also after a
        kernel is loaded from a real-weight model, as in step 2 of the two-step recipe)."""
        self.alpha.assign(tf.reduce_mean(tf.abs(_latent(self)), axis=(0, 1, 2)))

    def convolution_op(self, inputs, kernel):
        # `kernel` arrives as sign(W): larq quantizes it inside the layer's call.
        w_hat = kernel * self.alpha
        if self.probe is not None:
            w_hat += tf.cast(self.probe, w_hat.dtype)
        return super().convolution_op(inputs, w_hat)

    def reconstruction_loss(self):
        """L_R of this layer, from the current kernel, alpha and gamma."""
        w = tf.convert_to_tensor(_latent(self))
        b = tf.stop_gradient(lq.math.sign(w))
        per_channel = tf.reduce_sum(tf.square(w - self.alpha * b), axis=(0, 1, 2))
        return tf.reduce_sum(self.balance * per_channel) / 2

    def sign_bits(self):
        """True where the latent kernel's sign is +1."""
        return _sign_bits(_latent(self))

    def update_gamma(self, previous_bits, grad_wrt_binary):
        """Adaptive gamma from the flips since `previous_bits` and dL/dw_hat; returns the op.

        A non-finite gradient (a step a loss-scaling optimiser skips) keeps the old gamma.
        """
        flipped = tf.not_equal(previous_bits, self.sign_bits())
        gamma = adaptive_gamma(flipped, tf.cast(grad_wrt_binary, self.balance.dtype))
        return self.balance.assign(tf.where(tf.math.is_finite(gamma), gamma, self.balance))

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


def rebnn_layers(model) -> list:
    """The `ReBNNConv2D` layers of `model`, nested models included, in layer order."""
    return [layer for layer in costs.flat_layers(model) if isinstance(layer, ReBNNConv2D)]


class ReBNNTrainStep:
    """A Keras model mixin: the training step that also updates ReBNN's adaptive gamma.

    A mixin rather than a base class, because Keras rewrites the bases of a `Model`
    subclass built as a functional model, `ReBNNModel(inputs, outputs)`, to `Functional`,
    which no subclassed model (such as `training.Distiller`) could then inherit.

    Each step computes
    the compiled loss plus `model.losses` (the reconstruction losses among them), takes
    the gradients of the trainable weights and of every ReBNN layer's probe (dL/dw_hat)
    from one tape, applies the trainable ones, and then sets gamma_c of every adaptive
    layer from the sign flips of that update and the probe's gradient.

    The flips are counted between the kernel's signs just before and just after the
    optimiser's update (Ours: no stored sign buffer; it equals the sign at the previous
    gamma update whenever only training moves the weights, and it cannot go stale after
    `load_model` or `set_weights`). Layers with a constant gamma need nothing per step.
    """

    def train_step(self, data):
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        adaptive = [layer for layer in rebnn_layers(self) if layer.adaptive]
        probes = [layer.probe for layer in adaptive]
        scaled = hasattr(self.optimizer, "get_scaled_loss")  # a loss-scaling optimiser
        with tf.GradientTape() as tape:
            tape.watch(probes)  # non-trainable, so not watched by default
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
            target = self.optimizer.get_scaled_loss(loss) if scaled else loss
        self._validate_target_and_loss(y, loss)
        variables = self.trainable_variables
        grads = tape.gradient(target, variables + probes)
        if scaled:
            grads = self.optimizer.get_unscaled_gradients(grads)
        probe_grads = [tf.zeros_like(p) if g is None else g for p, g in zip(probes, grads[len(variables) :])]
        if probe_grads:
            # each replica holds its share of dL/dw_hat; gamma needs the whole batch's
            probe_grads = tf.distribute.get_replica_context().all_reduce("sum", probe_grads)
        before = [layer.sign_bits() for layer in adaptive]
        self.optimizer.apply_gradients(zip(grads[: len(variables)], variables))
        for layer, bits, grad in zip(adaptive, before, probe_grads):
            layer.update_gamma(bits, grad)
        return self.compute_metrics(x, y, y_pred, sample_weight)


@_register
class ReBNNModel(ReBNNTrainStep, tf.keras.Model):
    """A Keras model whose training step (`ReBNNTrainStep`) also updates ReBNN's adaptive
    gamma; build it like a functional model, `ReBNNModel(inputs, outputs)`."""


# HDF5 files name a model's class without the package prefix: register that name too, so
# that `load_model` of an .h5 file needs no `custom_objects`.
tf.keras.utils.get_custom_objects()["ReBNNModel"] = ReBNNModel


class OscillationLogger(tf.keras.callbacks.Callback):
    """Logs, per layer with a 1-bit kernel, the fraction of latent weights whose sign
    flipped since the previous epoch.

    Keys: `oscillation/<layer name>` and their mean, `oscillation/mean`. They are added to
    the epoch's `logs`, so a `CSVLogger`, `TensorBoard` or the `History` placed after this
    callback records them. Layers: every `ReBNNConv2D` and any other layer whose
    `kernel_quantizer` has precision 1 (larq's `QuantConv2D`, `QuantDense`).
    """

    def _layers(self):
        return [
            layer
            for layer in costs.flat_layers(self.model)
            if hasattr(layer, "kernel") and costs.has_binary_kernel(layer)
        ]

    def _snapshot(self):
        return {layer.name: _sign_bits(_latent(layer)).numpy() for layer in self._layers()}

    def on_train_begin(self, logs=None):
        self._previous = self._snapshot()

    def on_epoch_end(self, epoch, logs=None):
        current = self._snapshot()
        if logs is None or not current:
            self._previous = current
            return
        ratios = {
            f"oscillation/{name}": float(oscillation_ratio(self._previous[name], bits))
            for name, bits in current.items()
        }
        logs.update(ratios)
        logs["oscillation/mean"] = float(np.mean(list(ratios.values())))
        self._previous = current
