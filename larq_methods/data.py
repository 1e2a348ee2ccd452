"""Datasets by name, and preprocessing that fits the model's input.

`fashion_mnist` is read from local IDX files (Debian's `dataset-fashion-mnist` by
default), so it works offline; a folder path is a folder of images (`load_folder`); every
other name goes to tensorflow-datasets (`cifar10`, `imagenet2012`, ...), which needs the
data prepared in its data directory.

Images come out as float32 in [-1, 1] with the model's height, width and channels:
x / 127.5 - 1 of the 0-255 pixels (`INPUT_SCALING`).

JPEG sources (image folders, TFDS datasets such as `imagenet2012`) also keep their images
encoded (`Dataset.encoded`), so that training at large inputs decodes only the random crop
of each image (`tf.image.decode_and_crop_jpeg`) instead of the whole of it:
benchmarks/input_pipeline.py measures the difference.
"""

import dataclasses
import gzip
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ENV = "LQM_FASHION_MNIST_DIR"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# From this input size on, ImageNet-style augmentation (random-resized crop) is used.
LARGE_INPUT = 128
# What `preprocess` does to 0-255 pixels: x * scale + offset, into [-1, 1].
INPUT_SCALING = {"scale": 1 / 127.5, "offset": -1.0}


class DatasetError(Exception):
    """A dataset could not be found or read.

    `parameters` names the parameters of `load` that the message mentions, each written
    `name` (in backticks), so that a command line can put its own option names there."""

    def __init__(self, message: str, *, parameters: tuple = ()):
        super().__init__(message)
        self.parameters = tuple(parameters)


def _shown(path) -> str:
    """A path as printable text (bytes that are not UTF-8 as \\x escapes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Dataset:
    """An unbatched dataset of (uint8 image HxWxC, int label) with what is known of it."""

    data: tf.data.Dataset
    num_examples: int
    num_classes: int
    image_shape: tuple  # native (height, width, channels); height/width None if they vary
    name: str
    split: str
    class_names: tuple[str, ...] = ()
    # a folder dataset's image files, in the order of `data` (to name a damaged one)
    files: tuple = field(default=(), repr=False)
    # The same examples with each image still a JPEG file's contents (a string tensor),
    # where every image is a JPEG: `pipeline` decodes and crops them in one step for large
    # inputs (`augment_encoded`).
    encoded: tf.data.Dataset | None = field(default=None, repr=False)


def default_splits(name: str) -> tuple[str, str]:
    """(train split, evaluation split) of a dataset, or of a folder dataset at path `name`."""
    if is_folder(name):
        return "train", _folder_eval_split(Path(name).expanduser())
    if name in ("imagenet2012", "imagenette", "imagenet_resized"):
        return "train", "validation"
    return "train", "test"


def load(
    name_or_path: str,
    split: str,
    data_dir: str | None = None,
    *,
    validation_split: float | None = None,
    seed: int = 0,
    skip_bad_images: bool = False,
) -> Dataset:
    """Loads split `split` (TFDS syntax, such as `train[:10%]` or `test[:512]`) of a
    dataset name or an image folder (`load_folder`; `skip_bad_images` is its alone).

    `validation_split` holds out that fraction of the training images, chosen with `seed`
    (`_held_out`), as split `validation`: split `train` is then the rest, and the two never
    share an image; other splits (`test`) are unchanged."""
    if is_folder(name_or_path):
        return load_folder(
            name_or_path, split, validation_split=validation_split, seed=seed,
            skip_bad_images=skip_bad_images,
        )  # fmt: skip
    if validation_split is not None and _slice(split, 0)[0] in ("train", "validation", "val"):
        return _load_held_out(name_or_path, split, data_dir, validation_split, seed)
    if name_or_path == "fashion_mnist":
        return _load_fashion_mnist(split, data_dir)
    return _load_tfds(name_or_path, split, data_dir)


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
        f"`apt-get install dataset-fashion-mnist`, or point `data_dir` or "
        f"{FASHION_MNIST_ENV} at a folder of its IDX files",
        parameters=("data_dir",),
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
    if not len(images):
        raise DatasetError(f"split {split!r} of fashion_mnist holds no images")
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    return Dataset(data, len(images), 10, (28, 28, 1), "fashion_mnist", split, FASHION_MNIST_CLASSES)


def _load_tfds(name: str, split: str, data_dir: str | None) -> Dataset:
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for unknown names
        raise DatasetError(
            f"unknown dataset {name!r}, and no folder of that name: {str(e).splitlines()[0]}"
        ) from None
    try:
        data = builder.as_dataset(split=split, as_supervised=True)
        encoded = None
        if getattr(builder.info.features["image"], "encoding_format", None) == "jpeg":
            skip = {"image": tfds.decode.SkipDecoding()}
            encoded = builder.as_dataset(split=split, as_supervised=True, decoders=skip)
        num_examples = int(data.cardinality())
        if num_examples < 0:  # unknown to tf.data: ask the metadata
            num_examples = builder.info.splits[split].num_examples
    except AssertionError:  # how tensorflow-datasets says that nothing is prepared
        raise DatasetError(
            f"dataset {name!r} is not prepared in {builder.data_dir}; download and prepare "
            "it with tensorflow-datasets (`tfds build`, or the manual instructions for "
            "imagenet2012), then pass its folder as `data_dir`",
            parameters=("data_dir",),
        ) from None
    except (KeyError, ValueError) as e:
        raise DatasetError(f"{name}: bad split {split!r}: {e}") from None
    if num_examples == 0:
        raise DatasetError(f"split {split!r} of {name} holds no images")
    info = builder.info
    return Dataset(
        data,
        num_examples,
        info.features["label"].num_classes,
        tuple(info.features["image"].shape),
        name,
        split,
        tuple(info.features["label"].names),
        encoded=encoded,
    )


# -- image folders ------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLIT_FOLDERS = ("train", "test", "val", "validation")
# a TFDS name: lower-case words, an optional config after "/", an optional version after ":"
_TFDS_NAME = re.compile(r"[a-z0-9_]+(/[\w.-]+)?(:[\w.*-]+)?")
# PIL modes of one channel; every other mode (RGB, RGBA, P, CMYK, ...) is read as colour
_GREY_MODES = ("1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L")


def is_folder(name: str) -> bool:
    """True if `name` is meant as a folder of images: it exists, or it is not a TFDS name."""
    return Path(name).expanduser().exists() or not _TFDS_NAME.fullmatch(name)


def _visible_dirs(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as e:
        raise DatasetError(f"cannot read the folder {_shown(folder)}: {e.strerror or e}") from None


def _text_name(folder: Path, name: str) -> str:
    """A class folder's name, which becomes a class name in configs and model cards: it
    must be text (UTF-8), unlike image file names, which are read by their bytes."""
    try:
        name.encode()
    except UnicodeEncodeError:
        raise DatasetError(
            f"the class folder {_shown(folder / name)} has a name that is not UTF-8 text; rename it "
            "(class names go into the run's config and the model card)"
        ) from None
    return name


def _layout(root: Path) -> dict[str, Path]:
    """The split folders of `root`: {"train": root/train, "test": root/test, ...} if it is
    laid out by split, else {"": root} (class folders directly under it)."""
    if not root.is_dir():
        raise DatasetError(f"no such folder: {root}" if not root.exists() else f"{root} is not a folder")
    subdirs = _visible_dirs(root)
    if not subdirs:
        raise DatasetError(
            f"{root} has no class subfolders; lay it out as {root}/CLASS/IMAGE, or as "
            f"{root}/train/CLASS/IMAGE and {root}/test/CLASS/IMAGE"
        )
    if "train" in subdirs and set(subdirs) <= set(SPLIT_FOLDERS):
        return {name: root / name for name in subdirs}
    return {"": root}


def _folder_eval_split(root: Path) -> str:
    """`test` or `val`/`validation` if `root` has such a folder, else `validation` (the
    part that `validation_split` holds out)."""
    try:
        folders = _layout(root)
    except DatasetError:
        return "test"  # `load` will say what is wrong
    return next((name for name in ("test", "val", "validation") if name in folders), "validation")


def _images(folder: Path) -> list[Path]:
    """Image files under `folder` (subfolders included), sorted, hidden ones left out."""
    return sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )  # fmt: skip


def _class_files(folder: Path) -> tuple[tuple[str, ...], list[Path], list[int]]:
    """(class names, files, labels) of a folder of class folders."""
    classes = tuple(_text_name(folder, name) for name in _visible_dirs(folder))
    if not classes:
        raise DatasetError(f"{folder} has no class subfolders; put each class's images in {folder}/CLASS/")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = _images(folder / name)
        if not found:
            raise DatasetError(f"class folder {_shown(folder / name)} holds no images (PNG, JPEG, BMP or GIF)")
        files += found
        labels += [label] * len(found)
    return classes, files, labels


def _same_classes(folders: dict[str, Path]) -> None:
    """Refuses split folders whose class folders differ."""
    names = {split: set(_visible_dirs(path)) for split, path in folders.items()}
    first, *others = sorted(folders, key=lambda split: split != "train")  # train first
    for other in others:
        if names[first] != names[other]:
            only = [
                f"only in {a}: {', '.join(sorted(names[a] - names[b]))}"
                for a, b in ((first, other), (other, first)) if names[a] - names[b]
            ]  # fmt: skip
            raise DatasetError(f"{folders[first].parent}: {first} and {other} have different classes ({'; '.join(only)})")


def _headers(files: list[Path], skip_bad_images: bool) -> tuple[list[int], int, tuple | None, set]:
    """Reads every image's header (not its pixels): (indices of readable files, channels,
    (height, width) if all share one size, PIL's formats of the readable files). An
    unreadable file is refused by name, or left out with `skip_bad_images`."""
    from PIL import Image, UnidentifiedImageError

    good, sizes, colour, formats = [], set(), False, set()
    for i, path in enumerate(files):
        try:
            with Image.open(path) as image:
                if image.format not in ("PNG", "JPEG", "MPO", "BMP", "DIB", "GIF"):
                    raise UnidentifiedImageError(f"a {image.format} image, not PNG, JPEG, BMP or GIF")
                mode, size = image.mode, image.size
                formats.add(image.format)
        except (OSError, ValueError, SyntaxError) as e:  # PIL's ways of saying "not an image"
            if skip_bad_images:
                continue
            why = str(e) if isinstance(e, UnidentifiedImageError) and "cannot identify" not in str(e) else "not a readable PNG, JPEG, BMP or GIF file"
            raise DatasetError(
                f"unreadable image {_shown(path)}: {why} (pass `skip_bad_images` to leave such files out)",
                parameters=("skip_bad_images",),
            ) from None
        good.append(i)
        sizes.add(size[::-1])
        colour = colour or mode not in _GREY_MODES
    return good, 3 if colour else 1, sizes.pop() if len(sizes) == 1 else None, formats


def _held_out(n: int, fraction: float, seed: int) -> np.ndarray:
    """A seeded choice of round(fraction * n) of n indices, as a boolean mask."""
    if not 0 < fraction < 1:
        raise DatasetError(f"`validation_split` must lie between 0 and 1, not {fraction}", parameters=("validation_split",))
    count = int(round(fraction * n))
    if not 0 < count < n:
        raise DatasetError(f"`validation_split` {fraction} of {n} images leaves one part empty", parameters=("validation_split",))
    mask = np.zeros(n, bool)
    mask[np.random.default_rng(seed).permutation(n)[:count]] = True
    return mask


def _load_held_out(name: str, split: str, data_dir, fraction: float, seed: int) -> Dataset:
    """Split `train` (the rest) or `validation` (the held-out part: `_held_out` of the
    whole training split) of a named dataset, then sliced as `split` says."""
    base, _ = _slice(split, 0)
    whole = load(name, "train", data_dir)
    if name != "fashion_mnist":
        import tensorflow_datasets as tfds

        if {"validation", "val"} & set(tfds.builder(name, data_dir=data_dir).info.splits):
            raise DatasetError(f"{name} has a validation split of its own; drop `validation_split`", parameters=("validation_split",))
    mask = _held_out(whole.num_examples, fraction, seed)
    part = mask if base in ("validation", "val") else ~mask
    keep, count = tf.constant(part), int(part.sum())
    start, stop, _ = _slice(split, count)[1].indices(count)
    if stop <= start:
        raise DatasetError(f"split {split!r} of {name} holds no images")

    def kept(index, example):
        return keep[index]

    def dropped_index(index, example):
        return example

    def subset(examples):
        if examples is None:
            return None
        return examples.enumerate().filter(kept).map(dropped_index).skip(start).take(stop - start)

    return dataclasses.replace(
        whole, data=subset(whole.data), encoded=subset(whole.encoded), num_examples=stop - start, split=split
    )


def load_folder(
    path, split: str, *, validation_split: float | None = None, seed: int = 0, skip_bad_images: bool = False
) -> Dataset:
    """A split of a folder of images laid out as Keras' `image_dataset_from_directory`
    expects: `PATH/train/CLASS/*` with `PATH/test/CLASS/*` (or `val/`, `validation/`), or
    `PATH/CLASS/*`. Class names are the class folders' names, sorted; labels their indices.

    `validation_split` holds out that fraction of the training images (the whole folder in
    the flat layout), chosen with `seed`, as split `validation`. The images of a split are
    in a seeded random order, so that `train[:10%]` is a random tenth of it.

    Images are read and decoded as they stream (PNG, JPEG, BMP, GIF's first frame), with
    the channels of the colour ones if any (grey ones are copied to RGB), else one; only
    their headers are read here, to refuse, or with `skip_bad_images` leave out, files that
    are not images.
    """
    root = Path(path).expanduser()
    folders = _layout(root)
    base, _ = _slice(split, 0)
    source, held_out = _split_folder(root, folders, base, validation_split)
    classes, files, labels = _class_files(source)
    if validation_split is not None and held_out is not None:
        keep = _held_out(len(files), validation_split, seed)
        keep = keep if held_out else ~keep
        files = [f for f, k in zip(files, keep) if k]
        labels = [y for y, k in zip(labels, keep) if k]
    good, channels, size, formats = _headers(files, skip_bad_images)
    if not good:
        raise DatasetError(f"{root}: no readable image in split {base!r}")
    order = np.random.default_rng(seed).permutation(len(good))
    files = [files[good[i]] for i in order]
    labels = np.array([labels[good[i]] for i in order], np.int64)
    _, part = _slice(split, len(files))
    files, labels = files[part], labels[part]
    if not files:
        raise DatasetError(f"split {split!r} of {root} holds no images")
    return _streamed(root, split, classes, files, labels, channels, size, formats, skip_bad_images)


def _split_folder(root: Path, folders: dict, base: str, validation_split) -> tuple[Path, bool | None]:
    """The folder that split `base` reads, and whether it is the held-out part of the
    training images (True), the rest of them (False), or no hold-out applies (None)."""
    flat = "" in folders
    train_folder = folders["" if flat else "train"]
    if validation_split is not None:
        if not 0 < validation_split < 1:
            raise DatasetError(f"`validation_split` must lie between 0 and 1, not {validation_split}", parameters=("validation_split",))
        if {"val", "validation"} & set(folders):
            raise DatasetError(f"{root} has a validation folder already; drop `validation_split`", parameters=("validation_split",))
    held_out = validation_split is not None and base in ("validation", "val")
    if not flat:
        _same_classes(folders)
    if base == "train" or held_out:
        return train_folder, (held_out if validation_split is not None else None)
    if not flat and base in folders:
        return folders[base], None
    if flat and base in ("test", "val", "validation"):
        raise DatasetError(
            f"{root} has no test or val folder: pass `validation_split` (a fraction) to hold out "
            "part of its images, or lay it out as train/CLASS/* and test/CLASS/*",
            parameters=("validation_split",),
        )
    names = ["train"] if flat else list(folders)
    names += ["validation"] if validation_split is not None else []
    raise DatasetError(f"{root} has splits {', '.join(map(repr, names))}, not {base!r}")


def _streamed(root, split, classes, files, labels, channels, size, formats, skip_bad_images) -> Dataset:
    """The `Dataset` of image `files`, read and decoded as they stream."""

    def decode(file, label):
        image = tf.io.decode_image(tf.io.read_file(file), channels=channels, expand_animations=False)
        return image, label

    # by their bytes: a file name need not be UTF-8 (os.fsencode undoes Python's escapes)
    paths = tf.data.Dataset.from_tensor_slices(([os.fsencode(f) for f in files], labels))
    data = paths.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    encoded = None
    if skip_bad_images:  # a file whose header reads but whose pixels do not
        data = data.ignore_errors()
    elif formats <= {"JPEG", "MPO"}:
        # Not with `skip_bad_images`: a bad file must be left out before the epoch is
        # ordered, and only decoding all of it tells. Nor with other formats among the
        # JPEGs: choosing the decoder per image (`tf.cond`) costs more in tf.data than
        # decoding only the crop saves (337 against 371 images/s per core, 224x224).
        encoded = paths.map(lambda file, label: (tf.io.read_file(file), label))
    height, width = size or (None, None)
    return Dataset(
        data, len(files), len(classes), (height, width, channels), str(root), split, classes,
        tuple(files), encoded=encoded,
    )  # fmt: skip


def find_unreadable(dataset: Dataset) -> Path | None:
    """The first file of a folder dataset whose pixels TensorFlow cannot decode: what an
    `InvalidArgumentError` from iterating `dataset.data` is about, which TensorFlow does not
    name."""
    for path in dataset.files:
        try:
            tf.io.decode_image(tf.io.read_file(os.fsencode(path)), expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
            return Path(path)
    return None


def _match_channels(image, channels):
    if image.shape[-1] == channels:
        return image
    if channels == 3 and image.shape[-1] == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 1 and image.shape[-1] == 3:
        return tf.image.rgb_to_grayscale(image)
    raise ValueError(f"cannot map {image.shape[-1]} image channels to {channels}")


def _crop_window(shape, seed):
    """(begin, size) of an Inception-style crop of an image of `shape` (height, width,
    channels): 8-100% of the area, aspect ratio 3/4 to 4/3. Stateless: the same `seed` and
    height and width give the same window."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.zeros((1, 0, 4)),
        seed=seed,
        area_range=(0.08, 1.0),
        aspect_ratio_range=(3 / 4, 4 / 3),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def _random_resized_crop(image, size, seed):
    begin, crop_size = _crop_window(tf.shape(image), seed)
    image = tf.slice(image, begin, crop_size)
    return tf.image.resize(image, (size, size))


def _seeds(seed):
    """(crop seed, flip seed) of an image's augmentation seed."""
    if seed is None:
        raise ValueError("training augmentation needs a seed")
    return tf.unstack(tf.random.experimental.stateless_split(seed, 2))


def _scaled(image, image_size, channels):
    image = tf.ensure_shape(image, (image_size, image_size, channels))
    return image / 127.5 - 1.0


# pixels decoded beyond each side of a JPEG crop window (`augment_encoded`)
_JPEG_MARGIN = 2


def augment_encoded(contents, image_size: int, channels: int, source_channels: int, seed):
    """A JPEG file's contents (a string tensor) -> float32 (image_size, image_size,
    channels) in [-1, 1], augmented as `preprocess` augments a large input in training,
    with the same crop and flip for the same `seed`.

    The image is decoded and cropped in one step: only the window that
    `stateless_sample_distorted_bounding_box` draws from the header's shape
    (`extract_jpeg_shape`) is decoded (`decode_and_crop_jpeg`), to the same pixels as
    decoding the whole image and slicing it. `source_channels` are the channels the whole
    image is decoded to (the dataset's), before `channels` are matched.
    """
    crop_seed, flip_seed = _seeds(seed)
    shape = tf.image.extract_jpeg_shape(contents)
    begin, size = _crop_window(shape, crop_seed)
    # With subsampled chroma, a window's edge columns differ from the whole image's by a
    # level or two (libjpeg's upsampling sees no neighbour past the window): decode a
    # margin more and slice it off, for exactly the whole image's pixels.
    start = tf.maximum(begin[:2] - _JPEG_MARGIN, 0)
    stop = tf.minimum(begin[:2] + size[:2] + _JPEG_MARGIN, shape[:2])
    image = tf.image.decode_and_crop_jpeg(contents, tf.concat([start, stop - start], 0), channels=source_channels)
    top, left = tf.unstack(begin[:2] - start)
    image = image[top : top + size[0], left : left + size[1]]
    image = _match_channels(tf.cast(image, tf.float32), channels)
    image = tf.image.resize(image, (image_size, image_size))
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return _scaled(image, image_size, channels)


def _center_crop(image, size):
    """Resize the shorter side to size / 0.875, then take the central size x size."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size / 0.875) / tf.reduce_min(shape)
    image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
    return tf.image.resize_with_crop_or_pad(image, size, size)


def preprocess(image, image_size: int, channels: int, training: bool, seed=None):
    """uint8 image -> float32 (image_size, image_size, channels) in [-1, 1].

    Large inputs (>= 128 px): random-resized crop and flip in training, a centre crop
    otherwise. Small inputs: resize if needed, then pad by 1/8 of the size, random crop
    back and flip in training (CIFAR-style). Training augmentation is stateless: it is a
    function of the image and `seed` (a shape-[2] integer tensor), so it does not depend on
    which thread of a parallel map ran it, or on what ran before.
    """
    image = _match_channels(tf.cast(image, tf.float32), channels)
    if training:
        crop_seed, flip_seed = _seeds(seed)
    if image_size >= LARGE_INPUT:
        if training:
            image = _random_resized_crop(image, image_size, crop_seed)
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        else:
            image = _center_crop(image, image_size)
    else:
        if image.shape[0] != image_size or image.shape[1] != image_size:
            image = tf.image.resize(image, (image_size, image_size))
        if training:
            pad = max(1, image_size // 8)
            image = tf.image.resize_with_crop_or_pad(image, image_size + 2 * pad, image_size + 2 * pad)
            image = tf.image.stateless_random_crop(image, (image_size, image_size, channels), crop_seed)
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return _scaled(image, image_size, channels)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's order and augmentation: a function of the run's seed and the
    epoch alone, so that any epoch can be rebuilt exactly (on resume, for instance)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] >> 1)


def pipeline(
    dataset: Dataset,
    *,
    image_size: int,
    channels: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    epoch: int = 0,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """Batches of (images, labels): one epoch, shuffled and augmented when `training`.

    A training epoch is a pure function of (`seed`, `epoch`): its order (a shuffle seeded
    by both) and every image's augmentation (stateless, seeded by both and the image's
    place in the epoch). Iterating it twice, or on another day, gives the same batches.
    `skip_batches` drops the epoch's first batches before they are decoded, so a run
    resumed mid-epoch sees exactly the batches it had not trained on.

    Large inputs of a dataset that keeps its images encoded (`Dataset.encoded`) are
    trained on by decoding each JPEG's random crop alone (`augment_encoded`): the same
    batches, faster. Evaluation decodes whole images, resizes and centre-crops them.
    """
    fused = training and dataset.encoded is not None and image_size >= LARGE_INPUT
    data = dataset.encoded if fused else dataset.data
    if training:
        shuffle_seed = epoch_seed(seed, epoch)
        data = data.shuffle(min(dataset.num_examples, 50_000), seed=shuffle_seed, reshuffle_each_iteration=False)
        data = data.enumerate().skip(skip_batches * batch_size)

        def augment(index, example):
            image_seed = tf.stack([tf.constant(shuffle_seed, tf.int64), index])
            if fused:
                image = augment_encoded(example[0], image_size, channels, dataset.image_shape[2], image_seed)
            else:
                image = preprocess(example[0], image_size, channels, True, seed=image_seed)
            return image, example[1]

        data = data.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        data = data.skip(skip_batches * batch_size)
        data = data.map(
            lambda x, y: (preprocess(x, image_size, channels, False), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
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


# fewer optimiser steps per epoch than this rarely train a model: warn before a run starts
MIN_STEPS_PER_EPOCH = 20


def size_warning(num_examples: int, batch_size: int, *, min_steps: int = MIN_STEPS_PER_EPOCH) -> str | None:
    """What is wrong with training on `num_examples` images in batches of `batch_size`, or
    None: a batch larger than the data (every epoch is one step on all of it), or fewer
    than `min_steps` optimiser steps per epoch (steps = ceil(num_examples / batch_size)).
    The message names the numbers and the largest `batch_size` that makes `min_steps`."""
    if num_examples < 1:
        raise DatasetError("the training split holds no images")
    steps = -(-num_examples // batch_size)
    fits = max(1, num_examples // min_steps)
    fix = f"a `batch_size` of {fits} or less gives {num_examples // fits if fits > 1 else num_examples} steps per epoch"
    if batch_size > num_examples:
        return (
            f"`batch_size` {batch_size} is larger than the {num_examples} training images: every epoch is "
            f"one optimiser step on all of them; {fix}"
        )
    if steps < min_steps:
        return (
            f"{num_examples} training images in batches of {batch_size} make {steps} optimiser step(s) "
            f"per epoch, fewer than {min_steps}: the model will hardly train; {fix}, or train more epochs"
        )
    return None
