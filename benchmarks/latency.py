"""LCE-interpreter latency of every named model relative to its backbone baseline, in one run.

    .venv/bin/python benchmarks/latency.py [--image-size 112] [--alpha 1.0] [--runs 100]

Every named model and every backbone is built (1000 classes, weights moved off their
initial values as training moves them, so that no threshold or shift folds away in
conversion: see `larq_methods.benchmark.perturb`) and converted with LCE; then all are timed
in one interpreter session each, their timed runs taking turns so that a change in the
machine's load falls on all of them alike (`larq_methods.benchmark.latencies`). Every model
runs LCE's indirect BGEMM kernel: FTBNN's grouped convolutions need it, and on x86 it is
several times faster than the default kernel (same outputs), so a mix of kernels would time
the kernels rather than the methods.

The default, 112x112 at alpha 1.0 with 1 thread and 100 timed runs of each model, runs in
about seven minutes on 2 shared x86 cores, most of it converting; alpha stays 1.0 because
FTBNN's two groups need 32 input channels per group. The papers' 224x224
(`--image-size 224`) takes about twice as long.

x86 runs LCE's reference kernels: the ratios compare BNN variants with each other; they say
nothing of float models, nor of the absolute speed on a phone.

Writes benchmarks/results/latency.md and latency.png.
"""

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import larq_methods  # noqa: F401  (Keras 2 before TensorFlow)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from larq_methods import benchmark, convert  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--output", default="benchmarks/results/latency.md")
    args = parser.parse_args()
    start = time.perf_counter()

    named = {name: backbone for name, backbone, _ in zoo.named.NAMED_MODELS}
    backbones = sorted(set(named.values()))
    flatbuffers = {}
    for name in backbones + sorted(named):
        shape = (args.image_size, args.image_size, 3)
        model = zoo.create_model(name, input_shape=shape, alpha=args.alpha)
        flatbuffers[name] = convert.convert(benchmark.perturb(model))
        tf.keras.backend.clear_session()
        print(f"converted {name} ({len(flatbuffers[name]) / 2**20:.1f} MiB)", flush=True)
    timing = benchmark.latencies(
        flatbuffers, threads=args.threads, warmup=args.warmup, runs=args.runs, indirect_bgemm=True
    )
    ops = {name: convert.inventory(fb) for name, fb in flatbuffers.items()}
    minutes = (time.perf_counter() - start) / 60

    rows = table_rows(named, backbones, timing, ops, flatbuffers)
    text = report(rows, args, minutes)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    plot(rows, args, output.with_suffix(".png"))
    print(text)


def table_rows(named, backbones, timing, ops, flatbuffers) -> list[tuple]:
    """(model, backbone, timing, median and min ratios to the backbone, size, operators added)."""
    rows = []
    for name in backbones + sorted(named, key=lambda n: (named[n], n)):
        base = named.get(name, name)
        t, b = timing[name], timing[base]
        added = benchmark.added_operators(ops[name], ops[base])
        rows.append(
            (name, base, t, t["median"] / b["median"], t["min"] / b["min"], len(flatbuffers[name]),
             ", ".join(f"{op} {n:+d}" for op, n in added.items()))
        )  # fmt: skip
    return rows


def report(rows, args, minutes) -> str:
    command = shlex.join(["python", "benchmarks/latency.py", *sys.argv[1:]])
    lines = [
        f"# LCE-interpreter latency, {args.image_size}x{args.image_size}x3, alpha {args.alpha}, 1000 classes",
        "",
        f"`{command}` on {platform.machine()} ({os.cpu_count()} cores, shared), "
        f"{args.threads} thread(s), LCE's indirect BGEMM kernel for every model, {args.warmup} "
        f"warm-up and {args.runs} timed runs per model, runs of all models interleaved; "
        f"{minutes:.0f} min in all.",
        "",
        f"{benchmark.timing_note() or 'ARM64: LCE optimised kernels'}. Ratios are to the backbone "
        "(the ReActNet or larq-zoo baseline) timed in the same run. On a shared machine the "
        "minimum is the steadier figure; medians and p90 carry the other processes' load.",
        "",
        "| model | backbone | min ms | median ms | p90 ms | median vs backbone | min vs backbone | .tflite | operators added over the backbone |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, base, t, median_ratio, min_ratio, size, added in rows:
        lines.append(
            f"| `{name}` | {base} | {t['min']:.1f} | {t['median']:.1f} | {t['p90']:.1f} | "
            f"{median_ratio:.2f}x | {min_ratio:.2f}x | {size / 2**20:.1f} MiB | {added} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows, args, path):
    """Median latency of each named model over its backbone's, one colour per backbone."""
    rows = [r for r in rows if r[0] != r[1]]
    colours = {b: f"C{i}" for i, b in enumerate(sorted({r[1] for r in rows}))}
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.6))
    y = range(len(rows))
    ax.barh(y, [r[3] for r in rows], color=[colours[r[1]] for r in rows])
    ax.scatter([r[4] for r in rows], y, color="black", marker="|", s=120, zorder=3, label="min vs min")
    ax.axvline(1.0, color="grey", linewidth=1)
    ax.set_yticks(list(y), [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("latency / backbone's latency (bars: median)")
    ax.set_title(
        f"LCE interpreter, {args.image_size}x{args.image_size}, alpha {args.alpha}, {args.threads} thread(s)\n"
        "x86 reference kernels: BNN variants against each other only",
        fontsize=10,
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles + ax.get_legend_handles_labels()[0], list(colours) + ["min vs min"], fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
