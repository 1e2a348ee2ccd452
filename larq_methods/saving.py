"""Files: loading models with a clear error, writes that never leave half a file, the
files of a run folder, and the lock that keeps two processes out of one run folder."""

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf
from flatbuffers import flexbuffers


class FileError(Exception):
    """A file or folder cannot be read or written as asked.

    `parameters` names the library parameters that the message mentions by name (for
    example `output`), so that a command line can name its own options instead."""

    def __init__(self, message: str, *, parameters: tuple = ()):
        super().__init__(message)
        self.parameters = tuple(parameters)


# what a full disk or a file-size limit says: ENOSPC, EFBIG (RLIMIT_FSIZE), EDQUOT
FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
FULL_DISK_TEXT = ("No space left on device", "File too large", "Disk quota exceeded")


def is_full_disk(error: BaseException) -> bool:
    """True if `error` (an OSError, or TensorFlow's error from a failed write) says that
    the disk, a quota or a file-size limit is full."""
    if isinstance(error, OSError) and error.errno in FULL_DISK_ERRNOS:
        return True
    return any(text in str(error) for text in FULL_DISK_TEXT)


def shown(path) -> str:
    """`path` as text that can always be printed: bytes that are not UTF-8 (a file name
    from another system) as \\x escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _write_error(path, error: OSError) -> FileError:
    if is_full_disk(error):
        why = os.strerror(error.errno) if error.errno else str(error)
        return FileError(f"cannot write {shown(path)}: the disk is full ({why}); {shown(Path(path).name)} is as it was")
    return FileError(f"cannot write {shown(path)}: {error.strerror or error}")


def load_model(path) -> tf.keras.Model:
    """Loads a Keras model file (.h5, .keras or a SavedModel folder) without compiling it.

    larq's and this project's layers are registered custom objects, so no
    `custom_objects` argument is needed.
    """
    path = Path(path)
    if not path.exists():
        raise FileError(f"{shown(path)}: no such file")
    problem = _hdf5_problem(path)
    if problem:
        raise FileError(f"{shown(path)} is not a Keras model file (.h5, .keras or SavedModel): {problem}")
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        # Keras names its file objects by their repr ("<...GFile object at 0x7f...>")
        first = re.sub(r"<[^<>]* object at 0x[0-9a-f]+>", "the file", first)
        raise FileError(f"{shown(path)} is not a Keras model file (.h5, .keras or SavedModel): {first}") from None


def _hdf5_problem(path: Path) -> str | None:
    """What keeps an HDF5 file from being a Keras model, or None (also for other files)."""
    import h5py

    if not path.is_file() or not h5py.is_hdf5(path):
        return None
    try:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                return "an HDF5 file without a model_config (weights or other data, not a whole model)"
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        return f"a damaged HDF5 file ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    return None


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
        raise FileError(f"{shown(path)}: no such file")
    flatbuffer = path.read_bytes()
    problem = tflite_problem(flatbuffer) or packed_card_problem(flatbuffer)
    if problem:
        raise FileError(f"{shown(path)} {problem}")
    expected = _recorded_sha256(path)
    if expected and hashlib.sha256(flatbuffer).hexdigest() != expected:
        raise FileError(f"{shown(path)} is damaged or changed: its sha256 is not the one {path.with_suffix('.json').name} records")
    return flatbuffer


# the packed card's record of the flatbuffer it rides on (`larq_methods.convert.embed_metadata`)
PACKED_CARD = "model.json"


def packed_card_problem(data: bytes) -> str | None:
    """What is wrong with the model card packed after a TFLite flatbuffer (a zip archive
    that `lqm convert` appends), or None; None too for a file without one.

    The card records the size and sha256 of the flatbuffer before it ("flatbuffer":
    {"bytes", "sha256"}), so that damage is found without the card written beside the
    file; the zip's own CRC-32 guards the card."""
    import io
    import zipfile

    has_zip = b"PK\x05\x06" in data[-(1 << 16) - 22 :]  # the end-of-archive record
    if not has_zip:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if PACKED_CARD not in archive.namelist():
                return None
            card = json.loads(archive.read(PACKED_CARD).decode())
            for name in archive.namelist():
                archive.read(name)  # checks every file's CRC-32
    except (zipfile.BadZipFile, ValueError, UnicodeDecodeError, OSError, EOFError, KeyError) as e:
        return f"is damaged: its packed model card does not read ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    record = card.get("flatbuffer") if isinstance(card, dict) else None
    if not isinstance(record, dict):
        return None  # written before the card recorded it
    size = record.get("bytes")
    if not isinstance(size, int) or not 0 < size <= len(data) or hashlib.sha256(data[:size]).hexdigest() != record.get("sha256"):
        return "is damaged or changed: its flatbuffer's sha256 is not the one its packed model card records"
    return None


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
    if path.is_dir():
        raise FileError(f"cannot write {shown(path)}: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as e:
        raise _write_error(path, e) from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data: bytes) -> None:
    """Writes through a temporary file in the same folder, then renames it into place: the
    file is whole, or as it was (a full disk is a `FileError` that says so).

    The file gets the mode a plain `open` would give it (0666 less the umask, so 0644
    under umask 022), not the temporary file's private 0600."""
    write_files({path: data})


def write_files(contents: dict) -> None:
    """Writes several files ({path: bytes}) all or none: every one to a temporary file
    first, then each renamed into place, so a full disk changes none of them."""
    paths = {check_writable(path): data for path, data in contents.items()}
    written = {}
    try:
        for path, data in paths.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            written[path] = tmp
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # on the disk before the rename makes it the file
            os.chmod(tmp, 0o666 & ~_umask())
    except OSError as e:
        for tmp in written.values():
            Path(tmp).unlink(missing_ok=True)
        raise _write_error(path, e) from None
    except BaseException:
        for tmp in written.values():
            Path(tmp).unlink(missing_ok=True)
        raise
    for path, tmp in written.items():
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path` for a writer that takes a file name (matplotlib's
    `savefig`, Keras' `save`); renamed to `path` when the block ends without an error,
    removed otherwise. A full disk is a `FileError` and leaves `path` as it was.

        with atomic_path(run_dir / "curves.png") as tmp:
            fig.savefig(tmp)
    """
    path = check_writable(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise _write_error(path, e) from None
    except Exception as e:  # writers that wrap the OSError (h5py, TensorFlow)
        if is_full_disk(e):
            raise _write_error(path, OSError(errno.ENOSPC, str(e))) from None
        raise
    finally:
        if tmp.is_dir():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def save_model(model: tf.keras.Model, path) -> None:
    """Saves a model (HDF5 for .h5, else the .keras format) atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp, save_format="h5" if Path(path).suffix == ".h5" else None)


def check_new_run_folder(path) -> Path:
    """Refuses a run folder that exists and holds anything (or is a file)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileError(f"run folder {shown(path)} already exists; choose another `output`", parameters=("output",))
    return path


def create_run_folder(path) -> Path:
    """Creates an empty run folder; refuses one that exists and holds anything."""
    path = check_new_run_folder(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FileError(f"cannot create run folder {shown(path)}: {e.strerror or e}") from None
    return path


# -- run folders ----------------------------------------------------------------------------


def read_json(path) -> dict | None:
    """A JSON file's object; None if there is no such file; `FileError` naming the JSON
    error and its line if it does not parse."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise FileError(f"cannot read {shown(path)}: {getattr(e, 'strerror', None) or e}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise FileError(f"{shown(path)} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    if not isinstance(obj, dict):
        raise FileError(f"{shown(path)} holds a JSON {type(obj).__name__}, not an object")
    return obj


# what `lqm train` writes into a run folder, and so what nothing else may write over
RUN_FILES = ("config.json", "results.json", "history.csv", "curves.png", "model.h5", "checkpoints", "logs")
STEP_FOLDERS = ("step1", "step2")


@dataclass(frozen=True)
class RunFiles:
    """A model file and the run folder it belongs to, if any: `folder` holds config.json
    (the run's, or a step's parent's for step1/model.h5), `config` and `results` are its
    config.json and results.json ({} where absent)."""

    model: Path
    folder: Path | None = None
    config: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)


def run_files(path) -> RunFiles:
    """Resolves a run folder or a model file to its files: a folder means its model.h5;
    a model file's run is the folder above it that holds a config.json (the file's own
    folder, or its parent for a two-step run's step1/ and step2/)."""
    path = Path(path)
    if path.is_dir() and not (path / "saved_model.pb").exists():
        if not (path / "config.json").exists():
            raise FileError(f"{shown(path)} is a folder, but not a run folder of `lqm train` (no config.json)")
        if not (path / "model.h5").exists():
            raise FileError(f"the run folder {shown(path)} has no model.h5 (has it finished?)")
        path = path / "model.h5"
    for folder in (path.parent, path.parent.parent):
        config = read_json(folder / "config.json")
        if config is not None:
            results = read_json(folder / "results.json") or {}
            return RunFiles(path, folder, config, results)
    return RunFiles(path)


def is_run_file(path) -> bool:
    """True if `path` is one of the files or folders `lqm train` writes into a run folder
    (or a step folder of one), which another command must never write over."""
    path = Path(path).absolute()
    for folder in (path.parent, path.parent.parent, path.parent.parent.parent):
        if not (folder / "config.json").exists():
            continue
        parts = path.relative_to(folder).parts
        if parts[0] in STEP_FOLDERS and len(parts) > 1:
            parts = parts[1:]  # a step's own files
        if parts[0] in RUN_FILES:
            return True
    return False


LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_lock(run_dir):
    """Holds `run_dir` for one process: a second `run_lock` on it, in any process, is a
    `FileError` at once. An exclusive `flock` on the folder itself: the kernel drops it
    when the process ends, however it ends, so a crashed run leaves nothing stuck.

    A folder that does not exist is created (empty, so that a fresh run may still use
    it) and, if it is still empty when the block ends (the run failed before writing
    anything), removed again."""
    import fcntl

    run_dir = Path(run_dir)
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise FileError(f"cannot use run folder {shown(run_dir)}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileError(
                f"{shown(run_dir)} is in use: another process is training in it; wait for it to end "
                "(a crashed process holds nothing)"
            ) from None
        yield run_dir
    finally:
        os.close(fd)  # releases the lock
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only if empty
