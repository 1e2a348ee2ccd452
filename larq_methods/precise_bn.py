"""PreciseBN: population statistics re-estimated with the weights fixed (Wu & Johnson,
"Rethinking 'Batch' in BatchNorm", 2021).

\\[ \\mu = \\frac{1}{N} \\sum_{i=1}^{N} \\mu_{B_i}, \\qquad
    \\sigma^2 = \\frac{1}{N} \\sum_{i=1}^{N} \\sigma^2_{B_i} \\]

over N training batches \\(B_i\\), each in training mode, in place of the exponential moving
averages training keeps (\\(M \\leftarrow \\mu M + (1 - \\mu) m\\), momentum 0.9 as PyTorch's
0.1 in the papers' code). Those mix the statistics of the last ten or so batches' weights,
and while the weights still move, in step 2 of a two-step run above all, they can be far
from those of the current weights. The test accuracy of one epoch can then fall far below
what its weights give (`reactnet-18`, study at 10 epochs per step, step 2 epoch 2: 46.79%
with the moving averages, 89.98% with these over 50 batches), though training is untouched.

The same holds for INSTA-BNN's moving instance statistics (`layers.InstanceStatistics`),
which are re-estimated alike. Here it is an evaluation (Ours): `accuracy` measures the
weights at the end of an epoch and leaves the model exactly as it found it, so that a run
that measures it trains as one that does not.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from larq_methods import costs
from larq_methods.methods.insta import InstanceStatistics


def statistics_layers(model) -> list:
    """The layers of `model` (nested models included) that keep moving averages of batch
    statistics: BatchNorm and INSTA-BNN's instance statistics."""
    kinds = (tf.keras.layers.BatchNormalization, InstanceStatistics)
    return [layer for layer in costs.flat_layers(model) if isinstance(layer, kinds)]


def reestimate(model, batches, max_batches: int) -> int:
    """Sets every moving average of `model` to the mean of its batch values over the first
    `max_batches` of `batches` ((images, labels) pairs); returns how many were used.

    With momentum 0, a training-mode call leaves in each moving average the value of its
    batch, as training computes it (Bessel's correction on BatchNorm's fused path
    included); their mean is what is set. The forward pass is traced once."""
    layers = statistics_layers(model)
    averages = [w for layer in layers for w in layer.non_trainable_weights]
    momenta = [layer.momentum for layer in layers]
    sums, count = [np.zeros(w.shape) for w in averages], 0
    try:
        for layer in layers:
            layer.momentum = 0.0  # read when the forward pass below is traced
        forward = tf.function(lambda images: model(images, training=True))
        for images, _ in batches.take(max_batches):
            forward(images)
            for total, w in zip(sums, averages):
                total += w.numpy()
            count += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if count:
        for total, w in zip(sums, averages):
            w.assign((total / count).astype(w.dtype.as_numpy_dtype))
    return count


def top1(model, batches) -> float:
    """Top-1 accuracy of `model` on `batches` of (images, labels), integer or one-hot, with
    its statistics as they are."""
    labels = np.concatenate([y.numpy() for _, y in batches])
    if labels.ndim > 1:  # one-hot
        labels = labels.argmax(-1)
    return float(np.mean(model.predict(batches, verbose=0).argmax(-1) == labels))  # predict ignores y


def accuracy(model, train_batches, eval_batches, max_batches: int) -> float:
    """Top-1 accuracy of `model` on `eval_batches` with its statistics re-estimated over
    `max_batches` of `train_batches` (`reestimate`); the model is left as it was."""
    state = [w.numpy() for w in model.weights]
    try:
        if reestimate(model, train_batches, max_batches) == 0:
            raise ValueError("no training batch to estimate the statistics from")
        return top1(model, eval_batches)
    finally:
        for w, value in zip(model.weights, state):
            w.assign(value)
