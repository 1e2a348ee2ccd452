"""The study is `lqm compare` commands (benchmarks/study.md); benchmarks/publish.py ships a
comparison's weights by validation (or a fixed seed), never by test."""

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def publish():
    spec = importlib.util.spec_from_file_location("publish", ROOT / "benchmarks" / "publish.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def study_commands() -> list[list[str]]:
    text = (ROOT / "benchmarks" / "study.md").read_text()
    return [shlex.split(line) for line in re.findall(r"^lqm compare .*$", text, re.M)]


def test_the_documented_study_commands_are_valid_comparisons_of_both_families():
    from cli.compare import compare
    from zoo import recipes

    commands = study_commands()
    assert len(commands) == 2
    families = []
    for args in commands:
        context = compare.make_context("compare", args[2:])  # parses and validates, runs nothing
        p = context.params
        assert (p["alpha"], p["image_size"], p["seeds"], p["recipe"], p["epochs"]) == (0.25, 28, 2, "paper", None)
        assert p["dataset"] == "fashion_mnist" and p["output"].startswith("benchmarks/results/compare/")
        baseline, *_, twin = p["models"]
        assert recipes.float_twin(baseline) == twin  # the twin is compared, so it teaches
        families.append(set(p["models"]))
    assert families == [
        {"float-quicknet", "quicknet", "insta-quicknet", "dybnn-quicknet"},
        {"float-birealnet", "birealnet", "insta-birealnet", "dybnn-birealnet"},
    ]


REPORT = {
    "settings": {"models": ["quicknet", "insta-quicknet"], "dataset": "fashion_mnist", "seeds": 2, "recipe": "paper", "validation_split": 0.1},
    "teacher": "float-quicknet-s0",
    "test_split": "test",
    "models": [{"model": "quicknet", "selected_run": "quicknet-s1"}, {"model": "insta-quicknet", "selected_run": "insta-quicknet-s0"}],
    "runs": [
        {"run": "quicknet-s0", "model": "quicknet", "seed": 0, "validation_accuracy": 0.90, "test_accuracy": 0.99},
        {"run": "insta-quicknet-s0", "model": "insta-quicknet", "seed": 0, "validation_accuracy": 0.91, "test_accuracy": 0.80},
        {"run": "quicknet-s1", "model": "quicknet", "seed": 1, "validation_accuracy": 0.92, "test_accuracy": 0.10},
        {"run": "insta-quicknet-s1", "model": "insta-quicknet", "seed": 1, "validation_accuracy": 0.89, "test_accuracy": 0.95},
    ],
}
CONFIG = {
    "model": "quicknet", "alpha": 0.25, "seed": 1, "method": {"threshold": "none"},
    "recipe": {"recipe": "two-step", "epochs": 10, "batch_size": 256, "learning_rate": 0.00125, "schedule": "linear"},
    "data": {"image_size": 28, "channels": 1}, "info": {"input_shape": [28, 28, 1], "num_classes": 10},
    "teacher": "../float-quicknet-s0",
}  # fmt: skip


def test_publish_ships_the_selected_run_or_a_fixed_seed(publish):
    assert publish.chosen_run(REPORT, "quicknet")["run"] == "quicknet-s1"  # the comparison's validation choice
    assert publish.chosen_run(REPORT, "insta-quicknet")["run"] == "insta-quicknet-s0"
    assert publish.chosen_run(REPORT, "quicknet", seed=0)["run"] == "quicknet-s0"
    with pytest.raises(SystemExit, match="has no seed 5"):
        publish.chosen_run(REPORT, "quicknet", seed=5)
    with pytest.raises(SystemExit, match="not in this comparison"):
        publish.chosen_run(REPORT, "birealnet")


def test_a_registry_entry_says_how_its_run_was_chosen(publish):
    from zoo import pretrained

    run = publish.chosen_run(REPORT, "quicknet")
    entry = publish.entry(REPORT, run, CONFIG, seed_rule=None, sha256="ab" * 32, accuracy=0.91234, source="benchmarks/results/compare/quicknet", date="2026-12-07")
    weights = pretrained.Weights(**entry)  # what the registry reads
    assert (weights.file, weights.accuracy, weights.input_shape, weights.num_classes) == ("quicknet-fashion_mnist.npz", 0.9123, (28, 28, 1), 10)
    assert weights.recipe["chosen_by"] == "best validation accuracy of seeds 0-1 (10% of train held out)"
    assert (weights.recipe["seed"], weights.recipe["validation_accuracy"], weights.recipe["steps"]) == (1, 0.92, 2)
    assert weights.recipe["run"] == "benchmarks/results/compare/quicknet/quicknet-s1"
    fixed = publish.entry(REPORT, publish.chosen_run(REPORT, "quicknet", 0), CONFIG, seed_rule=0, sha256="", accuracy=0.9, source="", date="")
    assert fixed["recipe"]["chosen_by"] == "seed 0 of 0-1, fixed before training (a stated rule)"
    assert entry["recipe"]["teacher"] == "float-quicknet-s0"  # the comparison's twin, by its run
    twin_run = {**run, "run": "float-quicknet-s1", "model": "float-quicknet"}
    twin = publish.entry(REPORT, twin_run, {**CONFIG, "model": "float-quicknet", "teacher": None}, seed_rule=None, sha256="", accuracy=0.9, source="", date="")
    assert twin["recipe"]["teacher"] is None  # the twin learns from the labels


def test_with_entry_replaces_the_same_model_and_dataset_and_keeps_the_order(publish):
    registry = [{"model": "b", "dataset": "fashion_mnist", "v": 1}, {"model": "a", "dataset": "cifar10", "v": 1}]
    new = publish.with_entry(registry, {"model": "b", "dataset": "fashion_mnist", "v": 2})
    assert new == [{"model": "a", "dataset": "cifar10", "v": 1}, {"model": "b", "dataset": "fashion_mnist", "v": 2}]
    assert publish.with_entry(new, {"model": "a", "dataset": "fashion_mnist"})[1] == {"model": "a", "dataset": "fashion_mnist"}


def test_nothing_of_the_product_runs_git_or_writes_the_registry():
    for folder in ("larq_methods", "zoo", "cli"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert '"git"' not in text and "'git'" not in text, path
            assert "REGISTRY_FILE.write" not in text, path
    assert "subprocess" not in (ROOT / "benchmarks" / "publish.py").read_text()
