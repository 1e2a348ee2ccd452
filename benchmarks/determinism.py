"""What two process-wide switches cost in training speed, and whether training stays
bit-identical under them: TensorFlow's op determinism (off and on), and its oneDNN kernels
(`TF_ENABLE_ONEDNN_OPTS` 0 and 1, op determinism on, as every run of ours trains).

Training steps of a named model in fresh processes (each switch is read once per process),
interleaved round by round so that a busy machine slows both sides alike; medians of the
per-round step times. Every process starts from seed 0 and the same batch, so the weights it
ends with must be the same in every round of one side: the table says whether they were.

    .venv/bin/python benchmarks/determinism.py [--switch determinism|onednn] [--rounds 3] [--steps 10]

Settings: alpha 0.25 at 28x28x1 with batch 128 (the toy size of the other tables and the
studies), and alpha 1.0 at 112x112x3 with batch 32 (a real width). Writes
benchmarks/results/determinism.md or benchmarks/results/onednn.md.
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name: (model, alpha, image size, channels, batch)
SETTINGS = {
    "reactnet-18, alpha 0.25, 28x28x1, batch 128": ("reactnet-18", 0.25, 28, 1, 128),
    "reactnet-18, alpha 1.0, 112x112x3, batch 32": ("reactnet-18", 1.0, 112, 3, 32),
}
# switch: what it is, its settings, its two sides as (label, op determinism, environment), the table's file
SWITCHES = {
    "determinism": (
        "TensorFlow op determinism off and on", SETTINGS,
        (("default", False, {}), ("deterministic", True, {})), "determinism.md",
    ),
    "onednn": (
        "TensorFlow's oneDNN kernels off and on (op determinism on)",
        {**SETTINGS, "reactnet-a, alpha 0.25, 28x28x1, batch 128": ("reactnet-a", 0.25, 28, 1, 128)},
        (("oneDNN off", True, {"TF_ENABLE_ONEDNN_OPTS": "0"}), ("oneDNN on", True, {"TF_ENABLE_ONEDNN_OPTS": "1"})),
        "onednn.md",
    ),
}  # fmt: skip

CHILD = """
import sys, time, json, hashlib
sys.path.insert(0, {root!r})
import larq_methods, numpy as np, tensorflow as tf
import zoo
from larq_methods import training
training.set_determinism({deterministic})
name, alpha, size, channels, batch = {setting}
tf.keras.utils.set_random_seed(0)
model = zoo.create_model(name, input_shape=(size, size, channels), num_classes=10, alpha=alpha)
trainer = training.compile_classifier(model, learning_rate=1e-3, total_steps=1000)
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (batch, size, size, channels)).astype(np.float32)
y = rng.integers(0, 10, batch)
iterator = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
step = trainer.make_train_function()
for _ in range({warmup}):
    step(iterator)
start = time.perf_counter()
for _ in range({steps}):
    float(step(iterator)["loss"])
seconds = (time.perf_counter() - start) / {steps}
weights = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
print(json.dumps({{"seconds": seconds, "weights": weights}}))
"""


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def train_steps(setting, deterministic, env, steps, warmup) -> dict:
    """Seconds per step and a hash of the weights after warmup + steps steps, in a fresh process."""
    code = CHILD.format(root=str(ROOT), deterministic=deterministic, setting=setting, steps=steps, warmup=warmup)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, **env})
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results, settings, labels) -> list[str]:
    a, b = labels
    rows = [
        f"| setting | s/step, {a} | s/step, {b} | {b} vs {a} (time) | same weights in every process: {a}, {b} |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in settings:
        off, on = (statistics.median(r["seconds"] for r in results[name, side]) for side in (0, 1))
        same = ", ".join("yes" if len({r["weights"] for r in results[name, side]}) == 1 else "**no**" for side in (0, 1))
        rows.append(f"| {name} | {off:.4f} | {on:.4f} | {on / off - 1:+.1%} | {same} |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switch", choices=sorted(SWITCHES), default="determinism")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    what, settings, sides, filename = SWITCHES[args.switch]
    labels = [label for label, _, _ in sides]
    results = {(name, side): [] for name in settings for side in (0, 1)}
    for round_ in range(args.rounds):
        for name, setting in settings.items():
            for side in (0, 1) if round_ % 2 == 0 else (1, 0):
                _, deterministic, env = sides[side]
                results[name, side].append(train_steps(setting, deterministic, env, args.steps, args.warmup))
                print(f"round {round_ + 1}, {name}, {labels[side]}: {results[name, side][-1]['seconds']:.4f} s/step", flush=True)
    command = shlex.join(["python", "benchmarks/determinism.py", *sys.argv[1:]])
    text = (
        f"Training steps with {what}, medians of {args.rounds} interleaved rounds of {args.steps} "
        f"steps after {args.warmup}, each in a fresh process, on this machine ({cpu_name()}, "
        f"{os.cpu_count()} cores). Made by `{command}`.\n\n" + "\n".join(table(results, settings, labels)) + "\n"
    )  # fmt: skip
    (ROOT / "benchmarks" / "results" / filename).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
