"""Weights from one model into another of the same layers: step 1 into step 2 of a
two-step recipe, and a run's initial weights (`--init`)."""

from __future__ import annotations

import tensorflow as tf

from larq_methods import costs, hooks
from larq_methods.training.errors import TrainingError


def transfer_weights(source, target, *, what: str = "step-1 weight(s) into step 2") -> int:
    """Copies every weight of `source` into the same place in `target` (layers in the same
    order, weights by name and shape), and returns how many; raises `TrainingError` if
    any source weight has no place. Extra target weights keep their values, unless the
    layer's `after_transfer` sets them (ReBNN's learned alpha from the kernel it receives)."""
    src_layers = [layer for layer in costs.flat_layers(source)]
    dst_layers = [layer for layer in costs.flat_layers(target)]
    if len(src_layers) != len(dst_layers):
        raise TrainingError(f"cannot transfer weights: {len(src_layers)} layers in step 1, {len(dst_layers)} in step 2")
    missing, copied = [], 0
    for src, dst in zip(src_layers, dst_layers):
        places = {_short(w): w for w in dst.weights}
        received = set()
        for w in src.weights:
            place = places.get(_short(w))
            if place is None or place.shape != w.shape:
                missing.append(f"{src.name}/{_short(w)} {tuple(w.shape)}")
                continue
            place.assign(w)
            received.add(_short(w))
            copied += 1
        if received and isinstance(dst, hooks.TrainingHook):
            dst.after_transfer(received)  # e.g. ReBNN's scale from the kernel it received
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise TrainingError(f"cannot transfer {len(missing)} {what}: {listed}")
    return copied


def _short(weight) -> str:
    """The weight's name within its layer: 'block1_sign/fc1/kernel:0' -> 'fc1/kernel'."""
    name = weight.name.split(":")[0]
    return name.split("/", 1)[1] if "/" in name else name


def start_from(source, target) -> int:
    """Starts `target` from the weights of `source`, a model of the same kind (a run's
    `--init`): `check_same_method`, then `transfer_weights`; returns how many it copied."""
    check_same_method(source, target)
    return transfer_weights(source, target, what="initial weight(s) into this model")


def check_same_method(source, target) -> None:
    """Refuses to start `target` from `source` when their layers differ in kind (another
    method or backbone), naming the first difference."""
    src, dst = list(costs.flat_layers(source)), list(costs.flat_layers(target))
    for a, b in zip(src, dst):
        if type(a) is not type(b) and not _real_and_binary(a, b):
            raise TrainingError(
                f"the initial weights are of another model or method: layer {a.name} is a "
                f"{type(a).__name__} there and {b.name} a {type(b).__name__} here"
            )
    if len(src) != len(dst):
        raise TrainingError(f"the initial weights are of another model: {len(src)} layers there, {len(dst)} here")


def _real_and_binary(a, b) -> bool:
    """Real-weight and binary forms of one convolution (the two steps of a recipe)."""
    conv = (tf.keras.layers.Conv2D, tf.keras.layers.DepthwiseConv2D)
    return isinstance(a, conv) and isinstance(b, conv)
