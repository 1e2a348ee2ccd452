"""Every use of another package's private API, gathered in one place and checked at import.

larq-methods pins exact versions of TensorFlow, tf-keras, larq and the Larq Compute Engine
(`PINNED`), and relies on a few of their private members where no public route exists.
Importing `larq_methods` calls `check()`: another version of those packages, or a private
member that is gone, fails there with one message that names what differs. Set
`LQM_UNPINNED=1` to try other versions anyway (the private members are still checked).

The private uses, each with why:

- larq's `QuantConv2D` (`binary_convolution`): `_is_native_padding` and
  `_get_padding_same`, so that `layers.BinaryConv2D` trains one-padded convolutions at
  the cost of zero padding; tf-keras' `_jit_compiled_convolution_op`, its path for grouped
  convolutions, which that layer replaces in training.
- TensorFlow's `tensorflow.python.framework.config`: whether op determinism is on, and
  turning it off (TensorFlow's public API can only turn it on).
- Keras' `Layer._track_trackable` and attribute tracking (`track_hidden`): a variable kept
  in checkpoints but out of `layer.weights` (ReBNN's probe).
- Keras' `Model._name` (`rename`): a built model renamed without rebuilding it.
- LCE's graph converter (`convert_frozen_graph`): the frozen-graph route of
  `larq_compute_engine.convert_keras_model`, ten times faster than its public SavedModel
  route (3 s against 29 s for ReActNet-A at 28x28), with TensorFlow's graph freezing.
- TensorFlow's generated reader and writer of the TFLite schema (`tflite_schema`), for the
  operator inventory and the model card. The public route, TFLite Support's metadata
  writers (tflite-support 0.4.4, which installs beside the pinned stack), cannot be
  imported beside TensorFlow 2.19: its pybind types clash with TensorFlow's ("cannot
  initialize type StatusCode", measured), so the card's metadata is written here.
"""

from __future__ import annotations

import contextlib
import os

import larq as lq
import tensorflow as tf

PINNED = {"tensorflow": "2.19.1", "tf_keras": "2.19.0", "larq": "0.14.0", "larq_compute_engine": "0.16.0"}


class CompatibilityError(ImportError):
    """The installed packages are not the versions, or lack the private members, that
    larq-methods was written against."""


def _installed() -> dict[str, str]:
    import larq_compute_engine
    import tf_keras

    return {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "larq": lq.__version__, "larq_compute_engine": larq_compute_engine.__version__}


def _missing() -> list[str]:
    from tensorflow.python.framework import config as tf_config

    conv = lq.layers.QuantConv2D
    required = [
        (conv, "_get_padding_same"),
        (conv, "_jit_compiled_convolution_op"),
        (conv, "convolution_op"),
        (tf.keras.layers.Layer, "_track_trackable"),
        (tf_config, "is_op_determinism_enabled"),
        (tf_config, "disable_op_determinism"),
        (_lce_converter(), "convert_graphdef_to_tflite_flatbuffer"),
        (tflite_schema(), "Model"),
        (tflite_schema(), "ModelT"),
    ]
    return [f"{getattr(owner, '__name__', owner)}.{name}" for owner, name in required if not hasattr(owner, name)]


def check() -> None:
    """Raises `CompatibilityError` (one message) if the installed versions differ from
    `PINNED` (unless `LQM_UNPINNED=1`) or a private member used here is missing."""
    installed = _installed()
    differ = {name: version for name, version in installed.items() if version != PINNED[name]}
    missing = _missing()
    if missing or (differ and os.environ.get("LQM_UNPINNED") != "1"):
        found = ", ".join(f"{n} {v}" for n, v in differ.items()) or "the pinned versions"
        gone = f"; missing private members: {', '.join(missing)}" if missing else ""
        pins = ", ".join(f"{n}=={v}" for n, v in PINNED.items())
        raise CompatibilityError(
            f"larq-methods needs {pins}; found {found}{gone}. Install the pinned versions "
            "(pip install -e .), or set LQM_UNPINNED=1 to try these (larq_methods/compat.py lists what may break)"
        )


# -- larq's and tf-keras' convolution internals -------------------------------------------


def native_padding(layer) -> bool:
    """Whether larq pads `layer`'s input itself (zeros, or "valid": no padding op)."""
    return layer._is_native_padding


@contextlib.contextmanager
def zero_padded(layer):
    """Inside the block, larq's `QuantConv2D.call` convolves `layer` with TensorFlow's own
    ("same", zero) padding instead of padding its input with `pad_values`."""
    with lq.utils.patch_object(layer, "_is_native_padding", True):
        yield


def padding_same(layer, inputs):
    """tf-keras' explicit "same" padding of `inputs` for `layer`: [[0, 0], [top, bottom],
    [left, right], [0, 0]]."""
    return layer._get_padding_same(inputs)


class GroupedConvolutionHook:
    """A mixin in front of larq's `QuantConv2D`: tf-keras sends every grouped convolution
    through its private `_jit_compiled_convolution_op` (compiled with XLA); while
    `splits_groups()` is true, it goes to the layer's own `convolution_op` instead."""

    def splits_groups(self) -> bool:
        return False

    def _jit_compiled_convolution_op(self, inputs, kernel):
        if self.splits_groups():
            return self.convolution_op(inputs, kernel)
        return super()._jit_compiled_convolution_op(inputs, kernel)


# -- TensorFlow ------------------------------------------------------------------------------


def set_op_determinism(enabled: bool) -> None:
    """Turns TensorFlow's op determinism on or off for this process."""
    from tensorflow.python.framework import config as tf_config

    if enabled:
        tf.config.experimental.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


# -- Keras tracking ----------------------------------------------------------------------


def track_hidden(layer, name: str, variable) -> None:
    """Sets `layer.<name>` to `variable` (or None) past Keras' attribute tracking, which
    would list it among the layer's weights, while keeping it a checkpoint dependency (so
    that a SavedModel export can capture it)."""
    if variable is not None:
        layer._track_trackable(variable, name=name)
    object.__setattr__(layer, name, variable)


def rename(model, name: str) -> None:
    """Renames a built Keras model in place."""
    model._name = name


# -- LCE and TFLite ----------------------------------------------------------------------


def _lce_converter():
    from larq_compute_engine.mlir.python import converter

    return converter


def tflite_schema():
    """TensorFlow's generated reader and writer of the TFLite flatbuffer schema."""
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def convert_frozen_graph(concrete_function) -> bytes:
    """A TFLite flatbuffer for ARM of `concrete_function` (its variables frozen to
    constants), through LCE's graph converter: no training-time quantisation, no int8 range."""
    from tensorflow.core.framework.types_pb2 import DataType
    from tensorflow.lite.python.util import get_tensor_name
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(concrete_function, lower_control_flow=False)
    inputs = [t for t in frozen.inputs if t.dtype != tf.resource]
    return _lce_converter().convert_graphdef_to_tflite_flatbuffer(
        frozen.graph.as_graph_def().SerializeToString(),
        [get_tensor_name(t) for t in inputs],
        [DataType.Name(t.dtype.as_datatype_enum) for t in inputs],
        [t.shape.as_list() for t in inputs],
        [get_tensor_name(t) for t in frozen.outputs],
        False,  # should_quantize
        "arm",  # target
        None,  # experimental_default_int8_range
    )
