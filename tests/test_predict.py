"""`lqm predict`, and damaged model files for every command that reads one."""

import json

import numpy as np
import pytest
from PIL import Image

import zoo
from larq_methods import convert, data, saving
from tests.helpers import perturb
from tests.test_cli import assert_one_line_error, run


@pytest.fixture(scope="module")
def fashion_pngs(tmp_path_factory):
    """Eight grey 28x28 PNG files of random pixels."""
    folder = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _json_lines(result):
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_predict_with_a_registered_pretrained_model(fashion_pngs):
    result = run("predict", "reactnet-18", fashion_pngs / "0.png", fashion_pngs / "1.png", "--json", "-k", 3)
    lines = _json_lines(result)
    assert [line["image"] for line in lines] == [str(fashion_pngs / "0.png"), str(fashion_pngs / "1.png")]
    model = zoo.create_model("reactnet-18", weights="fashion_mnist")
    for line in lines:
        image = np.asarray(Image.open(line["image"]))[..., None]
        expected = model.predict(data.preprocess(image, 28, 1, training=False).numpy()[None], verbose=0)[0]
        top = np.argsort(-expected)[:3]
        assert [t["class"] for t in line["top"]] == top.tolist()
        assert [t["name"] for t in line["top"]] == [data.FASHION_MNIST_CLASSES[i] for i in top]
        np.testing.assert_allclose([t["probability"] for t in line["top"]], expected[top], rtol=1e-4)
    # a folder means its images; the plain output names the best classes
    plain = run("predict", "reactnet-18", fashion_pngs, "-k", 1)
    assert plain.exit_code == 0 and len(plain.stdout.splitlines()) == 8
    name = lines[0]["top"][0]["name"]
    assert plain.stdout.splitlines()[0].startswith(f"{fashion_pngs / '0.png'}: {name} ")


def test_predict_errors_are_one_line(tmp_path, fashion_pngs):
    assert_one_line_error(run("predict", "reactnet-18", tmp_path / "absent.png"), "absent.png: no such file or folder")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    assert_one_line_error(run("predict", "reactnet-18", broken), f"unreadable image {broken}")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("predict", "reactnet-18", tmp_path / "empty"), "holds no images")
    assert_one_line_error(run("predict", "reactnet-19", fashion_pngs / "0.png"), "unknown model 'reactnet-19'")
    assert_one_line_error(run("predict", tmp_path / "absent.tflite", fashion_pngs / "0.png"), "absent.tflite: no such file")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A small model's Keras file and its `lqm convert`ed .tflite with model.json."""
    folder = tmp_path_factory.mktemp("converted")
    model = perturb(zoo.create_model("reactnet-18", input_shape=(28, 28, 1), alpha=0.125, num_classes=10), stddev=0.05)
    model.save(folder / "model.h5")
    names = folder / "names.txt"
    names.write_text("".join(f"class {c}\n" for c in "abcdefghij"))
    result = run("convert", folder / "model.h5", "-o", folder / "model.tflite", "--class-names", names)
    assert result.exit_code == 0, result.output
    return folder


def test_convert_writes_a_model_card_that_the_tflite_also_carries(converted):
    card = json.loads((converted / "model.json").read_text())
    flatbuffer = (converted / "model.tflite").read_bytes()
    embedded = json.loads(convert.read_metadata(flatbuffer)["files"][convert.CARD_FILE])
    assert {k: card[k] for k in embedded} == embedded  # the file adds only what concerns it
    assert card["class_names"] == [f"class {c}" for c in "abcdefghij"]
    assert card["input"]["shape"] == [1, 28, 28, 1] and card["input"]["range"] == [0.0, 255.0]
    assert card["size_bytes"] == len(flatbuffer) and card["operators"]["LceBconv2d"] == 16
    assert card["parity"]["inputs"] == "uniform random in [-1, 1], as 0-255 pixels"


def test_predict_a_tflite_reads_its_class_names_and_scaling(converted, fashion_pngs):
    lines = _json_lines(run("predict", converted / "model.tflite", fashion_pngs / "3.png", "--json", "-k", 10, "--threads", 1))
    model = saving.load_model(converted / "model.h5")
    image = np.asarray(Image.open(fashion_pngs / "3.png"))[..., None]
    expected = model.predict(data.preprocess(image, 28, 1, training=False).numpy()[None], verbose=0)[0]
    top = lines[0]["top"]
    assert top[0]["class"] == int(expected.argmax()) and top[0]["name"] == f"class {'abcdefghij'[expected.argmax()]}"
    np.testing.assert_allclose(sorted(t["probability"] for t in top), sorted(expected), atol=1e-4)


def _damaged(flatbuffer: bytes) -> dict:
    """Truncated, emptied and flipped copies of a flatbuffer; the flips hit the root offset,
    the identifier, the root table's vtable offset, and the middle of the file."""
    root = int.from_bytes(flatbuffer[:4], "little")
    cases = {"empty": b"", "six-bytes": flatbuffer[:6], "half": flatbuffer[: len(flatbuffer) // 2], "all-but-one": flatbuffer[:-1]}
    for offset in (0, 5, root, len(flatbuffer) // 2):
        flipped = bytearray(flatbuffer)
        flipped[offset] ^= 0xFF
        cases[f"flip{offset}"] = bytes(flipped)
    return cases


def test_damaged_tflite_files_give_one_line_and_exit_1(converted, tmp_path, fashion_pngs):
    flatbuffer = (converted / "model.tflite").read_bytes()
    card = (converted / "model.json").read_text()
    for name, damaged in _damaged(flatbuffer).items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(damaged)
        path.with_suffix(".json").write_text(card)  # as `lqm convert` left it
        assert_one_line_error(run("evaluate", path, "--data-dir", tmp_path), str(path))
        assert_one_line_error(run("benchmark", path, "--runs", 1), str(path))
        assert_one_line_error(run("predict", path, fashion_pngs / "0.png"), str(path))


def test_damaged_tflite_without_a_card_is_caught_by_its_structure(tmp_path):
    flatbuffer = convert.convert(perturb(zoo.create_model("reactnet-18", input_shape=(28, 28, 1), alpha=0.125, num_classes=10)))
    for name, damaged in _damaged(flatbuffer).items():
        if name == f"flip{len(flatbuffer) // 2}":
            continue  # in the weights: a valid model with other weights, which only a hash tells
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(damaged)
        result = run("benchmark", path, "--runs", 1)
        assert_one_line_error(result, str(path))
        assert "damaged" in result.stderr or "not a TFLite model" in result.stderr or "empty" in result.stderr


def test_damaged_keras_file_gives_one_line(tmp_path, converted):
    raw = (converted / "model.h5").read_bytes()
    path = tmp_path / "model.h5"
    path.write_bytes(raw[: len(raw) // 3])
    assert_one_line_error(run("evaluate", path, "--data-dir", tmp_path), str(path), "is not a Keras model file")
