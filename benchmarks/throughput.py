"""Training throughput (images/s) of every named model, as a ratio to the ReActNet baseline
of the same backbone measured in the same run, with and without XLA (`jit_compile`).

    .venv/bin/python benchmarks/throughput.py [--alpha 0.25] [--steps 20] [--rounds 3]

XLA: the models matching --xla-models (default: the ResNet-18 family) and their baselines
are also measured compiled with `jit_compile=True`; XLA's compilation takes minutes per
model on this machine, so not every model is.

Each model is compiled as `lqm train` compiles it (Adam, linear decay, cross-entropy) at
28x28x1, 10 classes, batch 128, and trained on one fixed random batch: after a warm-up
(tracing, and XLA compilation with --xla), `--steps` timed `train_on_batch` calls make one
window. Models are measured round-robin, `--rounds` times, and each keeps its fastest
window, so that load from other processes on this shared machine touches every model
alike. Writes benchmarks/results/throughput.md.

FTBNN's two groups need 32 channels per group, which alpha 0.25 does not give: it runs
with groups=1 (its FPReLU and binary downsampling), as the table says.
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import larq_methods  # noqa: E402,F401  (Keras 2 before TensorFlow)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from larq_methods import training  # noqa: E402
from larq_methods.method import GroupedConvolutionError  # noqa: E402

BASELINES = {"reactnet-18": "reactnet-18", "reactnet-a": "reactnet-a", "quicknet": "quicknet", "birealnet": "birealnet"}


def build(name, alpha, xla):
    method, note = zoo.get_entry(name).method, ""
    kwargs = dict(input_shape=(28, 28, 1), num_classes=10, alpha=alpha)
    try:
        model = zoo.create_model(name, **kwargs)
    except GroupedConvolutionError:
        method, note = method.replace(groups=1), "groups=1"
        model = zoo.create_model(name, method=method, **kwargs)
    return training.compile_classifier(model, learning_rate=1e-3, total_steps=10_000, jit_compile=xla), note


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="*-*")
    parser.add_argument("--xla-models", default="*resnet18", help="Models (and their baselines) also measured with XLA.")
    parser.add_argument("--output", default="benchmarks/results/throughput.md")
    args = parser.parse_args()

    names = sorted(set(zoo.list_models(args.models)) - set(zoo.list_models("float-*")) | set(BASELINES))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (args.batch_size, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, args.batch_size)
    tf.keras.utils.set_random_seed(0)
    with_xla = set(zoo.list_models(args.xla_models)) & set(names)
    with_xla |= {zoo.get_entry(n).backbone for n in with_xla}
    models, notes = {}, {}
    for name in names:
        for xla in (False, True) if name in with_xla else (False,):
            model, notes[name] = build(name, args.alpha, xla)
            for _ in range(args.warmup):
                model.train_on_batch(x, y)
            models[name, xla] = model
        print(f"built {name}", flush=True)
    best = {key: 0.0 for key in models}
    for r in range(args.rounds):
        for key, model in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            best[key] = max(best[key], args.steps * args.batch_size / (time.perf_counter() - start))
        print(f"round {r + 1} done", flush=True)

    rows = [
        "| model | backbone | images/s | vs baseline | images/s with XLA | vs baseline with XLA | XLA speed-up | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        base = zoo.get_entry(name).backbone
        plain = best[name, False]
        row = f"| `{name}` | {base} | {plain:.0f} | {best[base, False] / plain:.2f}x slower | "
        if (name, True) in best:
            xla = best[name, True]
            row += f"{xla:.0f} | {best[base, True] / xla:.2f}x slower | {xla / plain:.2f}x |"
        else:
            row += "- | - | - |"
        rows.append(f"{row} {notes[name]} |")
    command = shlex.join(["python", "benchmarks/throughput.py", *sys.argv[1:]])
    text = (
        f"Training throughput at alpha {args.alpha}, 28x28x1, batch {args.batch_size}, on this "
        f"machine's CPU (2 shared cores; TensorFlow {tf.__version__}); best of {args.rounds} "
        f"round-robin windows of {args.steps} steps. 'vs baseline' is the baseline's images/s over "
        f"the model's (1.00x: as fast). Made by `{command}`.\n\n" + "\n".join(rows) + "\n"
    )
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
