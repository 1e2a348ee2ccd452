"""JPEG sources: the random crop is decoded alone (`decode_and_crop_jpeg`), with exactly the
pixels, crops and batches of decoding the whole image first."""

import dataclasses
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from larq_methods import data


def photo(rng, height=75, width=100):
    """A smooth random colour image with some fine texture, like a photograph's."""
    coarse = Image.fromarray(rng.uniform(0, 255, (3, 4, 3)).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    return np.clip(np.asarray(coarse, np.float32) + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)


def jpeg(pixels, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, **save)
    return buffer.getvalue()


def write_folder(root, n=5, grey=(0,)):
    """n JPEGs in each of two class folders, of varying sizes; images `grey` of each are grey."""
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            pixels = photo(rng, *rng.integers(60, 140, 2))
            (root / c / f"{i}.jpg").write_bytes(jpeg(pixels[..., 0] if i in grey else pixels))
    return root


def epoch(source, size, channels=3, **kwargs):
    batches = data.pipeline(source, image_size=size, channels=channels, batch_size=4, training=True, **kwargs)
    images, labels = zip(*batches.as_numpy_iterator())
    return np.concatenate(images), np.concatenate(labels)


@pytest.mark.parametrize("subsampling", [0, 1, 2])  # chroma 4:4:4, 4:2:2, 4:2:0
@pytest.mark.parametrize("channels", [3, 1])
def test_decoding_the_crop_alone_gives_the_pixels_of_decoding_it_all(subsampling, channels):
    rng = np.random.default_rng(subsampling)
    contents = tf.constant(jpeg(photo(rng, 75, 101), subsampling=subsampling))  # odd width
    whole = tf.io.decode_jpeg(contents, channels=3)
    areas = []
    for i in range(12):
        seed = tf.constant([7, i], tf.int64)
        fused = data.augment_encoded(contents, 128, channels, 3, seed).numpy()
        reference = data.preprocess(whole, 128, channels, True, seed=seed).numpy()
        assert fused.shape == (128, 128, channels) and -1 <= fused.min() < fused.max() <= 1
        np.testing.assert_array_equal(fused, reference)
        crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))[0]
        areas.append(int(tf.reduce_prod(data._crop_window(tf.shape(whole), crop_seed)[1][:2])))
    # the crops are real ones: of varying size, mostly smaller than the image
    assert len(set(areas)) > 6 and np.median(areas) < 0.8 * 75 * 101


def test_jpeg_folders_train_on_fused_crops_with_the_same_batches(tmp_path):
    root = write_folder(tmp_path / "photos")
    source = data.load(str(root), "train")
    assert source.encoded is not None and source.image_shape == (None, None, 3)
    whole = dataclasses.replace(source, encoded=None)
    for size in (128, 160):
        x, y = epoch(source, size, seed=3, epoch=1)
        assert x.shape == (10, size, size, 3) and x.dtype == np.float32 and -1 <= x.min() < x.max() <= 1
        expected_x, expected_y = epoch(whole, size, seed=3, epoch=1)
        np.testing.assert_array_equal(y, expected_y)
        np.testing.assert_array_equal(x, expected_x)
    # resumed mid-epoch: the batches it had not trained on, from the encoded images too
    np.testing.assert_array_equal(epoch(source, 160, seed=3, epoch=1, skip_batches=1)[0], expected_x[4:])
    # another epoch, other crops
    assert not np.array_equal(epoch(source, 160, seed=3, epoch=2)[0], expected_x)
    # grey models: the colour JPEGs' crops are converted as the whole images are
    np.testing.assert_array_equal(epoch(source, 128, channels=1, seed=0)[0], epoch(whole, 128, channels=1, seed=0)[0])


def test_evaluation_and_small_inputs_decode_whole_images(tmp_path):
    source = data.load(str(write_folder(tmp_path / "photos")), "train")
    for size, training in ((128, False), (32, True)):  # centre crop; CIFAR-style crop
        broken = dataclasses.replace(source, encoded=tf.data.Dataset.from_tensors((tf.constant(b"not a jpeg"), tf.constant(0, tf.int64))))
        batches = data.pipeline(broken, image_size=size, channels=3, batch_size=10, training=training)
        x, _ = next(batches.as_numpy_iterator())  # the encoded images are not used
        assert x.shape == (10, size, size, 3)


def test_folders_with_other_formats_or_skipped_files_decode_whole_images(tmp_path):
    root = write_folder(tmp_path / "photos")
    assert data.load(str(root), "train", skip_bad_images=True).encoded is None
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "a" / "x.png")
    mixed = data.load(str(root), "train")
    assert mixed.encoded is None and len(epoch(mixed, 128)[0]) == 11


def test_tfds_jpeg_datasets_skip_decoding_for_the_fused_crop():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):  # random JPEGs in imagenet2012's format
        source = data.load("imagenet2012", "train")
        assert source.encoded is not None
        assert source.encoded.element_spec[0].dtype == tf.string
        # the mock draws the encoded and the decoded images apart: decode the encoded ones
        decoded = source.encoded.map(lambda image, label: (tf.io.decode_jpeg(image, channels=3), label))
        whole = dataclasses.replace(source, data=decoded, encoded=None)
        x, y = epoch(source, 128, seed=1)
        assert x.shape == (6, 128, 128, 3) and -1 <= x.min() < x.max() <= 1
        expected_x, expected_y = epoch(whole, 128, seed=1)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(x, expected_x)
