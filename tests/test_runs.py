"""A run as a library object: its configuration, bit-reproducible runs, exact resume after
Ctrl-C or SIGKILL, extension, --init, file modes and the import order."""

import dataclasses
import json
import os
import shlex
import stat
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import tensorflow as tf

import zoo
from larq_methods import saving, training
from larq_methods.method import Method
from tests.test_cli import assert_one_line_error, run as lqm
from zoo import registry
from zoo.run import DataConfig, RunConfig, RunConfigError
from zoo.run import run as run_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_config(data_dir, **changes) -> RunConfig:
    """reactnet-18 at alpha 0.125: 5 steps of 8 images per epoch, 2 epochs."""
    config = RunConfig(
        model="reactnet-18",
        method=zoo.get_entry("reactnet-18").method,
        recipe=training.Recipe(epochs=2, batch_size=8, learning_rate=1e-2),
        data=DataConfig(data_dir=str(data_dir)),
        alpha=0.125,
    )
    return config.replace(**changes)


def weights_of(h5_file) -> dict:
    out = {}

    def keep(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    with h5py.File(h5_file, "r") as f:
        f["model_weights"].visititems(keep)
    return out


def assert_same_run(a, b):
    assert (a / "history.csv").read_text() == (b / "history.csv").read_text()
    wa, wb = weights_of(a / "model.h5"), weights_of(b / "model.h5")
    assert wa.keys() == wb.keys() and len(wa) > 50
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
    """The uninterrupted run that the others must equal."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run_config(small_config(data_dir), run_dir, verbose=0, echo=lambda _: None)
    return run_dir


# -- the configuration ------------------------------------------------------------------------


def test_config_round_trips_and_refuses_unknown_versions(data_dir, tmp_path):
    config = small_config(data_dir, teacher="runs/teacher", commands=("lqm train reactnet-18 --seed 1",))
    assert RunConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert config.to_json()["version"] == 1
    with pytest.raises(RunConfigError, match="config version 99 is not one this lqm reads"):
        RunConfig.from_json({**config.to_json(), "version": 99})
    with pytest.raises(RunConfigError, match="unreadable run configuration"):
        RunConfig.from_json({**config.to_json(), "method": {"threshold": "nope"}})
    (tmp_path / "config.json").write_text(json.dumps({**config.to_json(), "version": 99}))
    assert_one_line_error(lqm("train", "--resume", tmp_path), "config.json: config version 99 is not one this lqm reads")


def test_a_teacher_and_init_beside_the_run_are_saved_relative_so_runs_move_together(data_dir, tmp_path):
    tmp_path = tmp_path.resolve()  # as paths are read back
    runs = tmp_path / "runs"
    for folder in ("teacher", "student/init"):
        (runs / folder).mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    run_dir = runs / "student"
    config = small_config(data_dir, teacher=str(runs / "teacher"), init=str(run_dir / "init"))
    saved = config.to_json(run_dir)
    assert (saved["teacher"], saved["init"]) == ("../teacher", "./init")
    assert config.to_json()["teacher"] == str(runs / "teacher")  # without a run folder: as it is
    training.write_json(run_dir / "config.json", saved)
    assert RunConfig.load(run_dir) == config
    # the folder of runs moved: the paths follow it
    moved = tmp_path / "moved"
    runs.rename(moved)
    loaded = RunConfig.load(moved / "student")
    assert (loaded.teacher, loaded.init) == (str(moved / "teacher"), str(moved / "student" / "init"))
    # a path elsewhere stays absolute, a registered name stays a name
    for spec in (str(tmp_path / "elsewhere"), "float-resnet18"):
        assert config.replace(teacher=spec).to_json(moved / "student")["teacher"] == spec
        assert RunConfig.from_json(config.replace(teacher=spec).to_json(), moved / "student").teacher == spec


def test_config_without_a_version_is_refused():
    """A config.json without a version (not written by this lqm) is refused, not guessed at."""
    with pytest.raises(RunConfigError, match="config version None is not one this lqm reads"):
        RunConfig.from_json({"options": {"model_name": "reactnet-18"}, "method": Method().as_dict()})


# -- reproducible runs ------------------------------------------------------------------------


def test_same_seed_gives_the_same_run_and_another_seed_does_not(tmp_path, data_dir, reference):
    run_config(small_config(data_dir), tmp_path / "again", verbose=0, echo=lambda _: None)
    assert_same_run(reference, tmp_path / "again")
    run_config(small_config(data_dir, seed=1), tmp_path / "seed1", verbose=0, echo=lambda _: None)
    assert (tmp_path / "seed1" / "history.csv").read_text() != (reference / "history.csv").read_text()
    config = json.loads((reference / "config.json").read_text())
    assert config["deterministic"] and config["data"]["image_size"] == 28  # resolved, then saved


class _CtrlCAt(tf.keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt


def test_resume_after_ctrl_c_mid_epoch_equals_the_uninterrupted_run(tmp_path, data_dir, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(training.Interrupted, match="interrupted during epoch 2"):
        run_config(small_config(data_dir), run_dir, verbose=0, echo=lambda _: None, callbacks=[_CtrlCAt(1, 2)])
    first_seconds = training.run_seconds(run_dir, training.Recipe(), Method())
    result = lqm("train", "--resume", run_dir)  # the CLI, from config.json alone
    assert result.exit_code == 0, result.output
    assert_same_run(reference, run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train_seconds"] > first_seconds > 0  # both segments


KILLER = """
import os, signal, sys, json
sys.path.insert(0, {root!r})
import larq_methods, tensorflow as tf
from zoo.run import RunConfig, run

class Kill(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == (1, 3):
            os.kill(os.getpid(), signal.SIGKILL)

config = RunConfig.from_json(json.loads({config!r}))
run(config, {run_dir!r}, verbose=0, callbacks=[Kill()])
"""


def test_resume_after_sigkill_mid_epoch_equals_the_uninterrupted_run(tmp_path, data_dir, reference):
    """A real process killed outright in epoch 2, after its step-2 checkpoint: the resumed
    run redoes the step after that checkpoint and ends bit-identical."""
    run_dir = tmp_path / "run"
    config = small_config(data_dir, checkpoint_steps=2)
    script = KILLER.format(root=ROOT, config=json.dumps(config.to_json()), run_dir=str(run_dir))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (run_dir / "model.h5").exists()
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    assert tf.train.load_variable(latest, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 7  # 5 + 2
    run_config(RunConfig.load(run_dir), run_dir, resume=True, verbose=0, echo=lambda _: None)
    assert_same_run(reference, run_dir)


def test_resume_rebuilds_the_saved_method_after_its_preset_changed(tmp_path, data_dir, monkeypatch):
    run_dir = tmp_path / "run"
    config = small_config(data_dir, model="insta-resnet18", method=zoo.get_entry("insta-resnet18").method)
    with pytest.raises(training.Interrupted):
        run_config(config, run_dir, verbose=0, echo=lambda _: None, callbacks=[_CtrlCAt(0, 1)])
    entry = registry.get_entry("insta-resnet18")
    monkeypatch.setitem(registry._REGISTRY, "insta-resnet18", dataclasses.replace(entry, method=Method()))
    assert zoo.get_entry("insta-resnet18").method == Method()  # the preset has changed
    result = lqm("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    model = saving.load_model(run_dir / "model.h5")
    assert type(model.get_layer("block1_sign")).__name__ == "InstaThreshold"


def test_epochs_extend_a_finished_run(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    run_config(small_config(data_dir, recipe=training.Recipe(epochs=1, batch_size=8)), run_dir, verbose=0, echo=lambda _: None)
    result = lqm("train", "--resume", run_dir, "--epochs", 3)
    assert result.exit_code == 0, result.output
    assert training.read_history(run_dir / "history.csv")["epoch"] == [0, 1, 2]
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    assert tf.train.load_variable(latest, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 15
    config = RunConfig.load(run_dir)
    assert config.recipe.epochs == 3 and config.commands[-1] == f"lqm train --resume {run_dir} --epochs 3"
    assert_one_line_error(lqm("train", "--resume", run_dir, "--epochs", 2), "--epochs can only extend it")


# -- starting from weights --------------------------------------------------------------------


class _FirstWeights(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            self.weights = {w.name: w.numpy() for w in self.model.weights}


def test_init_from_a_run_a_file_and_a_registered_name(tmp_path, data_dir, reference):
    source = saving.load_model(reference / "model.h5")
    expected = {w.name: w.numpy() for w in source.weights}
    for spec in (reference, reference / "model.h5"):
        seen = _FirstWeights()
        out = tmp_path / f"from-{spec.name}"
        run_config(small_config(data_dir, init=str(spec), recipe=training.Recipe(epochs=1, batch_size=8)), out, verbose=0, echo=lambda _: None, callbacks=[seen])
        assert seen.weights.keys() == expected.keys()
        for name, value in expected.items():
            np.testing.assert_array_equal(seen.weights[name], value, err_msg=name)
    # a registered name: its pretrained Fashion-MNIST weights (alpha 0.25)
    seen = _FirstWeights()
    config = small_config(data_dir, alpha=0.25, init="reactnet-18", recipe=training.Recipe(epochs=1, batch_size=8))
    run_config(config, tmp_path / "from-name", verbose=0, echo=lambda _: None, callbacks=[seen])
    pretrained = zoo.create_model("reactnet-18", weights="fashion_mnist")
    for w in pretrained.weights:
        np.testing.assert_array_equal(seen.weights[w.name], w.numpy(), err_msg=w.name)


def test_init_mismatches_are_one_line_and_leave_nothing(tmp_path, data_dir, reference):
    out = tmp_path / "run"
    common = ["train", "--alpha", 0.125, "--batch-size", 8, "--data-dir", data_dir, "-o", out]
    assert_one_line_error(lqm(*common, "insta-resnet18", "--init", reference), "the initial weights are of another model or method: layer block1_sign is a RSign there and block1_sign a InstaThreshold here")
    assert_one_line_error(lqm(*common[:2], 0.25, *common[3:], "reactnet-18", "--init", reference), "cannot transfer", "initial weight(s) into this model")
    assert_one_line_error(lqm(*common, "reactnet-18", "--init", tmp_path / "absent"), "--init", "neither a model file, a run folder nor a model name")
    assert not out.exists()


# -- small things -----------------------------------------------------------------------------


def test_outputs_honour_the_umask(tmp_path, reference):
    old = os.umask(0o022)
    try:
        saving.write_bytes(tmp_path / "model.tflite", b"x")
        training.write_json(tmp_path / "model.json", {})
        for path in (tmp_path / "model.tflite", tmp_path / "model.json"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    finally:
        os.umask(old)
    for name in ("config.json", "results.json", "history.csv", "model.h5"):  # a run under the tests' umask
        assert stat.S_IMODE((reference / name).stat().st_mode) == 0o666 & ~old, name


def test_the_command_line_is_recorded_quoted_and_progress_shows_loss_and_accuracy(tmp_path, data_dir):
    out = tmp_path / "my run"
    args = ["train", "reactnet-18", "--recipe", "one-step", "--alpha", "0.125", "--train-split", "train[:16]", "--batch-size", "8", "--data-dir", str(data_dir), "-o", str(out)]
    result = lqm(*args)
    assert result.exit_code == 0, result.output
    (command,) = RunConfig.load(out).commands
    assert shlex.split(command) == ["lqm", *args]
    assert "oscillation" not in result.stdout and "val_accuracy" in result.stdout
    assert "oscillation/mean" in (out / "history.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("first", ["import larq", "import tensorflow", "import tf_keras"])
def test_larq_methods_imports_after_larq_or_tensorflow(first):
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": ROOT}
    code = f"{first}; import larq_methods, tensorflow as tf; print(tf.keras.layers.Dense.__module__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith("tf_keras")
