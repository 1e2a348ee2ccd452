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
    ("train-validation-split-out-of-range", "train reactnet-18 --data-dir {W}/fm --validation-split 1.5 -o {W}/new", 2, "--validation-split"),
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
    ("train-resume-not-a-run", "train --resume {W}/empty", 1, "is not a run folder of `lqm train`"),
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
    ("evaluate-no-validation-part", "evaluate {W}/run --data-dir {W}/fm --split validation", 1, "not 'validation'"),
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
    # compare
    ("compare-unknown", "compare nope -o {W}/cmp", 1, "unknown model 'nope'"),
    ("compare-no-output", "compare reactnet-18 --data-dir {W}/fm", 2, "Missing option '-o'"),
    ("compare-seeds-0", "compare reactnet-18 --seeds 0 -o {W}/cmp", 2, "--seeds"),
    ("compare-twice", "compare reactnet-18 reactnet-18 --data-dir {W}/fm -o {W}/cmp", 2, "a model is named twice"),
    ("compare-two-budgets", "compare reactnet-18 --data-dir {W}/fm --budget-ms 1 --budget 2 -o {W}/cmp", 2, "not both"),
    ("compare-flat-no-test", "compare reactnet-18 --dataset {W}/flat -o {W}/cmp", 1, "has no test split"),
    ("compare-too-many-jobs", "compare reactnet-18 --data-dir {W}/fm --jobs 999 -o {W}/cmp", 2, "more than this machine's"),
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


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# -- a full disk: RLIMIT_FSIZE, under which a write past the limit fails with EFBIG --------


class _FileSizeLimit:
    """Writes past `limit` bytes of any file fail (EFBIG) in this process while it lasts,
    as on a full disk; SIGXFSZ, which would kill the process, is ignored meanwhile."""

    def __init__(self, limit):
        self.limit = limit

    def __enter__(self):
        self.saved = resource.getrlimit(resource.RLIMIT_FSIZE)
        self.handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self.saved[1]))

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_FSIZE, self.saved)
        signal.signal(signal.SIGXFSZ, self.handler)


def test_full_disk_during_convert_leaves_the_earlier_model_and_card(world, tmp_path):
    out = tmp_path / "model.tflite"
    shutil.copy(world / "run" / "model.tflite", out)
    shutil.copy(world / "run" / "model.json", tmp_path / "model.json")
    before = _hashes(tmp_path)
    with _FileSizeLimit(len(out.read_bytes()) // 2):  # the card fits, the model does not
        result = invoke("convert", world / "run", "-o", out, "--overwrite", "--samples", 2)
    assert result.exit_code == 1, result.output
    assert "the disk is full" in _one_error_line(result.stderr) and "model.tflite is as it was" in result.stderr
    assert _hashes(tmp_path) == before  # both files as they were, no temporary file left


def test_full_disk_during_training_keeps_the_last_good_checkpoint(world, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(world / "run", run_dir)
    state = (run_dir / "checkpoints" / "checkpoint").read_bytes()
    model = (run_dir / "model.h5").read_bytes()
    # history.csv, curves.png and config.json fit; epoch 2's checkpoint (2.4 MB) does not
    with _FileSizeLimit(300_000):
        result = invoke("train", "--resume", run_dir, "--epochs", 2)
    assert result.exit_code == 1, result.output
    line = _one_error_line(result.stderr)
    assert line.startswith("Error: training stopped: the disk is full (File too large)"), line
    assert f"the last good checkpoint, {run_dir / 'checkpoints' / 'ckpt-1'}, is kept" in line
    assert line.endswith(f"continue with: lqm train --resume {run_dir}")
    assert (run_dir / "checkpoints" / "checkpoint").read_bytes() == state  # ckpt-1 is still the latest
    assert not list((run_dir / "checkpoints").glob("*temp*"))  # the half-written one is gone
    assert (run_dir / "model.h5").read_bytes() == model


def test_a_failed_write_is_atomic_and_names_the_full_disk(tmp_path):
    target = tmp_path / "notes.bin"
    target.write_bytes(b"earlier")
    with _FileSizeLimit(1000), pytest.raises(saving.FileError, match=r"notes.bin: the disk is full \(File too large\); notes.bin is as it was"):
        saving.write_files({tmp_path / "small.bin": b"x" * 10, target: b"y" * 5000})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.bin"]  # neither written, no temporary file
    assert target.read_bytes() == b"earlier"


# -- SIGTERM and two processes in one run folder --------------------------------------------


def _lqm_command():
    lqm_bin = shutil.which("lqm", path=os.path.dirname(sys.executable)) or shutil.which("lqm")
    assert lqm_bin, "the package is not installed (pip install -e .)"
    return lqm_bin


def test_sigterm_checkpoints_and_prints_the_resume_line(world, tmp_path):
    run_dir = tmp_path / "run"
    command = [_lqm_command(), "train", "reactnet-18", *SMALL, "--epochs", "50", "--data-dir", str(world / "fm"), "-o", str(run_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        try:
            deadline = time.monotonic() + 300
            while "Epoch 1/50" not in (tmp_path / "stdout").read_text():  # in the training loop
                assert proc.poll() is None, (tmp_path / "stderr").read_text()
                assert time.monotonic() < deadline, "no epoch after 300 s"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=120) == 128 + signal.SIGTERM, (tmp_path / "stderr").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    errors = (tmp_path / "stderr").read_text()
    assert "Traceback" not in errors
    hint = [line for line in errors.splitlines() if "continue with:" in line]
    assert len(hint) == 1 and hint[0].endswith(f"; continue with: lqm train --resume {run_dir}"), errors
    assert f"checkpointed in {run_dir / 'checkpoints'}" in hint[0]
    assert (run_dir / "checkpoints" / "checkpoint").exists()


def test_a_run_folder_held_by_another_process_is_refused_until_it_dies(world):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(300)", str(world / "run")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        result = invoke("train", "--resume", world / "run", "--epochs", 3)
        assert result.exit_code == 1 and "is in use: another process is training in it" in _one_error_line(result.stderr)
    finally:
        holder.kill()  # as a crash would end it
        holder.wait()
    # the kernel released its lock: the run is refused for what it is, complete
    result = invoke("train", "--resume", world / "run")
    assert result.exit_code == 1 and "is complete" in _one_error_line(result.stderr)


def test_run_lock_creates_and_removes_only_an_empty_new_folder(tmp_path):
    with saving.run_lock(tmp_path / "new"):
        assert (tmp_path / "new").is_dir()
        with pytest.raises(saving.FileError, match="is in use"):
            with saving.run_lock(tmp_path / "new"):
                pass
    assert not (tmp_path / "new").exists()  # nothing was written in it
    with saving.run_lock(tmp_path / "kept"):
        (tmp_path / "kept" / "config.json").write_text("{}")
    assert (tmp_path / "kept" / "config.json").exists()


# -- too few steps per epoch ----------------------------------------------------------------


def test_size_warning_names_the_numbers_and_the_fix():
    from larq_methods import data

    # the README's own-images example: 180 images in the paper recipe's batches of 256
    assert data.size_warning(180, 256) == (
        "`batch_size` 256 is larger than the 180 training images: every epoch is one optimiser step on all "
        "of them; a `batch_size` of 9 or less gives 20 steps per epoch"
    )
    # ceil(180 / 32) = 6 steps
    assert data.size_warning(180, 32).startswith("180 training images in batches of 32 make 6 optimiser step(s) per epoch, fewer than 20")
    assert data.size_warning(400, 20) is None  # exactly 20 steps
    with pytest.raises(data.DatasetError, match="holds no images"):
        data.size_warning(0, 8)


def test_too_few_steps_ask_on_a_terminal_and_stop_before_the_run_folder(world, tmp_path, monkeypatch):
    import cli.train

    monkeypatch.setattr(cli.train, "_interactive", lambda: True)
    out = tmp_path / "run"
    result = CliRunner().invoke(lqm, ["train", "reactnet-18", "--batch-size", "4096", "--data-dir", str(world / "fm"), "-o", str(out)], input="n\n")
    assert result.exit_code == 1, result.output
    assert "Warning: --batch-size 4096 is larger than the 40 training images" in result.stderr
    assert "a --batch-size of 2 or less gives 20 steps per epoch" in result.stderr
    assert _one_error_line(result.stderr) == "Error: not trained; change --batch-size or pass --yes to train as asked"
    assert not out.exists()


# -- fuzzing: random bytes flipped in every kind of file a command reads --------------------


def _flip(path: Path, rng, count=1) -> None:
    raw = bytearray(path.read_bytes())
    for offset in rng.choice(len(raw), count, replace=False):
        raw[offset] ^= 1 << int(rng.integers(8))
    path.write_bytes(bytes(raw))


@pytest.fixture(scope="module")
def fuzzed(world, tmp_path_factory):
    """Every fuzz case's command run in one subprocess (`tests/fuzz_job.py`): {id: result},
    with the undamaged originals' results as "tflite", "h5" and "run"."""
    root = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(42)
    fm, cases = str(world / "fm"), []

    def evaluate(case_id, target):
        cases.append([case_id, ["evaluate", str(target), "--data-dir", fm]])

    for i in range(6):  # .tflite with its card beside it, and without
        for kind in ("card", "bare"):
            path = root / f"{kind}{i}.tflite"
            shutil.copy(world / "run" / "model.tflite", path)
            if kind == "card":
                shutil.copy(world / "run" / "model.json", path.with_suffix(".json"))
            _flip(path, rng)
            evaluate(f"tflite-{kind}{i}", path)
    evaluate("tflite", world / "run" / "model.tflite")
    for i in range(6):  # a Keras HDF5 file: it carries no checksum of its weights
        path = root / f"h5-{i}" / "model.h5"
        path.parent.mkdir()
        shutil.copy(world / "run" / "model.h5", path)
        _flip(path, rng, count=4)
        evaluate(f"h5-{i}", path)
    evaluate("h5", world / "run" / "model.h5")
    for i in range(4):  # a run's config.json
        folder = root / f"config{i}"
        shutil.copytree(world / "run", folder, ignore=shutil.ignore_patterns("checkpoints", "logs", "model.tflite"))
        _flip(folder / "config.json", rng)
        evaluate(f"config-{i}", folder)
    evaluate("run", world / "run")
    # a checkpoint that a resumed run restores: the run's, without its final model.h5
    for i, part in enumerate(["data-00000-of-00001", "index"]):
        folder = root / f"ckpt{i}"
        shutil.copytree(world / "run", folder, ignore=shutil.ignore_patterns("model.h5", "results.json", "model.tflite", "model.json"))
        _flip(folder / "checkpoints" / f"ckpt-1.{part}", rng, count=2)
        cases.append([f"ckpt-{i}", ["train", "--resume", str(folder)]])
    (root / "cases.json").write_text(json.dumps(cases))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_job", str(root / "cases.json")],
        capture_output=True, text=True, timeout=900, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    results = {r["id"]: r for r in map(json.loads, filter(None, proc.stdout.splitlines()))}
    assert proc.returncode == 0 and len(results) == len(cases), proc.stderr[-3000:]
    return results, root


def _accuracy(result) -> float:
    return json.loads(result["stdout"].splitlines()[-1])["accuracy"]


@pytest.mark.parametrize("kind", ["tflite-card", "tflite-bare", "h5", "config", "ckpt"])
def test_damaged_files_give_one_line_or_a_correct_result(fuzzed, world, kind):
    """A damaged file is refused in one line, or (a flip that changes nothing read, such as
    a byte of the zip's directory of the card) gives the undamaged file's result. A Keras
    HDF5 file carries no checksum: a flipped weight gives another valid model, so for it
    only a clean outcome is asserted; the .tflite's packed card and TensorFlow's checkpoints
    carry checksums (sha256, CRC32C) that make any change to a weight an error."""
    results, root = fuzzed
    cases = {k: r for k, r in results.items() if k.startswith(kind) and k != kind}
    assert cases
    refused = 0
    for case_id, result in cases.items():
        assert result["exception"] is None, (case_id, result)
        if result["exit"] == 1:
            _one_error_line(result["stderr"])
            refused += 1
            continue
        assert result["exit"] == 0, (case_id, result)
        if case_id.startswith("tflite"):
            assert _accuracy(result) == _accuracy(results["tflite"]), case_id
        elif case_id.startswith("config"):
            assert _accuracy(result) == _accuracy(results["run"]), case_id
        elif case_id.startswith("ckpt"):  # it resumed after epoch 1: the run's own results
            folder = root / f"ckpt{case_id.split('-')[1]}"
            original = json.loads((world / "run" / "results.json").read_text())
            assert json.loads((folder / "results.json").read_text())["eval_accuracy"] == original["eval_accuracy"], case_id
    if kind in ("tflite-bare", "ckpt"):  # most flips fall in the flatbuffer or a tensor: caught
        assert refused >= len(cases) // 2, {k: r["stderr"] for k, r in cases.items()}


def test_run_files_resolve_a_run_folder_or_a_model_file(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "step1").mkdir(parents=True)
    (run_dir / "config.json").write_text('{"model": "reactnet-18"}')
    (run_dir / "results.json").write_text('{"eval_accuracy": 0.5}')
    (run_dir / "model.h5").write_text("a model")
    files = saving.run_files(run_dir)
    assert (files.model, files.folder, files.config, files.results) == (run_dir / "model.h5", run_dir, {"model": "reactnet-18"}, {"eval_accuracy": 0.5})
    assert saving.run_files(run_dir / "step1" / "model.h5").folder == run_dir  # a step's model: the run above it
    assert saving.run_files(tmp_path / "loose.h5") == saving.RunFiles(tmp_path / "loose.h5")
    # what convert may not write over, and what it may write
    assert saving.is_run_file(run_dir / "config.json") and saving.is_run_file(run_dir / "step1" / "history.csv")
    assert saving.is_run_file(run_dir / "checkpoints" / "x.tflite")
    assert not saving.is_run_file(run_dir / "model.tflite") and not saving.is_run_file(run_dir / "step1" / "model.json")
    (run_dir / "config.json").write_text('{"model": "reactnet-18",\n "x" 1}')
    with pytest.raises(saving.FileError, match=r"config.json is not valid JSON: Expecting ':' delimiter at line 2, column 6"):
        saving.run_files(run_dir)


def test_image_files_named_in_bytes_that_are_not_utf8_are_read(tmp_path):
    from larq_methods import data

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        _png(tmp_path / name / "0.png", (8, 8), value=10)
    _png(os.fsdecode(os.fsencode(tmp_path / "b") + b"/" + NOT_UTF8 + b".png"), (8, 8), value=200)
    source = data.load(str(tmp_path), "train")
    values = sorted((int(y), int(x.max())) for x, y in source.data.as_numpy_iterator())
    assert values == [(0, 10), (1, 10), (1, 200)]  # every file, the one named in bytes too
