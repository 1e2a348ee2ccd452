r"""ReBNN: binary convolution with a learned scale and an oscillation-damping loss.

Xu et al., Resilient Binary Neural Network, AAAI 2023. https://arxiv.org/abs/2302.00956

\\[ \hat w_c = \alpha_c \operatorname{sign}(w_c), \qquad
    \mathcal{L}_R = \sum_c \frac{\gamma_c}{2} \lVert w_c - \alpha_c b(w_c) \rVert^2, \qquad
    \gamma_c = \frac{\lVert b(w_c^{t}) - b(w_c^{t-1}) \rVert_0}{n_c}
               \max_j \left|\frac{\partial \mathcal{L}}{\partial \hat w_{c,j}}\right| \\]

`c` is an output channel (the last axis of the HWIO kernel), `n_c` its number of weights,
`b(w) = sign(w)` taken as a constant. `ReBNNConv2D` has two scales: the authors' released
code (`scale="code"`: alpha = 0.02 |s|, their backward pass) and ours (`scale="learned"`);
and two balances: a constant gamma (the code's clamp makes it 2e-4 in effect) or the
paper's adaptive one. The adaptive gamma is updated after every optimiser step through the
layer's training hook (`hooks.TrainingHook`), which the training step of
`larq_methods.training` calls for any model. `SignOscillation` logs the weight
oscillation the balance damps, for every binary model. At export, alpha * sign(W) is a per-channel
constant that LCE folds into the LceBconv2d multiplier; gamma is training-only.
"""

import contextlib
import logging

import larq as lq
import numpy as np
import tensorflow as tf

from larq_methods import compat, hooks, layers
from larq_methods.methods.preset import Preset

_register = tf.keras.utils.register_keras_serializable(package="lqm")

AUTHORS_GAMMA = 2e-4
"""The gamma of the authors' released code: their clamp max(min(p, 1e-5), 2e-4) is 2e-4."""
CODE_SCALE = 0.02
"""The code's binary weight is 0.02 |s| sign(w)."""
SCALES = ("code", "learned")


def _sign_bits(w):
    """True where sign(w) = +1 (larq's convention, sign(0) = +1)."""
    return tf.greater_equal(w, 0)


def _latent(layer):
    """The real-valued kernel under a larq quantizer (or the kernel itself)."""
    return getattr(layer.kernel, "latent_variable", layer.kernel)


def latent_sign_bits(layer):
    """True where the sign of `layer`'s latent kernel is +1: what oscillates."""
    return _sign_bits(_latent(layer))


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


@tf.custom_gradient
def code_binary_weight(signs, w, scale, gamma):
    r"""The binary weight of the authors' code (`2_step2_rebnn/rebnn.py`, `Binarization`),
    with the gradient of \\(\mathcal{L}_R\\) folded into its backward pass:

    \\[ \hat w = 0.02\,|s|\,b, \qquad
        \frac{\partial}{\partial w} = \gamma (w - \hat w) + |s|\,g, \qquad
        \frac{\partial}{\partial |s|} = \textstyle\sum g\,w
            - \gamma \sum (w - \hat w)\, 0.02\, b \\]

    with \\(g = \partial\mathcal{L}/\partial\hat w\\) and sums per output channel (last
    axis). `signs` is b = sign(w), from a straight-through quantizer without clipping, so
    the gradient given to `signs` is the one of w; `w` itself gets none here. `scale` is
    |s| per channel and `gamma` the balance per channel (no gradient).
    """
    w_hat = CODE_SCALE * scale * signs
    axes = list(range(w.shape.rank - 1))

    def grad(g):
        residual = w - w_hat
        d_w = gamma * residual + scale * g
        d_scale = tf.reduce_sum(g * w, axis=axes) - gamma * tf.reduce_sum(residual * CODE_SCALE * signs, axis=axes)
        return d_w, tf.zeros_like(w), d_scale, tf.zeros_like(gamma)

    return w_hat, grad


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


_DEFAULT = object()


@contextlib.contextmanager
def _larq_warnings_off():
    logger = logging.getLogger("larq.layers_base")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@_register
class ReBNNConv2D(hooks.TrainingHook, layers.BinaryConv2D):
    r"""Binary convolution with a learned per-channel scale and ReBNN's reconstruction loss.

    \\[ \hat w_c = \alpha_c \operatorname{sign}(w_c), \qquad
        \mathcal{L}_R = \sum_c \frac{\gamma_c}{2}
            \lVert w_c - \alpha_c\, \mathrm{sg}[\operatorname{sign}(w_c)] \rVert^2 \\]

    `scale="code"` (the default: the authors' released code, which produced the paper's
    figures): \\(\alpha_c = 0.02 |s_c|\\) with `s` (the weight named "alpha") drawn from a
    standard normal; the backward pass is the code's (`code_binary_weight`):
    \\(\partial/\partial w = \gamma (w - \hat w) + |s| g\\), no clipping mask, and
    \\(\partial/\partial|s| = \sum g w - \gamma \sum (w - \hat w)\, 0.02 \operatorname{sign}(w)\\),
    which holds \\(\mathcal{L}_R\\)'s gradient, so no loss is added; latent weights are not
    clipped. (The code's torch.sign(0) = 0; larq's sign(0) = +1 here.)

    `scale="learned"` (Ours): `alpha` itself, starting at mean|W| per output channel of the
    initial kernel; the sign's backward pass is larq's `ste_sign` (straight-through,
    clipped at |w| <= 1), alpha's gradient \\(\sum g \operatorname{sign}(w)\\), latent
    weights clipped to [-1, 1], and \\(\mathcal{L}_R\\) is added with `add_loss`, reaching
    W directly (not through the sign) and alpha.

    `gamma`: a float is a constant gamma for every channel (default 2e-4, the code's);
    `"adaptive"` (Paper) recomputes gamma_c after every optimiser step from the sign flips
    of that step and the gradient with respect to the binary weights, through the layer's
    training hook (it starts at 0). The per-channel values live in the non-trainable weight
    `balance` (named "gamma"), so they are saved with the model.

    The flips are counted between the kernel's signs just before and just after the
    optimiser's update (Ours: no stored sign buffer; it equals the sign at the previous
    gamma update whenever only training moves the weights, and it cannot go stale after
    `load_model` or `set_weights`).

    `probe` (adaptive layers only, else None) is a zero variable of the kernel's shape
    added to w_hat: the gradient of the loss with respect to it is exactly dL/dw_hat,
    which the adaptive rule needs. It is a training-only device, kept out of
    `layer.weights` (so neither model files nor the cost counter see a second, float
    kernel), and it folds away at conversion.

    Defaults as the project's binary convolutions: "same" padding with ones, so that LCE
    binarises it on every target (the code pads with zeros); no bias.

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
        scale="code",
        pad_values=1.0,
        kernel_quantizer=_DEFAULT,
        kernel_constraint=_DEFAULT,
        use_bias=False,
        **kwargs,
    ):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
        code = scale == "code"
        if kernel_quantizer is _DEFAULT:
            # the code's straight-through sign has no clipping mask
            kernel_quantizer = lq.quantizers.SteSign(clip_value=None) if code else "ste_sign"
        if kernel_constraint is _DEFAULT:
            kernel_constraint = None if code else "weight_clip"
        # larq warns of starved weights without a clip; the code's unclipped gradient has none
        with _larq_warnings_off() if code else contextlib.nullcontext():
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
        self.scale = scale

    @property
    def adaptive(self) -> bool:
        return self.gamma == "adaptive"

    def build(self, input_shape):
        super().build(input_shape)
        latent = _latent(self)
        code = self.scale == "code"
        self.alpha = self.add_weight(
            name="alpha",
            shape=(self.filters,),
            initializer=tf.keras.initializers.RandomNormal(0.0, 1.0) if code else "ones",
        )
        if not code:
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
        # a checkpoint dependency (SavedModel export can capture it), not one of the weights
        compat.track_hidden(self, "probe", probe)
        if not code:  # the code's backward pass holds L_R's gradient instead
            self.add_loss(self.reconstruction_loss)

    def init_alpha(self):
        """With `scale="learned"`, sets alpha to mean|W| per output channel of the current
        kernel (also after a kernel is loaded from a real-weight model, as in step 2 of the
        two-step recipe). With `scale="code"`, s keeps its random start, as in the code."""
        if self.scale == "learned":
            self.alpha.assign(tf.reduce_mean(tf.abs(_latent(self)), axis=(0, 1, 2)))

    def channel_scale(self):
        """The per-channel scale of the binary weight: alpha, or 0.02 |s| for the code's."""
        return CODE_SCALE * tf.abs(self.alpha) if self.scale == "code" else tf.convert_to_tensor(self.alpha)

    def convolution_op(self, inputs, kernel):
        # `kernel` arrives as sign(W): larq quantizes it inside the layer's call.
        if self.scale == "code":
            # Tensors now: a (quantized) variable read later, in the backward pass, outside
            # larq's quantized scope, would give the latent weights instead of their signs.
            # The balance's arithmetic and per-channel sums in float32 (under mixed precision
            # the variables read in the compute dtype), the result in the convolution's.
            signs = tf.convert_to_tensor(kernel)
            w = tf.cast(tf.convert_to_tensor(_latent(self)), tf.float32)
            scale, gamma = tf.abs(tf.cast(self.alpha, tf.float32)), tf.cast(self.balance, tf.float32)
            w_hat = tf.cast(code_binary_weight(tf.cast(signs, tf.float32), w, scale, gamma), signs.dtype)
        else:
            w_hat = kernel * self.alpha
        if self.probe is not None:
            w_hat += tf.cast(self.probe, w_hat.dtype)
        return super().convolution_op(inputs, w_hat)

    def reconstruction_loss(self):
        """L_R of this layer, from the current kernel, scale and gamma."""
        w = tf.convert_to_tensor(_latent(self))
        b = tf.stop_gradient(lq.math.sign(w))
        per_channel = tf.reduce_sum(tf.square(w - self.channel_scale() * b), axis=(0, 1, 2))
        return tf.reduce_sum(self.balance * per_channel) / 2

    def sign_bits(self):
        """True where the latent kernel's sign is +1."""
        return latent_sign_bits(self)

    def update_gamma(self, previous_bits, grad_wrt_binary):
        """Adaptive gamma from the flips since `previous_bits` and dL/dw_hat; returns the op.

        A non-finite gradient (a step a loss-scaling optimiser skips) keeps the old gamma.
        """
        flipped = tf.not_equal(previous_bits, self.sign_bits())
        gamma = adaptive_gamma(flipped, tf.cast(grad_wrt_binary, self.balance.dtype))
        return self.balance.assign(tf.where(tf.math.is_finite(gamma), gamma, self.balance))

    # -- the training hook (adaptive gamma only; a constant gamma needs nothing per step) --

    def hook_variables(self) -> list:
        """The probe, whose gradient is dL/dw_hat."""
        return [self.probe] if self.adaptive else []

    def before_update(self):
        """The kernel's signs before the optimiser's update."""
        return self.sign_bits() if self.adaptive else None

    def after_update(self, state, grads) -> None:
        """gamma_c from the flips of this update and dL/dw_hat (`grads[0]`, the whole batch's)."""
        if self.adaptive:
            self.update_gamma(state, grads[0])

    def after_transfer(self, received) -> None:
        """A kernel from a real-weight model (step 1 of two-step) without a scale: the
        scale starts from it (`init_alpha`); one that came with it is kept."""
        if "alpha" not in received:
            self.init_alpha()

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "scale": self.scale}


class SignOscillation(tf.Module):
    """ReBNN's weight-oscillation ratio per layer with a 1-bit kernel: the fraction of
    latent weights whose sign flipped since the last `snapshot()` (an epoch's end).

    The signs of the last snapshot are variables, so a checkpoint carries them and a run
    resumed mid-epoch reports the same ratios as an uninterrupted one.
    """

    def __init__(self, layers_with_binary_kernels):
        super().__init__(name="oscillation")
        self._layers = list(layers_with_binary_kernels)
        self.signs = [
            tf.Variable(latent_sign_bits(layer), trainable=False, name=f"sign_{i}") for i, layer in enumerate(self._layers)
        ]

    def ratios(self) -> dict[str, float]:
        if not self._layers:
            return {}
        ratios = {
            f"oscillation/{layer.name}": float(oscillation_ratio(previous, latent_sign_bits(layer)))
            for layer, previous in zip(self._layers, self.signs)
        }
        return {**ratios, "oscillation/mean": float(np.mean(list(ratios.values())))}

    def snapshot(self) -> None:
        for layer, previous in zip(self._layers, self.signs):
            previous.assign(latent_sign_bits(layer))


def learned_conv(method, filters, kernel_size, **common):
    """ReBNN's binary convolution with our learned scale (alpha from mean|W|)."""
    return ReBNNConv2D(filters, kernel_size, gamma=method.gamma, scale="learned", **common)


def code_conv(method, filters, kernel_size, **common):
    """ReBNN's binary convolution as the authors released it; latent weights unclipped, as
    in the code."""
    return ReBNNConv2D(filters, kernel_size, gamma=method.gamma, scale="code", **{**common, "kernel_constraint": None})


WEIGHTS = {"learned": learned_conv, "rebnn-code": code_conv}
PRESETS = (
    Preset(
        "rebnn", {"weights": "rebnn-code", "gamma": AUTHORS_GAMMA},
        "ReBNN as released: scale 0.02|s|, the code's backward pass, gamma 2e-4 [Xu et al. AAAI 2023]", "code",
    ),  # fmt: skip
)
