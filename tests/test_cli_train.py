"""`lqm train`'s recipes from the command line: two-step, distillation, --resume and
Ctrl-C, and the one-line errors of their options (the library's side is in
test_training.py)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import zoo
from larq_methods import costs, data, saving, training
from zoo import pretrained
from zoo.run import RunConfig
from tests.test_cli import assert_one_line_error, run

# the cheapest real model on the tiny data: 2 steps of 16 images per epoch
SMALL = ["--recipe", "one-step", "--alpha", 0.125, "--train-split", "train[:32]", "--batch-size", 16]


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory, data_dir):
    """A complete one-step run of float-resnet18: a teacher, and a run to refuse resuming."""
    run_dir = tmp_path_factory.mktemp("teacher") / "run"
    result = run("train", "float-resnet18", *SMALL, "--data-dir", data_dir, "-o", run_dir)
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="module")
def distilled_two_step(tmp_path_factory, data_dir, teacher_run):
    """reactnet-18, two-step, distilled from `teacher_run`, in the folder beside it: one run
    for the tests below (the tests' time goes to tracing each step's training function)."""
    run_dir = teacher_run.parent / "student"
    result = run(
        "train", "reactnet-18", *SMALL, "--recipe", "two-step", "--epochs", 1, "--teacher", teacher_run,
        "--precise-bn", 1, "--data-dir", data_dir, "-o", run_dir,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run_dir, result.stdout


def binary_convolutions(model):
    return {layer.name: layer for layer in costs.flat_layers(model) if "bconv" in layer.name}


def test_two_step_recipe_writes_both_steps_and_binarises_weights_in_step_2(distilled_two_step):
    run_dir, stdout = distilled_two_step
    assert "step1: binarise=activations, weight decay 1e-05\n" in stdout
    assert "step2: ReActNet (static threshold, RPReLU), weight decay 0\n" in stdout
    for step in ("step1", "step2"):
        for part in ("model.h5", "history.csv", "curves.png", "checkpoints/checkpoint", "logs/train", "logs/validation"):
            assert (run_dir / step / part).exists(), f"{step}/{part}"
        history = training.read_history(run_dir / step / "history.csv")
        assert len(history["epoch"]) == 1 and 0 <= history["val_precise_bn_accuracy"][0] <= 1
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "model.h5", "results.json", "step1", "step2"]

    config = json.loads((run_dir / "config.json").read_text())
    steps = [(s["folder"], s["method"]["binarise"], s["weight_decay"]) for s in config["info"]["steps"]]
    assert steps == [("step1", "activations", 1e-5), ("step2", "all", 0.0)]
    assert config["recipe"]["recipe"] == "two-step" and config["method"]["binarise"] == "all"
    assert config["recipe"]["precise_bn"] == 1
    results = json.loads((run_dir / "results.json").read_text())
    assert results["eval_examples"] == 20 and 0 <= results["eval_accuracy"] <= 1

    step1 = binary_convolutions(saving.load_model(run_dir / "step1" / "model.h5"))
    final_model = saving.load_model(run_dir / "model.h5")
    final = binary_convolutions(final_model)
    assert sorted(step1) == sorted(final) and len(final) == 16  # ReActNet-18's 16 3x3 binary convolutions
    for name in final:
        assert step1[name].kernel_quantizer is None, name  # step 1: real weights...
        assert costs.has_binary_kernel(final[name]), name  # ...step 2: 1-bit weights
        assert costs.has_binary_input(step1[name]) and costs.has_binary_input(final[name]), name
    # the run's model is step 2's
    step2_model = saving.load_model(run_dir / "step2" / "model.h5")
    for a, b in zip(final_model.weights, step2_model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


def test_distillation_from_a_trained_float_teacher_run(distilled_two_step, teacher_run, data_dir):
    run_dir, stdout = distilled_two_step
    assert f"two-step, distilled from {teacher_run}, on 32 fashion_mnist images" in stdout
    config = json.loads((run_dir / "config.json").read_text())
    assert config["teacher"] == "../run"  # beside the run: relative, so the two can move together
    # step 2's evaluation loss is the distributional loss against the teacher, not the labels

    x, y = next(iter(data.pipeline(data.load("fashion_mnist", "test", data_dir), image_size=28, channels=1, batch_size=20, training=False)))
    student, teacher = saving.load_model(run_dir / "model.h5"), saving.load_model(teacher_run / "model.h5")
    p_student, p_teacher = student(x, training=False), teacher(x, training=False)
    against_teacher = float(tf.reduce_mean(tf.keras.losses.categorical_crossentropy(p_teacher, p_student)))
    against_labels = float(tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, p_student)))
    val_loss = training.read_history(run_dir / "step2" / "history.csv")["val_loss"][-1]
    assert val_loss == pytest.approx(against_teacher, rel=1e-4)
    assert abs(val_loss - against_labels) > 0.01
    # the teacher is read, never written
    assert sorted(p.name for p in teacher_run.iterdir()) == [
        "checkpoints", "config.json", "curves.png", "history.csv", "logs", "model.h5", "results.json",
    ]  # fmt: skip


def test_teacher_errors(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("LQM_CACHE_DIR", str(tmp_path / "cache"))  # no downloaded weights
    out = tmp_path / "run"
    student = ["train", "reactnet-18", *SMALL, "--data-dir", data_dir, "-o", out]

    assert_one_line_error(run(*student, "--teacher", tmp_path / "absent"), f"--teacher {tmp_path / 'absent'}: neither a model file, a run folder nor a model name")
    for name, shape, classes in (("five-classes.h5", (28, 28, 1), 5), ("32x32.h5", (32, 32, 1), 10)):
        zoo.create_model("float-resnet18", input_shape=shape, num_classes=classes, alpha=0.125).save(tmp_path / name)
    assert_one_line_error(
        run(*student, "--teacher", tmp_path / "five-classes.h5"),
        "takes (28, 28, 1) and gives 5 classes; this run's model takes (28, 28, 1) and gives 10",
    )
    assert_one_line_error(
        run(*student, "--teacher", tmp_path / "32x32.h5"),
        "takes (32, 32, 1) and gives 10 classes; this run's model takes (28, 28, 1) and gives 10",
    )
    empty_registry = tmp_path / "registry.json"
    empty_registry.write_text("[]")
    monkeypatch.setattr(pretrained, "REGISTRY_FILE", empty_registry)  # as if none shipped
    assert_one_line_error(
        run(*student, "--teacher", "float-resnet18"),
        "--teacher float-resnet18: no pretrained fashion_mnist weights",
        "train float-resnet18 first and pass its run folder",
    )
    assert not out.exists()  # every check comes before the run folder


def test_resume_refusals(tmp_path, teacher_run):
    for extra, named in ((["--seed", 3], "--seed"), (["-o", tmp_path / "x"], "--output"), (["--recipe", "two-step", "--alpha", 1], "--recipe, --alpha")):
        result = run("train", "--resume", teacher_run, *extra)
        assert result.exit_code == 2, result.output
        assert f"--resume takes the run's options from its config.json (only --epochs may change); drop {named}\n" in result.stderr
    result = run("train", "reactnet-18", "--resume", teacher_run)
    assert result.exit_code == 2 and "drop MODEL\n" in result.stderr, result.output

    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "absent"):
        assert_one_line_error(run("train", "--resume", folder), f"{folder} is not a run folder of `lqm train` (no config.json)")
    assert list(empty.iterdir()) == []

    before = {p: p.stat().st_mtime_ns for p in teacher_run.rglob("*")}
    assert_one_line_error(run("train", "--resume", teacher_run), f"{teacher_run} is complete: every step has its model.h5 and 1 epoch(s); a larger --epochs extends it")
    assert {p: p.stat().st_mtime_ns for p in teacher_run.rglob("*")} == before


def test_resume_after_the_last_checkpoint_writes_only_the_final_files(tmp_path, distilled_two_step):
    """A run stopped between its last step's model.h5 and results.json (the last files a run
    writes), moved with its teacher: --resume copies the final model and writes results.json,
    training nothing."""
    shutil.copytree(distilled_two_step[0].parent, tmp_path / "moved")
    run_dir = tmp_path / "moved" / "student"
    assert RunConfig.load(run_dir).teacher == str((tmp_path / "moved" / "run").resolve())
    results = json.loads((run_dir / "results.json").read_text())
    for name in ("model.h5", "results.json"):
        (run_dir / name).unlink()
    steps = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.parent != run_dir}

    result = run("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert f"{run_dir}: training had finished; wrote its final model.h5 and results.json" in result.stdout
    assert (run_dir / "model.h5").read_bytes() == (run_dir / "step2" / "model.h5").read_bytes()
    assert json.loads((run_dir / "results.json").read_text()) == results
    assert {p: p.stat().st_mtime_ns for p in steps} == steps  # no step trained again
    assert_one_line_error(run("train", "--resume", run_dir), f"{run_dir} is complete")


def test_strategy_and_warmup_errors(tmp_path, data_dir, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "run"
    common = ["train", "reactnet-18", *SMALL, "--data-dir", data_dir, "-o", out]
    assert_one_line_error(run(*common, "--strategy", "multi-worker"), "--strategy multi-worker needs TF_CONFIG")
    assert_one_line_error(run(*common, "--epochs", 2, "--warmup-epochs", 2), "the warm-up (2.0 epochs) must be shorter than a step (2 epochs)")
    assert not out.exists()


@pytest.mark.slow
def test_ctrl_c_checkpoints_and_resume_finishes_the_run(tmp_path, tiny_fashion_mnist):
    lqm_bin = shutil.which("lqm", path=os.path.dirname(sys.executable)) or shutil.which("lqm")
    assert lqm_bin, "the package is not installed (pip install -e .)"
    epochs, run_dir = 8, tmp_path / "run"
    command = [lqm_bin, "train", "reactnet-18", *map(str, SMALL), "--epochs", str(epochs), "--data-dir", str(tiny_fashion_mnist), "-o", str(run_dir)]
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        # SIGINT as a terminal sends it, even if this test runs where it is ignored (a
        # background job of a script): the child would inherit the ignoring
        restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True, preexec_fn=restore)
        try:
            deadline = time.monotonic() + 300
            while not (run_dir / "checkpoints" / "checkpoint").exists():  # after epoch 1
                assert proc.poll() is None, (tmp_path / "stderr").read_text()
                assert time.monotonic() < deadline, "no checkpoint after 300 s"
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=120) == 130, (tmp_path / "stderr").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    errors = (tmp_path / "stderr").read_text()
    hint = [line for line in errors.splitlines() if "continue with:" in line]
    assert len(hint) == 1 and hint[0].endswith(f"; continue with: lqm train --resume {run_dir}"), errors
    assert hint[0].startswith("interrupted during epoch ") and f"checkpointed in {run_dir / 'checkpoints'}" in hint[0]
    assert "Traceback" not in errors
    assert not (run_dir / "model.h5").exists() and not (run_dir / "results.json").exists()
    cut = int(hint[0].split()[3].rstrip(";"))  # "interrupted during epoch N"
    assert 2 <= cut <= epochs

    # exactly the hint's command: the run's data folder comes from its config.json
    result = run("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Resuming reactnet-18")
    history = training.read_history(run_dir / "history.csv")
    assert history["epoch"] == list(range(epochs))
    results = json.loads((run_dir / "results.json").read_text())
    assert results["eval_examples"] == 20  # the tiny test split, not the real one
    assert (run_dir / "model.h5").exists()
