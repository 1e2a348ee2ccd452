"""Training throughput (images/s) of every named model, its backbone baseline and the
backbone's float twin, measured in one interleaved run, with the ratios between them.

    .venv/bin/python benchmarks/throughput.py --real     # alpha 1.0, 112x112x3, batch 32
    .venv/bin/python benchmarks/throughput.py            # alpha 0.25, 28x28x1, batch 128

Each model is compiled as `lqm train` compiles it (`training.compile_classifier`: Adam,
linear decay, cross-entropy, the one training step) and trained on one fixed random batch:
after `--warmup` steps (tracing), `--steps` timed `train_on_batch` calls make one window.
All models are built first, then measured round-robin, `--rounds` times, and each keeps the
median of its windows, so that load from other processes on this shared machine touches
every model alike and one noisy window moves nothing. `--mixed` also measures the baselines
and float twins under this machine's mixed precision policy. `--breakdown` also measures
each baseline with real weights and binary activations (step 1 of the two-step recipe),
which splits its overhead over the float twin into the activations' signs and the weights',
and with zero padding (`zero_padding`: not convertible; it measures the cost of the
one-padding that LCE needs). `--xla-models` are also measured
compiled with XLA (`jit_compile=True`; minutes of compilation per model here). `--before`
also measures every binary model built as the code before issue 12 built it (larq's
`approx_sign` in every sign, DyPReLU's two heads as two products in training, larq's
padding with ones, tf-keras' XLA-compiled grouped convolutions, INSTA's third moment
differentiated automatically), in the same rounds. `--react-baselines` also measures the
backbones whose blocks have no threshold and no activation (BiRealNet, QuickNet) with
ReActNet's RSign and RPReLU in them: the baseline INSTA-BNN and DyBNN report their gains
against, so that "vs ReAct backbone" is what their modules cost beyond ReActNet's
(on ReActNet-18 and ReActNet-A it equals "vs backbone").

"vs backbone" is the backbone baseline's images/s over the model's, "vs float twin" the
float twin's over the model's (1.00x: as fast; 1.25x: takes 1.25 times as long). Writes
the table to `--output`.

FTBNN's two groups need 32 channels per group, which alpha 0.25 does not give: there it
runs with groups=1 (its FPReLU and binary downsampling), as the table says.
"""

import argparse
import contextlib
import functools
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


import larq_methods  # noqa: E402,F401  (Keras 2 before TensorFlow)
import larq as lq  # noqa: E402,I001
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from larq_methods import benchmark, training  # noqa: E402
from larq_methods.method import GroupedConvolutionError  # noqa: E402
from zoo import recipes  # noqa: E402
from zoo.named import PRESETS  # noqa: E402

BASELINES = ("reactnet-18", "reactnet-a", "quicknet", "birealnet")
REAL = dict(alpha=1.0, image_size=112, channels=3, batch_size=32, steps=8, warmup=2, rounds=3, output="benchmarks/results/throughput_real.md")
TOY = dict(alpha=0.25, image_size=28, channels=1, batch_size=128, steps=10, warmup=2, rounds=6, output="benchmarks/results/throughput.md")


# ReActNet's RSign and RPReLU, as its preset has them
REACT_MODULES = {key: getattr(PRESETS["reactnet"], key) for key in ("threshold", "activation")}


def build(name, args, xla, binarise=None, react=False):
    method, note = zoo.get_entry(name).method, ""
    if binarise:
        method = method.replace(binarise=binarise)
    if react:
        method = method.replace(**REACT_MODULES)
    kwargs = dict(input_shape=(args.image_size, args.image_size, args.channels), num_classes=10, alpha=args.alpha)
    try:
        model = zoo.create_model(name, method=method, **kwargs)
    except GroupedConvolutionError:
        method, note = method.replace(groups=1), "groups=1"
        model = zoo.create_model(name, method=method, **kwargs)
    return training.compile_classifier(model, learning_rate=1e-3, total_steps=10_000, jit_compile=xla), note


@contextlib.contextmanager
def code_before_issue_12():
    """Models built (and traced) inside are trained as before issue 12: every sign with
    larq's `approx_sign` (its seven-op backward pass), DyPReLU's heads one product each,
    binary convolutions padded with ones by larq (a padded copy of every input) and grouped
    through tf-keras' XLA-compiled op, INSTA's third moment differentiated automatically."""
    from larq_methods import layers
    from larq_methods.methods import dybnn, insta, plain, reactnet

    signed = (reactnet, insta, dybnn, plain)  # the modules whose signs call approx_sign
    sign, terms, conv, cube = reactnet.approx_sign, dybnn._HyperFunction.dynamic_terms, layers.BinaryConv2D.call, insta.mean_cube
    for module in signed:
        module.approx_sign = lq.quantizers.approx_sign
    dybnn._HyperFunction.dynamic_terms = lambda self, x, training=None: terms(self, x, training=False)
    layers.BinaryConv2D.call = lambda self, inputs, training=None: lq.layers.QuantConv2D.call(self, inputs)
    insta.mean_cube = lambda x: tf.reduce_mean(x * x * x, axis=[1, 2], keepdims=True)
    try:
        yield
    finally:
        for module in signed:
            module.approx_sign = sign
        dybnn._HyperFunction.dynamic_terms, layers.BinaryConv2D.call, insta.mean_cube = terms, conv, cube


@contextlib.contextmanager
def zero_padding():
    """Binary convolutions built inside pad with zeros, as float ones do, instead of ones
    (`pad_values=1.0`, which LCE needs): larq then pads inside the convolution instead of
    copying the input into a padded tensor. Only to measure that copy: such a model
    does not convert fully binary."""
    init = lq.layers.QuantConv2D.__init__

    def zero_padded(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "pad_values": 0.0})

    lq.layers.QuantConv2D.__init__ = zero_padded
    try:
        yield
    finally:
        lq.layers.QuantConv2D.__init__ = init


def model_names(pattern: str) -> list[str]:
    """The named models matching `pattern`, the baselines, and the baselines' float twins."""
    named = set(zoo.list_models(pattern)) - set(zoo.list_models("float-*")) - {"resnete-18"}
    backbones = {zoo.get_entry(n).backbone for n in named} | set(BASELINES)
    return sorted(named | backbones | {recipes.float_twin(b) for b in backbones})


def _has_react_modules(name) -> bool:
    method = zoo.get_entry(name).method
    return all(getattr(method, key) == value for key, value in REACT_MODULES.items())


def ratio(slower, faster) -> str:
    return f"{faster / slower:.2f}x" if slower and faster else "-"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="The real-size setting (alpha 1.0, 112x112x3, batch 32).")
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--channels", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--models", default="*-*", help="Shell pattern of named models (baselines and twins are added).")
    parser.add_argument("--xla-models", default="", help="Models (and their baselines) also measured with XLA.")
    parser.add_argument("--before", action="store_true", help="Also measure the binary models as built before issue 12.")
    parser.add_argument("--mixed", action="store_true", help="Also measure the baselines and float twins in mixed precision (this machine's policy).")
    parser.add_argument("--react-baselines", action="store_true", help="Also measure BiRealNet and QuickNet with ReActNet's RSign and RPReLU in their blocks.")
    parser.add_argument("--breakdown", action="store_true", help="Also measure the baselines with real weights (binary activations only: step 1 of the two-step recipe).")
    parser.add_argument("--output")
    parser.add_argument("--label", default="", help="A note for the table's header (e.g. which code it measured).")
    args = parser.parse_args()
    for key, value in (REAL if args.real else TOY).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def variants_of(name, args, with_xla) -> list[str]:
    """The variants of `name` to measure ("" is the model as it is)."""
    variants = ["", "xla"] if name in with_xla else [""]
    if args.before and not recipes.is_float(name):
        variants.append("before")
    if args.mixed and (name in BASELINES or recipes.is_float(name)):
        variants.append("mixed")
    if args.breakdown and name in BASELINES:
        variants += ["activations", "zero-padding"]
    if args.react_baselines and name in BASELINES and not _has_react_modules(name):
        variants.append("react")
    return variants


def variant_context(variant):
    if variant == "mixed":
        return training.precision_policy(training.mixed_policy())
    if variant == "zero-padding":
        return zero_padding()
    return code_before_issue_12() if variant == "before" else contextlib.nullcontext()


def build_all(names, args, with_xla, x, y):
    """Every (model, variant) built, compiled and traced; and each model's note."""
    models, notes = {}, {}
    for name in names:
        for variant in variants_of(name, args, with_xla):
            with variant_context(variant):
                binarise = "activations" if variant == "activations" else None
                model, notes[name] = build(name, args, variant == "xla", binarise, react=variant == "react")
                for _ in range(args.warmup):  # traces the training step
                    model.train_on_batch(x, y)
            models[name, variant] = model
        print(f"built {name}", flush=True)
    return models, notes


def columns_of(args, with_xla) -> list[str]:
    columns = ["model", "backbone", "images/s", "vs backbone", "vs float twin"]
    if args.before:
        columns += ["before: images/s", "before: vs backbone", "before: vs float twin", "speed-up"]
    if with_xla:
        columns += ["images/s with XLA", "vs backbone with XLA", "XLA speed-up"]
    if args.mixed:
        columns += [f"images/s in {training.mixed_policy()}", "mixed speed-up"]
    if args.react_baselines:
        columns += ["vs ReAct backbone"]
    if args.breakdown:
        columns += ["real weights: images/s", "real weights: vs float twin", "zero padding: images/s", "zero padding: vs float twin"]
    return columns


def row_of(name, speed, args, with_xla) -> list[str]:
    """The table's cells of `name` (its note excepted)."""
    base, twin = zoo.get_entry(name).backbone, recipes.float_twin(name)
    cells = [f"`{name}`", base]
    for variant in ["", "before"] if args.before else [""]:
        own = speed.get((name, variant))
        if own is None:  # a float model has no sign: nothing changed
            cells += ["-"] * 3
            continue
        cells += [f"{own:.1f}", ratio(own, speed.get((base, variant))), ratio(own, speed.get((twin, "")))]
    if args.before:
        cells.append(ratio(speed.get((name, "before")), speed[name, ""]) if (name, "before") in speed else "-")
    if with_xla:
        xla = speed.get((name, "xla"))
        cells += [f"{xla:.1f}", ratio(xla, speed[base, "xla"]), f"{xla / speed[name, ''] :.2f}x"] if xla else ["-"] * 3
    if args.mixed:
        mixed = speed.get((name, "mixed"))
        cells += [f"{mixed:.1f}", f"{mixed / speed[name, ''] :.2f}x"] if mixed else ["-"] * 2
    if args.react_baselines:
        react = speed.get((base, "react" if (base, "react") in speed else ""))
        cells.append(ratio(speed.get((name, "")), react) if name != base and not recipes.is_float(name) else "-")
    if args.breakdown:
        for variant in ("activations", "zero-padding"):
            own = speed.get((name, variant))
            cells += [f"{own:.1f}", ratio(own, speed.get((twin, "")))] if own else ["-"] * 2
    return cells


def main():
    args = parse_args()
    names = model_names(args.models)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (args.batch_size, args.image_size, args.image_size, args.channels)).astype(np.float32)
    y = rng.integers(0, 10, args.batch_size)
    tf.keras.utils.set_random_seed(0)
    with_xla = set(zoo.list_models(args.xla_models)) & set(names) if args.xla_models else set()
    with_xla |= {zoo.get_entry(n).backbone for n in with_xla}
    models, notes = build_all(names, args, with_xla, x, y)
    calls = {key: functools.partial(model.train_on_batch, x, y) for key, model in models.items()}
    windows = benchmark.interleaved(calls, rounds=args.rounds, steps=args.steps, progress=True)
    speed = {key: statistics.median(args.batch_size / t for t in w) for key, w in windows.items()}
    columns = columns_of(args, with_xla)
    rows = ["| " + " | ".join(columns + ["note"]) + " |", "|" + " --- |" * (len(columns) + 1)]
    rows += ["| " + " | ".join(row_of(name, speed, args, with_xla) + [notes[name]]) + " |" for name in names]
    command = shlex.join(["python", "benchmarks/throughput.py", *sys.argv[1:]])
    text = (
        f"Training throughput at alpha {args.alpha}, {args.image_size}x{args.image_size}x{args.channels}, batch "
        f"{args.batch_size}, random data, on this machine's CPU (2 shared cores; TensorFlow {tf.__version__}); "
        f"median of {args.rounds} round-robin windows of {args.steps} steps after {args.warmup} warm-up steps. "
        f"'vs backbone' / 'vs float twin': their images/s over the model's (1.00x: as fast). "
        f"{args.label.rstrip('.') + '. ' if args.label else ''}Made by `{command}`.\n\n" + "\n".join(rows) + "\n"
    )
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
