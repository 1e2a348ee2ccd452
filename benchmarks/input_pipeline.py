"""Input pipeline speed on ImageNet-like JPEGs: images/s per core of the training input
(random-resized crop to 224x224 and flip) with the JPEG decoded and cropped in one step,
against decoding the whole image first; beside the training step rate of ReActNet-18.

    .venv/bin/python benchmarks/input_pipeline.py [--images 256] [--rounds 3] [--model-steps 5]

The images are generated: `--images` 500x375 JPEGs (ImageNet's typical size) of random
smooth colour fields with some fine texture, at quality 90 with 4:2:0 chroma (PIL's
defaults), in class folders of a temporary folder dataset. Each way runs the training
pipeline of `lqm train` (`data.pipeline`) over the whole folder, an epoch a round, on one
thread (tf.data's private thread pool of size 1). Per core means per second of the
process's CPU time: on a shared machine the wall clock also counts the time other
processes had the core. The rounds alternate the two ways, each keeps its fastest round,
and a first untimed epoch puts the files in the page cache. The evaluation pipeline (whole
decode, resize, centre crop) is timed the same way.

The model's rate is `train_on_batch` steps of ReActNet-18 (alpha 1, 224x224x3, 1000
classes, batch 32, compiled as `lqm train` compiles it) on one fixed batch, after two
warm-up steps, with TensorFlow's default threads. Writes
benchmarks/results/input_pipeline.md.
"""

import argparse
import dataclasses
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import larq_methods  # noqa: E402,F401  (Keras 2 before TensorFlow)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

import zoo  # noqa: E402
from larq_methods import data, training  # noqa: E402

SIZE, WIDTH, HEIGHT = 224, 500, 375


def write_images(folder: Path, count: int, classes: int = 4, seed: int = 0) -> float:
    """`count` ImageNet-like JPEGs in `classes` class folders; returns their mean size in bytes."""
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        # coarse colour fields, finer detail and pixel noise, like a photograph's spectrum
        field = sum(
            np.asarray(Image.fromarray(rng.uniform(0, 255, (h, w, 3)).astype(np.uint8)).resize((WIDTH, HEIGHT), Image.BICUBIC), np.float32) * weight
            for (w, h), weight in (((8, 6), 0.6), ((64, 48), 0.3), ((WIDTH, HEIGHT), 0.1))
        )  # fmt: skip
        path = folder / f"class{i % classes}" / f"{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(field, 0, 255).astype(np.uint8)).save(path, quality=90)
        total += path.stat().st_size
    return total / count


def one_thread(batches: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return batches.with_options(options)


def images_per_second(source: data.Dataset, *, training: bool, epoch: int) -> tuple[float, float]:
    """(images per second of CPU time, per second of wall-clock time) of one epoch."""
    batches = one_thread(data.pipeline(source, image_size=SIZE, channels=3, batch_size=32, training=training, seed=0, epoch=epoch))
    cpu, wall, n = time.process_time(), time.perf_counter(), 0
    for x, _ in batches:
        n += int(x.shape[0])
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


def model_images_per_second(steps: int) -> float:
    model = zoo.create_model("reactnet-18", input_shape=(SIZE, SIZE, 3), num_classes=1000, alpha=1.0)
    model = training.compile_classifier(model, learning_rate=1e-3, total_steps=10_000)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (32, SIZE, SIZE, 3)).astype(np.float32)
    y = rng.integers(0, 1000, 32)
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return 32 * steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model-steps", type=int, default=5, help="Timed training steps of ReActNet-18; 0: leave the model out.")
    parser.add_argument("--output", default="benchmarks/results/input_pipeline.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        mean_bytes = write_images(Path(tmp), args.images)
        fused = data.load(tmp, "train")
        assert fused.encoded is not None, "the folder's JPEGs should be kept encoded"
        whole = dataclasses.replace(fused, encoded=None)  # decode, then crop
        ways = {"decode and crop in one step": (fused, True), "decode, then crop": (whole, True), "evaluation: decode, resize, centre crop": (whole, False)}
        images_per_second(fused, training=True, epoch=0)  # page cache, tracing
        best = dict.fromkeys(ways, (0.0, 0.0))
        for r in range(args.rounds):
            for name, (source, train) in ways.items():
                rates = images_per_second(source, training=train, epoch=r + 1)
                best[name] = tuple(map(max, best[name], rates))
                print(f"round {r + 1}: {name}: {rates[0]:.0f} images/s per core ({rates[1]:.0f} wall)", flush=True)
    model_rate = model_images_per_second(args.model_steps) if args.model_steps else None

    fast, slow = best["decode and crop in one step"][0], best["decode, then crop"][0]
    lines = [
        "# Input pipeline on ImageNet-like JPEGs",
        "",
        f"`{shlex.join(['python', *sys.argv])}`; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, shared with other work (figures are the fastest of {args.rounds} rounds).",
        "",
        f"{args.images} generated {WIDTH}x{HEIGHT} JPEGs (quality 90, 4:2:0; {mean_bytes / 1024:.0f} KiB on average) "
        f"through `data.pipeline` to {SIZE}x{SIZE}x3 batches of 32, on one thread (per core):",
        "",
        "| way | images/s per core (CPU time) | images/s (wall clock) |",
        "|---|---:|---:|",
        *(f"| {name} | {cpu:.0f} | {wall:.0f} |" for name, (cpu, wall) in best.items()),
        "",
        f"Decoding only the random crop is {fast / slow:.2f}x as fast as decoding the whole image first, "
        "with the same pixels (tests/test_jpeg.py).",
    ]
    if model_rate:
        lines += [
            "",
            f"ReActNet-18 (alpha 1, {SIZE}x{SIZE}x3, 1000 classes, batch 32) trains at {model_rate:.1f} images/s on this "
            f"machine ({args.model_steps} steps, all cores, CPU): {model_rate / fast:.2f} cores of the one-step input "
            f"(or {model_rate / slow:.2f} of decode-then-crop) keep up with it. On an accelerator the model is faster by "
            "orders of magnitude, and the input's cores are what bounds ImageNet training.",
        ]
    Path(args.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
