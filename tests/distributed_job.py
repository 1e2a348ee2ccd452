"""Trains the tests' mini model for two epochs under a `tf.distribute` strategy and saves
its final weights: the job that tests/test_distributed.py runs in fresh processes (logical
devices and TF_CONFIG must be set before TensorFlow starts)."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import larq_methods  # noqa: E402,F401  (Keras 2 before TensorFlow)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from larq_methods import training  # noqa: E402
from larq_methods.method import Method  # noqa: E402
from tests.helpers import mini_data, mini_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--logical-cpus", type=int, default=1)
    parser.add_argument("--weights", default="mean-abs")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)

    strategy = training.make_strategy(args.strategy)
    x, y = mini_data(args.examples)
    train_data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    eval_data = tf.data.Dataset.from_tensor_slices((x[:16], y[:16])).batch(16)

    def build(method):
        tf.keras.utils.set_random_seed(0)
        return mini_model(method)

    recipe = training.Recipe(epochs=args.epochs, batch_size=16, learning_rate=1e-2)
    model = training.train(
        build, Method(weights=args.weights), train_data, eval_data, recipe, args.run_dir,
        steps_per_epoch=args.examples // 16, strategy=strategy, verbose=0,
    )  # fmt: skip
    # every worker reads (BatchNorm's statistics are all-reduced on read); the chief saves
    values = {w.name: w.numpy() for w in model.weights}
    if training.is_chief(strategy):
        np.savez(args.out, replicas=strategy.num_replicas_in_sync, **values)


if __name__ == "__main__":
    main()
