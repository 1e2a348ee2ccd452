"""Files: loading models with a clear error, and writes that never leave half a file."""

import hashlib
import json
import os
import tempfile
from pathlib import Path

import tensorflow as tf
from flatbuffers import flexbuffers


class FileError(Exception):
    """A file or folder cannot be read or written as asked."""


def load_model(path) -> tf.keras.Model:
    """Loads a Keras model file (.h5, .keras or a SavedModel folder) without compiling it.

    larq's and this project's layers are registered custom objects, so no
    `custom_objects` argument is needed.
    """
    path = Path(path)
    if not path.exists():
        raise FileError(f"{path}: no such file")
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FileError(f"{path} is not a Keras model file (.h5, .keras or SavedModel): {first}") from None


def load_tflite(path) -> bytes:
    """Reads a TFLite flatbuffer, refusing one that is not one or is damaged.

    Checked here, before any interpreter sees it (LCE's crashes on a damaged file, and the
    flatbuffer accessors raise struct errors): the size, the "TFL3" file identifier, the
    root table's offset, then TensorFlow Lite's own flatbuffer verifier (every table,
    vector and string within bounds), then that every buffer stored outside the flatbuffer
    (offset and size, as in models over 2 GB) lies within the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileError(f"{path}: no such file")
    flatbuffer = path.read_bytes()
    problem = tflite_problem(flatbuffer)
    if problem:
        raise FileError(f"{path} {problem}")
    expected = _recorded_sha256(path)
    if expected and hashlib.sha256(flatbuffer).hexdigest() != expected:
        raise FileError(f"{path} is damaged or changed: its sha256 is not the one {path.with_suffix('.json').name} records")
    return flatbuffer


def _recorded_sha256(path: Path) -> str | None:
    """The sha256 that `lqm convert`'s JSON beside a .tflite records of it, if any."""
    try:
        card = json.loads(path.with_suffix(".json").read_text())
        return card.get("tflite_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def tflite_problem(flatbuffer: bytes) -> str | None:
    """What is wrong with `flatbuffer` as a TFLite model, or None."""
    import struct
    import warnings

    from tensorflow.lite.python import schema_py_generated as schema

    size = len(flatbuffer)
    if size == 0:
        return "is empty, not a TFLite model"
    if size < 8 or flatbuffer[4:8] != b"TFL3":  # root offset, then the file identifier
        return f"is not a TFLite model (no TFL3 file identifier; {size} bytes)"
    root = struct.unpack_from("<I", flatbuffer)[0]
    if root + 4 > size:
        return f"is damaged or truncated: its root table lies at byte {root} of {size}"
    with warnings.catch_warnings():  # tf.lite.Interpreter's notice that it will move
        warnings.simplefilter("ignore")
        try:  # builds no kernels, so LCE's custom operators need not be resolved here
            tf.lite.Interpreter(
                model_content=flatbuffer,
                experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
        except ValueError as e:
            return f"is damaged or truncated ({str(e).strip().splitlines()[0]}; {size} bytes)"
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    for i in range(model.BuffersLength()):
        buffer = model.Buffers(i)
        if buffer.Offset() > 1 and buffer.Offset() + buffer.Size() > size:
            return f"is damaged or truncated: buffer {i} ends at byte {buffer.Offset() + buffer.Size()} of {size}"
    try:
        return _graph_problem(model)
    except (struct.error, TypeError, AttributeError, UnicodeDecodeError, IndexError, ValueError) as e:
        return f"is damaged ({type(e).__name__} reading its graph; {size} bytes)"


def _graph_problem(model) -> str | None:
    """Indices that point nowhere, and names that are not text: what the verifier, which
    checks bounds only, lets through and what readers of the graph would trip on."""
    codes, buffers = model.OperatorCodesLength(), model.BuffersLength()
    for i in range(codes):
        model.OperatorCodes(i).CustomCode() and model.OperatorCodes(i).CustomCode().decode()
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        tensors = graph.TensorsLength()
        for t in range(tensors):
            tensor = graph.Tensors(t)
            (tensor.Name() or b"").decode()
            if tensor.ShapeLength():
                tensor.ShapeAsNumpy().tolist()
            if not 0 <= tensor.Buffer() < max(buffers, 1):
                return f"is damaged: tensor {t} names buffer {tensor.Buffer()} of {buffers}"
        ends = [graph.InputsAsNumpy(), graph.OutputsAsNumpy()]
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            if not 0 <= op.OpcodeIndex() < codes:
                return f"is damaged: operator {o} has operator code {op.OpcodeIndex()} of {codes}"
            ends += [op.InputsAsNumpy(), op.OutputsAsNumpy()]
            if op.CustomOptionsLength():  # an LCE operator's options, a FlexBuffer map
                try:
                    flexbuffers.Loads(op.CustomOptionsAsNumpy().tobytes())
                except Exception:  # flexbuffers raises whatever its reads hit
                    return f"is damaged: the options of operator {o} do not parse"
        for indices in ends:
            if isinstance(indices, int):  # the accessors' 0 for an absent vector
                continue
            if len(indices) and (indices.min() < -1 or indices.max() >= tensors):
                return f"is damaged: subgraph {g} refers to tensor {int(indices.max())} of {tensors}"
    return None


def check_writable(path) -> Path:
    """Creates the parent folder if needed and proves that `path` can be written there."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as e:
        raise FileError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data: bytes) -> None:
    """Writes through a temporary file in the same folder, then renames it into place.

    The file gets the mode a plain `open` would give it (0666 less the umask, so 0644
    under umask 022), not the temporary file's private 0600."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(model: tf.keras.Model, path) -> None:
    """Saves a model (HDF5 for .h5, else the .keras format) atomically."""
    path = check_writable(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        model.save(tmp, save_format="h5" if path.suffix == ".h5" else None)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_new_run_folder(path) -> Path:
    """Refuses a run folder that exists and holds anything (or is a file)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileError(f"run folder {path} already exists; choose another --output")
    return path


def create_run_folder(path) -> Path:
    """Creates an empty run folder; refuses one that exists and holds anything."""
    path = check_new_run_folder(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FileError(f"cannot create run folder {path}: {e.strerror or e}") from None
    return path
