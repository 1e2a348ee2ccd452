"""benchmarks/convergence.py trains a study run again with only its epochs changed, skips
what has finished, and judges convergence by issue 13's test."""

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from zoo.run import RunConfig

ROOT = Path(__file__).resolve().parent.parent
KEPT = ROOT / "benchmarks" / "results" / "study" / "reactnet-18-s0"  # a finished study run


@pytest.fixture(scope="module")
def convergence():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("convergence", ROOT / "benchmarks" / "convergence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def study_dirs(convergence, tmp_path, monkeypatch):
    """The kept study run of reactnet-18 seed 0 in a study folder under tmp_path."""
    out = tmp_path / "study"
    (out / "reactnet-18-s0").mkdir(parents=True)
    (out / "reactnet-18-s0" / "config.json").write_text((KEPT / "config.json").read_text())
    monkeypatch.setattr(convergence, "STUDY", SimpleNamespace(work=tmp_path / "work", out=out))
    monkeypatch.setattr(convergence, "WORK", tmp_path / "runs")
    monkeypatch.setattr(convergence, "OUT", tmp_path / "convergence")
    return tmp_path


def test_same_training_ignores_only_checkpoints_precise_bn_and_commands():
    config = RunConfig.load(KEPT)
    assert config.same_training(config.replace(checkpoint_seconds=600.0, checkpoint_steps=50, commands=("lqm train",)))
    assert config.same_training(config.replace(recipe=dataclasses.replace(config.recipe, precise_bn=50)))  # it only measures
    assert not config.same_training(config.replace(seed=1))
    assert not config.same_training(config.replace(recipe=dataclasses.replace(config.recipe, epochs=10)))


def test_the_longer_run_changes_only_the_epochs(convergence, study_dirs):
    kept = RunConfig.load(KEPT)
    longer = convergence.longer("reactnet-18", 0, 10, "python benchmarks/convergence.py")
    assert (longer.recipe.epochs, longer.recipe.precise_bn) == (10, 50) and kept.recipe.epochs == 5
    # the teacher is this clone's float twin of the study, whatever path the kept config names
    assert longer.teacher == str((study_dirs / "work" / "float-resnet18-s0").resolve())
    assert longer.commands == ("python benchmarks/convergence.py",)
    assert longer.replace(recipe=kept.recipe, teacher=kept.teacher, commands=kept.commands) == kept
    assert kept.same_training(longer.replace(recipe=dataclasses.replace(longer.recipe, epochs=5), teacher=kept.teacher))


def test_finished_runs_are_skipped_and_the_rest_trained(convergence, study_dirs, monkeypatch):
    finished = study_dirs / "convergence" / "e10" / "reactnet-a-s0"
    finished.mkdir(parents=True)
    (finished / "results.json").write_text("{}")
    trained = []
    monkeypatch.setattr(convergence.study, "restore_teacher", lambda model, args: None)
    monkeypatch.setattr(convergence.study, "train_run", lambda config, run_dir: trained.append((config.model, config.recipe.epochs, run_dir)) or run_dir)
    monkeypatch.setattr(convergence.study, "harvest", lambda model, seed, run_dir, out: {"accuracy": 0.9, "train_seconds": 60.0})
    committed = []
    monkeypatch.setattr(convergence.study, "commit", lambda folders, message: committed.append((folders, message)))
    args = SimpleNamespace(commit=True, seed=0, epochs=10)
    convergence.train_all(["reactnet-a", "reactnet-18"], args, "python benchmarks/convergence.py")
    assert trained == [("reactnet-18", 10, study_dirs / "runs" / "e10" / "reactnet-18-s0")]
    out = study_dirs / "convergence" / "e10"
    # the finished run, and the removal of its resume pack, if one was committed
    assert committed == [
        ([out / "reactnet-18-s0", out / ".resume" / "reactnet-18-s0"], "Convergence at 10 epochs per step: reactnet-18 seed 0: 90.00% after 1 min")
    ]


def test_convergence_is_the_last_two_epochs_within_a_fifth_of_a_point(convergence, study_dirs):
    def record(curve, epochs):
        return {"model": "reactnet-18", "seed": 0, "accuracy": curve[-1], "curve": curve, "epochs_per_step": epochs, "train_seconds": 600.0}

    # accuracies are counts out of 10,000 test images
    study = record([0.8913, 0.8955, 0.9031], 5)  # +0.76
    longer = record([0.9012, 0.9031, 0.9051], 10)  # +0.20: the bound itself passes
    assert convergence.last_move(study["curve"]) == 0.76
    assert convergence.last_move([0.9051, 0.9030]) == -0.21
    rows = convergence.table([(study, longer)]).splitlines()[2:]
    assert rows == [
        "| `reactnet-18` | 5 | 90.31% | 89.13, 89.55, 90.31 | +0.76 | **no** | moving averages | 10 |",
        "| `reactnet-18` | 10 | 90.51% | 90.12, 90.31, 90.51 | +0.20 | yes | moving averages | 10 |",
    ]
    # where the run measured PreciseBN, that curve is judged: a dip of the averages is not a move
    measured = {**longer, "curve": [0.9012, 0.4679, 0.9051], "curve_precise_bn": [0.9010, 0.9040, 0.9050]}
    assert convergence.table([(measured,)]).splitlines()[2] == "| `reactnet-18` | 10 | 90.51% | 90.10, 90.40, 90.50 | +0.10 | yes | PreciseBN | 10 |"


def test_a_model_without_a_finished_study_run_is_one_error_line(convergence, study_dirs):
    with pytest.raises(SystemExit, match=r"^no finished study run of reactnet-a seed 0 in .*study$"):
        convergence.main(["--models", "reactnet-a", "--report"])


def test_a_run_folder_of_other_settings_is_never_trained_over(convergence, study_dirs):
    run_dir = study_dirs / "runs" / "e10" / "reactnet-18-s0"
    run_dir.mkdir(parents=True)
    other = convergence.longer("reactnet-18", 0, 10, "python benchmarks/convergence.py").replace(seed=1)
    (run_dir / "config.json").write_text(json.dumps(other.to_json()))
    before = sorted(p.name for p in run_dir.iterdir())
    with pytest.raises(SystemExit, match=r"^.*reactnet-18-s0 holds a run of other settings; remove it or train elsewhere \(--work\)$"):
        convergence.study.train_run(convergence.longer("reactnet-18", 0, 10, "python benchmarks/convergence.py"), run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == before
