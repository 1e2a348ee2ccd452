"""What every `lqm` command shares: a quiet TensorFlow import, one-line errors, formatting."""

import contextlib
import os
import sys
import warnings

import click


@contextlib.contextmanager
def native_stderr_silenced():
    """Hides what TensorFlow's C++ start-up writes to stderr (CUDA plugin registration,
    absl's pre-init notice): it is printed before any log level applies and says nothing
    to a user. Python exceptions raised meanwhile still surface once stderr is back."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
with native_stderr_silenced():
    import larq_methods  # selects Keras 2 before TensorFlow is imported
    import tensorflow as tf

# Deprecation chatter from TensorFlow's dependencies is no help on a command line.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy.*")

import zoo  # noqa: E402
from larq_methods import convert as lqconvert  # noqa: E402
from larq_methods import data, saving, training  # noqa: E402
from larq_methods import method as lqmethod  # noqa: E402

tf.get_logger().setLevel("ERROR")


@contextlib.contextmanager
def one_line_errors():
    """Turns the library's expected failures into click's one-line errors."""
    try:
        yield
    except (
        zoo.UnknownModelError,
        zoo.WeightsError,
        data.DatasetError,
        saving.FileError,
        lqconvert.ConversionError,
        lqmethod.MethodError,
        training.TrainingError,
    ) as e:
        raise click.ClickException(str(e)) from None


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def model_input(model) -> tuple[int, int]:
    """(image size, channels) of a square image model, Keras or TFLite shape."""
    shape = model.input_shape if hasattr(model, "input_shape") else model
    _, height, width, channels = shape
    if height != width:
        raise click.ClickException(f"the model's input is {height}x{width}; only square inputs are supported")
    return height, channels


def data_options(f):
    f = click.option("--data-dir", type=click.Path(), help=f"Dataset folder (Fashion-MNIST IDX files; overrides ${data.FASHION_MNIST_ENV}) or TFDS data dir.")(f)
    f = click.option("--dataset", default="fashion_mnist", show_default=True, help="fashion_mnist (local IDX files) or any tensorflow-datasets name.")(f)
    return f
