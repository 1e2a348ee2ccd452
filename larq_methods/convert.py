"""Conversion to TFLite with the Larq Compute Engine, and checks of what came out.

`convert_and_verify` converts a Keras model, reads the operator inventory back from the
flatbuffer, refuses a model in which any binary Keras convolution did not become an
`LceBconv2d` (LCE falls back to a float convolution without failing), and measures parity
between Keras and LCE's interpreter.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from flatbuffers import flexbuffers
from tensorflow.lite.python import schema_py_generated as schema

from larq_methods import costs

_BUILTIN_NAMES = {
    code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
CONV_OPS = ("LceBconv2d", "CONV_2D", "DEPTHWISE_CONV_2D")


class ConversionError(Exception):
    """The converted model is not what was asked for (for example not fully binary)."""


@dataclass(frozen=True)
class Op:
    """One operator of a converted model, with the shapes of its tensors."""

    type: str
    input_shapes: tuple
    output_shapes: tuple
    # an LCE operator's custom options as sorted (key, value) pairs, e.g. LceBconv2d's
    # channels_in, which its bit-packed shapes do not tell
    options: tuple = ()


def convert(model: tf.keras.Model) -> bytes:
    """Converts with LCE for ARM targets; the batch size of the result is 1.

    Takes the frozen-graph route that `lce.convert_keras_model` itself falls back to: it
    gives the same operators as the SavedModel route but skips writing a SavedModel, which
    is about ten times faster here (3 s against 29 s for ReActNet-A at 28x28). If it
    fails, LCE's own `convert_keras_model` is used.
    """
    import larq_compute_engine as lce
    from larq_compute_engine.mlir.python import converter
    from tensorflow.core.framework.types_pb2 import DataType
    from tensorflow.lite.python.util import get_tensor_name
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    specs = [tf.TensorSpec((1, *i.shape[1:]), i.dtype) for i in model.inputs]
    try:
        func = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0], training=False))
        frozen = convert_variables_to_constants_v2(
            func.get_concrete_function(*specs), lower_control_flow=False
        )
        inputs = [t for t in frozen.inputs if t.dtype != tf.resource]
        return converter.convert_graphdef_to_tflite_flatbuffer(
            frozen.graph.as_graph_def().SerializeToString(),
            [get_tensor_name(t) for t in inputs],
            [DataType.Name(t.dtype.as_datatype_enum) for t in inputs],
            [t.shape.as_list() for t in inputs],
            [get_tensor_name(t) for t in frozen.outputs],
            False,  # no training-time quantisation ops
            "arm",
            None,
        )
    except Exception:  # pragma: no cover - the slower, more general route
        return lce.convert_keras_model(model)


def inventory(flatbuffer: bytes) -> list[Op]:
    """The operators of the main subgraph, in execution order."""
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    graph = model.Subgraphs(0)

    def shape(index):
        return tuple(graph.Tensors(index).ShapeAsNumpy().tolist()) if index >= 0 else ()

    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        options = ()
        if builtin == schema.BuiltinOperator.CUSTOM:
            name = code.CustomCode().decode()
            if op.CustomOptionsLength():
                custom = flexbuffers.Loads(op.CustomOptionsAsNumpy().tobytes())
                options = tuple(sorted(custom.items()))
        else:
            name = _BUILTIN_NAMES.get(builtin, str(builtin))
        ops.append(
            Op(
                name,
                tuple(shape(op.Inputs(j)) for j in range(op.InputsLength())),
                tuple(shape(op.Outputs(j)) for j in range(op.OutputsLength())),
                options,
            )
        )
    return ops


def op_counts(ops: list[Op]) -> dict[str, int]:
    return dict(sorted(Counter(op.type for op in ops).items()))


def binary_convolutions(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """Keras convolutions with a 1-bit kernel quantizer: each must become an LceBconv2d."""
    return [
        layer
        for layer in costs.flat_layers(model)
        if isinstance(layer, tf.keras.layers.Conv2D) and costs.has_binary_kernel(layer)
    ]


def _signature(output_shape, kernel_size) -> tuple:
    """What identifies a convolution on both sides: output H, W, C and kernel size."""
    return (*tuple(output_shape[1:4]), *tuple(kernel_size))


def _static_reason(layer) -> str | None:
    """Why LCE cannot binarise `layer`, when that can be told from the layer alone."""
    if not costs.has_binary_input(layer):
        return "its input is not binary (no 1-bit input quantizer or sign layer in front)"
    per_group = layer.input_shape[-1] // layer.groups
    if layer.groups > 1 and per_group % 32:
        return (
            f"it is a grouped convolution with {per_group} input channels per group; LCE "
            "binarises grouped convolutions only with a multiple of 32 per group"
        )
    return None


def unbinarised(model: tf.keras.Model, ops: list[Op]) -> list[str]:
    """One line per binary Keras convolution that is not an LceBconv2d in `ops`."""
    bconvs = Counter()
    floats = {}
    for op in ops:
        if op.type in CONV_OPS:
            filt = op.input_shapes[1]
            key = _signature(op.output_shapes[0], filt[1:3])
            if op.type == "LceBconv2d":
                bconvs[key] += 1
            else:
                floats.setdefault(key, op.type)

    problems = []
    by_key = {}
    for layer in binary_convolutions(model):
        by_key.setdefault(_signature(layer.output_shape, layer.kernel_size), []).append(layer)
    for key, layers in by_key.items():
        missing = len(layers) - bconvs[key]
        if missing <= 0:
            continue
        # Layers whose failure is explained come first; otherwise all are suspects.
        explained = [(layer, _static_reason(layer)) for layer in layers]
        explained.sort(key=lambda item: item[1] is None)
        became = floats.get(key, "no matching operator")
        for layer, reason in explained[:missing] if explained[0][1] else explained:
            why = reason or (
                f"the converter emitted {became} for it"
                + ("" if missing == len(layers) else f" (one of {len(layers)} alike)")
            )
            problems.append(f"{layer.name}: not an LceBconv2d ({became}) because {why}")
    return problems


def check_binarised(model: tf.keras.Model, ops: list[Op]) -> None:
    """Raises `ConversionError` if a binary Keras convolution is not an LceBconv2d in `ops`."""
    problems = unbinarised(model, ops)
    if problems:
        raise ConversionError(
            f"{len(problems)} binary convolution(s) would run in float: " + "; ".join(problems)
        )


def parity(model: tf.keras.Model, flatbuffer: bytes, inputs: np.ndarray) -> dict:
    """Keras against LCE's interpreter on `inputs`: output differences, top-1 agreement."""
    expected = model.predict(inputs, verbose=0, batch_size=64)
    actual = tflite_predict(flatbuffer, inputs)
    diff = np.abs(expected - actual).reshape(len(inputs), -1)
    scale = np.maximum(1.0, np.abs(expected).reshape(len(inputs), -1).max(axis=1))
    # A sign whose input lies within rounding error of its threshold may flip between the
    # two runtimes; the outputs of the examples it touches then differ by more than rounding.
    return {
        "examples": int(len(inputs)),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        # share of examples whose outputs all agree to 1e-4 of their largest magnitude (or 1)
        "examples_matching": float(np.mean(diff.max(axis=1) <= 1e-4 * scale)),
        "top1_agreement": float(np.mean(expected.argmax(-1) == actual.argmax(-1))),
    }


def convert_and_verify(
    model: tf.keras.Model, inputs: np.ndarray, *, min_agreement: float = 0.95
) -> tuple[bytes, dict]:
    """Converts `model` and checks it; returns (flatbuffer, report).

    Raises `ConversionError` if a binary convolution was not binarised, or if Keras and LCE
    agree on the top-1 class of fewer than `min_agreement` of `inputs`.
    """
    flatbuffer = convert(model)
    ops = inventory(flatbuffer)
    check_binarised(model, ops)
    report = {
        "size_bytes": len(flatbuffer),
        "operators": op_counts(ops),
        "binary_convolutions": len(binary_convolutions(model)),
        "parity": parity(model, flatbuffer, inputs),
        "costs": costs.count(model).as_dict(),
    }
    agreement = report["parity"]["top1_agreement"]
    if agreement < min_agreement:
        raise ConversionError(
            f"Keras and LCE agree on the top-1 class of only {agreement:.1%} of "
            f"{len(inputs)} inputs (at least {min_agreement:.0%} required)"
        )
    return flatbuffer, report


def has_grouped_bconv(flatbuffer: bytes) -> bool:
    """True if an LceBconv2d's filter holds fewer input channels than its input has.

    LCE's default binary kernel cannot run those; its indirect BGEMM kernel can.
    """
    return any(
        op.type == "LceBconv2d" and op.input_shapes[1][-1] < op.input_shapes[0][-1]
        for op in inventory(flatbuffer)
    )


def interpreter(flatbuffer: bytes, num_threads: int = 1, indirect_bgemm: bool = False):
    """LCE's interpreter for `flatbuffer`, with the indirect BGEMM kernel when grouped binary
    convolutions need it, or for every binary convolution if `indirect_bgemm`."""
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    return Interpreter(
        flatbuffer,
        num_threads=num_threads,
        use_indirect_bgemm=indirect_bgemm or has_grouped_bconv(flatbuffer),
    )


def tflite_predict(flatbuffer: bytes, inputs, num_threads: int = 1) -> np.ndarray:
    """Runs a converted model in LCE's interpreter on `inputs`, an array or an iterable of
    batches."""
    runner = interpreter(flatbuffer, num_threads)
    if isinstance(inputs, np.ndarray):
        return runner.predict(inputs)
    return np.concatenate([runner.predict(np.asarray(batch)) for batch in inputs])
