import dataclasses
import itertools
import json
import math
import random

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

from larq_methods import convert
from larq_methods.methods import gaaf
from larq_methods.methods.gaaf import BINARY, UNARY, ComplementaryActivation, GAAFSign, Genome, erf, erfc, search, sign_factor
from tests.helpers import perturb

EPS = 1e-6  # the documented guard of denominators (ours)
EPS_CODE = 1e-8  # the authors' guard of signed_sqrt and log_abs


def _guard(d):
    return d + EPS * np.where(d >= 0, 1.0, -1.0)


# Independent NumPy formulas of the 33 ops, in float64; s is the op's per-channel parameter.
NUMPY_UNARY = {
    "x": lambda x, s: x,
    "zero": lambda x, s: 0 * x,
    "square": lambda x, s: x**2,
    "cube": lambda x, s: x**3,
    "signed_sqrt": lambda x, s: np.sign(x) * np.sqrt(np.abs(x) + EPS_CODE),
    "log_abs": lambda x, s: np.log(np.abs(x) + EPS_CODE),
    "sin": lambda x, s: np.sin(x),
    "cos": lambda x, s: np.cos(x),
    "sigmoid": lambda x, s: 1 / (1 + np.exp(-x)),
    "tan": lambda x, s: np.tan(x),
    "atan": lambda x, s: np.arctan(x),
    "erf": lambda x, s: np.vectorize(math.erf)(x),
    "erfc": lambda x, s: np.vectorize(math.erfc)(x),
    "exp_neg_abs": lambda x, s: np.exp(-np.abs(x)),
    "exp_neg_sq": lambda x, s: np.exp(-(x**2)),
    "max0": lambda x, s: np.where(x > 0, x, 0),
    "min0": lambda x, s: np.where(x < 0, x, 0),
    "abs": lambda x, s: np.abs(x),
    "neg": lambda x, s: -x,
    "scale": lambda x, s: s * x,
    "shift": lambda x, s: x + s,
    "const": lambda x, s: s + 0 * x,
}
NUMPY_BINARY = {
    "add": lambda a, b, s: a + b,
    "sub": lambda a, b, s: a - b,
    "mul": lambda a, b, s: a * b,
    "div": lambda a, b, s: a / _guard(b),
    "ratio": lambda a, b, s: a / _guard(a + b),
    "max": lambda a, b, s: np.where(a > b, a, b),
    "min": lambda a, b, s: np.where(a < b, a, b),
    "gate": lambda a, b, s: a / (1 + np.exp(-b)),
    "exp_neg_sq_diff": lambda a, b, s: np.exp(-((a - b) ** 2)),
    "exp_neg_abs_diff": lambda a, b, s: np.exp(-np.abs(a - b)),
    "mix": lambda a, b, s: s * a + (1 - s) * b,
}

# Three channels, non-default s; values around and at the guards (0, +-1e-7 < EPS).
S = np.array([0.5, -2.0, 1.5], np.float32)
X = np.array([[-3.0, -1.5, -0.5], [-1e-3, -1e-7, 0.0], [1e-7, 1e-3, 0.5], [1.2, 2.5, -2.2]], np.float32)
# Pairs with x2 = 0 and +-1e-7, x1 + x2 = 0 (row 1), +-1e-7, +-1e-3 and 0 / (0 + eps).
X1 = np.array([[1.0, -0.5, 0.3], [0.5, 2.0, -1.2], [1e-7, -3.0, 0.0], [0.7, -0.2, 1.5], [-1e-7, 1e-3, 4.0]], np.float32)
X2 = np.array([[0.0, 1e-7, -1e-7], [-0.5, -2.0, 1.2], [0.0, 2.5, 0.0], [-0.4, 0.9, -2.5], [0.0, -2e-3, -4.0]], np.float32)


def _value_and_grads(fn, *args):
    args = [tf.constant(a) for a in args]
    with tf.GradientTape() as tape:
        tape.watch(args)
        y = fn(*args)
    return y.numpy(), [g for g in tape.gradient(y, args) if g is not None]


def test_op_tables_in_the_authors_order():
    assert [op.name for op in UNARY] == [
        "x", "zero", "square", "cube", "signed_sqrt", "log_abs", "sin", "cos", "sigmoid", "tan", "atan",
        "erf", "erfc", "exp_neg_abs", "exp_neg_sq", "max0", "min0", "abs", "neg", "scale", "shift", "const",
    ]
    assert [op.name for op in BINARY] == [
        "add", "sub", "mul", "div", "ratio", "max", "min", "gate", "exp_neg_sq_diff", "exp_neg_abs_diff", "mix",
    ]
    learnable = {op.name: op.s_init for op in UNARY + BINARY if op.s_init is not None}
    assert learnable == {"scale": 1.0, "shift": 0.0, "const": 1.0, "mix": 1.0}


@pytest.mark.parametrize("op", UNARY, ids=lambda op: op.name)
def test_unary_op_against_numpy(op):
    y, grads = _value_and_grads(lambda x: op.fn(x, tf.constant(S)), X)
    expected = NUMPY_UNARY[op.name](X.astype(np.float64), S.astype(np.float64))
    np.testing.assert_allclose(y, np.broadcast_to(expected, X.shape), rtol=2e-6, atol=1e-6)
    assert all(np.isfinite(g).all() for g in grads)  # the guards hold at 0 for gradients too


@pytest.mark.parametrize("op", BINARY, ids=lambda op: op.name)
def test_binary_op_against_numpy(op):
    y, grads = _value_and_grads(lambda a, b: op.fn(a, b, tf.constant(S)), X1, X2)
    expected = NUMPY_BINARY[op.name](X1.astype(np.float64), X2.astype(np.float64), S.astype(np.float64))
    np.testing.assert_allclose(y, expected, rtol=2e-6, atol=1e-6)
    assert all(np.isfinite(g).all() for g in grads)


def test_epsilon_guards_at_zero():
    """signed_sqrt and log_abs as in the authors' code; denominators kept 1e-6 away from 0
    (ours), where the code's x2 + 1e-8 reaches 0 at x2 = -1e-8."""
    get = {op.name: op.fn for op in UNARY + BINARY}
    x = tf.constant([0.0, 1e-12, -1e-12, -1e-8])
    np.testing.assert_allclose(get["signed_sqrt"](x, None), np.array([0.0, 1, -1, -np.sqrt(2)]) * np.sqrt([1e-8, 1e-8 + 1e-12, 1e-8 + 1e-12, 1e-8]), rtol=1e-5)
    np.testing.assert_allclose(get["log_abs"](x, None), np.log([1e-8, 1e-8 + 1e-12, 1e-8 + 1e-12, 2e-8]), rtol=1e-6)
    ones = tf.ones(4)
    np.testing.assert_allclose(get["div"](ones, x, None), 1 / np.array([1e-6, 1e-6 + 1e-12, -1e-6 - 1e-12, -1e-6 - 1e-8]), rtol=1e-5)
    assert np.isfinite(get["div"](ones, x, None)).all() and np.isfinite(get["ratio"](ones, -ones, None)).all()


def test_guards_are_the_plain_math_away_from_zero():
    x = np.array([-4.0, -0.3, -0.05, 0.05, 0.7, 9.0], np.float32)  # |x| >> EPS
    get = {op.name: op.fn for op in UNARY + BINARY}
    np.testing.assert_allclose(get["signed_sqrt"](x, None), np.sign(x) * np.sqrt(np.abs(x)), rtol=1e-4)
    np.testing.assert_allclose(get["log_abs"](x, None), np.log(np.abs(x)), rtol=1e-4)
    np.testing.assert_allclose(get["div"](x[::-1], x, None), x[::-1] / x, rtol=1e-4)
    np.testing.assert_allclose(get["ratio"](x, 2 * x, None), np.full(6, 1 / 3), rtol=1e-4)


def test_erf_erfc_approximations_against_math():
    x = np.linspace(-8, 8, 160_001).astype(np.float32)
    exact_erf = np.vectorize(math.erf)(x.astype(np.float64))
    exact_erfc = np.vectorize(math.erfc)(x.astype(np.float64))
    assert np.abs(erf(x).numpy() - exact_erf).max() < 4e-7  # measured 3.3e-7
    assert np.abs(erfc(x).numpy() - exact_erfc).max() < 4e-7  # measured 3.6e-7
    # Gradients follow the exact derivative 2/sqrt(pi) exp(-x^2), including at 0.
    _, (d_erf,) = _value_and_grads(erf, x)
    _, (d_erfc,) = _value_and_grads(erfc, x)
    exact = 2 / np.sqrt(np.pi) * np.exp(-(x.astype(np.float64) ** 2))
    assert np.abs(d_erf - exact).max() < 3e-6 and np.abs(d_erfc + exact).max() < 3e-6
    # In front of a sign, the sign of erf matters: exact even for the tiniest inputs.
    tiny = np.array([1e-30, -1e-30, 1e-9, -1e-9, 3e-7, -3e-7], np.float32)
    np.testing.assert_array_equal(np.sign(erf(tiny).numpy()), np.sign(tiny))


def test_tan_and_atan_from_builtins_against_numpy():
    x = np.linspace(-1.55, 1.55, 10_001).astype(np.float32)
    ops = {op.name: op.fn for op in UNARY}
    np.testing.assert_allclose(ops["tan"](x, None), np.tan(x.astype(np.float64)), rtol=1e-5)
    wide = np.linspace(-50, 50, 10_001).astype(np.float32)
    np.testing.assert_allclose(ops["atan"](wide, None), np.arctan(wide.astype(np.float64)), atol=3e-7)


def test_every_genome_string_round_trips():
    for u1, u2, b in itertools.product(range(22), range(22), range(11)):
        genome = Genome(u1, u2, b)
        assert Genome.parse(str(genome)) == genome
        assert Genome.parse(f"{u1},{u2},{b}") == genome


def test_readable_and_index_forms():
    assert str(Genome.parse("6,0,0")) == "add(sin,x)"
    assert Genome.parse(" 3 , 0 , 1 ") == Genome.parse("sub( cube , x )") == Genome(3, 0, 1)
    assert str(Genome.parse("21,21,10")) == "mix(const,const)"
    assert str(Genome.parse("11,12,3")) == "div(erf,erfc)"


BAD = ["", "add", "add(sin)", "add(sin,x", "add(sin,x,x)", "foo(x,x)", "add(x,bar)", "22,0,0", "0,0,11", "1,2", "-1,0,0"]


@pytest.mark.parametrize("text", BAD)
def test_bad_genome_strings_raise_one_line(text):
    with pytest.raises(ValueError) as info:
        Genome.parse(text)
    message = str(info.value)
    assert "\n" not in message and repr(text) in message
    if not text[:1].isdigit():  # index errors give the ranges instead of the names
        assert "signed_sqrt" in message and "exp_neg_abs_diff" in message
    with pytest.raises(ValueError, match="0..21"):
        Genome(22, 0, 0)


def test_mutate_changes_exactly_one_gene():
    rng = random.Random(1)
    genome = Genome(0, 0, 0)
    for _ in range(200):
        child = genome.mutate(rng)
        genes = zip(dataclasses.astuple(genome), dataclasses.astuple(child))
        assert sum(a != b for a, b in genes) == 1
        genome = child


def _built(cls, genome, channels, **kwargs):
    layer = cls(genome, **kwargs)
    layer.build((None, 3, 3, channels))
    return layer


def test_weights_only_for_ops_that_need_them():
    assert _built(ComplementaryActivation, "add(sin,x)", 4).weights == []
    assert len(_built(ComplementaryActivation, "mix(scale,scale)", 4).weights) == 3
    const = _built(ComplementaryActivation, "add(x,const)", 4)
    assert [w.name.split("/")[-1].split(":")[0] for w in const.weights] == ["s_unary2"]
    np.testing.assert_array_equal(const.s_unary2.numpy(), np.ones(4))
    assert _built(GAAFSign, "add(sin,x)", 4).weights == []  # no threshold, as in the authors' code
    assert len(_built(GAAFSign, "add(sin,x)", 4, threshold=True).weights) == 1  # ours: a threshold


def test_complementary_activation_against_numpy():
    x = np.random.default_rng(0).uniform(-1.4, 1.4, (2, 3, 3, 4)).astype(np.float32)
    s1, s2, sb = np.array([[0.5, -1.0, 2.0, 1.5], [0.3, -0.2, 0.0, 1.1], [0.25, 1.5, -0.5, 0.0]], np.float32)

    mix = _built(ComplementaryActivation, "mix(scale,tan)", 4)
    mix.s_unary1.assign(s1), mix.s_binary.assign(sb)
    with tf.GradientTape() as tape:
        y = mix(x)
        total = tf.reduce_sum(y)
    np.testing.assert_allclose(y, sb * (s1 * x) + (1 - sb) * np.tan(x), rtol=1e-5, atol=1e-6)
    d_s1, d_sb = tape.gradient(total, [mix.s_unary1, mix.s_binary])
    np.testing.assert_allclose(d_s1, (sb * x).sum(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(d_sb, (s1 * x - np.tan(x)).sum(axis=(0, 1, 2)), rtol=1e-4)

    ratio = _built(ComplementaryActivation, "ratio(shift,const)", 4)
    ratio.s_unary1.assign(s2), ratio.s_unary2.assign(s1)
    np.testing.assert_allclose(ratio(x), (x + s2) / _guard(x + s2 + s1), rtol=1e-5)


def _mul_x_cos_sign():
    layer = _built(GAAFSign, Genome.parse("mul(x,cos)"), 2, threshold=True)
    layer.threshold.assign([0.5, -0.25])
    return layer


# f(y) = y cos(y), y = x - a, a = [0.5, -0.25]:  y = [[-0.1, 2.25], [0, 0], [2, 1], [-2, -3.5]]
X_SIGN = np.array([[0.4, 2.0], [0.5, -0.25], [2.5, 0.75], [-1.5, -3.75]], np.float32)


def test_gaaf_sign_forward_hand_computed():
    # f = [[-0.0995, 2.25 cos 2.25 = -1.41], [0, 0], [2 cos 2 = -0.83, cos 1 = 0.54],
    #      [-2 cos 2 = 0.83, -3.5 cos 3.5 = 3.28]]; sign(0) = +1. Not sign(x - a): f is not monotone.
    expected = [[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, 1.0]]
    np.testing.assert_array_equal(_mul_x_cos_sign()(X_SIGN).numpy(), expected)


def test_gaaf_sign_gradient_is_f_prime_inside_the_clip():
    layer = _mul_x_cos_sign()
    x = tf.constant(X_SIGN)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
    # f'(y) = cos y - y sin y where |f(y)| <= 1.3, else 0 (|f| = 1.41 and 3.28 are clipped).
    fp = lambda y: math.cos(y) - y * math.sin(y)  # noqa: E731
    dx = np.array([[fp(-0.1), 0.0], [1.0, 1.0], [fp(2.0), fp(1.0)], [fp(-2.0), 0.0]])
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), dx, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(y, layer.threshold).numpy(), -dx.sum(axis=0), rtol=1e-5)


def test_config_round_trip():
    layers = (
        ComplementaryActivation(Genome(19, 11, 10)),
        GAAFSign("ratio(shift,tan)", clip_value=1.0),
        GAAFSign("ratio(shift,tan)", threshold=True),
    )
    for layer in layers:
        config = layer.get_config()
        assert config["genome"] == str(layer.genome)
        clone = type(layer).from_config(config)
        assert clone.get_config() == config and clone.genome == layer.genome
    assert GAAFSign.from_config(GAAFSign("4,5,2").get_config()).clip_value == 1.3
    assert GAAFSign.from_config(GAAFSign("4,5,2").get_config()).use_threshold is False


def test_plain_load_model_gives_identical_outputs(tmp_path):
    inputs = tf.keras.Input((4, 4, 3))
    x = ComplementaryActivation("mix(scale,erf)")(inputs)
    x = GAAFSign("div(shift,tan)", threshold=True)(x)
    model = perturb(tf.keras.Model(inputs, x), stddev=0.3)
    data = np.random.default_rng(2).normal(size=(2, 4, 4, 3)).astype(np.float32)
    for name in ("m.h5", "m.keras"):
        model.save(tmp_path / name)
        loaded = tf.keras.models.load_model(tmp_path / name)  # no custom_objects
        np.testing.assert_array_equal(loaded(data).numpy(), model(data).numpy())
        assert str(loaded.layers[2].genome) == "div(shift,tan)"


def test_layers_work_in_larq_summary(capsys):
    inputs = tf.keras.Input((8, 8, 4))
    x = ComplementaryActivation("add(sin,x)")(inputs)
    x = GAAFSign("gate(x,cos)")(x)
    x = lq.layers.QuantConv2D(4, 3, padding="same", pad_values=1.0, kernel_quantizer="ste_sign", kernel_constraint="weight_clip")(x)
    lq.models.summary(tf.keras.Model(inputs, x))
    out = capsys.readouterr().out
    assert "complementary_activation" in out and "gaaf_sign" in out


# 11 branches that use each of the 22 unary and 11 binary ops once.
CONVERTED = [
    "add(cube,zero)", "sub(square,x)", "mul(signed_sqrt,log_abs)", "div(sin,cos)", "ratio(sigmoid,tan)",
    "max(atan,erf)", "min(erfc,exp_neg_abs)", "gate(exp_neg_sq,max0)", "exp_neg_sq_diff(min0,abs)",
    "exp_neg_abs_diff(neg,scale)", "mix(shift,const)",
]


def test_all_ops_convert_to_builtins_and_lce_with_parity():
    genomes = [Genome.parse(g) for g in CONVERTED]
    assert {op.name for g in genomes for op in g.ops} == {op.name for op in UNARY + BINARY}
    inputs = tf.keras.Input((4, 4, 32))
    branches = [
        lq.layers.QuantConv2D(
            32, 3, padding="same", pad_values=1.0, kernel_quantizer="magnitude_aware_sign",
            kernel_constraint="weight_clip", use_bias=False,
        )(GAAFSign(g)(inputs))
        for g in genomes
    ]
    outputs = tf.keras.layers.GlobalAveragePooling2D()(tf.keras.layers.Concatenate()(branches))
    model = perturb(tf.keras.Model(inputs, outputs), stddev=0.2)
    data = np.random.default_rng(0).uniform(-2, 2, (8, 4, 4, 32)).astype(np.float32)

    flatbuffer = convert.convert(model)
    ops = convert.inventory(flatbuffer)
    counts = convert.op_counts(ops)
    builtins = {name for name in vars(schema.BuiltinOperator) if not name.startswith("_")}
    assert set(counts) - builtins == {"LceBconv2d", "LceQuantize"}  # no Flex, Tan, Atan, Erf, Erfc
    assert counts["LceBconv2d"] == counts["LceQuantize"] == len(genomes)
    assert convert.unbinarised(model, ops) == []

    parity = convert.parity(model, flatbuffer, data)
    assert parity["top1_agreement"] == 1.0
    # A sign only flips between runtimes for an input within rounding of 0: outputs agree.
    assert parity["examples_matching"] == 1.0


def _target_fitness(calls):
    def fitness(genome):
        calls.append(str(genome))
        # an accuracy in (0.13, 1], highest at mul(log_abs,abs)... that is, (5, 17, 8)
        return 1 - float(abs(genome.unary1 - 5) + abs(genome.unary2 - 17) + abs(genome.binary - 8)) / 60

    return fitness


def _log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_search_keeps_the_best_improves_and_logs(tmp_path):
    calls = []
    fitness = _target_fitness(calls)
    result = search(
        fitness, population=6, generations=30, children=4, seed=3, log_path=tmp_path / "s.jsonl", progress=False
    )
    scores = [score for _, score in result]
    assert len(result) == 6 and len({g for g, _ in result}) == 6
    assert scores == sorted(scores, reverse=True)

    log = _log(tmp_path / "s.jsonl")
    assert [r["genome"] for r in log] == calls  # one line per evaluation, none twice
    assert len(set(calls)) == len(calls)
    assert all(r["fitness"] == fitness(Genome.parse(r["genome"])) for r in log)
    assert {r["generation"] for r in log} <= set(range(31))
    initial_best = max(r["fitness"] for r in log if r["generation"] == 0)
    assert scores[0] == max(r["fitness"] for r in log)  # the best ever found is never lost
    assert scores[0] > initial_best


def test_resumed_search_equals_an_uninterrupted_one(tmp_path):
    kwargs = dict(population=5, children=3, seed=7, progress=False)
    interrupted, whole = [], []
    search(_target_fitness(interrupted), generations=2, log_path=tmp_path / "a.jsonl", **kwargs)
    first_part = len(interrupted)
    resumed = search(_target_fitness(interrupted), generations=4, log_path=tmp_path / "a.jsonl", **kwargs)
    kwargs["progress"] = True  # the bar must not disturb anything
    uninterrupted = search(_target_fitness(whole), generations=4, log_path=tmp_path / "b.jsonl", **kwargs)
    kwargs["progress"] = False

    assert resumed == uninterrupted
    assert interrupted == whole and len(set(whole)) == len(whole)  # nothing evaluated twice
    assert 0 < first_part < len(whole)
    assert _log(tmp_path / "a.jsonl") == _log(tmp_path / "b.jsonl")
    # A finished search reruns from its log alone.
    again = []
    rerun = search(_target_fitness(again), generations=4, log_path=tmp_path / "a.jsonl", **kwargs)
    assert rerun == resumed
    assert again == []


def test_nan_fitness_ranks_last(tmp_path):
    def fitness(genome):  # a proxy training that diverged for half the genomes
        return math.nan if genome.binary % 2 else float(genome.unary1)

    result = search(fitness, population=4, generations=3, children=2, log_path=tmp_path / "n.jsonl", progress=False)
    scores = [score for _, score in result]
    assert not any(math.isnan(score) for score in scores) and scores == sorted(scores, reverse=True)
    assert all(g.binary % 2 == 0 for g, score in result if score > -math.inf)
    assert any(r["fitness"] == -math.inf for r in _log(tmp_path / "n.jsonl"))


def _replay(log, population, admit_above=gaaf.ADMISSION):
    """The authors' population rules, replayed from a search log in evaluation order: the
    first population admits only genomes above the threshold; a child that is a member is
    never evaluated; an evaluated child replaces the worst member only if it scores higher.
    Returns the final ranking."""
    ranked = []
    for record in log:
        genome, score = Genome.parse(record["genome"]), record["fitness"]
        if record["generation"] == 0:
            assert len(ranked) < population, "the first population was already full"
            if score > admit_above:
                ranked = sorted(ranked + [(genome, score)], key=lambda m: -m[1])
            continue
        assert len(ranked) == population
        assert genome not in [g for g, _ in ranked], f"{genome} evaluated while a member"
        if score > ranked[-1][1]:
            ranked = sorted(ranked[:-1] + [(genome, score)], key=lambda m: -m[1])
    return ranked


def test_authors_ga_admission_replacement_and_no_duplicates(tmp_path):
    def fitness(genome):  # below the 11% admission for a third of the genomes
        return 0.05 if genome.unary2 % 3 == 0 else 0.2 + 0.7 * ((7 * genome.unary1 + 3 * genome.unary2 + genome.binary) % 31) / 31

    result = search(fitness, population=8, generations=25, children=5, seed=2, log_path=tmp_path / "g.jsonl", progress=False)
    log = _log(tmp_path / "g.jsonl")
    first = [r for r in log if r["generation"] == 0]
    assert any(r["fitness"] <= 0.11 for r in first)  # some were refused...
    assert all(score > 0.11 for _, score in result)  # ...and none of them is a member
    assert result == _replay(log, 8)
    assert len({g for g, _ in result}) == 8
    assert len({r["genome"] for r in log}) == len(log)  # each genome evaluated once
    assert result[0][1] > max(r["fitness"] for r in first)  # the search improved


def test_each_generation_draws_one_selection_scheme(monkeypatch):
    drawn = []
    real = gaaf.select_parents

    def spy(scheme, ranked, rng):
        drawn.append(scheme)
        assert [score for _, score in ranked] == sorted((score for _, score in ranked), reverse=True)
        return real(scheme, ranked, rng)

    monkeypatch.setattr(gaaf, "select_parents", spy)
    search(_target_fitness([]), population=6, generations=30, children=4, seed=0, progress=False)
    per_generation = [drawn[i : i + 4] for i in range(0, len(drawn), 4)]
    assert len(per_generation) == 30 and all(len(set(g)) == 1 for g in per_generation)
    counts = [sum(g[0] == k for g in per_generation) for k in range(3)]
    assert min(counts) >= 4, counts  # elitism, tournament and proportionate all drawn


RANKED = [(Genome(i, 0, 0), score) for i, score in enumerate([0.9, 0.6, 0.3, 0.2])]


def test_selection_schemes_as_in_the_authors_code():
    rng = random.Random(0)
    assert gaaf.select_parents(0, RANKED, rng) == (RANKED[0][0], RANKED[1][0])  # elitism
    # Tournament: i uniform; j = i+1, i+2, ... each taken with probability 1/2, else the best.
    for seed in range(50):
        mine, theirs = random.Random(seed), random.Random(seed)
        i = theirs.randrange(4)
        expected = (i, 0)
        for j in range(i + 1, 4):
            if theirs.random() < 0.5:
                expected = (i, j)
                break
        assert gaaf.select_parents(1, RANKED, mine) == tuple(RANKED[k][0] for k in expected)
    # Proportionate: int(100 f / sum f) = 45, 30, 15, 10 slots; two different slots.
    draws = [gaaf.select_parents(2, RANKED, rng) for _ in range(4000)]
    share = np.array([sum(p.unary1 == k for pair in draws for p in pair) for k in range(4)]) / 8000
    np.testing.assert_allclose(share, [0.45, 0.30, 0.15, 0.10], atol=0.02)


def test_first_population_that_cannot_be_filled_is_an_error():
    with pytest.raises(gaaf.SearchError, match="only 0 of 30 random genomes scored above 0.11"):
        search(lambda g: 0.1, population=3, generations=1, progress=False)
    with pytest.raises(ValueError, match="selection must be one of authors, uniform"):
        search(lambda g: 0.5, population=3, selection="best", progress=False)


def test_uniform_parents_remain_an_option(tmp_path):
    result = search(_target_fitness([]), population=6, generations=20, children=4, selection="uniform", progress=False,
                    log_path=tmp_path / "u.jsonl")  # fmt: skip
    assert result == _replay(_log(tmp_path / "u.jsonl"), 6)


def test_search_refuses_a_population_larger_than_the_search_space():
    with pytest.raises(ValueError, match="population must be between 1 and 5324"):
        search(lambda g: 0.0, population=5325, generations=0, progress=False)


# Inputs of the sign: zero, tiny, rounding-sized and large, of both signs.
Y_FOLD = np.concatenate([[0.0, 1e-30, -1e-30, 1e-7, -1e-7, 3e-4, -3e-4], np.linspace(-60, 60, 2001)]).astype(np.float32)
S_FOLD = np.array([1.5, -0.5, 0.0, 1.0], np.float32)  # per channel: either sign, and zero


def test_every_folded_genome_keeps_the_signs_of_f():
    """sign(f(y)) = sign(c y) for each genome `sign_factor` folds, over all 5324 genomes."""
    y = np.repeat(Y_FOLD[None, :, None, None], 4, axis=-1)
    sign = lambda v: np.where(np.asarray(v) >= 0, 1.0, -1.0)  # noqa: E731  (sign(0) = +1)
    folded = []
    for u1, u2, b in itertools.product(range(len(UNARY)), range(len(UNARY)), range(len(BINARY))):
        genome = Genome(u1, u2, b)
        if sign_factor(genome, S_FOLD, S_FOLD) is None:
            continue
        layer = _built(ComplementaryActivation, genome, 4)
        for w in layer.weights:
            w.assign(S_FOLD)
        c = np.asarray(sign_factor(genome, layer.s_unary1, layer.s_unary2), np.float32)
        np.testing.assert_array_equal(sign(layer(y)), sign(c * y), err_msg=str(genome))
        folded.append(str(genome))
    assert {"gate(scale,abs)", "add(sin,x)", "add(x,sin)", "add(x,zero)", "sub(x,neg)", "sub(zero,scale)"} <= set(folded)
    assert not {"mul(x,cos)", "add(cube,zero)", "sub(x,sin)", "gate(x,neg)", "add(x,scale)"} & set(folded)


def test_gaaf_sign_folds_at_inference_and_trains_through_f():
    layer = _built(GAAFSign, "gate(scale,abs)", 2, threshold=True)
    layer.s_unary1.assign([1.5, -0.5])
    layer.threshold.assign([0.25, -0.5])
    x = tf.constant(np.random.default_rng(0).uniform(-3, 3, (2, 5, 5, 2)), tf.float32)
    y = x - layer.threshold
    unfolded = lq.quantizers.ste_sign(layer.activation(y), clip_value=1.3)
    np.testing.assert_array_equal(layer(x, training=False), unfolded)
    np.testing.assert_array_equal(layer(x, training=False), np.where(y * [1.5, -0.5] >= 0, 1.0, -1.0))
    with tf.GradientTape() as tape:
        out = layer(x, training=True)
    np.testing.assert_array_equal(out, unfolded)
    assert tape.gradient(out, layer.s_unary1) is not None  # s shapes the gradient in training


def test_a_folded_genome_converts_without_its_operators():
    inputs = tf.keras.Input((4, 4, 32))
    x = GAAFSign("gate(scale,abs)")(inputs)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, kernel_quantizer="magnitude_aware_sign", kernel_constraint="weight_clip", use_bias=False)(x)
    model = perturb(tf.keras.Model(inputs, tf.keras.layers.GlobalAveragePooling2D()(x)), stddev=0.5)
    data = np.random.default_rng(0).uniform(-2, 2, (8, 4, 4, 32)).astype(np.float32)
    _, report = convert.convert_and_verify(model, data, min_agreement=1.0, input="scaled")
    assert report["operators"]["LceBconv2d"] == 1 and report["operators"]["MUL"] == 1
    # no threshold (the authors' code), and f folded: one MUL by s before LceQuantize
    assert not {"SUB", "LOGISTIC", "ABS"} & set(report["operators"]), report["operators"]
    assert report["parity"]["examples_matching"] == 1.0
