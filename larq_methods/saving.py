"""Files: loading models with a clear error, and writes that never leave half a file."""

import os
import tempfile
from pathlib import Path

import tensorflow as tf


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
    """Reads a TFLite flatbuffer, refusing a file that is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileError(f"{path}: no such file")
    flatbuffer = path.read_bytes()
    if flatbuffer[4:8] != b"TFL3":  # the flatbuffer's file identifier
        raise FileError(f"{path} is not a TFLite model (no TFL3 file identifier)")
    return flatbuffer


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


def write_bytes(path, data: bytes) -> None:
    """Writes through a temporary file in the same folder, then renames it into place."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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
