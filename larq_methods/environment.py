"""The process environment that importing `larq_methods` sets, in one place.

Importing the package sets these before TensorFlow is first imported:

- `TF_USE_LEGACY_KERAS=1`, always: Keras 2 (`tf-keras`), which larq and the Larq Compute
  Engine need.
- `DEFAULTS`, each only where the environment does not set it already, so that your own
  value wins:
  - `TF_CPP_MIN_LOG_LEVEL=2`: TensorFlow's C++ info and warning lines off.
  - `TF_ENABLE_ONEDNN_OPTS=1`: TensorFlow's oneDNN kernels on. TensorFlow turns them on by
    itself only on some Intel CPUs; elsewhere (an AMD EPYC, measured) they trained 1.4-1.9x
    as fast as TensorFlow's own kernels, as deterministically. Set
    `TF_ENABLE_ONEDNN_OPTS=0` to keep TensorFlow's own kernels.
"""

import os

DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}


def configure(environ=os.environ) -> None:
    """Sets the Keras-2 switch and `DEFAULTS` in `environ` (see the module's docstring)."""
    environ["TF_USE_LEGACY_KERAS"] = "1"
    for name, value in DEFAULTS.items():
        environ.setdefault(name, value)
