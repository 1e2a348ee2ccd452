"""Operation counts of a Keras model: BOPs, FLOPs, OPs, parameters and model size.

Counted the way the BNN papers (Bi-Real Net, ReActNet) count them:

- BOPs: multiply-accumulates of convolutions and dense layers whose weights *and* inputs
  are binary (a 1-bit kernel quantizer, and a 1-bit input quantizer or a 1-bit layer such
  as RSign in front).
- FLOPs: multiply-accumulates of every other convolution and dense layer, including the
  small fully connected layers inside a layer (INSTA-Th+, DyBNN). Batch normalisation,
  activations, pooling, additions and INSTA's per-element statistics are not counted, as
  the papers do not count them.
- OPs = BOPs / 64 + FLOPs.
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from larq_methods import quantizers


@dataclass(frozen=True)
class Costs:
    bops: int
    flops: int
    params: int
    binary_params: int

    @property
    def ops(self) -> float:
        return self.bops / 64 + self.flops

    @property
    def size_bytes(self) -> float:
        """Weights stored at 1 bit if binary, else 32 bits."""
        return (self.binary_params + 32 * (self.params - self.binary_params)) / 8

    def as_dict(self) -> dict:
        return {
            "bops": self.bops,
            "flops": self.flops,
            "ops": self.ops,
            "params": self.params,
            "binary_params": self.binary_params,
            "size_bytes": self.size_bytes,
        }


def inbound_layers(layer) -> list:
    nodes = layer.inbound_nodes
    if not nodes:
        return []
    inbound = nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def has_binary_kernel(layer) -> bool:
    return quantizers.is_binary(getattr(layer, "kernel_quantizer", None))


def has_binary_input(layer) -> bool:
    if quantizers.is_binary(getattr(layer, "input_quantizer", None)):
        return True
    inbound = inbound_layers(layer)
    return bool(inbound) and all(quantizers.is_binary(src) for src in inbound)


def is_binary(layer) -> bool:
    """True for a convolution or dense layer whose kernel and input are both binary."""
    return has_binary_kernel(layer) and has_binary_input(layer)


def macs(layer) -> int:
    """Multiply-accumulates of one forward pass for one example; 0 for other layers."""
    if isinstance(layer, tf.keras.layers.DepthwiseConv2D):
        _, h, w, c_out = layer.output_shape
        kh, kw = layer.kernel_size
        return h * w * kh * kw * c_out
    if isinstance(layer, tf.keras.layers.Conv2D):
        _, h, w, c_out = layer.output_shape
        kh, kw = layer.kernel_size
        c_in = layer.input_shape[-1] // layer.groups
        return h * w * kh * kw * c_in * c_out
    if isinstance(layer, tf.keras.layers.Dense):
        positions = int(np.prod(layer.output_shape[1:-1], dtype=np.int64))
        return positions * layer.input_shape[-1] * layer.units
    # Dense sublayers on a pooled vector, as in INSTA-Th+ and DyBNN's hyper-functions
    return sum(
        int(np.prod(sub.kernel.shape))
        for sub in layer.submodules
        if isinstance(sub, tf.keras.layers.Dense) and sub.built
    )


def flat_layers(model):
    """The layers of `model`, with those of nested models in their place."""
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            yield from flat_layers(layer)
        else:
            yield layer


def count(model: tf.keras.Model) -> Costs:
    bops = flops = params = binary_params = 0
    for layer in flat_layers(model):
        n = macs(layer)
        if is_binary(layer):
            bops += n
        else:
            flops += n
        for w in layer.weights:
            size = int(np.prod(w.shape))
            params += size
            if w is getattr(layer, "kernel", None) and has_binary_kernel(layer):
                binary_params += size
    return Costs(bops, flops, params, binary_params)
