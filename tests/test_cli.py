import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from cli.main import lqm


def run(*args):
    return CliRunner().invoke(lqm, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.h5"
    zoo.create_model("reactnet-18", input_shape=(28, 28, 1), alpha=0.25, num_classes=10).save(path)
    return path


def test_models_lists_and_counts():
    result = run("models")
    assert result.exit_code == 0
    header, *lines = result.stdout.splitlines()
    assert header.split()[:3] == ["model", "follows", "pretrained"]
    assert [line.split()[0] for line in lines] == zoo.list_models()
    # every model with downloadable weights shows their dataset and accuracy
    rows = {line.split()[0]: line for line in lines}
    for weights in zoo.pretrained.entries():
        assert f"{weights.dataset} {weights.accuracy:.1%}" in rows[weights.model]
    costs = run("models", "*mobilenet", "--costs")
    rows = {line.split()[0]: line.split() for line in costs.stdout.splitlines()[1:]}
    assert sorted(rows) == ["dybnn-mobilenet", "float-mobilenet", "insta-mobilenet", "insta-plus-mobilenet"]
    # against the ReActNet-A baseline: 4.82e9 BOPs, 1.19e7 FLOPs, 8.71e7 OPs
    assert rows["dybnn-mobilenet"][1:6] == ["reactnet-a", "4.82e+09", "1.38e+07", "8.91e+07", "+2.2%"]
    # its float counterpart: every BOP becomes a FLOP, 4.82e9 + 1.19e7 = 4.83e9 = OPs, 55.4x the baseline's
    assert rows["float-mobilenet"][1:6] == ["reactnet-a", "0", "4.83e+09", "4.83e+09", "+5442.3%"]


@pytest.mark.slow
def test_train_convert_evaluate_on_real_fashion_mnist(tmp_path, real_fashion_mnist):
    run_dir = tmp_path / "run"
    result = run(
        "train", "reactnet-18", "--recipe", "one-step", "--alpha", 0.25, "--epochs", 1, "--batch-size", 64,
        "--train-split", "train[:256]", "--eval-split", "test[:128]",
        "--data-dir", real_fashion_mnist, "-o", run_dir,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "test[:128] accuracy" in result.stdout
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoints", "config.json", "curves.png", "history.csv", "logs", "model.h5", "results.json",
    ]  # fmt: skip
    config = json.loads((run_dir / "config.json").read_text())
    assert config["info"]["input_shape"] == [28, 28, 1] and config["alpha"] == 0.25
    results = json.loads((run_dir / "results.json").read_text())
    assert results["eval_examples"] == 128 and 0 <= results["eval_accuracy"] <= 1
    assert len((run_dir / "history.csv").read_text().splitlines()) == 2  # header + 1 epoch

    tflite = run_dir / "model.tflite"
    result = run("convert", run_dir / "model.h5", "-o", tflite, "--dataset", "fashion_mnist", "--data-dir", real_fashion_mnist, "--samples", 32)
    assert result.exit_code == 0, result.output
    assert "All 16 binary convolutions are LceBconv2d." in result.stdout
    report = json.loads((run_dir / "model.json").read_text())
    assert report["operators"]["LceBconv2d"] == 16
    assert report["parity"]["inputs"] == "fashion_mnist:test[:32]"
    assert report["parity"]["top1_agreement"] >= 0.95
    assert report["size_bytes"] == tflite.stat().st_size

    keras = run("evaluate", run_dir / "model.h5", "--split", "test[:64]", "--data-dir", real_fashion_mnist)
    lite = run("evaluate", tflite, "--split", "test[:64]", "--data-dir", real_fashion_mnist)
    assert keras.exit_code == lite.exit_code == 0, keras.output + lite.output
    accuracy = [json.loads(r.stdout.splitlines()[-1])["accuracy"] for r in (keras, lite)]
    assert accuracy[0] == pytest.approx(accuracy[1], abs=2 / 64)
    assert json.loads(lite.stdout.splitlines()[-1])["examples"] == 64


def test_unknown_model():
    assert_one_line_error(run("train", "reactnet-19"), "unknown model 'reactnet-19'", "did you mean")


def test_bad_method_options(tmp_path, tiny_fashion_mnist):
    common = ["--data-dir", tiny_fashion_mnist, "-o", tmp_path / "run"]
    assert_one_line_error(run("train", "reactnet-18", "--gaaf", "foo(x)", *common), "bad GAAF genome 'foo(x)'")
    assert_one_line_error(run("train", "reactnet-18", "--gamma", "often", *common), "--gamma must be")
    result = run("train", "ftbnn-resnet18", "--alpha", 0.25, *common)
    assert_one_line_error(result, "block5_bconv3x3: 16 input channels in 2 groups", "nearest valid widths are 64")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_train_with_method_options_records_the_method(tmp_path, tiny_fashion_mnist):
    run_dir = tmp_path / "run"
    result = run(
        "train", "reactnet-18", "--threshold", "insta", "--activation", "fprelu", "--weights", "learned",
        "--gamma", "2e-4", "--recipe", "one-step", "--alpha", 0.25, "--batch-size", 20, "--data-dir", tiny_fashion_mnist, "-o", run_dir,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "threshold=insta, activation=fprelu, weights=learned, gamma=0.0002" in result.stdout
    config = json.loads((run_dir / "config.json").read_text())
    expected = {"threshold": "insta", "activation": "fprelu", "weights": "learned", "gamma": 2e-4, "gaaf": None, "groups": 1, "downsample": "real", "binarise": "all"}
    assert {k: config["method"][k] for k in expected} == expected


def test_missing_dataset_creates_no_run_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("train", "reactnet-18", "--data-dir", empty, "-o", tmp_path / "run")
    assert_one_line_error(result, "Fashion-MNIST not found", "apt-get install dataset-fashion-mnist")
    assert not (tmp_path / "run").exists()


def test_existing_run_folder_is_not_touched(tmp_path, tiny_fashion_mnist):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.h5").write_text("earlier work")
    result = run("train", "reactnet-18", "--data-dir", tiny_fashion_mnist, "-o", run_dir)
    assert_one_line_error(result, "already exists")
    assert [p.name for p in run_dir.iterdir()] == ["model.h5"]
    assert (run_dir / "model.h5").read_text() == "earlier work"


def test_unwritable_output_path(tmp_path, model_file):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert_one_line_error(run("convert", model_file, "-o", blocker / "out.tflite"), "cannot write")
    assert blocker.read_text() == "a file, not a folder"


def test_non_model_file_is_refused(tmp_path):
    notes = tmp_path / "notes.h5"
    notes.write_text("not a model")
    result = run("convert", notes, "-o", tmp_path / "out.tflite")
    assert_one_line_error(result, "is not a Keras model file")
    assert not (tmp_path / "out.tflite").exists() and not (tmp_path / "out.json").exists()
    assert_one_line_error(run("convert", tmp_path / "absent.h5", "-o", tmp_path / "o.tflite"), "no such file")
    fake = tmp_path / "fake.tflite"
    fake.write_text("not a flatbuffer")
    assert_one_line_error(run("evaluate", fake, "--data-dir", tmp_path), "not a TFLite model")


def test_convert_refuses_to_overwrite_and_can_be_told_to(tmp_path, model_file):
    out = tmp_path / "out.tflite"
    out.write_text("keep me")
    assert_one_line_error(run("convert", model_file, "-o", out), "already exists", "--overwrite")
    # --overwrite replaces a converted model only, never another file
    assert_one_line_error(run("convert", model_file, "-o", out, "--overwrite"), "is not a TFLite model")
    assert out.read_text() == "keep me"
    out.unlink()
    assert run("convert", model_file, "-o", out, "--samples", 4).exit_code == 0
    first = out.read_bytes()
    assert_one_line_error(run("convert", model_file, "-o", out), "already exists", "--overwrite")
    result = run("convert", model_file, "-o", out, "--overwrite", "--samples", 4)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[4:8] == b"TFL3" and len(out.read_bytes()) == len(first)  # the flatbuffer's file identifier


def test_models_with_no_match():
    assert_one_line_error(run("models", "nothing*"), "no model matches")


def test_console_script_gives_one_clean_line(tmp_path):
    lqm_bin = shutil.which("lqm", path=os.path.dirname(sys.executable)) or shutil.which("lqm")
    assert lqm_bin, "the package is not installed (pip install -e .)"
    proc = subprocess.run([lqm_bin, "train", "nope", "-o", tmp_path / "r"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"Error: unknown model 'nope'; `lqm models` lists the {len(zoo.list_models())} available"]


@pytest.mark.slow
def test_grouped_model_converts_and_evaluates(tmp_path, tiny_fashion_mnist):
    from larq_methods.method import Method

    path = tmp_path / "grouped.h5"
    zoo.create_model("reactnet-18", input_shape=(28, 28, 1), num_classes=10, method=Method(groups=2)).save(path)
    converted = run("convert", path, "-o", tmp_path / "grouped.tflite", "--samples", 4)
    assert converted.exit_code == 0, converted.output
    # LCE's default binary kernel cannot run grouped convolutions; evaluate picks another
    result = run("evaluate", tmp_path / "grouped.tflite", "--data-dir", tiny_fashion_mnist)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["examples"] == 20
