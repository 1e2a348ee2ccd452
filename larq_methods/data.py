"""Datasets by name, and preprocessing that fits the model's input.

`fashion_mnist` is read from local IDX files (Debian's `dataset-fashion-mnist` by
default), so it works offline; every other name goes to tensorflow-datasets (`cifar10`,
`imagenet2012`, ...), which needs the data prepared in its data directory.

Images come out as float32 in [-1, 1] with the model's height, width and channels.
"""

import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ENV = "LQM_FASHION_MNIST_DIR"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# From this input size on, ImageNet-style augmentation (random-resized crop) is used.
LARGE_INPUT = 128


class DatasetError(Exception):
    """A dataset could not be found or read."""


@dataclass(frozen=True)
class Dataset:
    """An unbatched dataset of (uint8 image HxWxC, int label) with what is known of it."""

    data: tf.data.Dataset
    num_examples: int
    num_classes: int
    image_shape: tuple  # native (height, width, channels); height/width None if they vary
    name: str
    split: str


def default_splits(name: str) -> tuple[str, str]:
    """(train split, evaluation split) of a dataset."""
    if name in ("imagenet2012", "imagenette", "imagenet_resized"):
        return "train", "validation"
    return "train", "test"


def load(name: str, split: str, data_dir: str | None = None) -> Dataset:
    """Loads split `split` (TFDS syntax, such as `train[:10%]` or `test[:512]`)."""
    if name == "fashion_mnist":
        return _load_fashion_mnist(split, data_dir)
    return _load_tfds(name, split, data_dir)


def _slice(split: str, n: int) -> tuple[str, slice]:
    """Parses `name[a:b]`, where a and b are integers or percentages."""
    match = re.fullmatch(r"(\w+)(?:\[(-?\d*%?):(-?\d*%?)\])?", split)
    if not match:
        raise DatasetError(f"cannot parse split {split!r}; use e.g. 'train' or 'train[:1000]'")

    def bound(text):
        if not text:
            return None
        return int(text[:-1]) * n // 100 if text.endswith("%") else int(text)

    return match[1], slice(bound(match[2]), bound(match[3]))


def _read_idx(path: Path) -> np.ndarray:
    """Reads an IDX file (optionally gzipped): magic, dims as big-endian int32, then data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">i4", count=ndim, offset=4)
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != np.prod(dims):
        raise DatasetError(f"{path} is truncated: {data.size} bytes for shape {tuple(dims)}")
    return data.reshape(dims)


def fashion_mnist_dir(data_dir: str | None = None) -> Path:
    return Path(data_dir or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise DatasetError(
        f"Fashion-MNIST not found: no {stem}[.gz] in {directory}. Install it with "
        f"`apt-get install dataset-fashion-mnist`, or point --data-dir or "
        f"{FASHION_MNIST_ENV} at a folder of its IDX files"
    )


def _load_fashion_mnist(split: str, data_dir: str | None) -> Dataset:
    base, _ = _slice(split, 0)
    if base not in FASHION_MNIST_FILES:
        raise DatasetError(f"fashion_mnist has splits 'train' and 'test', not {base!r}")
    directory = fashion_mnist_dir(data_dir)
    images_file, labels_file = (_find(directory, stem) for stem in FASHION_MNIST_FILES[base])
    images, labels = _read_idx(images_file), _read_idx(labels_file)
    if len(images) != len(labels):
        raise DatasetError(f"{directory}: {len(images)} images but {len(labels)} labels")
    _, part = _slice(split, len(images))
    images, labels = images[part, :, :, None], labels[part].astype(np.int64)
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    return Dataset(data, len(images), 10, (28, 28, 1), "fashion_mnist", split)


def _load_tfds(name: str, split: str, data_dir: str | None) -> Dataset:
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for unknown names
        raise DatasetError(f"unknown dataset {name!r}: {str(e).splitlines()[0]}") from None
    try:
        data = builder.as_dataset(split=split, as_supervised=True)
        num_examples = int(data.cardinality())
        if num_examples < 0:  # unknown to tf.data: ask the metadata
            num_examples = builder.info.splits[split].num_examples
    except AssertionError:  # how tensorflow-datasets says that nothing is prepared
        raise DatasetError(
            f"dataset {name!r} is not prepared in {builder.data_dir}; download and prepare "
            "it with tensorflow-datasets (`tfds build`, or the manual instructions for "
            "imagenet2012), then pass --data-dir"
        ) from None
    except (KeyError, ValueError) as e:
        raise DatasetError(f"{name}: bad split {split!r}: {e}") from None
    info = builder.info
    return Dataset(
        data,
        num_examples,
        info.features["label"].num_classes,
        tuple(info.features["image"].shape),
        name,
        split,
    )


def _match_channels(image, channels):
    if image.shape[-1] == channels:
        return image
    if channels == 3 and image.shape[-1] == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 1 and image.shape[-1] == 3:
        return tf.image.rgb_to_grayscale(image)
    raise ValueError(f"cannot map {image.shape[-1]} image channels to {channels}")


def _random_resized_crop(image, size):
    """Inception-style crop: 8-100% of the area, aspect ratio 3/4 to 4/3."""
    begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros((1, 0, 4)),
        area_range=(0.08, 1.0),
        aspect_ratio_range=(3 / 4, 4 / 3),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, crop_size)
    return tf.image.resize(image, (size, size))


def _center_crop(image, size):
    """Resize the shorter side to size / 0.875, then take the central size x size."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size / 0.875) / tf.reduce_min(shape)
    image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
    return tf.image.resize_with_crop_or_pad(image, size, size)


def preprocess(image, image_size: int, channels: int, training: bool):
    """uint8 image -> float32 (image_size, image_size, channels) in [-1, 1].

    Large inputs (>= 128 px): random-resized crop and flip in training, a centre crop
    otherwise. Small inputs: resize if needed, then pad by 1/8 of the size, random crop
    back and flip in training (CIFAR-style).
    """
    image = _match_channels(tf.cast(image, tf.float32), channels)
    if image_size >= LARGE_INPUT:
        if training:
            image = _random_resized_crop(image, image_size)
            image = tf.image.random_flip_left_right(image)
        else:
            image = _center_crop(image, image_size)
    else:
        if image.shape[0] != image_size or image.shape[1] != image_size:
            image = tf.image.resize(image, (image_size, image_size))
        if training:
            pad = max(1, image_size // 8)
            image = tf.image.resize_with_crop_or_pad(image, image_size + 2 * pad, image_size + 2 * pad)
            image = tf.image.random_crop(image, (image_size, image_size, channels))
            image = tf.image.random_flip_left_right(image)
    image = tf.ensure_shape(image, (image_size, image_size, channels))
    return image / 127.5 - 1.0


def pipeline(
    dataset: Dataset,
    *,
    image_size: int,
    channels: int,
    batch_size: int,
    training: bool,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of (images, labels): shuffled and augmented when `training`."""
    data = dataset.data
    if training:
        data = data.shuffle(min(dataset.num_examples, 50_000), seed=seed, reshuffle_each_iteration=True)
    data = data.map(
        lambda x, y: (preprocess(x, image_size, channels, training), y),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def sample_inputs(
    dataset: Dataset, *, image_size: int, channels: int, count: int
) -> np.ndarray:
    """The first `count` evaluation-preprocessed images of `dataset`, as one array."""
    data = pipeline(
        dataset, image_size=image_size, channels=channels, batch_size=count, training=False
    )
    return next(iter(data))[0].numpy()
