import numpy as np
import pytest
import tensorflow as tf

from larq_methods import data
from tests.helpers import write_idx


def test_reads_idx_files_gzipped_or_not(tiny_fashion_mnist, tmp_path_factory):
    train = data.load("fashion_mnist", "train", str(tiny_fashion_mnist))
    assert (train.num_examples, train.num_classes, train.image_shape) == (40, 10, (28, 28, 1))
    images, labels = zip(*train.data.as_numpy_iterator())
    assert images[0].shape == (28, 28, 1) and images[0].dtype == np.uint8
    np.testing.assert_array_equal(labels, np.arange(40) % 10)

    plain = tmp_path_factory.mktemp("plain")
    pixels = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    write_idx(plain / "t10k-images-idx3-ubyte", pixels, compress=False)
    write_idx(plain / "t10k-labels-idx1-ubyte", np.array([3, 7]), compress=False)
    test = data.load("fashion_mnist", "test", str(plain))
    (x0, y0), (x1, y1) = test.data.as_numpy_iterator()
    np.testing.assert_array_equal(x1[..., 0], pixels[1])
    assert (y0, y1) == (3, 7)


@pytest.mark.parametrize(
    "split, expected",
    [("train[:5]", range(0, 5)), ("train[35:]", range(35, 40)), ("train[10%:20%]", range(4, 8)), ("train[-2:]", range(38, 40))],
)
def test_split_slices(tiny_fashion_mnist, split, expected):
    ds = data.load("fashion_mnist", split, str(tiny_fashion_mnist))
    assert ds.num_examples == len(expected)
    np.testing.assert_array_equal([y for _, y in ds.data.as_numpy_iterator()], np.array(expected) % 10)


def test_environment_variable_sets_the_folder(tiny_fashion_mnist, monkeypatch):
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tiny_fashion_mnist))
    assert data.load("fashion_mnist", "test").num_examples == 20


def test_missing_and_bad_data_give_clear_errors(tmp_path_factory, tiny_fashion_mnist):
    tmp_path = tmp_path_factory.mktemp("empty")
    with pytest.raises(data.DatasetError, match="Fashion-MNIST not found.*apt-get install dataset-fashion-mnist"):
        data.load("fashion_mnist", "train", str(tmp_path))
    with pytest.raises(data.DatasetError, match="splits 'train' and 'test'"):
        data.load("fashion_mnist", "validation", str(tiny_fashion_mnist))
    with pytest.raises(data.DatasetError, match="cannot parse split"):
        data.load("fashion_mnist", "train[::2]", str(tiny_fashion_mnist))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"not an idx file")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01\0\0\0\x05\1\2")
    with pytest.raises(data.DatasetError, match="not an IDX file"):
        data.load("fashion_mnist", "test", str(tmp_path))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28)), compress=False)
    with pytest.raises(data.DatasetError, match="truncated"):
        data.load("fashion_mnist", "test", str(tmp_path))


def test_tfds_names_that_are_unknown_or_not_prepared(tmp_path):
    with pytest.raises(data.DatasetError, match="unknown dataset 'no_such_dataset'"):
        data.load("no_such_dataset", "train", str(tmp_path))
    with pytest.raises(data.DatasetError, match="'cifar10' is not prepared"):
        data.load("cifar10", "train", str(tmp_path))


def test_tfds_dataset_through_the_pipeline(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6, data_dir=str(tmp_path)):
        ds = data.load("cifar10", "train", str(tmp_path))
        assert (ds.num_classes, ds.image_shape) == (10, (32, 32, 3))
        x, y = next(iter(data.pipeline(ds, image_size=32, channels=1, batch_size=6, training=True)))
    assert x.shape == (6, 32, 32, 1) and y.shape == (6,)


def _image(h=28, w=28, c=1, value=None):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (h, w, c)) if value is None else np.full((h, w, c), value)
    return tf.constant(pixels, tf.uint8)


def test_preprocess_scales_to_minus_one_one_and_maps_channels():
    image = _image(value=255)
    np.testing.assert_allclose(data.preprocess(image, 28, 1, training=False), 1.0)
    np.testing.assert_allclose(data.preprocess(_image(value=0), 28, 1, training=False), -1.0)
    rgb = data.preprocess(_image(), 28, 3, training=False).numpy()
    assert rgb.shape == (28, 28, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])  # grey copied to every channel
    grey = data.preprocess(_image(c=3), 28, 1, training=False)
    assert grey.shape == (28, 28, 1)


def test_small_training_augmentation_is_pad_crop_flip():
    image = _image()
    out = data.preprocess(image, 28, 1, training=True, seed=tf.constant([1, 2])).numpy()
    assert out.shape == (28, 28, 1) and out.min() >= -1 and out.max() <= 1
    # pad by 3 with black (-1 after scaling), then crop: the result is the image shifted by
    # at most 3 pixels, perhaps mirrored. Some shift and flip must reproduce it exactly.
    src = np.pad(image.numpy() / 127.5 - 1, ((3, 3), (3, 3), (0, 0)), constant_values=-1)
    candidates = [
        crop[:, ::-1] if flip else crop
        for dy in range(7)
        for dx in range(7)
        for crop in [src[dy : dy + 28, dx : dx + 28]]
        for flip in (False, True)
    ]
    assert any(np.allclose(out, c, atol=1e-6) for c in candidates)


def test_large_inputs_use_resized_crops():
    image = _image(300, 400, 3)
    train = data.preprocess(image, 224, 3, training=True, seed=tf.constant([1, 2]))
    evaluate = data.preprocess(image, 224, 3, training=False)
    assert train.shape == evaluate.shape == (224, 224, 3)
    # evaluation: shorter side to 256, centre 224 crop; deterministic
    np.testing.assert_array_equal(evaluate, data.preprocess(image, 224, 3, training=False))
    expected = tf.image.resize(tf.cast(image, tf.float32), (256, 341))[16:240, 58:282] / 127.5 - 1
    np.testing.assert_allclose(evaluate, expected, atol=1e-5)


def test_pipeline_batches_and_samples(tiny_fashion_mnist):
    ds = data.load("fashion_mnist", "test", str(tiny_fashion_mnist))
    batches = list(data.pipeline(ds, image_size=32, channels=3, batch_size=8, training=False))
    assert [len(x) for x, _ in batches] == [8, 8, 4]
    assert batches[0][0].shape == (8, 32, 32, 3)
    sample = data.sample_inputs(ds, image_size=32, channels=3, count=5)
    np.testing.assert_array_equal(sample, batches[0][0].numpy()[:5])
