"""Bad inputs across every command (issue 42): each is one `Error:` line (or click's usage
error), a non-zero status, and loses nothing; damaged files, a full disk, SIGTERM and two
processes in one run folder.

One tiny trained run, its .tflite and the other inputs are made once for the module
(`world`); every case runs in-process with click's CliRunner, in the world's folder, and
every file there is hashed before and after it. Only what needs a real process runs in
one: SIGTERM, a lock held by another process, and the fuzzing (a damaged HDF5 file may
crash its reader, which must not take the test session with it).
"""

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import lqm
from larq_methods import saving
from tests.conftest import write_tiny_fashion_mnist

# the cheapest real run on the tiny data: 2 steps of 16 images, 1 epoch
SMALL = ["--recipe", "one-step", "--alpha", "0.125", "--train-split", "train[:32]", "--batch-size", "16"]
NOT_UTF8 = b"\xff\xfe"


def invoke(*args, cwd=None):
    return CliRunner().invoke(lqm, [str(a) for a in args], catch_exceptions=True)


def _png(path, shape=(28, 28), value=None):
    rng = np.random.default_rng(len(str(path)))
    pixels = rng.integers(0, 256, shape, dtype=np.uint8) if value is None else np.full(shape, value, np.uint8)
    Image.fromarray(pixels).save(path, format="PNG")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder with a trained run and everything the bad inputs need; returns its path."""
    import tensorflow as tf

    from larq_methods import convert

    root = tmp_path_factory.mktemp("world")
    fm = root / "fm"
    fm.mkdir()
    write_tiny_fashion_mnist(fm)
    result = invoke("train", "reactnet-18", *SMALL, "--data-dir", fm, "-o", root / "run")
    assert result.exit_code == 0, result.output
    result = invoke("convert", root / "run", "-o", root / "run" / "model.tflite", "--samples", 4)
    assert result.exit_code == 0, result.output
    shutil.copy(root / "run" / "model.tflite", root / "bare.tflite")  # without its card beside it
    # a 3-class 32x32 RGB model, as Keras file and as .tflite
    inputs = tf.keras.Input((32, 32, 3))
    x = tf.keras.layers.GlobalAveragePooling2D()(tf.keras.layers.Conv2D(4, 3)(inputs))
    rgb = tf.keras.Model(inputs, tf.keras.layers.Dense(3, activation="softmax")(x))
    rgb.save(root / "rgb3.h5")
    (root / "rgb3.tflite").write_bytes(convert.convert(rgb))
    tf.keras.backend.clear_session()
    # image folders: flat with two classes; a class folder named in bytes that are not UTF-8;
    # an image file so named that is no image; a split layout
    for name in ("a", "b"):
        (root / "flat" / name).mkdir(parents=True)
        for i in range(3):
            _png(root / "flat" / name / f"{i}.png")
    os.makedirs(os.fsencode(root / "badclass") + b"/" + NOT_UTF8 + b"class")
    os.makedirs(os.fsencode(root / "badclass") + b"/ok")
    for sub in (NOT_UTF8 + b"class", b"ok"):
        _png(os.fsdecode(os.fsencode(root / "badclass") + b"/" + sub + b"/0.png"))
    (root / "badfile" / "a").mkdir(parents=True)
    (root / "badfile" / "b").mkdir(parents=True)
    _png(root / "badfile" / "a" / "0.png")
    _png(root / "badfile" / "b" / "0.png")
    Path(os.fsdecode(os.fsencode(root / "badfile" / "b") + b"/" + NOT_UTF8 + b".png")).write_text("not a png")
    (root / "empty").mkdir()
    (root / "notes.png").write_text("not an image")
    (root / "notes.h5").write_text("not a model")
    with __import__("h5py").File(root / "data.h5", "w") as f:
        f["x"] = np.arange(4)
    (root / "text.tflite").write_text("keep me")
    (root / "folder.tflite").mkdir()
    (root / "foreign.json").write_text('{"mine": true}\n')
    (root / "foreign.tflite").write_bytes((root / "run" / "model.tflite").read_bytes())
    (root / "blocker").write_text("a file, not a folder")
    (root / "names2.txt").write_text("one\ntwo\n")
    broken = root / "broken"
    shutil.copytree(root / "run", broken, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    text = (broken / "config.json").read_text()
    (broken / "config.json").write_text(text.replace('"model"', '"model" "x"', 1))
    flipped = bytearray((root / "run" / "model.tflite").read_bytes())
    flipped[len(flipped) // 3] ^= 0x01  # a weight: the structure stays valid
    (root / "flipped.tflite").write_bytes(bytes(flipped))
    return root


def _hashes(root: Path) -> dict:
    return {
        p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


# (id, arguments with {W} for the world folder, exit status, a fragment of the one line)
CASES = [
    # models
    ("models-no-match", "models nothing*", 1, "no model matches"),
    ("models-bad-option", "models --bogus", 2, "No such option"),
    # train
    ("train-unknown-model", "train nope", 1, "unknown model 'nope'"),
    ("train-no-model", "train", 2, "missing MODEL"),
    ("train-no-data", "train reactnet-18 --data-dir {W}/empty -o {W}/new", 1, "Fashion-MNIST not found"),
    ("train-existing-run", "train reactnet-18 --data-dir {W}/fm -o {W}/run", 1, "already exists; choose another --output"),
    ("train-output-is-file", "train reactnet-18 --data-dir {W}/fm -o {W}/blocker", 1, "already exists"),
    ("train-empty-split", "train reactnet-18 --data-dir {W}/fm --train-split train[:0] -o {W}/new", 1, "holds no images"),
    ("train-empty-eval-split", "train reactnet-18 --data-dir {W}/fm --recipe one-step --eval-split test[5:5] -o {W}/new", 1, "holds no images"),
    ("train-bad-split", "train reactnet-18 --data-dir {W}/fm --train-split train[ -o {W}/new", 1, "cannot parse split"),
    ("train-unknown-split", "train reactnet-18 --data-dir {W}/fm --train-split dev -o {W}/new", 1, "not 'dev'"),
    ("train-validation-split-named", "train reactnet-18 --data-dir {W}/fm --validation-split 0.1 -o {W}/new", 1, "--validation-split is for image folders"),
    ("train-flat-no-test", "train reactnet-18 --dataset {W}/flat --recipe one-step -o {W}/new", 1, "pass --validation-split"),
    ("train-validation-too-small", "train reactnet-18 --dataset {W}/flat --recipe one-step --validation-split 0.01 -o {W}/new", 1, "--validation-split 0.01 of 6 images"),
    ("train-non-utf8-class", "train reactnet-18 --dataset {W}/badclass --recipe one-step --validation-split 0.5 -o {W}/new", 1, "\\xff\\xfeclass"),
    ("train-non-utf8-bad-image", "train reactnet-18 --dataset {W}/badfile --recipe one-step --validation-split 0.5 -o {W}/new", 1, "\\xff\\xfe.png"),
    ("train-init-name-folder", "train reactnet-18 --dataset {W}/flat --validation-split 0.5 --init reactnet-18 -o {W}/new", 1, "named datasets only"),
    ("train-teacher-name-folder", "train reactnet-18 --dataset {W}/flat --validation-split 0.5 --teacher float-resnet18 -o {W}/new", 1, "named datasets only"),
    ("train-init-missing", "train reactnet-18 --data-dir {W}/fm --recipe one-step --init {W}/nothing.h5 -o {W}/new", 1, "neither a model file"),
    ("train-bad-gamma", "train reactnet-18 --data-dir {W}/fm --gamma lots -o {W}/new", 1, "--gamma must be"),
    ("train-epochs-0", "train reactnet-18 --epochs 0", 2, "--epochs"),
    ("train-image-size-4", "train reactnet-18 --image-size 4", 2, "--image-size"),
    ("train-bad-recipe", "train reactnet-18 --recipe fast", 2, "--recipe"),
    ("train-resume-broken-json", "train --resume {W}/broken", 1, "is not valid JSON: Expecting ':' delimiter at line 3"),
    ("train-resume-complete", "train --resume {W}/run", 1, "is complete"),
    ("train-resume-shorter", "train --resume {W}/run --epochs 1", 1, "is complete"),
    ("train-resume-not-a-run", "train --resume {W}/empty", 1, "no readable config.json"),
    ("train-resume-with-options", "train --resume {W}/run --alpha 0.5", 2, "drop --alpha"),
    ("train-resume-locked", "train --resume {W}/run --epochs 3", 1, "is in use"),
    ("train-new-run-locked", "train reactnet-18 --data-dir {W}/fm --recipe one-step -o {W}/empty", 1, "is in use"),
    # convert
    ("convert-over-its-input", "convert {W}/run/model.h5 -o {W}/run/model.h5 --overwrite", 1, "must be a .tflite file"),
    ("convert-over-config", "convert {W}/run/model.h5 -o {W}/run/config.json --overwrite", 1, "must be a .tflite file"),
    ("convert-to-json", "convert {W}/run/model.h5 -o {W}/out.json", 1, "must be a .tflite file"),
    ("convert-card-on-config", "convert {W}/run/model.h5 -o {W}/run/config.tflite --overwrite", 1, "is a file of the run folder"),
    ("convert-card-on-results", "convert {W}/run/model.h5 -o {W}/run/results.tflite --overwrite", 1, "is a file of the run folder"),
    ("convert-into-checkpoints", "convert {W}/run/model.h5 -o {W}/run/checkpoints/x.tflite --overwrite", 1, "is a file of the run folder"),
    ("convert-over-folder", "convert {W}/run/model.h5 -o {W}/folder.tflite --overwrite", 1, "is a folder"),
    ("convert-existing", "convert {W}/run/model.h5 -o {W}/run/model.tflite", 1, "already exists; pass --overwrite"),
    ("convert-over-text", "convert {W}/run/model.h5 -o {W}/text.tflite --overwrite", 1, "is not a TFLite model"),
    ("convert-card-collides", "convert {W}/run/model.h5 -o {W}/foreign.tflite --overwrite", 1, "is not a card of `lqm convert`"),
    ("convert-not-a-model", "convert {W}/notes.h5 -o {W}/new.tflite", 1, "is not a Keras model file"),
    ("convert-hdf5-not-a-model", "convert {W}/data.h5 -o {W}/new.tflite", 1, "without a model_config"),
    ("convert-missing", "convert {W}/absent.h5 -o {W}/new.tflite", 1, "no such file"),
    ("convert-run-not-finished", "convert {W}/empty -o {W}/new.tflite", 1, "not a run folder"),
    ("convert-class-names-missing", "convert {W}/run/model.h5 -o {W}/new.tflite --class-names {W}/absent.txt", 1, "cannot read --class-names"),
    ("convert-class-names-count", "convert {W}/run/model.h5 -o {W}/new.tflite --samples 2 --class-names {W}/names2.txt", 1, "2 class names for a model of 10 classes"),
    ("convert-unwritable", "convert {W}/run/model.h5 -o {W}/blocker/out.tflite", 1, "cannot write"),
    ("convert-tflite-input", "convert {W}/bare.tflite -o {W}/new.tflite", 1, "is not a Keras model file"),
    ("convert-samples-0", "convert {W}/run/model.h5 -o {W}/new.tflite --samples 0", 2, "--samples"),
    ("convert-bad-dataset", "convert {W}/run/model.h5 -o {W}/new.tflite --dataset {W}/empty", 1, "no class subfolders"),
    # evaluate
    ("evaluate-tflite-other-classes", "evaluate {W}/rgb3.tflite --data-dir {W}/fm", 1, "the model gives 3 classes and takes 32x32x3 images; fashion_mnist test has 10 classes of 28x28x1"),
    ("evaluate-keras-other-classes", "evaluate {W}/rgb3.h5 --data-dir {W}/fm", 1, "the model gives 3 classes"),
    ("evaluate-flipped-without-card", "evaluate {W}/flipped.tflite --data-dir {W}/fm", 1, "its packed model card records"),
    ("evaluate-text-tflite", "evaluate {W}/text.tflite --data-dir {W}/fm", 1, "not a TFLite model"),
    ("evaluate-bad-split", "evaluate {W}/run --data-dir {W}/fm --split dev", 1, "has splits 'train' and 'test'"),
    ("evaluate-empty-split", "evaluate {W}/run --data-dir {W}/fm --split test[:0]", 1, "holds no images"),
    ("evaluate-missing", "evaluate {W}/absent.h5 --data-dir {W}/fm", 1, "no such file"),
    ("evaluate-unknown-name", "evaluate nope --data-dir {W}/fm", 1, "unknown model 'nope'"),
    ("evaluate-name-on-folder", "evaluate reactnet-18 --dataset {W}/flat", 1, "named datasets only"),
    ("evaluate-not-a-run", "evaluate {W}/empty --data-dir {W}/fm", 1, "not a run folder"),
    ("evaluate-broken-config", "evaluate {W}/broken --data-dir {W}/fm", 1, "is not valid JSON"),
    ("evaluate-validation-split-named", "evaluate {W}/run --data-dir {W}/fm --validation-split 0.2", 1, "--validation-split is for image folders"),
    ("evaluate-batch-0", "evaluate {W}/run --batch-size 0", 2, "--batch-size"),
    ("evaluate-hdf5-not-a-model", "evaluate {W}/data.h5 --data-dir {W}/fm", 1, "without a model_config"),
    # predict
    ("predict-not-an-image", "predict {W}/run {W}/notes.png", 1, "unreadable image"),
    ("predict-non-utf8-not-an-image", "predict {W}/run {W}/badfile/b", 1, "\\xff\\xfe.png"),
    ("predict-missing-image", "predict {W}/run {W}/absent.png", 1, "no such file or folder"),
    ("predict-empty-folder", "predict {W}/run {W}/empty", 1, "holds no images"),
    ("predict-flipped-tflite", "predict {W}/flipped.tflite {W}/flat/a/0.png", 1, "damaged"),
    ("predict-no-images", "predict {W}/run", 2, "IMAGE"),
    ("predict-top-0", "predict {W}/run {W}/flat/a/0.png -k 0", 2, "--top-k"),
    ("predict-threads-0", "predict {W}/foreign.tflite {W}/flat/a/0.png --threads 0", 2, "--threads"),
    # benchmark
    ("benchmark-missing", "benchmark {W}/absent.tflite --runs 1", 1, "absent.tflite"),
    ("benchmark-flipped", "benchmark {W}/flipped.tflite --runs 1", 1, "damaged"),
    ("benchmark-runs-0", "benchmark {W}/bare.tflite --runs 0", 2, "--runs"),
    # download
    ("download-nothing", "download", 2, "give a MODEL, or --all"),
    ("download-unknown", "download nope", 1, "unknown model 'nope'"),
    ("download-no-weights", "download reactnet-18 --dataset imagenet2012", 1, "imagenet2012"),
    # search-af
    ("search-af-unknown-backbone", "search-af --backbone nope", 1, "unknown model 'nope'"),
    ("search-af-named-backbone", "search-af --backbone dybnn-birealnet", 1, "is a named model"),
    ("search-af-population-0", "search-af --population 0", 2, "--population"),
    ("search-af-log-folder", "search-af --data-dir {W}/fm --train-split train[:8] --eval-split test[:8] --log {W}/empty", 1, "it is a folder"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_loses_nothing(world, case, monkeypatch):
    name, args, status, fragment = case
    monkeypatch.chdir(world)  # where a default output (runs/...) would go
    before = _hashes(world)
    argv = [a.replace("{W}", str(world)) for a in args.split()]
    if name.endswith("-locked"):  # another process's lock, as flock sees it: another open file
        folder = world / ("run" if "resume" in name else "empty")
        with saving.run_lock(folder):
            result = invoke(*argv)
    else:
        result = invoke(*argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == status, result.output
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "object at 0x" not in result.stderr and "{{" not in result.stderr
    if status == 1:  # ours: the one line alone (click's usage errors print the usage above)
        assert [line for line in result.stderr.splitlines() if not line.startswith("Warning:")] == errors
    assert _hashes(world) == before


def test_cases_cover_every_command():
    commands = {args.split()[0] for _, args, _, _ in CASES}
    assert commands == set(lqm.commands)
    assert len(CASES) >= 60
