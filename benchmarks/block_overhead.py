"""Training cost of one binary block per method, against ReActNet-18's block and its float twin.

    .venv/bin/python benchmarks/block_overhead.py

Whole-model throughput (`throughput.py --real`) moves by 20-40% between windows on this
shared machine, more than any method costs. A single block's training step is short and
repeatable, so this measures the blocks of every ResNet-18-family model at the real-size
setting's shapes (alpha 1.0, 112x112x3 input, batch 32: stages at 28, 14, 7 and 4 px), each
stage's first (downsampling) block and one of its identity blocks, as each model's layout
builds them (`reactnet_18_layout`: FTBNN's wider grouped stages). A step is the forward
pass in training mode and the gradients of sum(y^2) plus the block's own losses with respect
to its input and weights, one `tf.function`; all steps are traced first, then measured
round-robin, `--rounds` windows of `--steps` steps, median per block. "all 16 blocks" sums
each stage's first block and 3 times its identity block: the blocks' share of a ReActNet-18
training step (the stem, head and optimiser are the same in every model). Ratios are the
block time of the model over that of `reactnet-18` ("vs backbone") and of `float-resnet18`
("vs float twin"; 1.10x: takes 1.1 times as long). Two more rows change one part of
ReActNet-18's binarisation (`VARIANTS`) to show where its overhead goes.
"""

import argparse
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import larq_methods  # noqa: E402,F401  (Keras 2 before TensorFlow)
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from larq_methods import benchmark  # noqa: E402
from zoo.reactnet import reactnet_18_block, reactnet_18_layout  # noqa: E402

MODELS = (
    "float-resnet18", "reactnet-18", "insta-resnet18", "insta-plus-resnet18", "dybnn-resnet18",
    "rebnn-resnet18", "ftbnn-resnet18", "gaaf-resnet18",
)  # fmt: skip
# ReActNet-18's block with one part of its binarisation changed, to split its overhead over
# the twin: real weights (step 1 of the two-step recipe), and the kernel's plain sign
# without mean|W| or the clipped gradient (GAAF proxy's weights).
VARIANTS = {
    "reactnet-18, real weights": dict(binarise="activations"),
    "reactnet-18, sign(W) weights": dict(weights="sign"),
}
STEM_CHANNELS, STAGE_SIZES, IDENTITY_BLOCKS = 64, (28, 14, 7, 4), 3


def blocks(method):
    """(label, input shape, channels, stride, groups) of each stage's first block and of
    one identity block, as `ReActNet18` lays them out at alpha 1 under `method`."""
    channels_in, out = STEM_CHANNELS, []
    for stage, ((channels, _, groups), size) in enumerate(zip(reactnet_18_layout(method), STAGE_SIZES)):
        stride = 2 if stage else 1
        out.append((f"stage {stage + 1} first", (size * stride,) * 2 + (channels_in,), channels, stride, groups))
        out.append((f"stage {stage + 1} identity", (size, size, channels), channels, 1, groups))
        channels_in = channels
    return out


def training_step(method, shape, channels, stride, groups, batch):
    inputs = tf.keras.Input(shape)
    model = tf.keras.Model(inputs, reactnet_18_block(inputs, channels, stride, method, name="b", groups=groups))
    x = tf.random.stateless_normal((batch,) + shape, seed=(0, 0))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x, training=True)
            loss = tf.reduce_sum(tf.square(y)) + tf.add_n([tf.constant(0.0)] + model.losses)
        return tape.gradient(loss, [x] + model.trainable_variables)

    step()  # traces
    return lambda: step()[0].numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", default="benchmarks/results/block_overhead.md")
    args = parser.parse_args()

    tf.keras.utils.set_random_seed(0)
    steps = {}
    methods = {name: zoo.get_entry(name).method for name in MODELS}
    methods.update({name: methods["reactnet-18"].replace(**change) for name, change in VARIANTS.items()})
    for name, method in methods.items():
        for label, shape, channels, stride, groups in blocks(method):
            steps[name, label] = training_step(method, shape, channels, stride, groups, args.batch_size)
        print(f"built {name}", flush=True)
    labels = [label for label, *_ in blocks(methods["reactnet-18"])]  # the same in every layout
    windows = benchmark.interleaved(steps, rounds=args.rounds, steps=args.steps, progress=True)
    ms = {key: statistics.median(w) * 1e3 for key, w in windows.items()}
    for name in methods:
        ms[name, "all"] = sum(ms[name, l] * (IDENTITY_BLOCKS if "identity" in l else 1) for l in labels)

    columns = ["model"] + [f"{l}, ms" for l in labels] + ["all 16 blocks, ms", "vs backbone", "vs float twin"]
    rows = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for name in methods:
        own = ms[name, "all"]
        cells = [f"`{name}`" if name in MODELS else name] + [f"{ms[name, l]:.1f}" for l in labels] + [f"{own:.0f}"]
        cells += [f"{own / ms[base, 'all']:.2f}x" for base in ("reactnet-18", "float-resnet18")]
        rows.append("| " + " | ".join(cells) + " |")
    command = shlex.join(["python", "benchmarks/block_overhead.py", *sys.argv[1:]])
    text = (
        f"Training step of one block (forward in training mode, gradients for input and weights) at "
        f"ReActNet-18's real-size shapes (alpha 1.0, 112x112x3 input), batch {args.batch_size}, on this "
        f"machine's CPU (2 shared cores; TensorFlow {tf.__version__}); median of {args.rounds} round-robin "
        f"windows of {args.steps} steps. Made by `{command}`.\n\n" + "\n".join(rows) + "\n"
    )
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
