"""Conversion to TFLite with the Larq Compute Engine, and checks of what came out.

`convert_and_verify` converts a Keras model, reads the operator inventory back from the
flatbuffer, refuses a model in which any binary Keras convolution did not become an
`LceBconv2d` (LCE falls back to a float convolution without failing), and measures parity
between Keras and LCE's interpreter.
"""

import contextlib
import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from flatbuffers import flexbuffers
from larq_methods import compat, costs, data

schema = compat.tflite_schema()

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

    Takes the frozen-graph route that `lce.convert_keras_model` itself falls back to
    (`compat.convert_frozen_graph`: LCE has no public function for it): it gives the same
    operators as the SavedModel route but skips writing a SavedModel, which is about ten
    times faster (3 s against 29 s for ReActNet-A at 28x28, measured). If that route
    raises, LCE's public `convert_keras_model` is used.
    """
    import larq_compute_engine as lce

    specs = [tf.TensorSpec((1, *i.shape[1:]), i.dtype) for i in model.inputs]
    func = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0], training=False))
    try:
        return compat.convert_frozen_graph(func.get_concrete_function(*specs))
    except (ValueError, TypeError, RuntimeError, tf.errors.OpError):  # pragma: no cover - the slower, more general route
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
                # a bconv whose output feeds a sign directly writes it bitpacked (32
                # channels to an int32): its filter (OHWI) still counts the channels
                key = (*key[:2], filt[0], *key[3:])
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
    model: tf.keras.Model,
    inputs: np.ndarray,
    *,
    min_agreement: float = 0.95,
    input: str = "raw",
    metadata: dict | None = None,
) -> tuple[bytes, dict]:
    """Converts `model` and checks it; returns (flatbuffer, report).

    `inputs` are images as `model` takes them, in [-1, 1]. With `input="raw"` the .tflite
    takes 0-255 pixels (`with_raw_input`) and its parity is checked on the same images as
    pixels; with "scaled" it takes what `model` takes. `metadata` (model, method, dataset,
    accuracy, class_names; all optional) goes into the model card, report["card"], which is
    also embedded in the flatbuffer as TFLite metadata (`embed_metadata`).

    Raises `ConversionError` if a binary convolution was not binarised, or if Keras and LCE
    agree on the top-1 class of fewer than `min_agreement` of `inputs`.
    """
    if input not in INPUTS:
        raise ConversionError(f"input must be one of {', '.join(INPUTS)}, not {input!r}")
    target = with_raw_input(model) if input == "raw" else model
    if input == "raw":  # the same images as 0-255 pixels
        inputs = (inputs - data.INPUT_SCALING["offset"]) / data.INPUT_SCALING["scale"]
    flatbuffer = convert(target)
    ops = inventory(flatbuffer)
    check_binarised(target, ops)
    card = model_card(model, ops, input=input, metadata=metadata)
    flatbuffer = embed_metadata(flatbuffer, card)
    report = {
        "size_bytes": len(flatbuffer),
        "operators": op_counts(ops),
        "binary_convolutions": len(binary_convolutions(model)),
        "parity": parity(target, flatbuffer, inputs.astype(np.float32)),
        "costs": costs.count(model).as_dict(),
        "card": card,
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


# -- self-describing models ---------------------------------------------------------------

INPUTS = ("raw", "scaled")
METADATA_NAME = "TFLITE_METADATA"  # where TFLite's metadata readers look
# the oldest metadata parser that reads every field written here (TFLite Support's rule)
METADATA_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"
CARD_FILE = "model.json"


def with_raw_input(model: tf.keras.Model) -> tf.keras.Model:
    """`model` behind x / 127.5 - 1 (`data.INPUT_SCALING`): it takes 0-255 pixels.

    In TFLite the scaling is one MUL and one ADD on the input image, so an app feeds its
    pixels as they are and cannot get the scaling wrong.
    """
    inputs = tf.keras.Input(model.input_shape[1:], name="pixels")
    scaled = tf.keras.layers.Rescaling(
        data.INPUT_SCALING["scale"], offset=data.INPUT_SCALING["offset"], name="scale_pixels"
    )(inputs)
    return tf.keras.Model(inputs, model(scaled, training=False), name=model.name)


def model_card(model: tf.keras.Model, ops: list[Op], *, input: str = "raw", metadata: dict | None = None) -> dict:
    """What an app needs to run a converted `model` (its Keras model before `with_raw_input`):
    the input's shape, type, range and scaling, what the output means, the class names, and
    what is known of the model (`metadata`: model, method, dataset, accuracy, class_names).

    TFLite metadata's convention: the model sees (pixel - mean) / std.
    """
    meta = dict(metadata or {})
    _, height, width, channels = model.input_shape
    classes = model.output_shape[-1]
    names = meta.pop("class_names", None)
    if names is not None and len(names) != classes:
        raise ConversionError(f"{len(names)} class names for a model of {classes} classes")
    softmax = any(op.type == "SOFTMAX" for op in ops[-1:])
    raw = input == "raw"
    return {
        "model": meta.pop("model", None) or model.name,
        **meta,
        "input": {
            "shape": [1, height, width, channels],
            "dtype": "float32",
            "layout": "NHWC",
            "color": "rgb" if channels == 3 else "grayscale",
            "pixels": "0-255 values of each channel, as float32",
            "range": [0.0, 255.0] if raw else [-1.0, 1.0],
            "mean": 0.0 if raw else 127.5,
            "std": 1.0 if raw else 127.5,
            "scaling": (
                "none: feed 0-255 pixels; the model computes x / 127.5 - 1 itself"
                if raw else "feed x / 127.5 - 1 of the 0-255 pixels, in [-1, 1]"
            ),
            "resize": f"to {height}x{width} (bilinear), as in training",
        },
        "output": {
            "shape": [1, classes],
            "dtype": "float32",
            "meaning": "class probabilities (softmax)" if softmax else "class scores (logits)",
        },
        "class_names": list(names) if names is not None else None,
    }


def _string(builder, text):
    return builder.CreateString(text) if text is not None else None


def _table(builder, fields: list) -> int:
    """A flatbuffer table from (slot, kind, value) fields: kind "offset", "u8", "u32"."""
    builder.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
    for slot, kind, value in fields:
        if value is None:
            continue
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "u8":
            builder.PrependUint8Slot(slot, value, 0)
        elif kind == "u32":
            builder.PrependUint32Slot(slot, value, 0)
    return builder.EndObject()


def _offsets(builder, items: list) -> int:
    builder.StartVector(4, len(items), 4)
    for item in reversed(items):
        builder.PrependUOffsetTRelative(item)
    return builder.EndVector()


def _floats(builder, values) -> int:
    return builder.CreateNumpyVector(np.asarray(values, np.float32))


def metadata_flatbuffer(card: dict) -> bytes:
    """TFLite metadata (metadata_schema.fbs, identifier "M001") of an image classifier,
    written field by field: the names, the input's colour space, size, normalisation
    (mean, std) and range, and the output's label file (`LABELS_FILE`, packed in the model
    by `embed_metadata`)."""
    import flatbuffers

    b = flatbuffers.Builder(1024)
    inp, out = card["input"], card["output"]
    _, height, width, channels = inp["shape"]
    # input tensor: ImageProperties (union type 2) with its default size
    size = _table(b, [(0, "u32", width), (1, "u32", height)])
    image = _table(b, [(0, "u8", 1 if channels == 3 else 2), (1, "offset", size)])  # RGB / GRAYSCALE
    content = _table(b, [(0, "u8", 2), (1, "offset", image)])
    norm = _table(b, [(0, "offset", _floats(b, [inp["mean"]] * channels)), (1, "offset", _floats(b, [inp["std"]] * channels))])
    unit = _table(b, [(0, "u8", 1), (1, "offset", norm)])  # NormalizationOptions
    stats = _table(b, [(0, "offset", _floats(b, [inp["range"][1]] * channels)), (1, "offset", _floats(b, [inp["range"][0]] * channels))])
    input_meta = _table(b, [
        (0, "offset", _string(b, "image")),
        (1, "offset", _string(b, f"{inp['color']} image, {inp['scaling']}")),
        (3, "offset", content), (4, "offset", _offsets(b, [unit])), (5, "offset", stats),
    ])  # fmt: skip
    # output tensor: FeatureProperties (union type 1), its labels, probabilities in [0, 1]
    feature = _table(b, [])
    out_content = _table(b, [(0, "u8", 1), (1, "offset", feature)])
    out_fields = [(0, "offset", _string(b, "probability")), (1, "offset", _string(b, out["meaning"])), (3, "offset", out_content)]
    if card.get("class_names"):
        labels = _table(b, [(0, "offset", _string(b, LABELS_FILE)), (1, "offset", _string(b, "class names, one a line")), (2, "u8", 2)])  # TENSOR_AXIS_LABELS
        out_fields.append((6, "offset", _offsets(b, [labels])))
    if "probabilities" in out["meaning"]:
        out_fields.append((5, "offset", _table(b, [(0, "offset", _floats(b, [1.0])), (1, "offset", _floats(b, [0.0]))])))
    output_meta = _table(b, out_fields)
    subgraph = _table(b, [(2, "offset", _offsets(b, [input_meta])), (3, "offset", _offsets(b, [output_meta]))])
    card_file = _table(b, [(0, "offset", _string(b, CARD_FILE)), (1, "offset", _string(b, "the model card: input, scaling, classes, model, method, accuracy"))])
    description = f"{card['model']}: a binary neural network (larq-methods, Larq Compute Engine); " + (
        f"method {card['method']}; " if card.get("method") else ""
    ) + (f"top-1 accuracy {card['accuracy']:.4f} on {card.get('dataset', 'its dataset')}" if card.get("accuracy") is not None else "accuracy not measured")
    root = _table(b, [
        (0, "offset", _string(b, card["model"])), (1, "offset", _string(b, description)),
        (2, "offset", _string(b, card.get("version"))), (3, "offset", _offsets(b, [subgraph])),
        (4, "offset", _string(b, "larq-methods")), (6, "offset", _offsets(b, [card_file])),
        (7, "offset", _string(b, METADATA_PARSER_VERSION)),
    ])  # fmt: skip
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


class _AlignedBuffer(schema.BufferT):
    """A buffer packed with its data 16-byte aligned, as the converter writes them."""

    def Pack(self, builder):
        data = None
        if self.data is not None and len(self.data):
            raw = np.asarray(self.data, np.uint8).tobytes()
            builder.StartVector(1, len(raw), 16)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            data = builder.EndVector(len(raw))
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, self.offset)
        schema.BufferAddSize(builder, self.size)
        return schema.BufferEnd(builder)


def embed_metadata(flatbuffer: bytes, card: dict) -> bytes:
    """`flatbuffer` with `card` as TFLite metadata (a "TFLITE_METADATA" buffer that TFLite
    Support, Android Studio's model binding and Netron read) and with `LABELS_FILE` and
    `CARD_FILE` packed after it as a zip archive, where TFLite Support looks for the files
    that metadata names. The interpreter ignores both.

    The packed card records the size and sha256 of the flatbuffer it rides on
    (`card["flatbuffer"]`, set in `card` too), so that damage to the model is found from
    the file alone (`saving.packed_card_problem`)."""
    import hashlib
    import io
    import zipfile

    import flatbuffers

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    buffers = []
    for buffer in model.buffers or []:
        aligned = _AlignedBuffer()
        aligned.data, aligned.offset, aligned.size = buffer.data, buffer.offset, buffer.size
        buffers.append(aligned)
    metadata = [m for m in (model.metadata or []) if m.name not in (METADATA_NAME, METADATA_NAME.encode())]
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(buffers)
    extra = _AlignedBuffer()
    extra.data, extra.offset, extra.size = np.frombuffer(metadata_flatbuffer(card), np.uint8), 0, 0
    model.buffers, model.metadata = buffers + [extra], metadata + [entry]
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    model_bytes = bytes(builder.Output())
    card["flatbuffer"] = {"bytes": len(model_bytes), "sha256": hashlib.sha256(model_bytes).hexdigest()}
    packed = io.BytesIO(model_bytes)
    packed.seek(0, io.SEEK_END)
    with zipfile.ZipFile(packed, "a") as archive:
        if card.get("class_names"):
            archive.writestr(LABELS_FILE, "\n".join(card["class_names"]) + "\n")
        archive.writestr(CARD_FILE, json.dumps(card, indent=1) + "\n")
    return packed.getvalue()


# Readers of a field (by its slot) of a flatbuffer table, for `read_metadata`.


def _read_table(tab, slot):
    """The sub-table at `slot` of `tab`, or None."""
    from flatbuffers.table import Table

    o = tab.Offset(4 + 2 * slot)
    return Table(tab.Bytes, tab.Indirect(o + tab.Pos)) if o else None


def _read_tables(tab, slot) -> list:
    """The tables of the vector at `slot`."""
    from flatbuffers.table import Table

    o = tab.Offset(4 + 2 * slot)
    if not o:
        return []
    start = tab.Vector(o)
    return [Table(tab.Bytes, tab.Indirect(start + 4 * i)) for i in range(tab.VectorLen(o))]


def _read_floats(tab, slot) -> list:
    import flatbuffers.number_types as n

    o = tab.Offset(4 + 2 * slot)
    return tab.GetVectorAsNumpy(n.Float32Flags, o).tolist() if o else []


def _read_string(tab, slot):
    o = tab.Offset(4 + 2 * slot)
    return tab.String(o + tab.Pos).decode() if o else None


def _read_scalar(tab, slot, kind):
    import flatbuffers.number_types as n

    o = tab.Offset(4 + 2 * slot)
    return tab.Get(getattr(n, kind), o + tab.Pos) if o else 0


def read_metadata(flatbuffer: bytes) -> dict:
    """What `embed_metadata` put into `flatbuffer`, read back through the schema:
    {"name", "description", "min_parser_version", "input": {"color_space", "size", "mean",
    "std", "min", "max"}, "output": {"labels_file"}, "files": {name: text}}; {} if none."""
    import io
    import zipfile

    from flatbuffers.table import Table

    table, vector, floats, string, scalar = _read_table, _read_tables, _read_floats, _read_string, _read_scalar
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    index = next(
        (model.Metadata(i).Buffer() for i in range(model.MetadataLength()) if model.Metadata(i).Name() == METADATA_NAME.encode()),
        None,
    )
    if index is None:
        return {}
    raw = model.Buffers(index).DataAsNumpy().tobytes()
    if raw[4:8] != b"M001":
        raise ConversionError("the TFLITE_METADATA buffer is not TFLite metadata (no M001 identifier)")

    root = Table(raw, int.from_bytes(raw[:4], "little"))
    subgraph = vector(root, 3)[0]
    inp, out = vector(subgraph, 2)[0], vector(subgraph, 3)[0]
    image = table(table(inp, 3), 1)
    size = table(image, 1)
    norm = table(vector(inp, 4)[0], 1)
    stats = table(inp, 5)
    labels = [string(f, 0) for f in vector(out, 6) if scalar(f, 2, "Uint8Flags") == 2]
    files = {}
    with contextlib.suppress(zipfile.BadZipFile), zipfile.ZipFile(io.BytesIO(flatbuffer)) as archive:
        files = {name: archive.read(name).decode() for name in archive.namelist()}
    return {
        "name": string(root, 0),
        "description": string(root, 1),
        "min_parser_version": string(root, 7),
        "input": {
            "name": string(inp, 0),
            "color_space": {1: "RGB", 2: "GRAYSCALE"}.get(scalar(image, 0, "Uint8Flags")),
            "size": [scalar(size, 1, "Uint32Flags"), scalar(size, 0, "Uint32Flags")],
            "mean": floats(norm, 0),
            "std": floats(norm, 1),
            "min": floats(stats, 1),
            "max": floats(stats, 0),
        },
        "output": {"name": string(out, 0), "labels_file": labels[0] if labels else None},
        "files": files,
    }


class TFLiteModel:
    """A converted model ready to classify: LCE's interpreter on `flatbuffer`, with what its
    embedded model card says (input scaling, class names). `predict` takes images in
    [-1, 1], as the Keras model does, and scales them to 0-255 pixels for a model that
    takes those."""

    def __init__(self, flatbuffer: bytes, num_threads: int = 1):
        self.runner = interpreter(flatbuffer, num_threads)
        self.input_shape = tuple(self.runner.input_shapes[0])
        self.card = json.loads(read_metadata(flatbuffer).get("files", {}).get(CARD_FILE, "{}"))
        self.raw = self.card.get("input", {}).get("range") == [0.0, 255.0]
        self.class_names = self.card.get("class_names")

    def predict(self, images: np.ndarray) -> np.ndarray:
        if self.raw:
            images = (images - data.INPUT_SCALING["offset"]) / data.INPUT_SCALING["scale"]
        return self.runner.predict(np.asarray(images, np.float32))
