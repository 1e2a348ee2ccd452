"""A run's test accuracy with BatchNorm's moving averages and with PreciseBN statistics
(`larq_methods.precise_bn`), from its final model or from one of its checkpoints: does a
dip in the history come from the weights, or from the averages?

    .venv/bin/python benchmarks/precise_bn.py RUN [--checkpoint CKPT] [--batches 50]

CKPT is a checkpoint prefix of RUN's last step (RUN/step2/checkpoints/ckpt-N), as
training writes them after every epoch (the last two are kept). The statistics are
estimated from the first batches of the training epoch after it. Prints one JSON line.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import larq_methods  # noqa: E402,F401  (Keras 2 before TensorFlow)
import tensorflow as tf  # noqa: E402

from larq_methods import data, precise_bn, saving  # noqa: E402
from zoo.run import RunConfig, prepare  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--checkpoint", help="A checkpoint prefix of the run's last step [default: its model.h5].")
    parser.add_argument("--batches", type=int, default=50, help="Training batches to estimate from [default: 50].")
    args = parser.parse_args(argv)
    config = RunConfig.load(args.run)
    prepared = prepare(config)
    if args.checkpoint:
        model = prepared.build(config.method)  # the last step's: the run's own method
        epoch = tf.Variable(0, dtype=tf.int64)
        tf.train.Checkpoint(model=model, epoch=epoch).restore(args.checkpoint).expect_partial().assert_existing_objects_matched()
        epoch = int(epoch.numpy())
    else:
        model, epoch = saving.load_model(args.run / "model.h5"), config.recipe.epochs
    size, channels = prepared.input_shape[0], prepared.input_shape[2]
    batch = config.recipe.batch_size
    train = data.pipeline(prepared.train_set, image_size=size, channels=channels, batch_size=batch, training=True, seed=config.seed, epoch=epoch)
    test = data.pipeline(prepared.eval_set, image_size=size, channels=channels, batch_size=batch, training=False)
    moving = precise_bn.top1(model, test)
    precise = precise_bn.accuracy(model, train, test, args.batches)
    where = args.checkpoint or str(args.run / "model.h5")
    print(json.dumps({"model": where, "epochs_done": epoch, "moving_averages": moving, "precise_bn": precise, "batches": args.batches}))


if __name__ == "__main__":
    main()
