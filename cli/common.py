"""What every `lqm` command shares: the library, imported when a command first uses it;
one-line errors; formatting.

TensorFlow takes 5 s or more to import, and `lqm --help` should answer at once: the command
modules reach TensorFlow, `zoo` and the library's modules through `lazy` names, which import
them (larq_methods first, TensorFlow's start-up noise silenced) on first use, and take what
their options show from `cli.catalogue`.
"""

import contextlib
import errno
import functools
import importlib
import inspect
import os
import sys
import warnings

import click

from cli import catalogue


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
# Deprecation chatter from TensorFlow's dependencies is no help on a command line.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy.*")


@functools.cache
def _import(name: str):
    if "tensorflow" not in sys.modules:
        with native_stderr_silenced():
            import larq_methods  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
            import tensorflow as tf
        tf.get_logger().setLevel("ERROR")
    return importlib.import_module(name)


class lazy:  # noqa: N801  (used as a module)
    """The module `name`, imported on first attribute access."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(_import(self._name), attr)

    def __repr__(self):
        return f"<lazy module {self._name!r}>"


tf = lazy("tensorflow")
zoo = lazy("zoo")
larq_methods = lazy("larq_methods")

# The library's expected failures, by the module that defines them.
_LIBRARY_ERRORS = {
    "zoo.registry": ("UnknownModelError",),
    "zoo.pretrained": ("WeightsError",),
    "zoo.run": ("RunConfigError",),
    "larq_methods.data": ("DatasetError",),
    "larq_methods.saving": ("FileError",),
    "larq_methods.convert": ("ConversionError",),
    "larq_methods.method": ("MethodError",),
    "larq_methods.training": ("TrainingError",),
}


def _library_errors() -> tuple:
    # Only the imported modules' classes: one not imported has raised nothing, and
    # importing it to ask would start TensorFlow for a usage error.
    return tuple(
        getattr(sys.modules[module], name)
        for module, names in _LIBRARY_ERRORS.items() if module in sys.modules
        for name in names
    )  # fmt: skip


# A library parameter's option is `--` and its name with dashes (`validation_split` ->
# `--validation-split`); those named otherwise are listed here.
FLAGS: dict[str, str] = {}


def flag(parameter: str) -> str:
    """The command-line option of a library parameter."""
    return FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def cli_message(error: Exception) -> str:
    """A library error's message as the command line says it: each parameter it names
    (`name`, in backticks; listed in `error.parameters`) as its option, and bytes of
    file names that are not UTF-8 as \\x escapes, so that the line can be printed."""
    return with_flags(str(error), getattr(error, "parameters", ()))


def with_flags(message: str, parameters=()) -> str:
    """`message` with each `parameter` (in backticks) as its option, printable."""
    for parameter in parameters:
        message = message.replace(f"`{parameter}`", flag(parameter))
    return message.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _full_disk(error: BaseException) -> bool:
    # without importing saving (TensorFlow) for errors that cannot be about a disk
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    saving = sys.modules.get("larq_methods.saving")
    return bool(saving and saving.is_full_disk(error))


@contextlib.contextmanager
def one_line_errors():
    """Turns the library's expected failures, and a full disk, into click's one-line
    errors."""
    try:
        yield
    except click.ClickException as e:
        e.message = e.message.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise
    except Exception as e:
        if isinstance(e, _library_errors()):
            raise click.ClickException(cli_message(e)) from None
        if _full_disk(e):
            why = getattr(e, "strerror", None) or str(e).strip().splitlines()[0]
            where = f" while writing {e.filename}" if getattr(e, "filename", None) else ""
            raise click.ClickException(cli_message(Exception(f"the disk is full{where} ({why}); free some space and try again"))) from None
        raise


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
    """--dataset and --data-dir; and, for commands whose function takes them (by name or
    **kwargs), the hold-out option --validation-split and the folder-dataset option --skip-bad-images."""
    params = inspect.signature(f).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if takes_all or "skip_bad_images" in params:
        f = click.option("--skip-bad-images", is_flag=True, help="Leave out image files of a folder dataset that cannot be read, instead of stopping.")(f)
    if takes_all or "validation_split" in params:
        f = click.option("--validation-split", type=click.FloatRange(0, 1, min_open=True, max_open=True), metavar="FRACTION", help="Hold out this fraction of the training images (seeded) as split 'validation'; split 'train' is then the rest.")(f)
    f = click.option("--data-dir", type=click.Path(), help=f"Dataset folder (Fashion-MNIST IDX files; overrides ${catalogue.FASHION_MNIST_ENV}) or TFDS data dir.")(f)
    f = click.option("--dataset", default="fashion_mnist", show_default=True, metavar="NAME|PATH", help="fashion_mnist (local IDX files), a tensorflow-datasets name, or a folder of images: PATH/CLASS/* or PATH/train/CLASS/* with PATH/test/CLASS/*.")(f)
    return f
