"""Pretrained weights: one registry entry per weights file, fetched into a cache by hash.

The registry is `zoo/weights/registry.json`, a list of entries such as

    {"model": "reactnet-18", "dataset": "fashion_mnist", "file": "reactnet-18-fashion_mnist.h5",
     "sha256": "9f2c...", "accuracy": 0.8812, "recipe": {"epochs": 10, "method": {...}},
     "date": "2025-01-31", "alpha": 0.25, "input_shape": [28, 28, 1], "num_classes": 10}

Files are Keras weights files (.h5) or packed weights (.npz, `pack`): every weight as it
is, except that each 1-bit kernel is stored as its signs, 8 to a byte, and its mean |w|
per output channel, which is all that inference uses of it; 32x smaller, so the weights of
every named model ship with the project.

The files ship beside it, so the default base URL is that folder's `file://` URI and
downloads work offline. `LQM_WEIGHTS_URL` replaces the base (a mirror: an http(s) URL or a
folder), `LQM_CACHE_DIR` the cache folder (default `~/.keras/lqm-weights`). Whatever the
source, a file is kept only if its sha256 is the registered one.
"""

import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
from pathlib import Path

import numpy as np
import tensorflow as tf

from larq_methods import costs, data

WEIGHTS_DIR = Path(__file__).parent / "weights"
REGISTRY_FILE = WEIGHTS_DIR / "registry.json"
URL_ENV = "LQM_WEIGHTS_URL"
CACHE_ENV = "LQM_CACHE_DIR"


class WeightsError(ValueError):
    """Pretrained weights that are not registered, cannot be fetched, or fail their hash."""


@dataclasses.dataclass(frozen=True)
class Weights:
    """One weights file: what it fits (model, alpha, input shape, classes) and how well."""

    model: str
    dataset: str
    file: str
    sha256: str
    accuracy: float  # top-1 on the dataset's evaluation split
    recipe: dict  # how it was trained; recipe["method"], if given, is the Method's as_dict()
    date: str
    alpha: float
    input_shape: tuple
    num_classes: int

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(self.input_shape))

    @property
    def url(self) -> str:
        return base_url() + urllib.parse.quote(self.file)


def base_url() -> str:
    """`LQM_WEIGHTS_URL` (a URL, or a folder) or the shipped folder, ending in '/'."""
    base = os.environ.get(URL_ENV) or WEIGHTS_DIR.as_uri()
    if not urllib.parse.urlsplit(base).scheme:
        base = Path(base).resolve().as_uri()
    return base.rstrip("/") + "/"


def cache_dir() -> Path:
    """`LQM_CACHE_DIR`, or `~/.keras/lqm-weights` beside Keras' own downloads."""
    return Path(os.environ.get(CACHE_ENV) or "~/.keras/lqm-weights").expanduser().resolve()


def entries(model: str | None = None) -> list[Weights]:
    """The registered weights (of `model` only, if given), in registry order; none where
    the registry file does not exist yet."""
    if not REGISTRY_FILE.exists():
        return []
    try:
        items = json.loads(REGISTRY_FILE.read_text())
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot read the weights registry {REGISTRY_FILE}: {e}") from None
    if not isinstance(items, list):
        raise WeightsError(f"{REGISTRY_FILE} must hold a list of entries")
    found, seen = [], set()
    for i, item in enumerate(items):
        try:
            weights = Weights(**item)
        except TypeError as e:
            raise WeightsError(f"{REGISTRY_FILE}, entry {i}: {e}") from None
        if (weights.model, weights.dataset) in seen:
            raise WeightsError(f"{REGISTRY_FILE}: {weights.model} has two {weights.dataset!r} entries")
        seen.add((weights.model, weights.dataset))
        if model is None or weights.model == model:
            found.append(weights)
    return found


def _hint(name, names) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def get(model: str, dataset: str = "fashion_mnist") -> Weights:
    """The registry entry of `model`'s weights trained on `dataset`."""
    own = entries(model)
    for weights in own:
        if weights.dataset == dataset:
            return weights
    if own:
        datasets = [w.dataset for w in own]
        raise WeightsError(
            f"no {dataset!r} weights for {model}; {_hint(dataset, datasets)}it has: {', '.join(datasets)}"
        )
    models = sorted({w.model for w in entries()})
    available = f"models with weights: {', '.join(models)}" if models else "none are registered yet"
    raise WeightsError(f"no pretrained weights for {model!r}; {_hint(model, models)}{available}")


def class_names(model: str, dataset: str = "fashion_mnist") -> tuple[str, ...] | None:
    """The class names of `model`'s `dataset` weights, where the dataset names them."""
    weights = get(model, dataset)
    if weights.dataset == "fashion_mnist" and weights.num_classes == len(data.FASHION_MNIST_CLASSES):
        return data.FASHION_MNIST_CLASSES
    return None


def describe(weights: Weights) -> str:
    """The configuration that `weights` fit, in words: what a command measures with them."""
    height, width, channels = weights.input_shape
    return (
        f"pretrained on {weights.dataset}: {height}x{width}x{channels}, alpha {weights.alpha:g}, "
        f"{weights.num_classes} classes, top-1 {weights.accuracy:.4f}"
    )


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _reason(error: Exception) -> str:
    """Why a download failed, without get_file's 'URL fetch failure' wrapping."""
    cause = error.__context__ or error
    if isinstance(cause, urllib.error.HTTPError):
        return f"HTTP {cause.code} {cause.reason}"
    return str(getattr(cause, "reason", cause))


def fetch(model: str, dataset: str = "fashion_mnist") -> Path:
    """The path of `model`'s `dataset` weights in the cache, downloaded if it is missing or
    its sha256 differs. Raises `WeightsError`, leaving no bad file behind, on failure."""
    weights = get(model, dataset)
    folder = cache_dir()
    path = folder / weights.file
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot create the weights cache {folder} (${CACHE_ENV}): {e.strerror or e}") from None
    try:
        # get_file writes its notices and progress bar to stdout; they are not output.
        with contextlib.redirect_stdout(sys.stderr):
            return Path(
                tf.keras.utils.get_file(
                    weights.file,
                    weights.url,
                    file_hash=weights.sha256,
                    hash_algorithm="sha256",
                    cache_subdir=str(folder),  # absolute, so get_file uses it as it is
                )
            )
    except Exception as e:
        # get_file removes what a failed download left, but keeps a file that fails the hash
        if path.exists() and (actual := sha256(path)) != weights.sha256:
            path.unlink()
            raise WeightsError(
                f"{weights.url} has sha256 {actual}, not the registered {weights.sha256}; "
                "the file was removed from the cache"
            ) from None
        source = f"the mirror in ${URL_ENV}" if os.environ.get(URL_ENV) else "the shipped weights folder"
        raise WeightsError(f"cannot download {weights.url} ({source}): {_reason(e)}") from None


# -- packed weights -----------------------------------------------------------------------


def _binary_kernels(model) -> set[int]:
    return {id(layer.kernel) for layer in costs.flat_layers(model) if hasattr(layer, "kernel") and costs.has_binary_kernel(layer)}


def pack(model) -> dict[str, np.ndarray]:
    r"""`model.weights` in order as arrays "w0", "w1", ...; a 1-bit kernel \(W\) (output
    channels last) becomes "wN.bits" (\(W \ge 0\), packed) and "wN.scale"
    (\(\operatorname{mean}|W|\) per output channel), with "wN.shape".

    Unpacked, such a kernel is \(W' = \operatorname{scale} \cdot \operatorname{sign}(W)\):
    the same signs and per-channel mean magnitude, so the same binary kernel, whether
    larq scales it by mean |W| (ReActNet) or ReBNN by its own alpha. Latent magnitudes
    within a channel are not kept: fine-tuning starts from W'.
    """
    binary = _binary_kernels(model)
    arrays = {}
    for i, w in enumerate(model.weights):
        value = w.numpy()
        if id(w) in binary:
            arrays[f"w{i}.bits"] = np.packbits(value.reshape(-1) >= 0)
            arrays[f"w{i}.scale"] = np.abs(value).reshape(-1, value.shape[-1]).mean(axis=0).astype(np.float32)
            arrays[f"w{i}.shape"] = np.array(value.shape)
        else:
            arrays[f"w{i}"] = value
    return arrays


def save_packed(model, path) -> None:
    np.savez_compressed(path, **pack(model))


def load_packed(model, path) -> None:
    """Sets `model`'s weights from a file written by `save_packed` for the same model."""
    arrays = np.load(path)
    count = len({key.split(".")[0] for key in arrays.files})
    if count != len(model.weights):
        raise WeightsError(f"{path} holds {count} weights; the model has {len(model.weights)}")
    for i, w in enumerate(model.weights):
        if f"w{i}" in arrays.files:
            value = arrays[f"w{i}"]
        else:
            shape = tuple(arrays[f"w{i}.shape"])
            signs = np.unpackbits(arrays[f"w{i}.bits"], count=int(np.prod(shape))).astype(np.float32) * 2 - 1
            value = signs.reshape(-1, shape[-1]) * arrays[f"w{i}.scale"]
            value = value.reshape(shape)
        if tuple(value.shape) != tuple(w.shape):
            raise WeightsError(f"{path}: weight {i} ({w.name}) has shape {tuple(value.shape)}; the model's is {tuple(w.shape)}")
        w.assign(value)


def load_weights(model, path) -> None:
    """Packed weights (.npz) or a Keras weights or model file."""
    if str(path).endswith(".npz"):
        load_packed(model, path)
    else:
        model.load_weights(path)

