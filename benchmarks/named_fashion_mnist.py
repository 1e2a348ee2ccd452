"""Every named model trained for one epoch on Fashion-MNIST from the CLI, converted with
LCE and evaluated as .tflite: accuracy, parity, size and wall time, as a markdown table.

    .venv/bin/python benchmarks/named_fashion_mnist.py [--alpha 0.25] [--models PATTERN]

Each model trains with `lqm train MODEL --alpha A --epochs 1` (FTBNN's two groups need
alpha 1.0: 32 channels per group), then `lqm convert --dataset fashion_mnist` and
`lqm evaluate MODEL.tflite`. Run folders go under runs/bench-TIME/.
"""

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import larq_methods  # noqa: F401

import zoo

LQM = [sys.executable, "-m", "cli.main"]


def run(*args):
    start = time.perf_counter()
    proc = subprocess.run([*LQM, *map(str, args)], capture_output=True, text=True)
    if proc.returncode:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
        raise RuntimeError(errors[-1] if errors else f"exit status {proc.returncode}")
    return proc.stdout, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.25)
    parser.add_argument("--models", default="*")
    parser.add_argument("--output", default="benchmarks/results/named_fashion_mnist.md")
    args = parser.parse_args()

    root = Path("runs") / f"bench-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    rows = [
        "| model | alpha | train s | Keras test acc | .tflite test acc | binary convs (all LceBconv2d) | parity: max abs diff, top-1 | .tflite size |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in zoo.list_models(args.models):
        entry = zoo.get_entry(name)
        alpha = 1.0 if entry.method.groups > 1 else args.alpha
        run_dir = root / name
        try:
            run("train", name, "--recipe", "one-step", "--alpha", alpha, "--epochs", 1, "-o", run_dir)
            run("convert", run_dir / "model.h5", "-o", run_dir / "model.tflite", "--dataset", "fashion_mnist")
            out, _ = run("evaluate", run_dir / "model.tflite")
        except RuntimeError as e:
            rows.append(f"| `{name}` | {alpha} | failed: {e} | | | | | |")
            print(rows[-1], flush=True)
            continue
        results = json.loads((run_dir / "results.json").read_text())
        report = json.loads((run_dir / "model.json").read_text())
        lite = json.loads(out.strip().splitlines()[-1])
        p = report["parity"]
        rows.append(
            f"| `{name}` | {alpha} | {results['train_seconds']:.0f} | {results['eval_accuracy']:.2%} | "
            f"{lite['accuracy']:.2%} | {report['binary_convolutions']} | {p['max_abs_diff']:.1e}, "
            f"{p['top1_agreement']:.0%} | {report['size_bytes'] / 1024:.0f} KiB |"
        )
        print(rows[-1], flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
