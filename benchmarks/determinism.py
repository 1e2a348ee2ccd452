"""What TensorFlow's op determinism costs in training speed: ReActNet-18 training steps with
it on and off, in fresh processes (the switch is process-wide), interleaved round by round
so that a busy machine slows both alike; medians of the per-round step times.

    .venv/bin/python benchmarks/determinism.py [--rounds 3] [--steps 10]

Settings: alpha 0.25 at 28x28x1 with batch 128 (the toy size of the other tables), and
alpha 1.0 at 112x112x3 with batch 32 (a real width). Writes benchmarks/results/determinism.md.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"alpha 0.25, 28x28x1, batch 128": (0.25, 28, 1, 128), "alpha 1.0, 112x112x3, batch 32": (1.0, 112, 3, 32)}

CHILD = """
import sys, time, json
sys.path.insert(0, {root!r})
import larq_methods, numpy as np, tensorflow as tf
import zoo
from larq_methods import training
training.set_determinism({deterministic})
alpha, size, channels, batch = {setting}
tf.keras.utils.set_random_seed(0)
model = zoo.create_model("reactnet-18", input_shape=(size, size, channels), num_classes=10, alpha=alpha)
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
print(json.dumps((time.perf_counter() - start) / {steps}))
"""


def step_seconds(setting, deterministic, steps, warmup):
    code = CHILD.format(root=str(ROOT), deterministic=deterministic, setting=setting, steps=steps, warmup=warmup)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    times = {(name, det): [] for name in SETTINGS for det in (False, True)}
    for round_ in range(args.rounds):
        for name, setting in SETTINGS.items():
            for det in (False, True) if round_ % 2 == 0 else (True, False):
                times[name, det].append(step_seconds(setting, det, args.steps, args.warmup))
                print(f"round {round_ + 1}, {name}, deterministic={det}: {times[name, det][-1]:.4f} s/step", flush=True)
    rows = ["| setting | s/step, default | s/step, deterministic | cost of determinism |", "| --- | --- | --- | --- |"]
    for name in SETTINGS:
        off, on = statistics.median(times[name, False]), statistics.median(times[name, True])
        rows.append(f"| {name} | {off:.4f} | {on:.4f} | {on / off - 1:+.1%} |")
    command = shlex.join(["python", "benchmarks/determinism.py", *sys.argv[1:]])
    text = (
        f"ReActNet-18 training steps with TensorFlow op determinism off and on, medians of "
        f"{args.rounds} interleaved rounds of {args.steps} steps, each in a fresh process. Made by `{command}`.\n\n"
        + "\n".join(rows) + "\n"
    )  # fmt: skip
    (ROOT / "benchmarks" / "results" / "determinism.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
