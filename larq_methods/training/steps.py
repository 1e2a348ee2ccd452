"""`train`: a recipe's steps, one after the other, into a run folder, fresh or resumed.

Run folder (`run_dir`; with two steps, `step1/` and `step2/` each hold the per-step part)::

    config.json      the run's configuration (written by the caller, `zoo.run`)
    checkpoints/     the whole training state at a step boundary: after every epoch, every
                     `checkpoint_seconds` and `checkpoint_steps`, and on Ctrl-C
    logs/            TensorBoard (train/, validation/)
    history.csv      one row per epoch
    curves.png       loss and accuracy per epoch
    model.h5         the trained model (the final one at the top of the run folder)
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import tensorflow as tf

from larq_methods import costs, saving
from larq_methods.methods.rebnn import SignOscillation
from larq_methods.training.checkpoints import Checkpoints
from larq_methods.training.errors import TrainingError, WriteError
from larq_methods.training.loop import Loop, LoopOptions
from larq_methods.training.precision import float32_copy, precision_policy
from larq_methods.training.recipe import Recipe
from larq_methods.training.schedules import make_schedule
from larq_methods.training.step import compile_classifier
from larq_methods.training.strategies import distribute, is_chief
from larq_methods.training.transfer import start_from, transfer_weights


def binary_kernel_layers(model) -> list:
    """The layers of `model` (nested models included) whose kernels are 1-bit."""
    return [layer for layer in costs.flat_layers(model) if hasattr(layer, "kernel") and costs.has_binary_kernel(layer)]


def has_binary_kernels(model) -> bool:
    return bool(binary_kernel_layers(model))


def _checkpoint_epochs(folder) -> int:
    """Completed epochs of the latest checkpoint in `folder` (0 if none)."""
    latest = tf.train.latest_checkpoint(str(folder))
    return int(tf.train.load_variable(latest, "epoch/.ATTRIBUTES/VARIABLE_VALUE")) if latest else 0


def is_complete(run_dir, recipe: Recipe, method) -> bool:
    """Whether every step of the run has its model.h5 and the last one `recipe.epochs`."""
    steps = recipe.steps(method)
    if not all((Path(run_dir) / name / "model.h5").exists() for name, _, _ in steps):
        return False
    return _checkpoint_epochs(Path(run_dir) / steps[-1][0] / "checkpoints") >= recipe.epochs


def run_seconds(run_dir, recipe: Recipe, method) -> float:
    """Training seconds of a run: every step's, every segment's (resumed runs included),
    as its latest checkpoint records them."""
    total = 0.0
    for name, _, _ in recipe.steps(method):
        latest = tf.train.latest_checkpoint(str(Path(run_dir) / name / "checkpoints"))
        if latest:
            total += float(tf.train.load_variable(latest, "seconds/.ATTRIBUTES/VARIABLE_VALUE"))
    return total


@dataclass
class _Job:
    """What every step of one `train` call shares."""

    build: Callable
    recipe: Recipe
    train_data: Callable | tf.data.Dataset
    eval_data: tf.data.Dataset
    out: Path
    steps_per_epoch: int
    strategy: tf.distribute.Strategy
    teacher: Callable | None
    init: Callable | None
    options: LoopOptions
    callbacks: tuple


def _prepared_step(job: _Job, index, step_method, weight_decay, step_dir, previous, resume):
    """The step's model, trainer, checkpoints and oscillation log, in the strategy's scope:
    restored from its latest checkpoint, or started from step 1's (or `init`'s) weights."""
    recipe = job.recipe
    with job.strategy.scope(), precision_policy(recipe.precision):
        model = job.build(step_method)
        trainer = compile_classifier(
            model, learning_rate=recipe.learning_rate, total_steps=recipe.epochs * job.steps_per_epoch,
            warmup_steps=round(recipe.warmup_epochs * job.steps_per_epoch), weight_decay=weight_decay,
            label_smoothing=recipe.label_smoothing, teacher=job.teacher() if job.teacher else None,
            jit_compile=recipe.jit_compile, schedule=make_schedule(recipe, job.steps_per_epoch),
        )  # fmt: skip
        layers = binary_kernel_layers(model)
        oscillation = SignOscillation(layers) if layers else None
        checkpoints = Checkpoints(
            step_dir / "checkpoints", model, trainer.optimizer, metrics=trainer.metrics, oscillation=oscillation
        )
        restoring = resume and checkpoints.latest is not None
        if not restoring:
            initial = job.init() if job.init and index == 0 and previous is None else None
            if _start_weights(model, previous, initial) and oscillation is not None:
                oscillation.snapshot()
        completed = checkpoints.restore() if restoring else 0
        seconds = float(checkpoints.seconds.numpy()) if restoring else 0.0
    return model, trainer, checkpoints, oscillation, completed, seconds


def _start_weights(model, previous, initial) -> bool:
    """Step 2 from step 1's weights (`previous`), or step 1 from a run's `initial` model;
    whether there was one."""
    source = previous if previous is not None else initial
    if source is None:
        return False
    source = source if isinstance(source, tf.keras.Model) else saving.load_model(source)
    if previous is None:
        start_from(source, model)
    else:
        transfer_weights(source, model)
    return True


def _skip_finished(step_dir, last: bool, recipe: Recipe, resume: bool) -> bool:
    """Whether a resumed run's step is done: it has its model.h5 and, if it is the last,
    the recipe's epochs (fewer: the run is extended)."""
    if not (resume and (step_dir / "model.h5").exists()):
        return False
    return not last or _checkpoint_epochs(step_dir / "checkpoints") >= recipe.epochs


def _train_step(job: _Job, index, step_method, weight_decay, step_dir, previous, resume):
    """Trains one step of the recipe into `step_dir`; returns (model, the saved model)."""
    model, trainer, checkpoints, oscillation, completed, seconds = _prepared_step(
        job, index, step_method, weight_decay, step_dir, previous, resume
    )
    loop = Loop(
        trainer, job.train_data, job.eval_data, step_dir, checkpoints, job.options,
        oscillation=oscillation, completed=completed, seconds=seconds, strategy=job.strategy, callbacks=job.callbacks,
    )  # fmt: skip
    loop.run()
    saved = model if job.recipe.precision == "float32" else float32_copy(model, job.build, step_method)
    with loop.writing("model.h5"):
        saving.save_model(saved, step_dir / "model.h5")
    return model, saved


def train(
    build: Callable,
    method,
    train_data,
    eval_data: tf.data.Dataset,
    recipe: Recipe,
    run_dir,
    *,
    steps_per_epoch: int,
    teacher: Callable | None = None,
    strategy: tf.distribute.Strategy | None = None,
    resume: bool = False,
    init: Callable | None = None,
    verbose=1,
    on_step: Callable | None = None,
    callbacks=(),
    checkpoint_steps: int | None = None,
    checkpoint_seconds: float = 600.0,
):
    """Trains `build(method)` with `recipe`, writing the run folder; returns the model.

    - `build(method)` builds the (uncompiled) model; `teacher()` the frozen teacher, if
      distilling; `init()` a model whose weights the first step starts from (same layers,
      checked by `check_same_method`). All are called inside the strategy's scope.
    - `train_data` is `data(epoch, skip_batches) -> tf.data.Dataset` (one epoch, the same
      batches every time it is built: see `data.pipeline`) or a fixed dataset.
    - Two-step: step 1 trains `method` with real weights, step 2 the binary `method`
      starting from step 1's weights (every one of them must carry over).
    - `resume`: steps with a `model.h5` are done (unless the last one has fewer epochs
      than `recipe.epochs`: it is extended); the first one that is not restarts from its
      latest checkpoint, at the step after it, with its optimiser and metric state.
    - Under a multi-worker strategy, only the chief writes `run_dir`; other workers write
      to a temporary folder, removed at the end.
    - `on_step(name, method, weight_decay)` is called as each step starts; `callbacks`
      (Keras callbacks) go to every step's loop; `checkpoint_steps`, `checkpoint_seconds`
      and `verbose`: `loop.LoopOptions`.
    - `recipe.precision`: the models train under that dtype policy (`precision_policy`)
      and are saved as float32 models (`float32_copy`).
    """
    strategy = strategy or tf.distribute.get_strategy()
    _check_strategy(recipe, strategy)
    chief = is_chief(strategy)
    out = Path(run_dir) if chief else Path(tempfile.mkdtemp(prefix="lqm-worker-"))
    options = LoopOptions(recipe.epochs, steps_per_epoch, checkpoint_steps, checkpoint_seconds, recipe.precise_bn, verbose)
    job = _Job(build, recipe, _distributed(train_data), distribute(eval_data), out, steps_per_epoch, strategy,
               teacher, init, options, tuple(callbacks))  # fmt: skip
    try:
        return _train_steps(job, method, run_dir, resume, on_step)
    finally:
        if not chief:
            shutil.rmtree(out, ignore_errors=True)


def _check_strategy(recipe: Recipe, strategy) -> None:
    if recipe.batch_size % strategy.num_replicas_in_sync:
        raise TrainingError(
            f"the global batch size {recipe.batch_size} does not split over "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    if recipe.precise_bn and strategy.num_replicas_in_sync > 1:
        raise TrainingError("the PreciseBN evaluation (precise_bn) runs on one device; train on one or turn it off")


def _distributed(train_data):
    if callable(train_data):
        return lambda epoch, skip: distribute(train_data(epoch, skip))
    return distribute(train_data)


def _train_steps(job: _Job, method, run_dir, resume, on_step):
    """Every step of the recipe in turn; the last one's model is saved at the top too."""
    steps = job.recipe.steps(method)
    previous, saved, worked = None, None, False
    for index, (name, step_method, weight_decay) in enumerate(steps):
        step_dir = job.out / name if name else job.out
        step_dir.mkdir(parents=True, exist_ok=True)
        if _skip_finished(step_dir, index == len(steps) - 1, job.recipe, resume):
            previous = step_dir / "model.h5"
            continue
        if on_step:
            on_step(name, step_method, weight_decay)
        previous, saved = _train_step(job, index, step_method, weight_decay, step_dir, previous, resume)
        worked = True
        resume = False  # later steps start afresh
    if not worked:
        raise TrainingError(f"{run_dir} is complete: every step has its model.h5 and {job.recipe.epochs} epoch(s)")
    if name:
        try:
            saving.save_model(saved, job.out / "model.h5")
        except (OSError, tf.errors.OpError) as e:
            reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
            raise WriteError(f"could not write {job.out / 'model.h5'} ({reason}); {step_dir / 'model.h5'} is the same model") from None
    return saved
