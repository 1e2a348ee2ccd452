"""A training run as a library object: `RunConfig` says everything that makes a run what it
is, and `run(config, run_dir)` trains it into a run folder, fresh or resumed.

`config.json` in the run folder is `RunConfig.to_json()`; resuming reads it back with
`RunConfig.from_json` and never re-derives anything from presets or defaults, so a run
resumes as the model it started as even after a preset has changed. `lqm train`, the
leaderboard and the GAAF proxy training all call `run`.

    config = RunConfig.for_model("reactnet-18", alpha=0.25)  # the paper recipe, as `lqm train`
    config = RunConfig(model="reactnet-18", method=zoo.get_entry("reactnet-18").method,
                       recipe=training.Recipe(epochs=3), data=DataConfig(), alpha=0.25)  # or set it all
    results = run(config, "runs/r18")          # fresh; writes config.json first
    results = run(RunConfig.load("runs/r18"), "runs/r18", resume=True)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import tensorflow as tf

import larq_methods
from larq_methods import costs, data, saving, training
from larq_methods.method import Method
from zoo import pretrained, recipes
from zoo.registry import UnknownModelError, create_model, get_entry

CONFIG_VERSION = 1


class RunConfigError(ValueError):
    """A run configuration that cannot be read or used."""


@dataclass(frozen=True)
class DataConfig:
    """Where a run's images come from and how they are shaped.

    `dataset` is `fashion_mnist` (local IDX files), a tensorflow-datasets name or a folder
    of class subfolders; the splits use TFDS syntax (`train[:10%]`); `image_size` and
    `channels` are the model's input (the dataset's own when it was created without them).
    """

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    train_split: str = "train"
    eval_split: str = "test"
    image_size: int | None = None
    channels: int | None = None
    validation_split: float | None = None
    skip_bad_images: bool = False
    # the seed that draws the held-out part (None: the run's): `lqm compare` holds out one
    # part for every seed of every model and for the teacher
    validation_seed: int | None = None

    def load(self, split: str, seed: int = 0) -> data.Dataset:
        extra = {}  # hold-out options, passed only when set
        if self.validation_split is not None:
            held_out_seed = seed if self.validation_seed is None else self.validation_seed
            extra.update(validation_split=self.validation_split, seed=held_out_seed)
        if self.skip_bad_images:
            extra["skip_bad_images"] = True
        return data.load(self.dataset, split, self.data_dir, **extra)


@dataclass(frozen=True)
class RunConfig:
    """Everything that makes a training run what it is.

    - `model`: a registered name (`lqm models`): it says the backbone; `method` is the
      full method trained (the named model's own, or changed part by part).
    - `recipe`: one- or two-step, epochs per step, batch, learning rate, warm-up, weight
      decay, label smoothing, XLA.
    - `data`, `alpha` (width), `seed` (initial weights, data order, augmentation).
    - `teacher`: distil from this model file, run folder or registered name; `init`:
      start from the weights of one. `teacher_recipe`: with a registered name whose
      pretrained weights do not fit this run (input, classes, width), the teacher is
      trained first with this recipe into `run_dir/teacher` (the paper recipe's float twin).
    - `strategy`: `tf.distribute` strategy name; `deterministic`: op determinism (the
      same config and seed give bit-identical weights and history on one machine).
    - `checkpoint_steps` / `checkpoint_seconds`: checkpoints within an epoch, so that a
      killed run loses little; they do not change the result.
      `recipe.precise_bn` (an evaluation after each epoch) does not change it either.
    - `commands`: the command lines (shell-quoted) that created or extended the run.
    """

    model: str
    method: Method
    recipe: training.Recipe = field(default_factory=training.Recipe)
    data: DataConfig = field(default_factory=DataConfig)
    alpha: float = 1.0
    seed: int = 0
    teacher: str | None = None
    teacher_recipe: training.Recipe | None = None
    init: str | None = None
    strategy: str = "default"
    deterministic: bool = True
    checkpoint_steps: int | None = None
    checkpoint_seconds: float = 600.0
    commands: tuple[str, ...] = ()

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def same_training(self, other: RunConfig) -> bool:
        """Whether `other` trains exactly as this does: all but how often it checkpoints,
        whether it measures PreciseBN accuracy, and the commands that made it."""

        def trained(config):
            recipe = dataclasses.replace(config.recipe, precise_bn=0)
            return config.replace(recipe=recipe, checkpoint_steps=None, checkpoint_seconds=0.0, commands=())

        return trained(self) == trained(other)

    def to_json(self, run_dir=None) -> dict:
        """The config as JSON; with `run_dir` (where it is saved), a teacher or init that is
        a path beside the run folder is written relative to it (`../float-s0`, `./teacher`),
        so that a folder of runs, a comparison's, can move or be cloned as a whole."""
        out = dataclasses.asdict(self)
        out["commands"] = list(self.commands)
        if run_dir is not None:
            out.update({role: _relative(out[role], run_dir) for role in PATH_FIELDS})
        return {"version": CONFIG_VERSION, **out}

    @classmethod
    def from_json(cls, obj: dict, run_dir=None) -> RunConfig:
        """Reads `to_json`'s dict; a relative teacher or init is read relative to `run_dir`."""
        if not isinstance(obj, dict):
            raise RunConfigError("a run configuration is a JSON object")
        version = obj.get("version")
        if version != CONFIG_VERSION:
            raise RunConfigError(f"config version {version!r} is not one this lqm reads (version {CONFIG_VERSION}); use the lqm that wrote it")
        try:
            parts = {k: v for k, v in obj.items() if k not in ("version", "info")}  # info: derived, never read
            parts["method"] = Method(**parts["method"])
            parts["recipe"] = training.Recipe(**parts.get("recipe", {}))
            if parts.get("teacher_recipe") is not None:
                parts["teacher_recipe"] = training.Recipe(**parts["teacher_recipe"])
            parts["data"] = DataConfig(**parts.get("data", {}))
            parts["commands"] = tuple(parts.get("commands", ()))
            if run_dir is not None:
                parts.update({role: _resolved(parts.get(role), run_dir) for role in PATH_FIELDS})
            return cls(**parts)
        except (TypeError, KeyError, ValueError) as e:
            raise RunConfigError(f"unreadable run configuration: {e}") from None

    @classmethod
    def for_model(cls, model: str, *, data: DataConfig | None = None, recipe: str = "paper", teacher: str | None = None,
                  recipe_changes: dict | None = None, **fields) -> RunConfig:  # fmt: skip
        """The run of registered `model` that `lqm train MODEL` makes: the recipe preset
        `recipe` for the model and dataset, with `recipe_changes` (fields of
        `training.Recipe`) replacing its parts, and its teacher, as `zoo.recipes.plan`
        decides (the paper recipe distils from the float twin); `fields` are the other
        fields of `RunConfig` (alpha, seed, method: the model's own by default, ...)."""
        data = data or DataConfig()
        seed = fields.get("seed", 0)
        plan = recipes.plan(
            model, data.dataset, lambda: data.load(data.train_split, seed).num_examples,
            recipe=recipe, teacher=teacher, **(recipe_changes or {}),
        )  # fmt: skip
        fields.setdefault("method", get_entry(model).method)
        return cls(model=model, recipe=plan.recipe, data=data, teacher=plan.teacher, teacher_recipe=plan.teacher_recipe, **fields)

    @classmethod
    def load(cls, run_dir) -> RunConfig:
        path = Path(run_dir) / "config.json"
        obj = saving.read_json(path)  # a JSON error by its line and column
        if obj is None:
            raise saving.FileError(f"{run_dir} is not a run folder of `lqm train` (no config.json)")
        try:
            return cls.from_json(obj, run_dir)
        except RunConfigError as e:
            raise RunConfigError(f"{path}: {e}") from None


# the fields that may hold a path (a model file or run folder)
PATH_FIELDS = ("teacher", "init")


def absolute(spec: str | None) -> str | None:
    """A path that exists, made absolute (so that a run resumes from any folder); a name
    (a dataset, a registered model) as it is."""
    if spec is None or not Path(spec).expanduser().exists():
        return spec
    return str(Path(spec).expanduser().resolve())


def _relative(spec: str | None, run_dir) -> str | None:
    """`spec` relative to `run_dir` where it is a path inside the run folder's parent."""
    folder = Path(run_dir).resolve()
    if spec is None or not Path(spec).is_absolute() or not Path(spec).is_relative_to(folder.parent):
        return spec
    relative = os.path.relpath(spec, folder)
    return relative if relative.startswith("../") else f"./{relative}"


def _resolved(spec: str | None, run_dir) -> str | None:
    """`_relative`'s inverse: `./x` and `../x` read relative to `run_dir`, made absolute."""
    if spec is None or not spec.startswith(("./", "../")):
        return spec
    return str((Path(run_dir) / spec).resolve())


# -- models a run starts from or learns from ------------------------------------------------


def load_model_spec(spec: str, role: str, dataset: str, input_shape, num_classes) -> tf.keras.Model:
    """A model file, a run folder (its model.h5), or a registered name with pretrained
    weights for `dataset`; its input and classes must fit the run's. `role` names the
    parameter in errors ("teacher", "init")."""
    path = Path(spec)
    if path.exists():
        try:
            model = saving.load_model(saving.run_files(path).model)  # a model file, or a run folder's
        except saving.FileError as e:
            raise saving.FileError(f"`{role}` {spec}: {e}", parameters=(role, *e.parameters)) from None
    else:
        try:
            get_entry(spec)
        except UnknownModelError:
            raise saving.FileError(f"`{role}` {spec}: neither a model file, a run folder nor a model name", parameters=(role,)) from None
        if data.is_folder(dataset):
            raise saving.FileError(
                f"`{role}` {spec}: pretrained weights are registered for named datasets only, not for the folder "
                f"{Path(dataset).name}; pass a model file or a run folder trained on it",
                parameters=(role,),
            )
        try:
            model = create_model(spec, weights=dataset, input_shape=input_shape, num_classes=num_classes)
        except (ValueError, OSError) as e:
            raise training.TrainingError(
                f"`{role}` {spec}: no pretrained {dataset} weights that fit ({str(e).splitlines()[0]}); "
                f"train {spec} first and pass its run folder",
                parameters=(role,),
            ) from None
    if tuple(model.input_shape[1:]) != tuple(input_shape) or model.output_shape[-1] != num_classes:
        raise training.TrainingError(
            f"`{role}` {spec} takes {model.input_shape[1:]} and gives {model.output_shape[-1]} "
            f"classes; this run's model takes {tuple(input_shape)} and gives {num_classes}",
            parameters=(role,),
        )
    return model


# -- the run --------------------------------------------------------------------------------

# where a run trains its teacher first (`RunConfig.teacher_recipe`)
TEACHER_FOLDER = "teacher"


@dataclass
class Prepared:
    """What `prepare` resolves: the config with the dataset's shape filled in, the data."""

    config: RunConfig
    train_set: data.Dataset
    eval_set: data.Dataset
    input_shape: tuple[int, int, int]

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.train_set.num_examples // self.config.recipe.batch_size)

    def build(self, method: Method) -> tf.keras.Model:
        """The run's model with `method`, from the run's seed (the same initial weights
        every time)."""
        tf.keras.utils.set_random_seed(self.config.seed)
        return create_model(
            self.config.model, input_shape=self.input_shape, num_classes=self.train_set.num_classes,
            alpha=self.config.alpha, method=method,
        )  # fmt: skip

    def train_data(self, epoch: int, skip: int) -> tf.data.Dataset:
        return data.pipeline(
            self.train_set, training=True, seed=self.config.seed, epoch=epoch, skip_batches=skip, **self._pipe
        )

    def eval_data(self) -> tf.data.Dataset:
        return data.pipeline(self.eval_set, training=False, **self._pipe)

    @property
    def _pipe(self) -> dict:
        size, _, channels = self.input_shape
        return dict(image_size=size, channels=channels, batch_size=self.config.recipe.batch_size)

    def load(self, spec: str, role: str) -> tf.keras.Model:
        return load_model_spec(spec, role, self.config.data.dataset, self.input_shape, self.train_set.num_classes)


def shipped_weights(config: RunConfig, prepared: Prepared) -> pretrained.Weights | None:
    """The pretrained weights of `config.teacher` (a registered name) for the run's dataset
    that fit the run (input shape, classes and width), or None."""
    try:
        weights = pretrained.get(config.teacher, config.data.dataset)
    except pretrained.WeightsError:
        return None
    fits = (tuple(weights.input_shape), weights.num_classes, weights.alpha)
    return weights if fits == (prepared.input_shape, prepared.train_set.num_classes, config.alpha) else None


def run_name(model: str, seed: int) -> str:
    """The folder name of one (model, seed) run in the benchmarks' work and result folders."""
    return f"{model}-s{seed}"


def teacher_config(config: RunConfig) -> RunConfig:
    """The run that trains `config.teacher` first: its own method, `config.teacher_recipe`,
    the same data, width, seed and settings."""
    return config.replace(
        model=config.teacher, method=get_entry(config.teacher).method, recipe=config.teacher_recipe,
        teacher=None, teacher_recipe=None, init=None,
    )  # fmt: skip


def train_teacher(config: RunConfig, run_dir: Path, *, echo, verbose) -> str:
    """Trains (or resumes, or finds finished) the teacher of `config` in
    `run_dir/teacher`; returns that folder."""
    folder = run_dir / TEACHER_FOLDER
    sub = teacher_config(config)
    started = (folder / "config.json").exists()
    if started and training.is_complete(folder, sub.recipe, sub.method):
        echo(f"Distilling from the teacher trained first in {folder}")
        return str(folder)
    echo(
        f"{config.teacher} has no pretrained {config.data.dataset} weights for this input, these classes and "
        f"alpha {config.alpha}: {'resuming' if started else 'training'} it first as the teacher -> {folder}"
    )
    run(sub, folder, resume=started, verbose=verbose, echo=echo)
    return str(folder)


def prepare(config: RunConfig) -> Prepared:
    """Loads the run's data and resolves what the config left to the dataset (splits'
    defaults are resolved by whoever made the config; input size and channels here)."""
    get_entry(config.model)  # an unknown name fails before any data is read
    train_set = config.data.load(config.data.train_split, config.seed)
    eval_set = config.data.load(config.data.eval_split, config.seed)
    if train_set.num_classes != eval_set.num_classes:
        raise data.DatasetError(f"{config.data.train_split} has {train_set.num_classes} classes, {config.data.eval_split} {eval_set.num_classes}")
    config = config.replace(data=resolve_shape(config.data, train_set))
    size, channels = config.data.image_size, config.data.channels
    return Prepared(config, train_set, eval_set, (size, size, channels))


def resolve_shape(config: DataConfig, train_set: data.Dataset) -> DataConfig:
    """`config` with what it left to the dataset, the input size and channels, taken from
    `train_set`'s images."""
    size = config.image_size or train_set.image_shape[0]
    if size is None:
        raise data.DatasetError(f"{config.dataset} has images of varying size; give `image_size`", parameters=("image_size",))
    return dataclasses.replace(config, image_size=int(size), channels=int(config.channels or train_set.image_shape[2]))


def _check_sources(config: RunConfig, prepared: Prepared, model, resume: bool, trains_teacher: bool) -> None:
    """Fails before the run folder exists when the initial weights or the teacher do not
    fit: `init` first, so that a run that cannot start downloads no teacher."""
    if config.init and not resume:
        first_method = config.recipe.steps(config.method)[0][1]
        target = model if first_method == config.method else prepared.build(first_method)
        training.start_from(prepared.load(config.init, "init"), target)
    tf.keras.backend.clear_session()
    if config.teacher and not trains_teacher:
        prepared.load(config.teacher, "teacher")
        tf.keras.backend.clear_session()


def _info(config: RunConfig, prepared: Prepared, strategy, model_costs) -> dict:
    """Derived facts written beside the config (`config.json`'s `info`), never read back."""
    recipe, method = config.recipe, config.method
    return {
        "input_shape": list(prepared.input_shape),
        "num_classes": prepared.train_set.num_classes,
        "class_names": list(getattr(prepared.train_set, "class_names", ()) or ()),
        "train_examples": prepared.train_set.num_examples,
        "eval_examples": prepared.eval_set.num_examples,
        "steps_per_epoch": prepared.steps_per_epoch,
        "steps": [{"folder": n or ".", "method": m.as_dict(), "weight_decay": wd} for n, m, wd in recipe.steps(method)],
        "schedule": (
            f"Adam, {recipe.warmup_epochs} warm-up epochs, then linear decay to 0 per step"
            if recipe.schedule == "linear"
            else f"Adam, the {recipe.schedule} schedule of `training.schedules.SCHEDULES`"
        ),
        "replicas": strategy.num_replicas_in_sync,
        "costs": model_costs.as_dict(),
        "versions": {"larq_methods": larq_methods.__version__, "tensorflow": tf.__version__},
    }


def _describe(config: RunConfig, prepared: Prepared, strategy, model_costs, run_dir, resume: bool) -> str:
    """The line that announces the run."""
    recipe = config.recipe
    return (
        f"{'Resuming' if resume else 'Training'} {config.model} ({config.method}; alpha {config.alpha}, "
        f"{'x'.join(map(str, prepared.input_shape))}, {model_costs.bops:.3g} BOPs, {model_costs.flops:.3g} FLOPs), "
        f"{recipe.recipe}{', distilled from ' + config.teacher if config.teacher else ''}"
        f"{', from the weights of ' + config.init if config.init else ''}, on "
        f"{prepared.train_set.num_examples} {config.data.dataset} images, {recipe.epochs} epoch(s) per step, "
        f"{strategy.num_replicas_in_sync} replica(s){', deterministic' if config.deterministic else ''}"
        f"{', ' + recipe.precision if recipe.precision != 'float32' else ''} -> {run_dir}"
    )


def _results(config: RunConfig, prepared: Prepared, run_dir: Path, trains_teacher: bool) -> dict:
    """The run's results from its files: the last evaluation, epochs and training time."""
    recipe, method = config.recipe, config.method
    history = training.read_history(run_dir / recipe.steps(method)[-1][0] / "history.csv")
    results = {
        "eval_split": prepared.eval_set.split,
        "eval_loss": history["val_loss"][-1],
        "eval_accuracy": history["val_accuracy"][-1],
        "eval_examples": prepared.eval_set.num_examples,
        "epochs": len(history["epoch"]),
        "train_seconds": training.run_seconds(run_dir, recipe, method),
    }
    if trains_teacher:
        sub = teacher_config(config)
        results["teacher_train_seconds"] = training.run_seconds(run_dir / TEACHER_FOLDER, sub.recipe, sub.method)
    return results


def run(
    config: RunConfig,
    run_dir,
    *,
    resume: bool = False,
    verbose=1,
    echo: Callable[[str], None] = print,
    callbacks=(),
) -> dict:
    """Trains `config` into `run_dir` and returns its results (also in `results.json`).

    Fresh (`resume=False`): `run_dir` must not exist or be empty; `config.json` (the
    resolved config, plus an `info` block of derived facts that is never read back) is
    written before training starts. Resumed: continues from the latest checkpoint of the
    first unfinished step; a larger `config.recipe.epochs` than the run had extends it; a
    run stopped after its training had finished only gets its final files (`_finish`).
    A config from `RunConfig.for_model` gets the recipe and teacher `lqm train` gets.
    A second process that runs into the same `run_dir` meanwhile is refused
    (`saving.run_lock`).
    """
    run_dir = Path(run_dir)
    complete = resume and training.is_complete(run_dir, config.recipe, config.method)
    if complete and (run_dir / "model.h5").exists() and (run_dir / "results.json").exists():
        raise training.TrainingError(
            f"{run_dir} is complete: every step has its model.h5 and {config.recipe.epochs} epoch(s); "
            "a larger `epochs` extends it",
            parameters=("epochs",),
        )
    with saving.run_lock(run_dir):  # one process at a time; a crashed one holds nothing
        if complete:
            return _finish(config, run_dir, echo=echo)
        return _run(config, run_dir, resume=resume, verbose=verbose, echo=echo, callbacks=callbacks)


def _run(config: RunConfig, run_dir: Path, *, resume, verbose, echo, callbacks) -> dict:
    training.set_determinism(config.deterministic)
    prepared = prepare(config)
    config = prepared.config
    strategy = training.make_strategy(config.strategy)
    trains_teacher = _trains_teacher(config, prepared, run_dir)
    model = prepared.build(config.method)
    model_costs = costs.count(model)
    _check_sources(config, prepared, model, resume, trains_teacher)
    # a resumed run's config.json changes only when the run is extended
    if training.is_chief(strategy) and (not resume or RunConfig.load(run_dir) != config):
        if not resume:
            saving.create_run_folder(run_dir)
        training.write_json(run_dir / "config.json", {**config.to_json(run_dir), "info": _info(config, prepared, strategy, model_costs)})
    echo(_describe(config, prepared, strategy, model_costs, run_dir, resume))

    def announce(name, step_method, weight_decay):
        if name:
            echo(f"{name}: {step_method}, weight decay {weight_decay:g}")

    teacher = train_teacher(config, run_dir, echo=echo, verbose=verbose) if trains_teacher else config.teacher
    if config.teacher and not trains_teacher and config.teacher_recipe is not None:
        shipped = shipped_weights(config, prepared)
        echo(f"Distilling from the pretrained {config.teacher} {shipped.dataset} weights ({100 * shipped.accuracy:.2f}%)")
    training.train(
        prepared.build, config.method, prepared.train_data, prepared.eval_data(), config.recipe, run_dir,
        steps_per_epoch=prepared.steps_per_epoch,
        teacher=(lambda: prepared.load(teacher, "teacher")) if teacher else None,
        init=(lambda: prepared.load(config.init, "init")) if config.init else None,
        strategy=strategy, resume=resume, verbose=verbose, on_step=announce, callbacks=callbacks,
        checkpoint_steps=config.checkpoint_steps, checkpoint_seconds=config.checkpoint_seconds,
    )  # fmt: skip
    results = _results(config, prepared, run_dir, trains_teacher)
    if training.is_chief(strategy):
        training.write_json(run_dir / "results.json", results)
    return results


def _trains_teacher(config: RunConfig, prepared: Prepared, run_dir: Path) -> bool:
    """Whether the run trains its own teacher (into TEACHER_FOLDER) rather than reading one."""
    return config.teacher_recipe is not None and (
        (run_dir / TEACHER_FOLDER / "config.json").exists() or shipped_weights(config, prepared) is None
    )


def _finish(config: RunConfig, run_dir: Path, *, echo) -> dict:
    """Writes what a run stopped after its last checkpoint did not: the final model at the
    top of the run folder (the last step's, copied) and results.json, from its own files."""
    prepared = prepare(config)
    config = prepared.config
    top, last = run_dir / "model.h5", run_dir / config.recipe.steps(config.method)[-1][0] / "model.h5"
    if not top.exists():
        saving.write_bytes(top, last.read_bytes())
    results = _results(config, prepared, run_dir, _trains_teacher(config, prepared, run_dir))
    training.write_json(run_dir / "results.json", results)
    echo(f"{run_dir}: training had finished; wrote its final model.h5 and results.json")
    return results
