"""Folder datasets: layouts, class names, formats, seeded validation splits and every bad input."""

import json

import numpy as np
import pytest
from PIL import Image

import zoo
from larq_methods import data

CLASSES = ("cat", "dog", "frog")  # class c's pixels are all 40 + 80 c (grey or colour)
FORMATS = ("png", "jpg", "bmp", "gif")


def write_class_images(folder, n, *, seed=0):
    """n images per class of CLASSES under folder/CLASS/: every format, grey and colour,
    sizes from 10 to 40 px, each of one flat value that tells its class."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = rng.integers(10, 41, 2)
            pixels = np.full((h, w, 3), 40 + 80 * c, np.uint8)
            image = Image.fromarray(pixels if i % 2 else pixels[..., 0])
            image.save(folder / name / f"{name}{i}.{FORMATS[i % len(FORMATS)]}")


def make_folder(root, train=8, test=4):
    write_class_images(root / "train", train, seed=0)
    write_class_images(root / "test", test, seed=1)
    return root


def _labels_and_values(ds):
    return [(int(y), float(x.mean())) for x, y in ds.data.as_numpy_iterator()]


def test_split_layout_reads_every_format_with_sorted_class_names(tmp_path):
    root = make_folder(tmp_path / "pets")
    assert data.default_splits(str(root)) == ("train", "test")
    train = data.load(str(root), "train")
    assert (train.num_examples, train.num_classes, train.class_names) == (24, 3, CLASSES)
    assert train.image_shape == (None, None, 3)  # sizes vary; colour images among them
    seen = _labels_and_values(train)
    assert len(seen) == 24 and sorted(y for y, _ in seen) == sorted([0, 1, 2] * 8)
    for label, value in seen:  # each image's flat value tells its class (JPEG: within rounding)
        assert abs(value - (40 + 80 * label)) <= 2
    # the same files in a seeded order: a slice is a random part, not the first class
    assert {y for y, _ in _labels_and_values(data.load(str(root), "train[:6]"))} != {0}
    assert _labels_and_values(data.load(str(root), "train")) == seen
    test = data.load(str(root), "test")
    assert (test.num_examples, test.class_names, test.split) == (12, CLASSES, "test")
    x, y = next(iter(data.pipeline(test, image_size=28, channels=1, batch_size=12, training=False)))
    assert x.shape == (12, 28, 28, 1) and y.shape == (12,)


def test_grey_folders_have_one_channel_and_a_common_size(tmp_path):
    for c, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((12, 14), 100 * c, np.uint8)).save(tmp_path / name / f"{i}.png")
    ds = data.load(str(tmp_path), "train")
    assert ds.image_shape == (12, 14, 1) and ds.class_names == ("a", "b")
    image, _ = next(ds.data.as_numpy_iterator())
    assert image.shape == (12, 14, 1)


def test_flat_layout_with_a_seeded_validation_split(tmp_path):
    write_class_images(tmp_path, 10)
    assert data.default_splits(str(tmp_path)) == ("train", "validation")

    def files(split, seed=0):
        ds = data.load(str(tmp_path), split, validation_split=0.2, seed=seed)
        return ds, set(map(str, ds.files))

    train, train_files = files("train")
    val, val_files = files("validation")
    assert (train.num_examples, val.num_examples) == (24, 6)
    assert not train_files & val_files and len(train_files | val_files) == 30
    assert val.class_names == train.class_names == CLASSES
    assert files("validation")[1] == val_files  # seeded
    assert files("validation", seed=1)[1] != val_files
    everything = data.load(str(tmp_path), "train")
    assert everything.num_examples == 30


def test_bad_folders_each_give_one_clear_error(tmp_path):
    def error(path, split="train", **kwargs):
        with pytest.raises(data.DatasetError) as e:
            data.load(str(path), split, **kwargs)
        return str(e.value)

    assert "no such folder" in error(tmp_path / "absent" / "images")
    (tmp_path / "empty").mkdir()
    assert "has no class subfolders" in error(tmp_path / "empty")
    write_class_images(tmp_path / "flat", 2)
    assert "no test or val folder: pass `validation_split`" in error(tmp_path / "flat", "test")  # the CLI says --validation-split
    assert "leaves one part empty" in error(tmp_path / "flat", "validation", validation_split=0.01)

    (tmp_path / "flat" / "newt").mkdir()
    (tmp_path / "flat" / "newt" / "notes.txt").write_text("no image here")
    assert f"class folder {tmp_path / 'flat' / 'newt'} holds no images" in error(tmp_path / "flat")

    root = make_folder(tmp_path / "split", train=2, test=1)
    (root / "test" / "dog").rename(root / "test" / "wolf")
    message = error(root, "test")
    assert "train and test have different classes" in message and "only in train: dog" in message and "only in test: wolf" in message
    withval = make_folder(tmp_path / "withval", train=2, test=1)
    (withval / "test").rename(withval / "val")
    assert data.default_splits(str(withval)) == ("train", "val")
    assert "drop `validation_split`" in error(withval, validation_split=0.5)
    assert "must lie between 0 and 1" in error("fashion_mnist", validation_split=1.5)


def test_unreadable_images_are_named_or_skipped(tmp_path):
    write_class_images(tmp_path, 3)
    bad = tmp_path / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    with pytest.raises(data.DatasetError, match=f"unreadable image {bad}.*`skip_bad_images`"):
        data.load(str(tmp_path), "train")
    (tmp_path / "dog" / "empty.jpg").write_bytes(b"")
    ds = data.load(str(tmp_path), "train", skip_bad_images=True)
    assert ds.num_examples == 9 and len(list(ds.data)) == 9


def test_a_damaged_image_body_is_found_by_name_or_skipped(tmp_path):
    write_class_images(tmp_path, 2)
    good = tmp_path / "cat" / "cat0.png"
    raw = good.read_bytes()
    good.write_bytes(raw[: len(raw) // 2 + 20])  # the header reads; the pixels do not
    ds = data.load(str(tmp_path), "train")
    assert ds.num_examples == 6
    assert data.find_unreadable(ds) == good
    skipping = data.load(str(tmp_path), "train", skip_bad_images=True)
    assert len(list(skipping.data)) == 5


def test_known_datasets_carry_class_names(tiny_fashion_mnist):
    ds = data.load("fashion_mnist", "test", str(tiny_fashion_mnist))
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot" and len(ds.class_names) == 10
    json.dumps(ds.class_names)  # recorded in a run's JSON as they are


@pytest.mark.slow
def test_folder_dataset_trains_converts_and_predicts_with_its_class_names(tmp_path):
    from tests.test_cli import run

    root = make_folder(tmp_path / "pets", train=8, test=4)
    run_dir = tmp_path / "run"
    common = ("--recipe", "one-step", "--alpha", 0.125, "--epochs", 1, "--batch-size", 8, "--image-size", 16)
    result = run("train", "reactnet-18", "--dataset", root, *common, "-o", run_dir)
    assert result.exit_code == 0, result.output
    config = json.loads((run_dir / "config.json").read_text())
    assert config["info"]["class_names"] == list(CLASSES) and config["info"]["input_shape"] == [16, 16, 3]

    tflite = run_dir / "model.tflite"
    result = run("convert", run_dir / "model.h5", "-o", tflite, "--dataset", root, "--samples", 12)
    assert result.exit_code == 0, result.output
    card = json.loads(tflite.with_suffix(".json").read_text())
    assert card["class_names"] == list(CLASSES) and card["parity"]["inputs"] == f"{root.name}:test[:12]"
    assert card["model"] == "reactnet-18" and card["dataset"] == root.name and 0 <= card["accuracy"] <= 1

    result = run("predict", tflite, root / "test" / "frog", "--json", "-k", 3)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4 and all(sorted(t["name"] for t in line["top"]) == sorted(CLASSES) for line in lines)
    evaluated = run("evaluate", tflite, "--dataset", root)
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout.splitlines()[-1])["examples"] == 12

    # the flat layout, with a seeded validation split
    flat = tmp_path / "flat"
    write_class_images(flat, 6)
    result = run("train", "reactnet-18", "--dataset", flat, "--validation-split", 0.25, *common, "-o", tmp_path / "flat-run")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "flat-run" / "results.json").read_text())
    assert results["eval_split"] == "validation" and results["eval_examples"] == 4  # 25% of 18, rounded


def test_bad_folder_datasets_are_one_line_errors_of_the_commands(tmp_path):
    from tests.test_cli import assert_one_line_error, run

    assert_one_line_error(run("train", "reactnet-18", "--dataset", tmp_path / "no" / "such", "-o", tmp_path / "run"), "no such folder")
    write_class_images(tmp_path / "flat", 2)
    (tmp_path / "flat" / "cat" / "bad.png").write_bytes(b"")
    result = run("train", "reactnet-18", "--dataset", tmp_path / "flat", "--validation-split", 0.5, "-o", tmp_path / "run")
    assert_one_line_error(result, f"unreadable image {tmp_path / 'flat' / 'cat' / 'bad.png'}")
    assert not (tmp_path / "run").exists()
    assert_one_line_error(run("evaluate", "reactnet-18", "--dataset", tmp_path / "flat"), "not for the folder")
    model_file = tmp_path / "model.h5"
    zoo.create_model("reactnet-18", input_shape=(16, 16, 3), alpha=0.125, num_classes=3).save(model_file)
    assert_one_line_error(run("evaluate", model_file, "--dataset", tmp_path / "flat"), "no test or val folder")
    result = run("evaluate", model_file, "--dataset", tmp_path / "flat", "--split", "train")
    assert_one_line_error(result, f"unreadable image {tmp_path / 'flat' / 'cat' / 'bad.png'}")
    result = run("evaluate", model_file, "--dataset", tmp_path / "flat", "--split", "train", "--skip-bad-images")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["examples"] == 6  # the readable ones
