r"""GAAF: complementary activation functions for binary networks, and their genetic search.

A complementary activation \\(f\\) sits in front of the sign of a binary activation,

\\[ x_b = \operatorname{sign}(\operatorname{hardtanh}_{1.3}(f(x - a_c))), \qquad
    f(x) = B(U_1(x), U_2(x)), \\]

with \\(U_1, U_2\\) drawn from 22 unary operations (`UNARY`) and \\(B\\) from 11 binary
operations (`BINARY`), as in the authors' code. A `Genome` names one choice of
\\((U_1, U_2, B)\\); `search` runs the authors' genetic algorithm over genomes.

Guards (the paper only says "a small epsilon"):

- `signed_sqrt`: \\(\operatorname{sign}(x)\sqrt{|x| + 10^{-8}}\\) and `log_abs`:
  \\(\log(|x| + 10^{-8})\\), as in the authors' code (`EPS_CODE`).
- `div`, `ratio` (Ours, safer than the code's): a denominator \\(d\\) becomes
  \\(d + \epsilon \operatorname{sign}(d)\\) with \\(\operatorname{sign}(0) = +1\\) and
  \\(\epsilon\\) = `EPS` = 1e-6, so it is never closer to 0 than \\(\epsilon\\). The code's
  \\(x_1 / (x_2 + 10^{-8})\\) divides by zero at \\(x_2 = -10^{-8}\\), and by less than
  1e-8 on either side of it: infinities and NaNs that then end the proxy training.

TFLite rewrites (Ours): TensorFlow's `Tan`, `Atan`, `Erf` and `Erfc` are not TFLite built-ins
(LCE emits them as unresolvable custom ops), so the layers always compute them from built-ins,
in training too, so that Keras and the converted model agree: \\(\tan = \sin / \cos\\),
\\(\operatorname{atan}(x) = \operatorname{atan2}(x, 1)\\), and `erf`, `erfc` below.

# References
- Li et al., Searching Complementary Activation Functions for Binary Neural Networks
  (GAAF), Tsinghua Science and Technology, 2023. https://arxiv.org/abs/2206.03291
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from typing import Callable

import larq as lq
import tensorflow as tf
from tqdm.auto import tqdm

from larq_methods.layers import BinaryConv2D, training_flag
from larq_methods.methods.preset import Preset
from larq_methods.quantizers import BinarySign

EPS = 1e-6
"""The denominators' guard (Ours): never closer to 0 than this."""
EPS_CODE = 1e-8
"""The guard of `signed_sqrt` and `log_abs`, as in the authors' code."""

_register = tf.keras.utils.register_keras_serializable(package="lqm")


# -- erf and erfc from TFLite built-ins ---------------------------------------------------

# Maclaurin series erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), to n = 5: its
# truncation error is below 3e-8 for |x| < 0.5, and, unlike 1 - erfc(x), it is odd with the
# right sign for the tiniest x, which matters in front of a sign.
_SERIES = [(-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(6)]
# Abramowitz & Stegun 7.1.26: erfc(x) = t P(t) exp(-x^2) + e(x), t = 1 / (1 + p x), x >= 0,
# with |e(x)| <= 1.5e-7.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _horner(coefficients, t):
    result = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        result = result * t + c
    return result


def _erf_series(x):
    return (2 / math.sqrt(math.pi)) * x * _horner(_SERIES, x * x)


def _erfc_tail(x):
    ax = tf.abs(x)
    t = 1.0 / (1.0 + _AS_P * ax)
    return t * _horner(_AS_A, t) * tf.exp(-ax * ax)


def erf(x):
    """erf from TFLite built-ins: the Maclaurin series for |x| < 0.5, else 1 - A&S 7.1.26.

    Absolute error below 1e-6 in float32 (tested against `math.erf`)."""
    tail = _erfc_tail(x)
    return tf.where(tf.abs(x) < 0.5, _erf_series(x), tf.where(x > 0, 1.0 - tail, tail - 1.0))


def erfc(x):
    """erfc from TFLite built-ins, by the same two pieces as `erf`; absolute error below 1e-6."""
    tail = _erfc_tail(x)
    return tf.where(tf.abs(x) < 0.5, 1.0 - _erf_series(x), tf.where(x > 0, tail, 2.0 - tail))


def _away_from_zero(d):
    """d + EPS * sign(d), sign(0) = +1: the guard of every denominator."""
    return tf.where(d >= 0, d + EPS, d - EPS)


# -- the operation tables -----------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One operation of the search space. `fn(x, s)` for unary ops, `fn(x1, x2, s)` for binary
    ones; `s` is the op's learnable per-channel parameter (None if `s_init` is None)."""

    name: str
    formula: str
    fn: Callable
    s_init: float | None = None


UNARY = (
    Op("x", "x", lambda x, s: x),
    Op("zero", "0", lambda x, s: tf.zeros_like(x)),
    Op("square", "x^2", lambda x, s: tf.square(x)),
    Op("cube", "x^3", lambda x, s: x * x * x),
    Op("signed_sqrt", "sign(x) sqrt(|x| + 1e-8)", lambda x, s: tf.sign(x) * tf.sqrt(tf.abs(x) + EPS_CODE)),
    Op("log_abs", "log(|x| + 1e-8)", lambda x, s: tf.math.log(tf.abs(x) + EPS_CODE)),
    Op("sin", "sin(x)", lambda x, s: tf.sin(x)),
    Op("cos", "cos(x)", lambda x, s: tf.cos(x)),
    Op("sigmoid", "1 / (1 + exp(-x))", lambda x, s: tf.sigmoid(x)),
    Op("tan", "sin(x) / cos(x)", lambda x, s: tf.sin(x) / tf.cos(x)),
    Op("atan", "atan2(x, 1)", lambda x, s: tf.math.atan2(x, tf.ones_like(x))),
    Op("erf", "erf(x)", lambda x, s: erf(x)),
    Op("erfc", "erfc(x)", lambda x, s: erfc(x)),
    Op("exp_neg_abs", "exp(-|x|)", lambda x, s: tf.exp(-tf.abs(x))),
    Op("exp_neg_sq", "exp(-x^2)", lambda x, s: tf.exp(-tf.square(x))),
    Op("max0", "max(x, 0)", lambda x, s: tf.maximum(x, 0.0)),
    Op("min0", "min(x, 0)", lambda x, s: tf.minimum(x, 0.0)),
    Op("abs", "|x|", lambda x, s: tf.abs(x)),
    Op("neg", "-x", lambda x, s: -x),
    Op("scale", "s * x", lambda x, s: s * x, s_init=1.0),
    Op("shift", "x + s", lambda x, s: x + s, s_init=0.0),
    Op("const", "s", lambda x, s: s * tf.ones_like(x), s_init=1.0),
)

BINARY = (
    Op("add", "x1 + x2", lambda a, b, s: a + b),
    Op("sub", "x1 - x2", lambda a, b, s: a - b),
    Op("mul", "x1 * x2", lambda a, b, s: a * b),
    Op("div", "x1 / (x2 + 1e-6 sign(x2))", lambda a, b, s: a / _away_from_zero(b)),
    Op("ratio", "x1 / (x1 + x2 + 1e-6 sign(x1 + x2))", lambda a, b, s: a / _away_from_zero(a + b)),
    Op("max", "max(x1, x2)", lambda a, b, s: tf.maximum(a, b)),
    Op("min", "min(x1, x2)", lambda a, b, s: tf.minimum(a, b)),
    Op("gate", "x1 * sigmoid(x2)", lambda a, b, s: a * tf.sigmoid(b)),
    Op("exp_neg_sq_diff", "exp(-(x1 - x2)^2)", lambda a, b, s: tf.exp(-tf.square(a - b))),
    Op("exp_neg_abs_diff", "exp(-|x1 - x2|)", lambda a, b, s: tf.exp(-tf.abs(a - b))),
    Op("mix", "s * x1 + (1 - s) * x2", lambda a, b, s: s * a + (1.0 - s) * b, s_init=1.0),
)

_UNARY_INDEX = {op.name: i for i, op in enumerate(UNARY)}
_BINARY_INDEX = {op.name: i for i, op in enumerate(BINARY)}
# Distinct genomes: the largest population a search can have.
SEARCH_SPACE = len(UNARY) ** 2 * len(BINARY)
_VALID = f"unary ops: {', '.join(_UNARY_INDEX)}; binary ops: {', '.join(_BINARY_INDEX)}"


# -- genomes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Genome:
    """A complementary activation f(x) = BINARY[binary](UNARY[unary1](x), UNARY[unary2](x)).

    `str(genome)` is the readable form `binary(unary1,unary2)`, e.g. `add(sin,x)`;
    `Genome.parse` reads it back, and also the index form `unary1,unary2,binary`, e.g. `6,0,0`.
    """

    unary1: int
    unary2: int
    binary: int

    def __post_init__(self):
        for field, table in (("unary1", UNARY), ("unary2", UNARY), ("binary", BINARY)):
            value = getattr(self, field)
            if not isinstance(value, int) or not 0 <= value < len(table):
                raise ValueError(
                    f"GAAF genome {field} must be an index in 0..{len(table) - 1}, got {value!r}"
                )

    @property
    def ops(self) -> tuple[Op, Op, Op]:
        return UNARY[self.unary1], UNARY[self.unary2], BINARY[self.binary]

    def __str__(self):
        u1, u2, b = self.ops
        return f"{b.name}({u1.name},{u2.name})"

    @classmethod
    def parse(cls, text: str) -> Genome:
        if match := re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", text):
            u1, u2, b = map(int, match.groups())
            if u1 < len(UNARY) and u2 < len(UNARY) and b < len(BINARY):
                return cls(u1, u2, b)
            raise ValueError(
                f"bad GAAF genome {text!r}: indices must be unary1 < {len(UNARY)}, "
                f"unary2 < {len(UNARY)}, binary < {len(BINARY)}"
            )
        match = re.fullmatch(r"\s*(\w+)\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)\s*", text)
        if not match:
            raise ValueError(
                f"bad GAAF genome {text!r}: expected 'binary(unary1,unary2)' such as "
                f"'add(sin,x)', or indices 'unary1,unary2,binary' such as '6,0,0'; {_VALID}"
            )
        b, u1, u2 = match.groups()
        unknown = [name for name in (u1, u2) if name not in _UNARY_INDEX]
        unknown += [] if b in _BINARY_INDEX else [b]
        if unknown:
            raise ValueError(f"bad GAAF genome {text!r}: unknown op {unknown[0]!r}; {_VALID}")
        return cls(_UNARY_INDEX[u1], _UNARY_INDEX[u2], _BINARY_INDEX[b])

    @classmethod
    def random(cls, rng: random.Random) -> Genome:
        return cls(rng.randrange(len(UNARY)), rng.randrange(len(UNARY)), rng.randrange(len(BINARY)))

    def mutate(self, rng: random.Random) -> Genome:
        """A copy with one gene, chosen uniformly, resampled to a different op."""
        genes = [self.unary1, self.unary2, self.binary]
        gene = rng.randrange(3)
        choices = [i for i in range(len(BINARY) if gene == 2 else len(UNARY)) if i != genes[gene]]
        genes[gene] = rng.choice(choices)
        return Genome(*genes)


# -- folding at inference ------------------------------------------------------------------

# Sign classes of the unary ops (Ours), for `sign_factor`. "Odd": sign(U(y)) = c sign(y) for
# every y, zero included, with c = +1, -1, or the op's own s ("s"); cube is left out, since
# y^3 underflows to -0 (read as +1) for negative y above -1e-15.
_ODD = {"x": 1.0, "signed_sqrt": 1.0, "atan": 1.0, "erf": 1.0, "neg": -1.0, "scale": "s"}
# U(y) >= 0 for every y, so that sigmoid(U(y)) >= 1/2.
_NONNEG = {"zero", "square", "abs", "max0", "sigmoid", "erfc", "exp_neg_abs", "exp_neg_sq"}


def sign_factor(genome: Genome, s_unary1=None, s_unary2=None):
    """A per-channel factor c with sign(f(y)) = sign(c y) for every y, or None.

    Such a genome only reshapes the sign's gradient: at inference f is a per-channel sign
    flip at most, and `GAAFSign` computes sign(c (x - a)) instead of f, so that LCE gets one
    MUL (or nothing) before `LceQuantize` rather than f's elementwise ops. `s_unary1` and
    `s_unary2` are the ops' parameters, where they have one. Rules (Ours; sign(0) = +1):

    - `gate(U1, U2)` = U1 sigmoid(U2) with U1 odd and U2 >= 0: sigmoid(U2) >= 1/2.
    - `add`/`sub` with `zero` on one side, of an odd op.
    - `add(U1, U2)` of odd ops with the same constant c; `sub(U1, U2)` with opposite ones.
    - `add(x, sin)`: |sin y| < |y| for y != 0, so y + sin y has the sign of y.

    Exact for every input but subnormal ones (within 1e-38 of the threshold), where a
    product may round to zero. Other genomes (f may change sign away from 0) give None.
    """
    u1, u2, b = genome.ops

    def odd(op, s):
        c = _ODD.get(op.name)
        return s if c == "s" else c

    c1, c2 = odd(u1, s_unary1), odd(u2, s_unary2)
    constant = isinstance(c1, float) and isinstance(c2, float)
    if b.name == "gate" and u2.name in _NONNEG:
        return c1
    if b.name in ("add", "sub") and u2.name == "zero":
        return c1
    if b.name in ("add", "sub") and u1.name == "zero" and c2 is not None:
        return c2 if b.name == "add" else -c2
    if constant and (c1 == c2 if b.name == "add" else b.name == "sub" and c1 == -c2):
        return c1
    if b.name == "add" and {u1.name, u2.name} == {"x", "sin"}:
        return 1.0
    return None


# -- layers --------------------------------------------------------------------------------


class _GenomeLayer(tf.keras.layers.Layer):
    """Holds a genome and the learnable per-channel `s` of those of its ops that have one."""

    def __init__(self, genome, **kwargs):
        super().__init__(**kwargs)
        self.genome = genome if isinstance(genome, Genome) else Genome.parse(genome)

    def build(self, input_shape):
        def parameter(name, op):
            if op.s_init is None:
                return None
            return self.add_weight(
                name=name,
                shape=(int(input_shape[-1]),),
                initializer=tf.keras.initializers.Constant(op.s_init),
            )

        u1, u2, b = self.genome.ops
        self.s_unary1 = parameter("s_unary1", u1)
        self.s_unary2 = parameter("s_unary2", u2)
        self.s_binary = parameter("s_binary", b)
        super().build(input_shape)

    def activation(self, x):
        u1, u2, b = self.genome.ops
        return b.fn(u1.fn(x, self.s_unary1), u2.fn(x, self.s_unary2), self.s_binary)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "genome": str(self.genome)}


@_register
class ComplementaryActivation(_GenomeLayer):
    r"""A searched complementary activation function (GAAF), as a float layer.

    \\[ f(x) = B(U_1(x), U_2(x)) \\]

    with the ops named by `genome` (a `Genome` or its string, e.g. `"add(sin,x)"`); see the
    module docstring for the op tables and the guards of divisions and logarithms. The ops
    `scale`, `shift`, `const` and `mix` each get a learnable parameter per channel (last
    axis), initialised to 1, 0, 1 and 1; other genomes have no weights.

    # References
    - Li et al., Searching Complementary Activation Functions for Binary Neural Networks
      (GAAF), Tsinghua Science and Technology, 2023. https://arxiv.org/abs/2206.03291
    """

    def call(self, inputs):
        return self.activation(inputs)


@_register
class GAAFSign(_GenomeLayer, BinarySign):
    r"""A sign after a complementary activation f (GAAF), optionally with a learnable threshold.

    \\[ x_b = \operatorname{sign}(\operatorname{hardtanh}_{1.3}(f(x - a_c))), \qquad
        \operatorname{sign}(0) = +1 \\]

    `f` is the `ComplementaryActivation` named by `genome`. `threshold=False` (the default,
    as in the authors' code): no threshold, a = 0. `threshold=True` (Ours): `a` is learnable
    per channel and starts at 0, as ReActNet's RSign. The backward pass is straight-through
    the sign and hardtanh and exact through f: \\(\partial x_b / \partial x = f'(x - a_c)\\)
    where \\(|f(x - a_c)| \le 1.3\\), else 0, so f reshapes the sign's surrogate gradient
    (larq's `ste_sign` with `clip_value`). The code's sign(h + 1e-6) differs from
    sign(h) (sign(0) = +1) only for h in (-1e-6, 0).

    At inference (`training` false), a genome whose f never changes the sign of its input
    other than by a per-channel factor c (`sign_factor`: `gate(scale,abs)`, `add(sin,x)` and
    others) computes the same signs as sign(c (x - a)), so LCE gets at most a SUB and a MUL
    in front of `LceQuantize`. Any other f runs as float elementwise TFLite built-ins there.

    # References
    - Li et al., Searching Complementary Activation Functions for Binary Neural Networks
      (GAAF), Tsinghua Science and Technology, 2023. https://arxiv.org/abs/2206.03291
    """

    def __init__(self, genome, clip_value=1.3, threshold=False, **kwargs):
        super().__init__(genome, **kwargs)
        self.clip_value = clip_value
        self.use_threshold = bool(threshold)

    def build(self, input_shape):
        self.threshold = None
        if self.use_threshold:
            self.threshold = self.add_weight(
                name="threshold", shape=(int(input_shape[-1]),), initializer="zeros"
            )
        super().build(input_shape)

    def call(self, inputs, training=None):
        y = inputs if self.threshold is None else inputs - self.threshold
        factor = None if training_flag(training) else sign_factor(self.genome, self.s_unary1, self.s_unary2)
        if factor is None:
            f = self.activation(y)
        else:  # the same signs without f's ops (see `sign_factor`)
            f = y if isinstance(factor, float) and factor == 1.0 else factor * y
        return lq.quantizers.ste_sign(f, clip_value=self.clip_value)

    def get_config(self):
        return {**super().get_config(), "clip_value": self.clip_value, "threshold": self.use_threshold}



# -- the preset, and the proxy network's weights and schedule ------------------------------

# The genome of the GAAF models: s * x * sigmoid(|x|), found by this project's own search
# (the paper's searched formulas were not published): of the search's top three, it
# trained best on the leaderboard's terms (benchmarks/results/gaaf_search.md).
DEFAULT_GENOME = "gate(scale,abs)"

# The latent-weight clip of the authors' proxy network (`p.org.clamp_(-1.3, 1.3)`).
PROXY_CLIP = 1.3

# The authors' proxy regime (`net_01.py`): from these epochs on, these factors of the
# initial rate.
STEP_SCHEDULE = ((80, 0.2), (150, 0.1), (200, 0.02), (240, 0.01), (270, 0.002))


def step_decay(learning_rate: float, steps_per_epoch: int, total_steps: int = 0, warmup_steps: int = 0):
    """GAAF's step schedule (`STEP_SCHEDULE`), per optimiser step: constant for runs under
    80 epochs, such as the authors' 15-epoch proxy training. (`total_steps` and
    `warmup_steps` are a schedule's common arguments, unused here.)"""
    del total_steps, warmup_steps
    # PiecewiseConstantDecay switches after a boundary: epoch e starts at step e * steps
    boundaries = [epoch * steps_per_epoch - 1 for epoch, _ in STEP_SCHEDULE]
    values = [learning_rate] + [learning_rate * factor for _, factor in STEP_SCHEDULE]
    return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def proxy_conv(method, filters, kernel_size, **common):
    """The binary weights of GAAF's proxy network: unscaled sign(W), straight-through
    without clipping, latent weights clipped to +-1.3 ("sign")."""
    common["kernel_constraint"] = lq.constraints.WeightClip(PROXY_CLIP)
    return BinaryConv2D(filters, kernel_size, kernel_quantizer=lq.quantizers.SteSign(clip_value=None), **common)


def sign_layer(method, *, name):
    """The GAAF sign of `method.gaaf`: with a learnable threshold in front of f if the
    method's threshold is "static" (Ours), without one if it is "none" (the code's)."""
    return GAAFSign(method.gaaf, threshold=method.threshold == "static", name=name)


WEIGHTS = {"sign": proxy_conv}
SCHEDULES = {"step": step_decay}
PRESETS = (
    Preset(
        "gaaf", {"threshold": "none", "gaaf": DEFAULT_GENOME},
        f"GAAF: complementary activation {DEFAULT_GENOME} before the sign, no threshold [Li et al. 2023]", "code",
    ),  # fmt: skip
)


# -- the genetic search --------------------------------------------------------------------


class SearchLogError(ValueError):
    """A search log that cannot be read, or that a search of another configuration wrote."""


def read_log(log_path) -> tuple[dict | None, list[dict]]:
    """The configuration (None if the log has no `{"config": ...}` first line) and the
    evaluation records `{"genome", "fitness", "generation"}` of a search log; (None, [])
    if there is no log yet."""
    try:
        with open(log_path) as f:
            lines = [(n, line) for n, line in enumerate(f, 1) if line.strip()]
    except FileNotFoundError:
        return None, []
    except OSError as e:
        raise SearchLogError(f"cannot read search log {log_path}: {e.strerror or e}") from None
    config, records = None, []
    for i, (n, line) in enumerate(lines):
        try:
            entry = json.loads(line)
            if i == 0 and isinstance(entry, dict) and isinstance(entry.get("config"), dict):
                config = entry["config"]
                continue
            Genome.parse(entry["genome"])
            entry["fitness"] = float(entry["fitness"])
            records.append(entry)
        except (ValueError, KeyError, TypeError):
            raise SearchLogError(
                f"{log_path} line {n} is not a GAAF search record: {line.strip()[:60]!r}"
            ) from None
    return config, records


def open_log(log_path, config: dict) -> list[dict]:
    """Opens a search log for a search described by `config` (JSON-able): a new or empty
    log gets `{"config": config}` as its first line; a log written with another
    configuration is refused with a `SearchLogError`. Returns the records logged so far."""
    config = json.loads(json.dumps(config))  # compared as it reads back: tuples as lists
    logged, records = read_log(log_path)
    if logged is None and not records:
        with open(log_path, "w") as f:
            f.write(json.dumps({"config": config}) + "\n")
        return []
    if logged is None:
        raise SearchLogError(f"search log {log_path} has no configuration line; start a new log")
    differences = [
        f"{key}={logged.get(key)!r} (now {config.get(key)!r})"
        for key in sorted(set(logged) | set(config))
        if logged.get(key) != config.get(key)
    ]
    if differences:
        raise SearchLogError(
            f"search log {log_path} was written with {', '.join(differences)}; resume with "
            "the same configuration or start a new log"
        )
    return records


SELECTIONS = ("authors", "uniform")
"""How `search` picks parents: the authors' three schemes, or uniformly (Ours, before)."""
ADMISSION = 0.11
"""The authors' admission threshold of the first population: accuracy above 11%."""


class SearchError(ValueError):
    """A search that cannot go on, such as a first population that cannot be filled."""


def select_parents(scheme: int, ranked: list, rng: random.Random) -> tuple:
    """Two parents by one of the authors' selection schemes (`evo.py`), from `ranked`, a
    list of (genome, fitness) best first, with non-negative fitnesses.

    - 0, elitism: the two best.
    - 1, tournament: a random member i; then each next member j = i + 1, i + 2, ... is
      taken with probability 1/2; (i, the best) if none is.
    - 2, fitness-proportionate: two different positions of a list holding each member's
      index int(100 f / sum f) times (the same member may come twice). With fewer than two
      positions (a large population of equal fitness), one position per member (Ours).
    """
    genomes = [genome for genome, _ in ranked]
    n = len(genomes)
    if scheme == 0:
        return genomes[0], genomes[min(1, n - 1)]
    if scheme == 1:
        i = rng.randrange(n)
        for j in range(i + 1, n):
            if rng.random() < 0.5:
                return genomes[i], genomes[j]
        return genomes[i], genomes[0]
    total = sum(score for _, score in ranked)
    slots = [i for i, (_, score) in enumerate(ranked) for _ in range(int(100 * score / total))]
    if len(slots) < 2:
        slots = list(range(n)) * (2 if n == 1 else 1)
    first, second = rng.sample(range(len(slots)), 2)
    return genomes[slots[first]], genomes[slots[second]]


def search(
    fitness: Callable[[Genome], float],
    *,
    population: int = 30,
    generations: int = 200,
    children: int = 10,
    seed: int = 0,
    selection: str = "authors",
    admit_above: float = ADMISSION,
    log_path=None,
    config: dict | None = None,
    progress: bool = True,
) -> list[tuple[Genome, float]]:
    """The genetic search of the authors' code (`evo.py`, `main.py`); returns the final
    population, best first.

    The first population is filled with random genomes, each admitted only if its fitness
    is above `admit_above` (the code's 11%: `ADMISSION`) and not yet a member. Then each
    generation draws one selection scheme uniformly (`select_parents`: elitism,
    tournament, fitness-proportionate) and makes `children` children, each a copy of one of
    the two parents (a coin decides which) with one gene mutated to another op
    (`Genome.mutate`; the code has a crossover, which its loop never calls). A child that
    is already a member is skipped unevaluated; otherwise it replaces the worst member if
    it scores higher, so the best genome found is never lost. The population stays ranked
    best first (ties in order of arrival). `fitness(genome)` is higher-is-better, an
    accuracy in [0, 1]; NaN counts as -inf.

    `selection="uniform"` picks each child's parent uniformly among the members instead
    (Ours, this project's first search). The first population gives up with a
    `SearchError` after 10 x `population` genomes were refused, a proxy training that
    fails for all of them (the code would loop for ever).

    Each genome is evaluated once: every evaluation is appended to `log_path` as a JSON line
    `{"genome", "fitness", "generation"}`, and later meetings of the same genome reuse the
    value (the code trains it again, from the same seed). A rerun with the same `log_path`
    and seed replays the same random choices, reading logged fitnesses instead of
    evaluating again, so an interrupted search resumes where it stopped and ends exactly as
    an uninterrupted one would. (The log is therefore a cache: use one log per fitness
    function.)

    `config`, a JSON-able description of the search (its fitness function, and
    `population`, `children`, `selection`, `admit_above` and `seed` for an exact replay),
    guards that cache: it is the first line of a new log, and a log written with another one
    is refused (`open_log`) before anything is evaluated. Leave `generations` out of it to
    let a resumed search run for more generations than it first had.
    """
    if not 1 <= population <= SEARCH_SPACE:
        raise ValueError(
            f"population must be between 1 and {SEARCH_SPACE} (distinct genomes); got {population}"
        )
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}; got {selection!r}")
    if not admit_above >= 0:
        raise ValueError(f"admit_above must be >= 0 (fitness-proportionate selection); got {admit_above}")
    known = {}
    if log_path:
        records = read_log(log_path)[1] if config is None else open_log(log_path, config)
        known = {r["genome"]: r["fitness"] for r in records}
    run = _Search(fitness, random.Random(seed), known, log_path)
    with tqdm(total=population + generations * children, unit="genome", disable=not progress) as run.bar:
        run.first_population(population, admit_above)
        for generation in range(1, generations + 1):
            run.generation(generation, children, selection)
    return run.ranked


class _Search:
    """The state of one `search`: the ranked population, the fitnesses known so far (from
    the log, and each new one appended to it), the random generator and the progress bar."""

    def __init__(self, fitness, rng, known, log_path):
        self.fitness, self.rng, self.known, self.log_path = fitness, rng, known, log_path
        self.ranked = []
        self.bar = None

    def evaluate(self, genome, generation) -> float:
        key = str(genome)
        if key not in self.known:
            value = float(self.fitness(genome))
            self.known[key] = -math.inf if math.isnan(value) else value
            if self.log_path:
                record = {"genome": key, "fitness": self.known[key], "generation": generation}
                with open(self.log_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
        return self.known[key]

    def admit(self, genome, score) -> None:
        # sorted is stable: ties keep their order of arrival
        self.ranked = sorted(self.ranked + [(genome, score)], key=lambda member: -member[1])

    def is_member(self, genome) -> bool:
        return any(genome == member for member, _ in self.ranked)

    def first_population(self, population, admit_above) -> None:
        refused = 0
        while len(self.ranked) < population:
            genome = Genome.random(self.rng)
            if self.is_member(genome):
                continue
            score = self.evaluate(genome, 0)
            if score > admit_above:
                self.admit(genome, score)
                self.bar.update()
                continue
            refused += 1
            self.bar.set_postfix(refused=refused)
            if refused >= 10 * population:
                raise SearchError(
                    f"only {len(self.ranked)} of {len(self.ranked) + refused} random genomes scored above "
                    f"{admit_above:g}: the proxy training fails (try a lower learning rate)"
                )

    def generation(self, generation, children, selection) -> None:
        scheme = self.rng.randrange(3) if selection == "authors" else None
        for _ in range(children):
            self.bar.update()
            if scheme is None:
                parent = self.rng.choice(self.ranked)[0]
            else:
                parent = select_parents(scheme, self.ranked, self.rng)[self.rng.randrange(2)]
            child = parent.mutate(self.rng)
            if self.is_member(child):
                continue
            score = self.evaluate(child, generation)
            if score > self.ranked[-1][1]:
                self.ranked = self.ranked[:-1]
                self.admit(child, score)
        self.bar.set_postfix(best=self.ranked[0][1])
