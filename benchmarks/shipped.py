"""The shipped models as they ship: .tflite size and LCE-interpreter latency relative to the
backbone, each with its pretrained weights at its own configuration.

    .venv/bin/python benchmarks/shipped.py [--runs 200] [--threads 1]

Every model with registered weights (`zoo/weights/registry.json`) is built with them
(`zoo.create_model(NAME, weights=DATASET)`, the model `lqm evaluate NAME` measures), converted
with LCE (every binary convolution must become an LceBconv2d) and timed in LCE's interpreter,
the timed runs of all models taking turns (`larq_methods.benchmark.latencies`), so that a
change in the machine's load falls on all alike. A binary model's ratio is to its backbone's
shipped model timed in the same run; a float twin has no ratio (on x86 LCE runs reference
kernels: compare binary models with each other, never with float ones).

Writes benchmarks/results/shipped.json (read by docs/tables.py for the README's table) and
benchmarks/results/shipped.md.
"""

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import larq_methods  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
import zoo.recipes  # noqa: E402
from larq_methods import benchmark, convert  # noqa: E402


def convert_shipped(entries) -> dict:
    """The .tflite of each registered model, with its pretrained weights."""
    flatbuffers = {}
    for weights in entries:
        model = zoo.create_model(weights.model, weights=weights.dataset)
        flatbuffer = convert.convert(model)
        convert.check_binarised(model, convert.inventory(flatbuffer))
        flatbuffers[weights.model] = flatbuffer
        tf.keras.backend.clear_session()
        print(f"converted {weights.model} ({len(flatbuffer) / 2**10:.0f} KiB)", flush=True)
    return flatbuffers


def rows(entries, flatbuffers, timing) -> list[dict]:
    out = []
    for weights in entries:
        name = weights.model
        backbone = zoo.get_entry(name).backbone
        is_float = zoo.recipes.is_float(name)
        t = timing[name]
        base = timing.get(backbone) if not is_float else None
        out.append({
            "model": name, "backbone": backbone, "dataset": weights.dataset,
            "input_shape": list(weights.input_shape), "alpha": weights.alpha,
            "tflite_bytes": len(flatbuffers[name]),
            "min_ms": t["min"], "median_ms": t["median"], "p90_ms": t["p90"], "kernel": t["kernel"],
            "median_vs_backbone": base and t["median"] / base["median"],
            "min_vs_backbone": base and t["min"] / base["min"],
        })  # fmt: skip
    return out


def markdown(table: list[dict], header: dict) -> str:
    lines = [
        "# Shipped models: .tflite size and LCE-interpreter latency",
        "",
        f"`{header['command']}` on {header['machine']}, {header['threads']} thread(s), "
        f"{header['runs']} timed runs per model, interleaved; {header['minutes']:.0f} min in all.",
        "",
        f"{header['note']}",
        "",
        "| model | backbone | input | alpha | .tflite KiB | min ms | median ms | median vs backbone | min vs backbone |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table:
        ratio = lambda v: "-" if v is None else f"{v:.2f}x"  # noqa: E731
        shape = "x".join(map(str, r["input_shape"]))
        lines.append(
            f"| `{r['model']}` | {r['backbone']} | {shape} | {r['alpha']:g} | {r['tflite_bytes'] / 2**10:.0f} | "
            f"{r['min_ms']:.2f} | {r['median_ms']:.2f} | {ratio(r['median_vs_backbone'])} | {ratio(r['min_vs_backbone'])} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--output", default="benchmarks/results/shipped.json")
    args = parser.parse_args()
    start = time.perf_counter()
    entries = sorted(zoo.pretrained.entries(), key=lambda w: w.model)
    flatbuffers = convert_shipped(entries)
    timing = benchmark.latencies(flatbuffers, threads=args.threads, warmup=args.warmup, runs=args.runs)
    header = {
        "command": shlex.join(["python", "benchmarks/shipped.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "threads": args.threads, "runs": args.runs,
        "minutes": (time.perf_counter() - start) / 60,
        "note": benchmark.timing_note() or "ARM64: LCE's optimised kernels",
    }  # fmt: skip
    table = rows(entries, flatbuffers, timing)
    output = Path(args.output)
    output.write_text(json.dumps({"header": header, "models": table}, indent=1) + "\n")
    output.with_suffix(".md").write_text(markdown(table, header))
    print(markdown(table, header))


if __name__ == "__main__":
    main()
