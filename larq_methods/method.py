"""A method is a configuration of the binary block, not a class per paper.

`Method` names which threshold, activation, weight binarisation, complementary activation,
grouping and downsampling a binary block uses; its methods build those parts. Backbones in
`zoo` take a `Method`, so every method runs on every backbone, and a paper's model is a
preset (`larq_methods.methods`, one module per method), not a copy. The parts' choices come
from the methods' name tables (`larq_methods.methods`).
"""

import dataclasses
from dataclasses import dataclass

from larq_methods import layers, methods

THRESHOLDS = tuple(methods.THRESHOLDS)
ACTIVATIONS = (*methods.ACTIVATIONS, "none")
WEIGHTS = tuple(methods.WEIGHTS)
DOWNSAMPLES = ("real", "binary")
# What is binary: everything; the activations only (step 1 of the two-step recipe); or
# nothing (the float counterpart, a teacher for distillation).
BINARISE = ("all", "activations", "none")
# LCE binarises a grouped convolution only with this many input channels per group (or a
# multiple); otherwise it emits a float convolution without failing.
LCE_GROUP_CHANNELS = 32


class MethodError(ValueError):
    """A method configuration that cannot be built."""


class GroupedConvolutionError(MethodError):
    """A grouped binary convolution that LCE would silently leave in float."""


def _choice(field, value, allowed):
    if value not in allowed:
        raise MethodError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")


@dataclass(frozen=True)
class Method:
    """The parts of a binary block.

    - `threshold`: the sign's threshold: "static" (ReActNet's RSign), "insta" (INSTA-Th),
      "insta+" (INSTA-Th+), "dynamic" (DyBNN's DySign), "none" (Bi-Real Net's plain
      sign with the ApproxSign gradient) or "ste" (QuickNet's straight-through sign,
      clipped at 1.25).
    - `activation`: "rprelu" (ReActNet), "insta-prelu" (INSTA-BNN), "dyprelu" (DyBNN), all
      after the shortcut addition; "fprelu" (FTBNN), after the BatchNorm of each binary
      convolution, before the addition; or "none".
    - `weights`: "mean-abs" (w_b = mean|W| sign(W), ReActNet), ReBNN's learned scale as in
      the authors' released code ("rebnn-code": 0.02 |s| sign(W) and the code's backward
      pass) or ours ("learned": alpha from mean|W|, larq's clipped straight-through sign),
      each with ReBNN's balance `gamma` ("adaptive", the paper's, or a float: 2e-4 is the
      code's), or "sign" (unscaled sign(W), straight-through without clipping, latent
      weights clipped to +-1.3: the binary weights of GAAF's proxy network), or "ste-sign"
      (QuickNet's: unscaled sign(W), straight-through within +-1.25, latent weights
      clipped there).
    - `gaaf`: a GAAF genome (e.g. "add(sin,x)"): a complementary activation before the sign,
      with a learnable threshold in front of it if `threshold` is "static" (Ours), without
      one if it is "none" (the authors' code).
    - `groups`: groups of every 3x3 binary convolution (FTBNN's group execution).
    - `group_width`: FTBNN's capacity at equal cost: with `groups` > 1 and a `group_width`
      other than 1, ReActNet-18's stages 2-4 are `group_width` times wider and grouped,
      and stage 1 (the stem's width, whose widened channels would not split into groups of
      32) is not grouped; other backbones group every 3x3 convolution at their widths.
    - `downsample`: the shortcut's 1x1 convolution where the shape changes, "real" or
      "binary" (FTBNN); backbones without one ignore it.
    - `binarise`: "all" (binary activations and weights), "activations" (real weights:
      step 1 of ReActNet's two-step recipe) or "none" (the float counterpart: no sign,
      real weights, zero padding; the same layers otherwise).
    """

    threshold: str = "static"
    activation: str = "rprelu"
    weights: str = "mean-abs"
    gamma: float | str = "adaptive"
    gaaf: str | None = None
    groups: int = 1
    group_width: float = 1.0
    downsample: str = "real"
    binarise: str = "all"

    def __post_init__(self):
        _choice("threshold", self.threshold, THRESHOLDS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("weights", self.weights, WEIGHTS)
        _choice("downsample", self.downsample, DOWNSAMPLES)
        _choice("binarise", self.binarise, BINARISE)
        if not (self.gamma == "adaptive" or isinstance(self.gamma, (int, float)) and self.gamma >= 0):
            raise MethodError(f"gamma must be 'adaptive' or a non-negative number; got {self.gamma!r}")
        if not isinstance(self.groups, int) or self.groups < 1:
            raise MethodError(f"groups must be a positive integer; got {self.groups!r}")
        if isinstance(self.group_width, bool) or not isinstance(self.group_width, (int, float)) or self.group_width <= 0:
            raise MethodError(f"group_width must be a positive number; got {self.group_width!r}")
        if self.gaaf is not None:
            if self.threshold not in ("static", "none"):
                raise MethodError(
                    "a GAAF sign takes threshold 'static' (a learnable threshold before f) or "
                    f"'none' (none, as in the authors' code); got {self.threshold!r}"
                )
            try:
                methods.gaaf.Genome.parse(self.gaaf)  # fail early on a bad genome
            except ValueError as e:
                raise MethodError(str(e)) from None

    def replace(self, **changes) -> "Method":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self):
        default = Method()
        parts = [f"{k}={v}" for k, v in self.as_dict().items() if v != getattr(default, k)]
        if self.weights not in methods.rebnn.WEIGHTS:  # only ReBNN's weights have a balance
            parts = [p for p in parts if not p.startswith("gamma=")]
        if self.groups == 1:
            parts = [p for p in parts if not p.startswith("group_width=")]
        if self.binarise == "none":
            return "float counterpart" + "".join(f", {p}" for p in parts if not p.startswith("binarise="))
        return ", ".join(parts) or "ReActNet (static threshold, RPReLU)"

    # -- building blocks -------------------------------------------------------------------

    def sign(self, x, *, name):
        """The binary activation: x_b = sign(x - t) with the configured threshold t; the
        identity in a float counterpart."""
        if self.binarise == "none":
            return x
        if self.gaaf is not None:
            return methods.gaaf.sign_layer(self, name=name)(x)
        return methods.THRESHOLDS[self.threshold](name=name)(x)

    @property
    def activation_before_add(self) -> bool:
        return self.activation in methods.BEFORE_ADD

    def activate(self, x, *, name):
        if self.activation == "none":
            return x
        return methods.ACTIVATIONS[self.activation](name=name)(x)

    def conv(self, x, filters, kernel_size, strides=1, *, groups=1, name):
        """A binary convolution of binarised `x` (the output of `sign`).

        One-padding (`pad_values=1.0`) keeps every padded convolution binary after LCE
        conversion (`layers.BinaryConv2D` trains it at the cost of zero padding); the weight
        clip stops latent weights outside [-1, 1] from starving, since the sign's
        straight-through gradient is zero there (a method's convolution may set its own:
        `methods.WEIGHTS`). With real weights
        (`binarise` "activations" or "none") it is the same layer without the kernel's
        quantizer and clip, so that its kernel carries over to the binary model.
        """
        if self.binarise != "all":
            return layers.BinaryConv2D(
                filters,
                kernel_size,
                strides=strides,
                padding="same",
                pad_values=1.0 if self.binarise == "activations" else 0.0,
                groups=groups,
                kernel_initializer="glorot_normal",
                use_bias=False,
                name=name,
            )(x)
        check_groups(name, int(x.shape[-1]), groups)
        common = dict(
            strides=strides,
            padding="same",
            pad_values=1.0,
            groups=groups,
            kernel_constraint="weight_clip",
            kernel_initializer="glorot_normal",
            use_bias=False,
            name=name,
        )
        return methods.WEIGHTS[self.weights](self, filters, kernel_size, **common)(x)


def check_groups(name, channels, groups):
    """Refuses a grouped binary convolution that LCE would leave in float."""
    if groups == 1:
        return
    step = LCE_GROUP_CHANNELS * groups
    if channels % step == 0:
        return
    below, above = (channels // step) * step, (channels // step + 1) * step
    nearest = " or ".join(str(w) for w in (below, above) if w > 0)
    raise GroupedConvolutionError(
        f"{name}: {channels} input channels in {groups} groups; LCE binarises a grouped "
        f"convolution only with a multiple of {LCE_GROUP_CHANNELS} channels per group, so "
        f"the nearest valid widths are {nearest} (change alpha, or use groups=1)"
    )

