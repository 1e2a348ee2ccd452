import os

import numpy as np
import pytest

import larq_methods  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from tests.helpers import write_idx

REAL_FASHION_MNIST = os.environ.get("LQM_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def write_tiny_fashion_mnist(folder):
    """40 train and 20 test Fashion-MNIST-shaped images, label = image index % 10."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


@pytest.fixture
def tiny_fashion_mnist(tmp_path):
    """A Fashion-MNIST-shaped folder: 40 train and 20 test images, label = image index % 10."""
    return write_tiny_fashion_mnist(tmp_path)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """As `tiny_fashion_mnist`, shared by a module's runs."""
    return write_tiny_fashion_mnist(tmp_path_factory.mktemp("fashion"))


@pytest.fixture
def real_fashion_mnist():
    if not os.path.isdir(REAL_FASHION_MNIST):
        pytest.fail(
            f"Fashion-MNIST is not at {REAL_FASHION_MNIST}: run `make test`, which installs "
            "Debian's dataset-fashion-mnist"
        )
    return REAL_FASHION_MNIST


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    # Every test starts from the same random state, whatever ran before it: a model's
    # initial weights then do not depend on the order of the tests, and neither does
    # whether one of its sign inputs lands within rounding of a threshold (where Keras
    # and LCE may legitimately disagree).
    tf.keras.utils.set_random_seed(0)
    yield
    tf.keras.backend.clear_session()
