"""benchmarks/study.py survives interruption: a rerun skips finished (model, seed) runs,
redoes a half-written result and resumes a half-trained run."""

import importlib.util
import json
import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("study", os.path.join(ROOT, "benchmarks", "study.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_jobs_train_the_twins_first_then_a_seed_of_everything_baselines_first(study):
    assert study.jobs(["insta-resnet18", "reactnet-18", "insta-mobilenet", "reactnet-a"], [0, 1]) == [
        ("float-mobilenet", 0), ("float-resnet18", 0),
        ("reactnet-18", 0), ("reactnet-a", 0), ("insta-resnet18", 0), ("insta-mobilenet", 0),
        ("reactnet-18", 1), ("reactnet-a", 1), ("insta-resnet18", 1), ("insta-mobilenet", 1),
    ]  # fmt: skip


@pytest.mark.slow
def test_study_skips_finished_runs_redoes_half_written_ones_and_resumes(study, tmp_path, data_dir, capsys):
    work, out = tmp_path / "work", tmp_path / "results" / "study"
    argv = [
        "--models", "reactnet-18", "--seeds", "0", "--epochs", "1", "--alpha", "0.125",
        "--data-dir", str(data_dir), "--work", str(work), "--out", str(out),
    ]  # fmt: skip
    study.main(argv)
    assert sorted(p.name for p in out.iterdir()) == ["float-resnet18-s0", "reactnet-18-s0"]
    record = json.loads((out / "reactnet-18-s0" / "results.json").read_text())
    assert (record["steps"], record["epochs_per_step"], len(record["curve"]), record["teacher"]) == (2, 1, 2, "float-resnet18-s0")
    assert sorted(p.name for p in (out / "reactnet-18-s0").iterdir()) == [
        "config.json", "model.npz", "results.json", "step1-history.csv", "step2-history.csv",
    ]  # fmt: skip
    twin = json.loads((out / "float-resnet18-s0" / "results.json").read_text())
    assert (twin["steps"], len(twin["curve"])) == (1, 2)  # one step of both steps' epochs
    report = (tmp_path / "results" / "study.md").read_text()
    assert "| `reactnet-18` | code | 0 |" in report and (tmp_path / "results" / "study.png").exists()
    capsys.readouterr()

    # finished: nothing trains again
    stamp = (out / "float-resnet18-s0" / "results.json").stat().st_mtime_ns
    study.main(argv)
    assert "seed 0:" not in capsys.readouterr().out
    assert (out / "float-resnet18-s0" / "results.json").stat().st_mtime_ns == stamp

    # a result written halfway (no results.json) of a run killed in step 2 after its
    # last checkpoint: the run resumes (nothing left to train) and its result is redone
    (out / "reactnet-18-s0" / "results.json").unlink()
    for name in ("model.h5", "results.json", "step2/model.h5"):
        (work / "reactnet-18-s0" / name).unlink()
    shutil.rmtree(work / "reactnet-18-s0" / "step2" / "logs")
    study.main(argv)
    printed = capsys.readouterr().out
    assert "Resuming reactnet-18" in printed and "reactnet-18 seed 0:" in printed and "float-resnet18 seed 0" not in printed
    redone = json.loads((out / "reactnet-18-s0" / "results.json").read_text())
    assert {k: v for k, v in redone.items() if k != "train_seconds"} == {k: v for k, v in record.items() if k != "train_seconds"}
