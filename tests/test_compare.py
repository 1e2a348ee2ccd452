"""`lqm compare` (zoo.compare): one small comparison shared by the module, interrupted
once and resumed; the statistics and choices on hand-made figures; the held-out
validation part."""

import csv
import io
import json
import math
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from larq_methods import benchmark, convert, data, precise_bn, saving, training
from zoo import compare as lqcompare
from zoo.compare import Comparison, Settings

MODELS = ("reactnet-18", "insta-resnet18")


def tiny_settings(data_dir, **changes) -> Settings:
    base = dict(models=MODELS, data_dir=str(data_dir), seeds=2, recipe="one-step", epochs=1, alpha=0.25, image_size=16)
    return Settings(**{**base, **changes})


@pytest.fixture(scope="module")
def compared(tmp_path_factory, data_dir):
    """Two models, two seeds, one epoch: stopped before its third run, the first run's
    checkpoints removed (as a study kept in git has it), the second's results.json removed
    (as if stopped after its last checkpoint), then rerun to the end with a latency budget
    of 1.5 times the baseline's."""
    directory = tmp_path_factory.mktemp("compare") / "cmp"
    settings = tiny_settings(data_dir)
    real, calls = Comparison.train_run, []

    def stopping(self, name):
        calls.append(name)
        if len(calls) == 3:
            raise training.Interrupted("stopped by the test")
        real(self, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Comparison, "train_run", stopping)
        with pytest.raises(training.Interrupted):
            Comparison(settings, directory, echo=lambda line: None).run(latency_runs=3)
    first = {name: (directory / name / "model.h5").stat().st_mtime_ns for name in calls[:2]}
    # the first run as a study keeps it in git: its results and model, no checkpoints
    for checkpoints in list((directory / calls[0]).rglob("checkpoints")):
        shutil.rmtree(checkpoints)
    results = json.loads((directory / calls[1] / "results.json").read_text())
    (directory / calls[1] / "results.json").unlink()
    trained = []

    def recording(self, name):
        trained.append(name)
        real(self, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Comparison, "train_run", recording)
        comparison = Comparison(settings, directory, echo=lambda line: None)
        report = comparison.run(budget="1.5x", latency_runs=3)
    return SimpleNamespace(directory=directory, settings=settings, report=report, comparison=comparison,
                           first=first, stopped_before=calls[2], trained=trained, results=results)  # fmt: skip


@pytest.mark.slow  # shares `compared`: four runs, two conversions (~3 min on 2 cores)
def test_a_rerun_finishes_the_rest_without_retraining_finished_runs(compared):
    assert list(compared.first) == ["reactnet-18-s0", "insta-resnet18-s0"]  # seed 0 of everything first
    assert compared.stopped_before == "reactnet-18-s1"
    # the second run only gets its results.json again: the same, from its own files
    assert compared.trained == ["insta-resnet18-s0", "reactnet-18-s1", "insta-resnet18-s1"]
    assert json.loads((compared.directory / "insta-resnet18-s0" / "results.json").read_text()) == compared.results
    assert not list((compared.directory / "reactnet-18-s0").rglob("checkpoints"))  # kept without them
    for name, mtime in compared.first.items():
        assert (compared.directory / name / "model.h5").stat().st_mtime_ns == mtime


@pytest.mark.slow  # shares `compared`: four runs, two conversions (~3 min on 2 cores)
def test_each_run_is_an_ordinary_run_folder_evaluated_on_validation_and_tested_once(compared, data_dir):
    for run in compared.report["runs"]:
        folder = compared.directory / run["run"]
        config = json.loads((folder / "config.json").read_text())
        results = json.loads((folder / "results.json").read_text())
        assert (config["data"]["train_split"], config["data"]["eval_split"]) == ("train", "validation")
        assert config["data"]["validation_split"] == 0.1 and config["seed"] == run["seed"]
        assert config["data"]["validation_seed"] == 0  # one held-out part for every run
        assert results["eval_examples"] == 4 == run["validation_examples"]  # 10% of 40
        assert run["validation_accuracy"] == results["eval_accuracy"]
        assert run["validation_curve"][-1] == results["eval_accuracy"]
        assert run["test_accuracy"] == json.loads((folder / "test.json").read_text())["accuracy"]
    # the test figure is the final model's on the whole test split
    run = compared.report["runs"][0]
    model = saving.load_model(compared.directory / run["run"] / "model.h5")
    test_set = data.load("fashion_mnist", "test", str(data_dir))
    batches = data.pipeline(test_set, image_size=16, channels=1, batch_size=7, training=False)
    assert test_set.num_examples == 20 and precise_bn.top1(model, batches) == run["test_accuracy"]


@pytest.mark.slow  # shares `compared`: four runs, two conversions (~3 min on 2 cores)
def test_the_report_agrees_with_the_runs(compared):
    report, runs = compared.report, compared.report["runs"]
    assert json.loads((compared.directory / "report.json").read_text()) == json.loads(json.dumps(report))
    rows = {row["model"]: row for row in report["models"]}
    assert list(rows) == list(MODELS) and report["baseline"] == "reactnet-18"
    for model, row in rows.items():
        own = sorted((r for r in runs if r["model"] == model), key=lambda r: r["seed"])
        base = sorted((r for r in runs if r["model"] == "reactnet-18"), key=lambda r: r["seed"])
        assert row["test_mean"] == pytest.approx(np.mean([r["test_accuracy"] for r in own]))
        assert row["validation_mean"] == pytest.approx(np.mean([r["validation_accuracy"] for r in own]))
        assert row["gains"] == pytest.approx([a["test_accuracy"] - b["test_accuracy"] for a, b in zip(own, base)])
        assert row["selected_run"] == lqcompare.select_run(own)["run"]
        card = json.loads((compared.directory / "models" / f"{model}.json").read_text())
        assert card["run"] == row["selected_run"] and card["selected_by"] == "validation accuracy"
        assert card["size_bytes"] == row["tflite_bytes"] == (compared.directory / row["tflite"]).stat().st_size
    assert rows["reactnet-18"]["latency_relative"] == 1.0 and rows["reactnet-18"]["verdict"] is None
    assert rows["insta-resnet18"]["verdict"].startswith(("established", "not established with 2 seeds"))
    table = list(csv.DictReader(io.StringIO((compared.directory / "report.csv").read_text())))
    assert [r["model"] for r in table] == list(MODELS)
    assert float(table[1]["test_mean"]) == pytest.approx(rows["insta-resnet18"]["test_mean"])
    assert [float(g) for g in table[1]["gains"].split()] == rows["insta-resnet18"]["gains"]
    md = (compared.directory / "report.md").read_text()
    assert f"| insta-resnet18 | {100 * rows['insta-resnet18']['test_mean']:.2f} [" in md
    for png in ("accuracy_latency.png", "curves.png"):
        assert (compared.directory / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow  # shares `compared`: four runs, two conversions (~3 min on 2 cores)
def test_the_selected_tflite_carries_its_card_for_lqm_predict(compared):
    flatbuffer = (compared.directory / "models" / "insta-resnet18.tflite").read_bytes()
    card = json.loads(convert.read_metadata(flatbuffer)["files"][convert.CARD_FILE])
    assert card["model"] == "insta-resnet18" and card["class_names"] == list(data.FASHION_MNIST_CLASSES)
    assert card["input"]["shape"] == [1, 16, 16, 1] and card["selected_by"] == "validation accuracy"
    report = json.loads((compared.directory / "models" / "insta-resnet18.json").read_text())
    assert report["parity"]["top1_agreement"] >= 0.95 and report["binary_convolutions"] > 0


@pytest.mark.slow  # shares `compared`: four runs, two conversions (~3 min on 2 cores)
def test_the_budget_names_the_best_validation_within_it(compared):
    report = compared.report
    rows = report["models"]
    assert report["budget_ms"] == pytest.approx(1.5 * rows[0]["latency_ms"])
    expected, _ = lqcompare.choose(rows, report["budget_ms"])
    assert report["ship"] == expected["model"] and report["ship"] in report["ship_reason"]


@pytest.mark.slow  # shares `compared`: four runs, two conversions (~3 min on 2 cores)
def test_choices_follow_validation_when_test_disagrees(compared, tmp_path):
    """Test figures made to disagree with validation move no choice; validation figures do."""
    directory = tmp_path / "cmp"
    shutil.copytree(compared.directory, directory)
    before = {row["model"]: row for row in compared.report["models"]}
    for run in compared.report["runs"]:  # the selected runs now test worst, the others best
        selected = run["run"] in {row["selected_run"] for row in before.values()}
        training.write_json(directory / run["run"] / "test.json", {"split": "test", "examples": 20, "accuracy": 0.0 if selected else 1.0})
    comparison = Comparison(compared.settings, directory, echo=lambda line: None)
    after = comparison.measure("1000", latency_runs=2)
    rows = {row["model"]: row for row in after["models"]}
    assert all(rows[m]["selected_run"] == before[m]["selected_run"] and rows[m]["selected_test"] == 0.0 for m in MODELS)
    # insta-resnet18's other seed now validates best: it is selected and converted
    other = next(r["run"] for r in compared.report["runs"] if r["model"] == "insta-resnet18" and r["run"] != before["insta-resnet18"]["selected_run"])
    results = json.loads((directory / other / "results.json").read_text())
    training.write_json(directory / other / "results.json", {**results, "eval_accuracy": 1.0})
    after = comparison.measure("1000", latency_runs=2)
    rows = {row["model"]: row for row in after["models"]}
    assert rows["insta-resnet18"]["selected_run"] == other and after["ship"] == "insta-resnet18"
    assert json.loads((directory / "models" / "insta-resnet18.json").read_text())["run"] == other


@pytest.mark.slow  # shares `compared`: four runs, two conversions (~3 min on 2 cores)
def test_a_rerun_with_other_settings_is_refused_in_one_line(compared, data_dir):
    from cli.main import lqm

    args = ["compare", *MODELS, "--data-dir", str(data_dir), "--recipe", "one-step", "--epochs", "1", "--alpha", "0.25", "--image-size", "16"]
    result = CliRunner().invoke(lqm, [*args, "--seeds", "3", "-o", str(compared.directory)])
    assert result.exit_code == 1, result.output
    assert result.output.strip() == f"Error: {compared.directory} holds a comparison of other settings (seeds 2 there, 3 here); rerun it with its own settings to resume, or compare into another folder"
    # the same settings: nothing to train, the report again
    result = CliRunner().invoke(lqm, [*args, "--latency-runs", "2", "-o", str(compared.directory)])
    assert result.exit_code == 0, result.output
    assert "Training" not in result.output and "# Comparison of reactnet-18, insta-resnet18" in result.output


# -- the runs of a comparison, without training ------------------------------------------------


def test_one_teacher_trained_once_teaches_every_binary_run(data_dir, tmp_path):
    comparison = Comparison(tiny_settings(data_dir, recipe="paper"), tmp_path / "cmp")
    runs = comparison.runs()
    assert list(runs) == ["teacher", "reactnet-18-s0", "insta-resnet18-s0", "reactnet-18-s1", "insta-resnet18-s1"]
    teacher = runs["teacher"]
    assert (teacher.model, teacher.recipe.recipe, teacher.recipe.epochs, teacher.teacher) == ("float-resnet18", "one-step", 2, None)
    students = [config for name, config in runs.items() if name != "teacher"]
    assert {c.teacher for c in students} == {str((tmp_path / "cmp" / "teacher").resolve())}
    assert comparison.teacher().name == "teacher"  # as the report names it
    assert {c.recipe for c in students} == {comparison.plan.recipe} and all(c.teacher_recipe is None for c in students)
    assert [c.seed for c in students] == [0, 0, 1, 1]


def test_a_compared_twin_teaches_with_its_first_seed_and_shipped_weights_where_they_fit(data_dir, tmp_path):
    settings = tiny_settings(data_dir, recipe="paper", models=("reactnet-18", "float-resnet18"))
    comparison = Comparison(settings, tmp_path / "a")
    runs = comparison.runs()
    assert list(runs)[0] == "float-resnet18-s0" and "teacher" not in runs
    assert comparison.teacher().name == "float-resnet18-s0"
    assert runs["reactnet-18-s1"].teacher == str((tmp_path / "a" / "float-resnet18-s0").resolve())
    assert runs["float-resnet18-s1"].teacher is None and runs["float-resnet18-s1"].recipe.epochs == 2
    # at 28x28 and alpha 0.25 the shipped float-resnet18 weights fit: nothing to train first
    comparison = Comparison(tiny_settings(data_dir, recipe="paper", image_size=None), tmp_path / "b")
    runs = comparison.runs()
    assert "teacher" not in runs and runs["insta-resnet18-s0"].teacher == "float-resnet18" == comparison.teacher().name


def test_a_comparison_moved_elsewhere_is_still_its_own(data_dir, tmp_path):
    """Its runs hold the teacher relative to themselves: a comparison folder moved or cloned
    elsewhere resumes there instead of holding "runs of other settings"."""
    settings = tiny_settings(data_dir, recipe="paper", models=("reactnet-18", "float-resnet18"))
    for name, config in Comparison(settings, tmp_path / "a").runs().items():
        folder = tmp_path / "a" / name
        folder.mkdir(parents=True)
        training.write_json(folder / "config.json", config.to_json(folder))
        for part in ("model.h5", "results.json"):  # finished, as far as compare looks
            (folder / part).write_text("{}")
    assert json.loads((tmp_path / "a" / "reactnet-18-s1" / "config.json").read_text())["teacher"] == "../float-resnet18-s0"
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = Comparison(settings, tmp_path / "b")
    for name in moved.runs():
        moved.train_run(name)  # each its own and finished: nothing refused, nothing trained
    config = json.loads((tmp_path / "b" / "reactnet-18-s1" / "config.json").read_text())
    training.write_json(tmp_path / "b" / "reactnet-18-s1" / "config.json", {**config, "teacher": "../reactnet-18-s0"})
    with pytest.raises(lqcompare.CompareError, match="reactnet-18-s1 holds a run of other settings"):
        moved.train_run("reactnet-18-s1")


def test_settings_refuse_what_cannot_be_compared(data_dir, tmp_path):
    with pytest.raises(lqcompare.CompareError, match="named twice"):
        tiny_settings(data_dir, models=("reactnet-18", "reactnet-18"))
    with pytest.raises(lqcompare.CompareError, match="validation_split must lie between 0 and 1"):
        tiny_settings(data_dir, validation_split=1.0)
    flat = tmp_path / "flat"
    for name in ("a", "b"):
        (flat / name).mkdir(parents=True)
    with pytest.raises(lqcompare.CompareError, match="has no test split"):
        Comparison(tiny_settings(None, dataset=str(flat)), tmp_path / "cmp")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(saving.FileError, match="is not a comparison's folder"):
        lqcompare.check_settings(tmp_path / "taken", tiny_settings(data_dir), "")


def test_one_run_folder_is_never_trained_by_two_processes(tmp_path):
    lock = tmp_path / ".m-s0.lock"
    with lqcompare._locked(lock, "busy"):
        with pytest.raises(lqcompare.CompareError, match="^busy$"):  # another open file: as a second process
            with lqcompare._locked(lock, "busy"):
                pass
    with lqcompare._locked(lock, "busy"):  # released: taken again
        pass


@pytest.mark.slow  # two subprocesses, each starting TensorFlow (~2.5 min on 2 cores)
def test_jobs_train_runs_as_subprocesses_that_log_and_finish(data_dir, tmp_path):
    settings = tiny_settings(data_dir, models=("reactnet-18",))
    comparison = Comparison(settings, tmp_path / "cmp", echo=lambda line: None)
    lqcompare.check_settings(comparison.directory, settings, "")
    comparison.train(jobs=2)
    for name in ("reactnet-18-s0", "reactnet-18-s1"):
        assert comparison.finished(name)
        assert f"-> {tmp_path / 'cmp' / name}" in (tmp_path / "cmp" / "logs" / f"{name}.log").read_text()


# -- statistics and choices on hand-made figures ------------------------------------------------


def test_student_t_p_values_by_hand():
    assert lqcompare.student_t_p(1.0, 1) == pytest.approx(0.5)  # Cauchy: 1 - 2/pi * atan(1)
    assert lqcompare.student_t_p(2.0, 2) == pytest.approx(1 - 2 / math.sqrt(6))  # 1 - t / sqrt(t^2 + 2)
    assert lqcompare.student_t_p(math.sqrt(3), 3) == pytest.approx(0.5 - 1 / math.pi)  # theta = pi/4
    assert lqcompare.student_t_p(2.0, 4) == pytest.approx(1 - math.sqrt(0.5) * 1.25)  # 0.1161, as tables give
    assert lqcompare.student_t_p(-2.0, 4) == lqcompare.student_t_p(2.0, 4)
    assert lqcompare.student_t_p(0.0, 5) == pytest.approx(1.0)
    assert lqcompare.student_t_p(2.571, 5) == pytest.approx(0.05, abs=2e-4)  # the table's 5% critical value


def test_paired_t_test_by_hand():
    test = lqcompare.paired_t_test([0.01, 0.03])  # mean 0.02, sd 0.01414: t = 2.0 with 1 df
    assert test["t"] == pytest.approx(2.0) and test["p"] == pytest.approx(1 - 2 / math.pi * math.atan(2))
    assert lqcompare.verdict(test) == "not established with 2 seeds"
    test = lqcompare.paired_t_test([0.011, 0.012, 0.010, 0.011, 0.012])
    assert test["p"] < 0.05 and lqcompare.verdict(test).startswith("established (p = ")
    assert lqcompare.paired_t_test([0.01])["p"] is None
    assert lqcompare.verdict(lqcompare.paired_t_test([0.01])) == "not established with 1 seed"
    assert lqcompare.paired_t_test([0.02, 0.02])["p"] == 0.0
    assert lqcompare.paired_t_test([0.0, 0.0])["p"] == pytest.approx(1.0)


def test_pareto_front_on_a_hand_made_set():
    points = {"a": (1.0, 0.80), "b": (2.0, 0.85), "c": (2.5, 0.84), "d": (3.0, 0.90), "e": (1.0, 0.79), "f": (3.0, 0.90)}
    assert lqcompare.pareto_front(points) == ["a", "b", "d", "f"]  # c and e dominated; d and f tie


def test_choices_read_validation_alone():
    runs = [
        {"run": "m-s0", "seed": 0, "validation_accuracy": 0.80, "test_accuracy": 0.95},
        {"run": "m-s1", "seed": 1, "validation_accuracy": 0.90, "test_accuracy": 0.10},
        {"run": "m-s2", "seed": 2, "validation_accuracy": 0.90, "test_accuracy": 0.99},
    ]
    assert lqcompare.select_run(runs)["run"] == "m-s1"  # best validation; of a tie, the lowest seed
    models = [
        {"model": "fast", "latency_ms": 1.0, "validation_mean": 0.80, "test_mean": 0.99, "selected_seed": 0},
        {"model": "good", "latency_ms": 2.0, "validation_mean": 0.90, "test_mean": 0.50, "selected_seed": 1},
        {"model": "slow", "latency_ms": 5.0, "validation_mean": 0.95, "test_mean": 0.99, "selected_seed": 0},
    ]
    assert lqcompare.choose(models, 2.0)[0]["model"] == "good"
    assert lqcompare.choose(models, 1.5)[0]["model"] == "fast"
    chosen, why = lqcompare.choose(models, 0.5)
    assert chosen is None and why == "No model runs within 0.5 ms; the fastest is fast at 1 ms"
    assert lqcompare.budget_ms("1.5x", 2.0) == 3.0 and lqcompare.budget_ms("4", 2.0) == 4.0
    with pytest.raises(lqcompare.CompareError, match="budget must be"):
        lqcompare.budget_ms("fast", 2.0)


def test_on_x86_a_float_models_latency_takes_no_part_in_the_front_or_the_choice():
    """LCE's x86 reference kernels make binary models slow against float ones: there the
    float twin, fastest and most accurate, neither is the front nor is shipped."""
    row = dict(test_mean=0.9, test_min=0.9, test_max=0.9, selected_seed=0, gains=[0.0], mean_gain=0.0, p=None,
               float_gap=0.0, tflite_bytes=1024, bops=1.0, flops=1.0, latency_relative=1.0, selected_run="")  # fmt: skip
    models = [
        {**row, "model": "reactnet-18", "latency_ms": 3.0, "validation_mean": 0.90, "verdict": None},
        {**row, "model": "insta-resnet18", "latency_ms": 3.5, "validation_mean": 0.91, "verdict": "not established with 2 seeds"},
        {**row, "model": "float-resnet18", "latency_ms": 1.0, "validation_mean": 0.94, "verdict": "not established with 2 seeds", "latency_relative": 0.33},
    ]
    note = benchmark.X86_NOTE
    timed = lqcompare.latency_compared(models, note)
    assert [m["model"] for m in timed] == ["reactnet-18", "insta-resnet18"]
    assert lqcompare.choose(timed, 4.0)[0]["model"] == "insta-resnet18"
    assert lqcompare.latency_compared(models, None) == models  # on ARM every latency is real
    floats = [models[2], {**models[2], "model": "float-mobilenet"}]
    assert lqcompare.latency_compared(floats, note) == floats  # floats alone compare with each other
    report = {
        "settings": {"models": [m["model"] for m in models], "dataset": "fashion_mnist", "alpha": 0.25, "seeds": 2, "validation_split": 0.1, "recipe": "paper"},
        "recipe": {"recipe": "two-step", "epochs": 10}, "teacher": "float-resnet18-s0", "test_split": "test",
        "baseline": "reactnet-18", "float_twin_test_accuracy": 0.93, "models": models, "runs": [],
        "latency_compared": [m["model"] for m in timed], "pareto_front": ["reactnet-18", "insta-resnet18"],
        "timing_note": note, "budget_ms": None,
    }  # fmt: skip
    md = lqcompare.markdown(report)
    assert "| 1.00 (not compared) |" in md and "| 3.50 (1.00x) |" in md
    assert "The float models' latencies are shown but take no part in the front or the choice." in md


# -- the held-out validation part ---------------------------------------------------------------


def _images(dataset) -> list[bytes]:
    return [x.tobytes() for x, _ in dataset.data.as_numpy_iterator()]


def test_fashion_mnist_holds_out_a_seeded_disjoint_tenth(data_dir):
    def load(split, seed=0):
        return data.load("fashion_mnist", split, str(data_dir), validation_split=0.1, seed=seed)

    train, validation = load("train"), load("validation")
    assert (train.num_examples, validation.num_examples) == (36, 4)
    everything = _images(data.load("fashion_mnist", "train", str(data_dir)))
    assert len(_images(train)) == 36 and not set(_images(train)) & set(_images(validation))
    assert sorted(_images(train) + _images(validation)) == sorted(everything)
    assert _images(load("validation")) == _images(validation)  # seeded
    assert _images(load("validation", seed=1)) != _images(validation)
    assert _images(load("validation[:2]")) == _images(validation)[:2]
    assert load("test").num_examples == 20  # the test split is left alone
    mask = data._held_out(40, 0.1, 0)
    assert _images(validation) == [everything[i] for i in np.flatnonzero(mask)]


def test_a_folder_dataset_holds_out_the_same_way(tmp_path):
    from PIL import Image

    for split, n in (("train", 10), ("test", 2)):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((8, 8), 10 * i + (c == "dog"), np.uint8)).save(tmp_path / split / c / f"{i}.png")
    train = data.load(str(tmp_path), "train", validation_split=0.1, seed=3)
    validation = data.load(str(tmp_path), "validation", validation_split=0.1, seed=3)
    assert (train.num_examples, validation.num_examples) == (18, 2)
    assert not set(train.files) & set(validation.files) and len(set(train.files) | set(validation.files)) == 20
    assert data.load(str(tmp_path), "test", validation_split=0.1).num_examples == 4


def test_a_tfds_dataset_holds_out_the_same_way():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=50, policy=tfds.testing.MockPolicy.USE_CODE):  # offline: random images
        train = data.load("mnist", "train", validation_split=0.1, seed=0)
        validation = data.load("mnist", "validation", validation_split=0.1, seed=0)
        assert (train.num_examples, validation.num_examples) == (45, 5)
        assert not set(_images(train)) & set(_images(validation))
        assert sorted(_images(train) + _images(validation)) == sorted(_images(data.load("mnist", "train")))
        assert _images(data.load("mnist", "validation", validation_split=0.1, seed=0)) == _images(validation)
        assert data.load("mnist", "test", validation_split=0.1).num_examples == 50
