"""Which binary model for my data and my latency budget: several models trained alike,
compared fairly, chosen without the test set.

    comparison = Comparison(Settings(("reactnet-18", "insta-resnet18"), seeds=2), "cmp")
    report = comparison.run()        # trains, measures, converts and writes the report
    # a rerun of the same settings resumes where it stopped; other settings are refused

What makes the comparison fair and the choice honest:

- every model trains under the same recipe (`zoo.recipes.plan` of the first binary model)
  and learns from the same teacher: the float twin that the plan names, its pretrained
  weights where they fit, else trained once into DIR/teacher (or, where the twin is one of
  the models compared, its first seed's run); seed s of every model starts from the same
  seed (paired seeds: the same initial weights, data order and augmentation);
- every run, and a teacher trained here, holds out the same validation part of the
  training split (`Settings.validation_split`, drawn with seed 0: `DataConfig.validation_seed`),
  trains on the rest and evaluates on that part after every epoch,
  so its history's val_* are validation figures; everything that chooses (a model's
  selected seed, the model to ship within a latency budget) reads validation alone;
- the test split is measured once per run, at the end (RUN/test.json), and only reported.

DIR holds: compare.json (the settings), a run folder per model and seed (`MODEL-sSEED`,
an ordinary run folder: `lqm train --resume DIR/MODEL-sSEED` continues it), teacher/ (if
trained here), logs/ (of runs trained as subprocesses), models/MODEL.tflite and .json
(each model's selected run, converted and verified, with its card), and the report:
report.md, report.csv, report.json, accuracy_latency.png and curves.png.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

import larq_methods
from larq_methods import benchmark, convert, data, precise_bn, saving, training
from zoo import recipes
from zoo import run as lqrun
from zoo.registry import get_entry

SETTINGS_FILE = "compare.json"
SETTINGS_VERSION = 1
TEST_FILE = "test.json"  # in each run folder: its test accuracy, measured once
# a killed compare loses at most this much training of the runs in progress
CHECKPOINT_SECONDS = 300.0
# p below which a paired gain is called established
SIGNIFICANCE = 0.05


class CompareError(training.TrainingError):
    """A comparison that cannot be run as asked (other settings in its folder, a dataset
    without a test split, a run that failed)."""


@dataclass(frozen=True)
class Settings:
    """What a comparison trains: `models` (registered names; the first is the baseline),
    `seeds` (0 .. seeds-1 of each), the recipe preset and the parts that replace its own
    (`epochs`, `batch_size`, `learning_rate`), the `teacher` (default: the plan's), the
    data (`dataset`, `data_dir`, `image_size`, `channels`), the width `alpha`, and the
    fraction of the training split held out for validation."""

    models: tuple[str, ...]
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    seeds: int = 2
    recipe: str = recipes.DEFAULT_RECIPE
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    teacher: str | None = None
    alpha: float = 1.0
    image_size: int | None = None
    channels: int | None = None
    validation_split: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "models", tuple(self.models))
        if not self.models:
            raise CompareError("compare at least one model")
        if len(set(self.models)) != len(self.models):
            raise CompareError(f"a model is named twice: {', '.join(self.models)}")
        for name in self.models:
            get_entry(name)  # an unknown name fails before anything is written
        if self.seeds < 1:
            raise CompareError(f"seeds must be 1 or more, not {self.seeds}")
        if not 0 < self.validation_split < 1:
            raise CompareError(f"validation_split must lie between 0 and 1, not {self.validation_split}")

    @property
    def baseline(self) -> str:
        return self.models[0]

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "models": list(self.models)}


def check_settings(directory: Path, settings: Settings, command: str) -> None:
    """Writes DIR/compare.json, or refuses a DIR that holds a comparison of other settings."""
    path = directory / SETTINGS_FILE
    if path.exists():
        saved = json.loads(path.read_text()).get("settings", {})
        ours = settings.to_json()
        changed = [k for k in ours if saved.get(k) != ours[k]]
        if changed:
            k = changed[0]
            raise CompareError(
                f"{directory} holds a comparison of other settings ({k} {saved.get(k)!r} there, {ours[k]!r} here); "
                "rerun it with its own settings to resume, or compare into another folder"
            )
        return
    if directory.exists() and any(directory.iterdir()):
        raise saving.FileError(f"{directory} exists and is not a comparison's folder (no {SETTINGS_FILE}); choose another")
    training.write_json(path, {"version": SETTINGS_VERSION, "settings": settings.to_json(), "command": command})


def load_settings(directory: Path) -> tuple[Settings, str]:
    """(settings, command) of the comparison in `directory`."""
    try:
        saved = json.loads((Path(directory) / SETTINGS_FILE).read_text())
        return Settings(**saved["settings"]), saved.get("command", "")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise saving.FileError(f"{directory} is not a comparison's folder ({SETTINGS_FILE}: {e})") from None


# -- the runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Teacher:
    """What every binary run distils from: `spec` (a run folder or a registered name with
    fitting pretrained weights), the run that trains it here (`run`, None if it is not
    trained here) and its config; `twin` is its registered name."""

    twin: str
    spec: str
    run: str | None = None
    config: lqrun.RunConfig | None = None

    @property
    def name(self) -> str:
        """How the report names it: its run's folder in the comparison (`float-resnet18-s0`,
        `teacher`) where it is trained there, else its spec."""
        return self.run or self.spec


def data_config(settings: Settings) -> lqrun.DataConfig:
    """Training on the training split less the held-out part, evaluating on that part."""
    if data.default_splits(settings.dataset)[1] == "validation":
        raise CompareError(
            f"{settings.dataset} has no test split; lay a folder out as train/CLASS/* and test/CLASS/* "
            "(compare holds validation images out of train itself)"
        )
    return lqrun.DataConfig(
        dataset=lqrun.absolute(settings.dataset), data_dir=lqrun.absolute(settings.data_dir), train_split="train",
        eval_split="validation", image_size=settings.image_size, channels=settings.channels,
        validation_split=settings.validation_split, validation_seed=0,
    )  # fmt: skip


def test_split(settings: Settings) -> str:
    return data.default_splits(settings.dataset)[1]


class Comparison:
    """The runs of `settings` in `directory`, their measurements and the report."""

    def __init__(self, settings: Settings, directory, *, command: str = "", echo: Callable[[str], None] = print,
                 checkpoint_seconds: float = CHECKPOINT_SECONDS):  # fmt: skip
        self.settings, self.directory, self.echo = settings, Path(directory), echo
        self.command, self.checkpoint_seconds = command, checkpoint_seconds
        # the training images, read once: every run's input shape is resolved from them
        # here, as each run resolves it into its config.json
        unresolved = data_config(settings)
        train_set = unresolved.load("train", 0)
        self.data = lqrun.resolve_shape(unresolved, train_set)
        binary = [m for m in settings.models if not recipes.is_float(m)]
        self.lead = (binary or list(settings.models))[0]  # whose plan every model trains by
        self.plan = recipes.plan(
            self.lead, settings.dataset, lambda: train_set.num_examples, recipe=settings.recipe,
            teacher=settings.teacher, epochs=settings.epochs, batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
        )  # fmt: skip
        self._teacher = None

    def config(self, model: str, seed: int) -> lqrun.RunConfig:
        """The run of `model` and `seed`: binary models by the plan's recipe and teacher,
        float ones by the recipe that trains the teacher (the plan's where there is none)."""
        float_model = recipes.is_float(model)
        teacher = self.teacher()
        return lqrun.RunConfig(
            model=model, method=get_entry(model).method,
            recipe=(self.plan.teacher_recipe or self.plan.recipe) if float_model else self.plan.recipe,
            data=self.data, alpha=self.settings.alpha, seed=seed,
            teacher=None if float_model or teacher is None else teacher.spec,
            checkpoint_seconds=self.checkpoint_seconds, commands=(self.command,) if self.command else (),
        )  # fmt: skip

    def teacher(self) -> Teacher | None:
        """The one teacher of every binary run (see the module's docstring)."""
        if self._teacher is None and self.plan.teacher is not None:
            self._teacher = self._find_teacher()
        return self._teacher

    def _find_teacher(self) -> Teacher:
        twin, folder = self.plan.teacher, self.directory.resolve()
        if self.plan.teacher_recipe is None:  # given: a model file, run folder or name
            return Teacher(Path(twin).name, lqrun.absolute(twin))
        if twin in self.settings.models:  # compared too: its first seed teaches
            name = lqrun.run_name(twin, 0)
            return Teacher(twin, str(folder / name), name)
        student = lqrun.RunConfig(
            model=self.lead, method=get_entry(self.lead).method, recipe=self.plan.recipe, data=self.data,
            alpha=self.settings.alpha, seed=0, teacher=twin, teacher_recipe=self.plan.teacher_recipe,
        )  # fmt: skip
        if lqrun.shipped_weights(student, lqrun.prepare(student)) is not None:
            return Teacher(twin, twin)
        config = lqrun.teacher_config(student).replace(
            checkpoint_seconds=self.checkpoint_seconds, commands=(self.command,) if self.command else ()
        )
        return Teacher(twin, str(folder / lqrun.TEACHER_FOLDER), lqrun.TEACHER_FOLDER, config)

    def runs(self) -> dict[str, lqrun.RunConfig]:
        """Every run by folder name: the teacher's first (if trained here), then seed 0
        of every model, then seed 1, ...: a comparison stopped early has whole seeds."""
        teacher = self.teacher()
        out = {}
        if teacher is not None and teacher.config is not None:
            out[teacher.run] = teacher.config
        if teacher is not None and teacher.run and teacher.config is None:
            out[teacher.run] = self.config(teacher.twin, 0)
        for seed in range(self.settings.seeds):
            for model in self.settings.models:
                out.setdefault(lqrun.run_name(model, seed), self.config(model, seed))
        return out

    # -- training ---------------------------------------------------------------------------

    def train(self, jobs: int = 1) -> None:
        """Trains every run that has not finished: the teacher first, then the others,
        `jobs` at once (as subprocesses where more than one)."""
        runs = list(self.runs())
        teacher = self.teacher()
        first = [teacher.run] if teacher is not None and teacher.run else []
        rest = [name for name in runs if name not in first]
        for names in (first, rest):
            todo = [name for name in names if not self.finished(name)]
            if jobs > 1 and len(todo) > 1:
                self._train_parallel(todo, jobs)
            else:
                for name in todo:
                    self.train_run(name)

    def finished(self, name: str) -> bool:
        """Whether run `name` has finished: its config.json, model.h5 and results.json (written
        last) are there, with or without its checkpoints (a study kept in git has none). A run
        stopped after its training only gets those files when `train_run` resumes it."""
        folder = self.directory / name
        return all((folder / part).exists() for part in ("config.json", "model.h5", "results.json"))

    def train_run(self, name: str) -> None:
        """Trains run `name` fresh, or resumes it where it stopped; refuses a run folder
        that holds a run of other settings."""
        config, folder = self.runs()[name], self.directory / name
        with _locked(self.directory / f".{name}.lock", f"{folder} is being trained by another process (a compare still running?)"):
            resume = (folder / "config.json").exists()
            if resume:
                saved = lqrun.RunConfig.load(folder)
                if not saved.same_training(config):
                    raise CompareError(f"{folder} holds a run of other settings than this comparison's; move it away")
                if self.finished(name):
                    return
                config = saved
            lqrun.run(config, folder, resume=resume, verbose=2, echo=self.echo)
        tf.keras.backend.clear_session()

    def _train_parallel(self, names: list[str], jobs: int) -> None:
        """Trains `names` as `python -m zoo.compare DIR RUN` subprocesses, `jobs` at a time,
        each with its share of the cores; their output goes to DIR/logs/RUN.log."""
        threads = max(1, (os.cpu_count() or 1) // jobs)
        env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        logs = self.directory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        pending, running, failed = list(names), {}, []
        try:
            while pending or running:
                while pending and len(running) < jobs:
                    name = pending.pop(0)
                    with open(logs / f"{name}.log", "ab") as log:
                        command = [sys.executable, "-m", "zoo.compare", str(self.directory), name]
                        # a session of its own: a Ctrl-C reaches it once, from here
                        running[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
                    self.echo(f"{name}: training in a subprocess (log: {logs / name}.log)")
                time.sleep(0.5)
                for name, process in list(running.items()):
                    if process.poll() is not None:
                        del running[name]
                        (failed.append(name) if process.returncode else self.echo(f"{name}: finished"))
        except KeyboardInterrupt:
            for process in running.values():  # each checkpoints, then stops
                process.send_signal(signal.SIGINT)
                process.wait()
            raise training.Interrupted("interrupted; the runs in progress checkpointed") from None
        if failed:
            raise CompareError(f"{len(failed)} run(s) failed: {', '.join(failed)}; see {logs}")

    def run(self, *, jobs: int = 1, budget: str | float | None = None, latency_runs: int = 20) -> dict:
        """Trains what is left (`train`), measures, converts, and writes the report;
        returns the report's contents (report.json)."""
        check_settings(self.directory, self.settings, self.command)
        self.train(jobs)
        self.echo("Measuring the test split once per run, converting each model's selected run, timing them")
        report = self.measure(budget, latency_runs)
        write_report(self.directory, report)
        return report

    # -- measuring --------------------------------------------------------------------------

    def test_accuracy(self, name: str) -> dict:
        """The test accuracy of run `name`'s final model: measured once, kept in RUN/test.json."""
        folder = self.directory / name
        path = folder / TEST_FILE
        if path.exists():
            return json.loads(path.read_text())
        config = lqrun.RunConfig.load(folder)
        split = test_split(self.settings)
        test_set = config.data.load(split, config.seed)
        size, channels = config.data.image_size, config.data.channels
        batches = data.pipeline(test_set, image_size=size, channels=channels, batch_size=256, training=False)
        model = saving.load_model(folder / "model.h5")
        result = {"split": split, "examples": test_set.num_examples, "accuracy": precise_bn.top1(model, batches)}
        tf.keras.backend.clear_session()
        training.write_json(path, result)
        return result

    def record(self, name: str) -> dict:
        """What the report reads of a finished run: its validation accuracy (the last
        epoch's, on the held-out part), its curve, and its test accuracy."""
        folder = self.directory / name
        config = lqrun.RunConfig.load(folder)
        results = json.loads((folder / "results.json").read_text())
        if results["eval_split"] != "validation":
            raise CompareError(f"{folder} evaluated on {results['eval_split']!r}, not the held-out validation part")
        curve = []
        for step, _, _ in config.recipe.steps(config.method):
            curve += training.read_history(folder / step / "history.csv")["val_accuracy"]
        return {
            "run": name, "model": config.model, "seed": config.seed,
            "validation_accuracy": results["eval_accuracy"], "validation_examples": results["eval_examples"],
            "test_accuracy": self.test_accuracy(name)["accuracy"], "validation_curve": curve,
            "train_seconds": results["train_seconds"],
        }  # fmt: skip

    def teacher_test_accuracy(self) -> float | None:
        """The teacher's test accuracy (the float twin's), measured once."""
        teacher = self.teacher()
        if teacher is None:
            return None
        if teacher.run:
            return self.test_accuracy(teacher.run)["accuracy"]
        path = self.directory / f"teacher-{TEST_FILE}"
        if not path.exists():
            config = self.config(self.lead, 0)
            prepared = lqrun.prepare(config)
            test_set = config.data.load(test_split(self.settings), 0)
            model = prepared.load(teacher.spec, "teacher")
            size, _, channels = prepared.input_shape
            batches = data.pipeline(test_set, image_size=size, channels=channels, batch_size=256, training=False)
            training.write_json(path, {"teacher": teacher.spec, "accuracy": precise_bn.top1(model, batches)})
            tf.keras.backend.clear_session()
        return json.loads(path.read_text())["accuracy"]

    def export(self, record: dict) -> tuple[bytes, dict]:
        """Converts and verifies a model's selected run into DIR/models/MODEL.tflite, with
        its card (.json) beside it; an export of the same run is kept as it is."""
        tflite = self.directory / "models" / f"{record['model']}.tflite"
        card_path = tflite.with_suffix(".json")
        if tflite.exists() and card_path.exists():
            card = json.loads(card_path.read_text())
            if card.get("run") == record["run"]:
                return tflite.read_bytes(), card
        folder = self.directory / record["run"]
        config = lqrun.RunConfig.load(folder)
        model = saving.load_model(folder / "model.h5")
        source = config.data.load("validation", config.seed)
        count = min(64, source.num_examples)
        inputs = data.sample_inputs(source, image_size=config.data.image_size, channels=config.data.channels, count=count)
        metadata = {
            "model": config.model, "method": str(config.method), "dataset": self.settings.dataset,
            "accuracy": record["test_accuracy"], "validation_accuracy": record["validation_accuracy"],
            "run": record["run"], "selected_by": "validation accuracy", "version": larq_methods.__version__,
        }  # fmt: skip
        if source.class_names:
            metadata["class_names"] = list(source.class_names)
        flatbuffer, report = convert.convert_and_verify(model, inputs, metadata=metadata)
        tf.keras.backend.clear_session()
        card = {**report.pop("card"), "model_file": str(folder / "model.h5"), "tflite_file": str(tflite), **report}
        saving.write_bytes(tflite, flatbuffer)
        training.write_json(card_path, card)
        return flatbuffer, card


    def measure(self, budget: str | float | None = None, latency_runs: int = 20) -> dict:
        """Every figure of the report (see `model_row`), from the finished runs."""
        settings = self.settings
        records = [self.record(lqrun.run_name(m, s)) for s in range(settings.seeds) for m in settings.models]
        by_model = {m: [r for r in records if r["model"] == m] for m in settings.models}
        exports = {m: self.export(select_run(runs)) for m, runs in by_model.items()}
        timings = benchmark.latencies({m: flatbuffer for m, (flatbuffer, _) in exports.items()}, runs=latency_runs)
        twin = recipes.float_twin(self.lead)
        if twin in by_model:
            twin_accuracy = float(np.mean([r["test_accuracy"] for r in by_model[twin]]))
        else:
            twin_accuracy = self.teacher_test_accuracy()
        base = settings.baseline
        rows = [
            model_row(m, by_model[m], by_model[base], exports[m][1], timings[m], timings[base], twin_accuracy)
            for m in settings.models
        ]  # fmt: skip
        teacher, note = self.teacher(), benchmark.timing_note()
        timed = latency_compared(rows, note)
        report = {
            "settings": settings.to_json(), "baseline": base, "recipe": dataclasses.asdict(self.plan.recipe),
            "teacher": teacher.name if teacher else None, "float_twin_test_accuracy": twin_accuracy,
            "test_split": test_split(settings), "timing_note": note, "models": rows, "runs": records,
            "latency_compared": [m["model"] for m in timed],
            "pareto_front": pareto_front({r["model"]: (r["latency_ms"], r["validation_mean"]) for r in timed}),
            "budget_ms": budget_ms(budget, timings[base]["median"]), "ship": None, "ship_reason": None,
        }  # fmt: skip
        if report["budget_ms"] is not None:
            chosen, why = choose(timed, report["budget_ms"])
            report["ship"], report["ship_reason"] = chosen and chosen["model"], why
        return report


def model_row(model, runs, baseline_runs, card, timing, baseline_timing, twin_accuracy) -> dict:
    """One model's line of the report: test accuracy over its seeds, the paired gain over
    the baseline's same seeds and its test, the gap to the float twin, the run selected by
    validation, latency (median, and relative to the baseline's), .tflite size, BOPs, FLOPs."""
    test = np.array([r["test_accuracy"] for r in runs])
    gains = [r["test_accuracy"] - b["test_accuracy"] for r, b in zip(runs, baseline_runs)]
    ttest = paired_t_test(gains)
    selected = select_run(runs)
    return {
        "model": model, "seeds": len(runs),
        "test_mean": float(test.mean()), "test_min": float(test.min()), "test_max": float(test.max()),
        "test_std": float(test.std(ddof=1)) if len(test) > 1 else None,
        "validation_mean": float(np.mean([r["validation_accuracy"] for r in runs])),
        "gains": gains, "mean_gain": ttest["mean_gain"], "t": ttest["t"], "p": ttest["p"],
        "verdict": None if runs is baseline_runs else verdict(ttest),
        "float_gap": None if twin_accuracy is None else twin_accuracy - float(test.mean()),
        "selected_seed": selected["seed"], "selected_run": selected["run"],
        "selected_validation": selected["validation_accuracy"], "selected_test": selected["test_accuracy"],
        "latency_ms": timing["median"], "latency_relative": timing["median"] / baseline_timing["median"],
        "kernel": timing["kernel"], "tflite": f"models/{model}.tflite", "tflite_bytes": card["size_bytes"],
        "bops": card["costs"]["bops"], "flops": card["costs"]["flops"],
    }  # fmt: skip


@contextlib.contextmanager
def _locked(path: Path, busy: str):
    """Holds an exclusive lock on `path` (created if need be), or raises CompareError(busy)
    where another process holds it: two processes never train one run folder."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CompareError(busy) from None
        yield


# -- statistics and choices -----------------------------------------------------------------


def student_t_p(t: float, df: int) -> float:
    r"""Two-sided p-value of Student's t with `df` (a positive integer) degrees of freedom:
    \(p = 1 - A(t \mid \nu)\), where \(A\) is the probability that \(|T| \le |t|\), in
    closed form (Abramowitz and Stegun 26.7.3 and 26.7.4), with \(\theta = \arctan(|t| /
    \sqrt{\nu})\):

    - \(\nu\) odd: \(A = \frac{2}{\pi}\left(\theta + \sin\theta \cos\theta \sum_{k=0}^{(\nu-3)/2}
      c_k \cos^{2k}\theta\right)\), \(c_0 = 1\), \(c_k = c_{k-1} \frac{2k}{2k+1}\) (no sum for \(\nu = 1\));
    - \(\nu\) even: \(A = \sin\theta \sum_{k=0}^{(\nu-2)/2} d_k \cos^{2k}\theta\), \(d_0 = 1\),
      \(d_k = d_{k-1} \frac{2k-1}{2k}\).

    With \(\nu = 1\) (two seeds) \(p = 1 - \frac{2}{\pi}\arctan|t|\); with \(\nu = 2\),
    \(p = 1 - |t| / \sqrt{t^2 + 2}\)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be 1 or more, not {df}")
    if math.isinf(t):
        return 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:
        total, term = 0.0, 1.0
        for k in range((df - 1) // 2):
            total += term * c2**k
            term *= (2 * k + 2) / (2 * k + 3)
        a = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    else:
        total, term = 0.0, 1.0
        for k in range(df // 2):
            total += term * c2**k
            term *= (2 * k + 1) / (2 * k + 2)
        a = math.sin(theta) * total
    return max(0.0, 1.0 - a)


def paired_t_test(gains) -> dict:
    r"""The paired t-test of per-seed gains \(d_s\) (a model's accuracy less the baseline's
    of the same seed) against no gain: \(t = \bar d / (s_d / \sqrt n)\), \(s_d\) the sample
    standard deviation (n - 1), with n - 1 degrees of freedom (`student_t_p`). With one
    seed there is no test (t and p None); gains all equal give t = ±inf, p = 0 (or t = 0,
    p = 1 where they are all 0)."""
    d = np.asarray(gains, float)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean_gain": mean, "t": None, "p": None}
    sd = float(d.std(ddof=1))
    if sd == 0:
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
    else:
        t = mean / (sd / math.sqrt(n))
    return {"n": n, "mean_gain": mean, "t": t, "p": student_t_p(t, n - 1)}


def verdict(test: dict) -> str:
    """'established' where p < SIGNIFICANCE, else 'not established with N seed(s)'."""
    if test["p"] is not None and test["p"] < SIGNIFICANCE:
        return f"established (p = {test['p']:.3g})"
    return f"not established with {test['n']} seed{'s' if test['n'] != 1 else ''}"


def select_run(records: list[dict]) -> dict:
    """The run of a model to convert and ship: the best validation accuracy; of equal
    ones, the lowest seed. Test accuracy plays no part."""
    return max(records, key=lambda r: (r["validation_accuracy"], -r["seed"]))


def latency_compared(models: list[dict], timing_note: str | None) -> list[dict]:
    """The models whose latencies this machine compares: all of them on 64-bit ARM; where
    LCE runs its reference kernels (`timing_note`: x86), the binary ones alone (or all, if
    none is binary), since reference binary kernels are slow against optimised float ones.
    The Pareto front and the model to ship are chosen among these."""
    binary = [m for m in models if not recipes.is_float(m["model"])]
    return models if timing_note is None or not binary else binary


def pareto_front(points: dict) -> list:
    """The keys of `points` ({key: (latency, accuracy)}) that no other point dominates (as
    fast or faster and as accurate or more, better in one), fastest first."""
    front = [
        key for key, (lat, acc) in points.items()
        if not any(o_lat <= lat and o_acc >= acc and (o_lat, o_acc) != (lat, acc) for o_lat, o_acc in points.values())
    ]  # fmt: skip
    return sorted(front, key=lambda key: points[key])


def choose(models: list[dict], budget_ms: float) -> tuple[dict | None, str]:
    """The model to ship within `budget_ms` of median latency: the best mean validation
    accuracy over its seeds among those within the budget (of equal ones, the faster);
    returns (model, why), or (None, why) where none fits. Test accuracy plays no part."""
    within = [m for m in models if m["latency_ms"] <= budget_ms]
    if not within:
        fastest = min(models, key=lambda m: m["latency_ms"])
        return None, f"No model runs within {budget_ms:.3g} ms; the fastest is {fastest['model']} at {fastest['latency_ms']:.3g} ms"
    best = max(within, key=lambda m: (m["validation_mean"], -m["latency_ms"]))
    others = len(within) - 1
    return best, (
        f"{best['model']}: the best mean validation accuracy ({100 * best['validation_mean']:.2f}%) of the "
        f"{others + 1} model(s) within {budget_ms:.2f} ms ({best['latency_ms']:.2f} ms); its seed "
        f"{best['selected_seed']} (best validation accuracy) is models/{best['model']}.tflite"
    )


def budget_ms(budget: str | float | None, baseline_ms: float) -> float | None:
    """A latency budget in ms: a number of ms, or "1.2x" (times the baseline's latency)."""
    if budget is None:
        return None
    text = str(budget).strip().lower()
    try:
        return float(text[:-1]) * baseline_ms if text.endswith("x") else float(text)
    except ValueError:
        raise CompareError(f"budget must be milliseconds (12.5) or a multiple of the baseline's latency (1.2x), not {budget!r}") from None


# -- the report ------------------------------------------------------------------------------

CSV_COLUMNS = (
    "model", "seeds", "test_mean", "test_min", "test_max", "test_std", "validation_mean", "gains", "mean_gain", "t", "p",
    "verdict", "float_gap", "selected_seed", "selected_validation", "selected_test", "latency_ms",
    "latency_relative", "tflite_bytes", "bops", "flops",
)  # fmt: skip


def _pct(x, sign=False) -> str:
    return "-" if x is None else f"{100 * x:{'+' if sign else ''}.2f}"


def markdown(report: dict) -> str:
    """report.md: the settings, a table per model, the runs, the choice within the budget."""
    s = report["settings"]
    lines = [
        f"# Comparison of {', '.join(s['models'])}",
        "",
        f"{s['dataset']}, alpha {s['alpha']}, {s['seeds']} seed(s) each (paired: seed s of every model sees the "
        f"same data), recipe {s['recipe']} ({report['recipe']['recipe']}, {report['recipe']['epochs']} epoch(s) per step), "
        f"teacher {report['teacher'] or 'none'}. Each run trains on the training split less the same "
        f"{100 * s['validation_split']:g}% validation part (drawn with seed 0); the selected run of a model is its best validation "
        f"accuracy, and the model to ship within a budget the best mean validation accuracy. The "
        f"{report['test_split']} split is measured once per run and only reported.",
        "",
        f"Baseline: {report['baseline']}. Gain: test accuracy less the baseline's of the same seed (points), "
        f"paired t-test over seeds; established where p < {SIGNIFICANCE}. "
        + (
            "Float gap: none (no float twin in this comparison)."
            if report["float_twin_test_accuracy"] is None
            else f"Float gap: the float twin's test accuracy ({_pct(report['float_twin_test_accuracy'])}%) less the model's mean."
        ),
        "",
        "| model | test % mean [min, max] | gain per seed | mean gain | p | verdict | float gap | validation % | "
        "selected seed | latency ms (x baseline) | .tflite KiB | BOPs | FLOPs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    compared = set(report["latency_compared"])
    for m in report["models"]:
        baseline = m["verdict"] is None
        relative = f"{m['latency_relative']:.2f}x" if m["model"] in compared else "not compared"
        gains = "(baseline)" if baseline else ", ".join(_pct(g, sign=True) for g in m["gains"])
        mean_gain = "-" if baseline else _pct(m["mean_gain"], sign=True)
        p = "-" if baseline or m["p"] is None else f"{m['p']:.3g}"
        lines.append(
            f"| {m['model']} | {_pct(m['test_mean'])} [{_pct(m['test_min'])}, {_pct(m['test_max'])}] | "
            f"{gains} | {mean_gain} | {p} | {m['verdict'] or '-'} | "
            f"{_pct(m['float_gap'])} | {_pct(m['validation_mean'])} | {m['selected_seed']} | "
            f"{m['latency_ms']:.2f} ({relative}) | {m['tflite_bytes'] / 1024:.0f} | "
            f"{m['bops']:.3g} | {m['flops']:.3g} |"
        )
    front = ", ".join(report["pareto_front"])
    lines += ["", f"Pareto front (latency against mean validation accuracy): {front}. Plots: accuracy_latency.png, curves.png."]
    if report["timing_note"]:
        lines += ["", f"Latency: median of single-image runs in LCE's interpreter on this machine ({report['timing_note']})."]
        if compared != {m["model"] for m in report["models"]}:
            lines[-1] += " The float models' latencies are shown but take no part in the front or the choice."
    if report["budget_ms"] is not None:
        lines += ["", f"## Within {report['budget_ms']:.2f} ms", "", f"Ship {report['ship_reason']}." if report["ship"] else report["ship_reason"] + "."]
    lines += ["", "## Runs", "", "| run | validation % | test % | selected |", "|---|---|---|---|"]
    selected = {m["selected_run"] for m in report["models"]}
    for r in report["runs"]:
        lines.append(f"| {r['run']} | {_pct(r['validation_accuracy'])} | {_pct(r['test_accuracy'])} | {'yes' if r['run'] in selected else ''} |")
    return "\n".join(lines) + "\n"


def csv_text(report: dict) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report["models"]:
        values = {k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS}
        writer.writerow({**values, "gains": " ".join(repr(g) for g in row["gains"])})  # per seed
    return out.getvalue()


def plot(report: dict, directory: Path) -> None:
    """accuracy_latency.png (mean validation and test accuracy against latency, the
    front by validation joined) and curves.png (validation accuracy per epoch, each run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {m["model"]: m for m in report["models"]}
    compared = set(report["latency_compared"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, m in rows.items():
        ax.errorbar(m["latency_ms"], 100 * m["test_mean"], yerr=[[100 * (m["test_mean"] - m["test_min"])], [100 * (m["test_max"] - m["test_mean"])]], fmt="o", mfc="none", color="grey")
        ax.plot(m["latency_ms"], 100 * m["validation_mean"], "o" if name in compared else "x", color="C0")
        label = name if name in compared else f"{name} (latency not compared)"
        ax.annotate(label, (m["latency_ms"], 100 * m["validation_mean"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    front = [rows[name] for name in report["pareto_front"]]
    ax.plot([m["latency_ms"] for m in front], [100 * m["validation_mean"] for m in front], "-", color="C0", label="Pareto front (validation)")
    ax.plot([], [], "o", color="C0", label="mean validation accuracy")
    ax.plot([], [], "o", mfc="none", color="grey", label="mean test accuracy [min, max]")
    ax.set(xlabel="latency, ms (LCE, 1 image)", ylabel="top-1 accuracy, %", title="accuracy against latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, directory / "accuracy_latency.png")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, name in enumerate(rows):
        for r in (r for r in report["runs"] if r["model"] == name):
            curve = r["validation_curve"]
            ax.plot(range(1, len(curve) + 1), [100 * a for a in curve], color=f"C{i}", linestyle=("-", "--", ":", "-.")[r["seed"] % 4], label=f"{name} s{r['seed']}")
    ax.set(xlabel="epoch (both steps)", ylabel="validation accuracy, %", title="learning curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, directory / "curves.png")


def _save(fig, png: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)


def write_report(directory: Path, report: dict) -> None:
    training.write_json(directory / "report.json", report)
    saving.write_bytes(directory / "report.csv", csv_text(report).encode())
    saving.write_bytes(directory / "report.md", markdown(report).encode())
    plot(report, directory)


if __name__ == "__main__":  # one run of a comparison, as `Comparison.train` starts it
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # checkpoint, then stop
    directory, name = Path(sys.argv[1]), sys.argv[2]
    settings, command = load_settings(directory)
    Comparison(settings, directory, command=command).train_run(name)
