"""Training recipes: one-step and ReActNet's two-step, distillation, the optimiser and its
schedule, the run folder (checkpoints, resume, logs, curves) and `tf.distribute`.

The library builds no model itself: `train` takes `build(method) -> model`, so any
backbone with any `Method` trains with any recipe.

Run folder (`run_dir`; with two steps, `step1/` and `step2/` each hold the per-step part)::

    config.json      what was asked (written by the caller)
    checkpoints/     model + optimiser + epoch after every epoch (and on Ctrl-C)
    logs/            TensorBoard
    history.csv      one row per epoch
    curves.png       loss and accuracy per epoch
    model.h5         the trained model (the final one at the top of the run folder)
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from larq_methods import costs, losses, rebnn, saving

RECIPES = ("one-step", "two-step")
STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")
# ReActNet's step 1 weight decay (binary activations, real weights); step 2 has none.
TWO_STEP_WEIGHT_DECAY = 1e-5


class TrainingError(Exception):
    """A run that cannot start, or that stopped without a usable model."""


class Interrupted(TrainingError):
    """The run was interrupted (Ctrl-C); a checkpoint of its state was saved."""


# -- optimisation -------------------------------------------------------------------------


@tf.keras.utils.register_keras_serializable(package="lqm")
class WarmupLinearDecay(tf.keras.optimizers.schedules.LearningRateSchedule):
    r"""Linear warm-up over \\(w\\) steps, then linear decay to zero at step \\(T\\):

    \\[ \eta(t) = \eta_0 \frac{t + 1}{w} \;\; (t < w), \qquad
        \eta(t) = \eta_0 \max\left(0, \frac{T - t}{T - w}\right) \;\; (t \ge w) \\]

    With \\(w = 0\\) it is ReActNet's schedule, \\(\eta_0 (1 - t / T)\\), per step.
    """

    def __init__(self, learning_rate, total_steps, warmup_steps=0):
        self.learning_rate = float(learning_rate)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = min(max(0, int(warmup_steps)), self.total_steps - 1)

    def __call__(self, step):
        t = tf.cast(step, tf.float32)
        lr, total, warmup = self.learning_rate, float(self.total_steps), float(self.warmup_steps)
        decay = lr * tf.maximum(0.0, (total - t) / (total - warmup))
        if self.warmup_steps == 0:
            return decay
        return tf.where(t < warmup, lr * (t + 1) / warmup, decay)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def linear_decay(learning_rate: float, total_steps: int):
    """Learning rate decayed linearly to zero over `total_steps` (ReActNet's schedule)."""
    return WarmupLinearDecay(learning_rate, total_steps)


def conv_kernels(model) -> list:
    """The kernels of every convolution (regular, grouped, depthwise; real or binary)."""
    kernels = []
    for layer in costs.flat_layers(model):
        if isinstance(layer, tf.keras.layers.DepthwiseConv2D):
            kernels.append(layer.depthwise_kernel)
        elif isinstance(layer, tf.keras.layers.Conv2D):
            kernels.append(layer.kernel)
    return kernels


def add_weight_decay(model, weight_decay: float) -> None:
    r"""Adds \\(\frac{\lambda}{2} \sum \lVert W \rVert^2\\) over the convolution kernels to
    the model's losses: the gradient gains \\(\lambda W\\), the coupled weight decay of the
    papers' `torch.optim.Adam(weight_decay=...)`, applied to kernels only (not to
    BatchNorm, biases, thresholds or the dense classifier)."""
    if weight_decay <= 0:
        return
    kernels = conv_kernels(model)
    model.add_loss(lambda: weight_decay / 2 * tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels]))


def outputs_logits(model) -> bool:
    """Whether the model ends in logits (no softmax)."""
    return getattr(model.layers[-1], "activation", None) is not tf.keras.activations.softmax


class Distiller(rebnn.ReBNNTrainStep, tf.keras.Model):
    """Trains `student` on the distributional loss against a frozen `teacher`.

    Calling it calls the student; metrics (accuracy) compare the student with the labels.
    Its training step is ReBNN's (`ReBNNTrainStep`), so a ReBNN student's gamma is updated too.
    """

    def __init__(self, student, teacher, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self._teacher_logits = outputs_logits(teacher)

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        soft = self.teacher(x, training=False)
        if self._teacher_logits:
            soft = tf.nn.softmax(soft)
        return self.compiled_loss(soft, y_pred, sample_weight, regularization_losses=self.losses)


def compile_classifier(
    model,
    *,
    learning_rate: float,
    total_steps: int,
    warmup_steps: int = 0,
    weight_decay: float = 0.0,
    label_smoothing: float = 0.0,
    teacher=None,
    jit_compile: bool = False,
):
    """Adam with warm-up and linear decay to zero per step, and accuracy on the labels.

    The loss is the cross-entropy on the labels (with `label_smoothing`), or, with a
    `teacher`, the distributional loss against it; then the returned model is a
    `Distiller` to fit (save `model`, the student). Weight decay: `add_weight_decay`.
    """
    add_weight_decay(model, weight_decay)
    from_logits = outputs_logits(model)
    if teacher is not None:
        model = Distiller(model, teacher)
        loss = losses.DistributionalLoss(from_logits=from_logits)
    else:
        loss = losses.SparseCrossentropy(label_smoothing, from_logits=from_logits)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(WarmupLinearDecay(learning_rate, total_steps, warmup_steps)),
        loss=loss,
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    return model


# -- distribution -------------------------------------------------------------------------


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """A `tf.distribute` strategy by name.

    - "default": one device.
    - "mirrored": every local GPU (or, without GPUs, every logical CPU device).
    - "multi-worker": `MultiWorkerMirroredStrategy`; each process reads its role from
      the `TF_CONFIG` environment variable.
    - "tpu": the TPU named by `TPU_NAME` (or the local one).

    Batch sizes are global: each of the N replicas gets batch_size / N examples.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise TrainingError("--strategy multi-worker needs TF_CONFIG (the cluster and this worker's task) in the environment")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as e:
            raise TrainingError(f"no TPU found: {str(e).splitlines()[0]}") from None
        return tf.distribute.TPUStrategy(resolver)
    raise TrainingError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")


def is_chief(strategy) -> bool:
    """Whether this process writes the run folder (the only one, or worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


def distribute(data: tf.data.Dataset) -> tf.data.Dataset:
    """Shards by example across workers (the data are in memory, not in files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


# -- checkpoints and callbacks ------------------------------------------------------------


class Checkpoints:
    """Model, optimiser and completed epochs, through `tf.train.CheckpointManager`.

    A save writes the checkpoint's files, then atomically rewrites the `checkpoint` index
    that names the latest one: a save cut short leaves the previous checkpoint in force.
    """

    def __init__(self, folder, model, optimizer, max_to_keep=2):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self.epoch)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(folder), max_to_keep=max_to_keep)

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def save(self, epoch: int) -> str:
        # numbered by save, never by epoch: a Ctrl-C save must not overwrite the last good one
        self.epoch.assign(epoch)
        return self.manager.save()

    def restore(self, model) -> int:
        """Restores the latest checkpoint; returns its number of completed epochs."""
        if self.latest is None:
            return 0
        optimizer = self.checkpoint.optimizer
        optimizer.build(model.trainable_variables)  # slots must exist to be restored
        self.checkpoint.restore(self.latest).assert_existing_objects_matched()
        return int(self.epoch.numpy())


def restore_weights(folder, model) -> int:
    """Loads the model weights of the latest checkpoint in `folder` (no optimiser needed);
    returns its number of completed epochs."""
    latest = tf.train.latest_checkpoint(str(folder))
    if latest is None:
        raise TrainingError(f"no checkpoint in {folder}")
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    tf.train.Checkpoint(model=model, epoch=epoch).restore(latest).expect_partial().assert_existing_objects_matched()
    return int(epoch.numpy())


def _finite(model, logs) -> bool:
    loss = (logs or {}).get("loss")
    if loss is not None and not np.isfinite(loss):
        return False
    return all(np.isfinite(w.numpy()).all() for w in model.trainable_weights)


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """Saves a checkpoint after every epoch whose loss and weights are finite, so that a
    NaN leaves the last good checkpoint in place."""

    def __init__(self, checkpoints: Checkpoints, model):
        super().__init__()
        self.checkpoints = checkpoints
        self.target = model  # the student when distilling
        self.completed = 0
        self.last_good = None

    def on_epoch_end(self, epoch, logs=None):
        if _finite(self.target, logs):
            self.checkpoints.save(epoch + 1)
            self.completed = self.last_good = epoch + 1


class CurvesPlot(tf.keras.callbacks.Callback):
    """Draws loss and accuracy per epoch from `history.csv` into a PNG after every epoch
    (placed after the `CSVLogger`, so the file holds the epoch that just ended)."""

    def __init__(self, history_csv, png):
        super().__init__()
        self.history_csv, self.png = Path(history_csv), Path(png)

    def on_epoch_end(self, epoch, logs=None):
        plot_history(self.history_csv, self.png)


def read_history(path) -> dict[str, list[float]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) if r[k] not in ("", None) else math.nan for r in rows] for k in (rows[0] if rows else {})}


def truncate_history(history_csv, epochs: int) -> None:
    """Keeps the header and the rows of epochs 0..`epochs`-1 of `history_csv`: the rows a
    run resumed at epoch `epochs` would otherwise repeat (an epoch cut short by Ctrl-C
    after its row, or ended by a NaN)."""
    path = Path(history_csv)
    if not path.exists():
        return
    header, *rows = path.read_text().splitlines(keepends=True) or [""]
    kept = [row for row in rows if row.strip() and int(float(row.split(",", 1)[0])) < epochs]
    if len(kept) != len(rows):
        saving.write_bytes(path, "".join([header, *kept]).encode())


def plot_history(history_csv, png) -> None:
    """Loss and accuracy, training and evaluation, per epoch; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    history = read_history(history_csv)
    if not history.get("epoch"):
        return
    epochs = [e + 1 for e in history["epoch"]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "train"), (f"val_{metric}", "eval")):
            if key in history:
                ax.plot(epochs, history[key], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    png = Path(png)
    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)


def write_json(path, data: dict) -> None:
    saving.write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def fit(model, train_data, eval_data, *, epochs: int, run_dir, initial_epoch=0, checkpoints=None, target=None, callbacks=(), verbose=1):
    """Trains from `initial_epoch` to `epochs`, keeping the run folder's records.

    Callbacks (after any given `callbacks`): ReBNN's oscillation ratio per layer (for models with 1-bit kernels; before
    the loggers that record it), `history.csv` (on resume, cut to the epochs before
    `initial_epoch`, then appended to), a checkpoint per finite epoch (after the epoch's
    row, so that a Ctrl-C between the two repeats the row's epoch rather than losing the
    row), TensorBoard logs, `curves.png`, and a stop on a NaN loss.

    Raises `Interrupted` on Ctrl-C, after checkpointing the state it was in, and
    `TrainingError` when the loss became NaN (the last good checkpoint stays).
    """
    run_dir = Path(run_dir)
    target = target or model
    saver = EpochCheckpoint(checkpoints, target) if checkpoints else None
    if initial_epoch > 0:
        truncate_history(run_dir / "history.csv", initial_epoch)
    callbacks = [
        *callbacks,
        tf.keras.callbacks.TerminateOnNaN(),
        *([rebnn.OscillationLogger()] if has_binary_kernels(target) else []),
        tf.keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=initial_epoch > 0),
        *([saver] if saver else []),
        CurvesPlot(run_dir / "history.csv", run_dir / "curves.png"),
        tf.keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False, profile_batch=0),
    ]
    try:
        history = model.fit(
            train_data,
            validation_data=eval_data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
    except KeyboardInterrupt:
        done = saver.completed if saver and saver.completed else initial_epoch
        where = ""
        if checkpoints and _finite(target, None):
            checkpoints.save(done)
            where = f"; its state is checkpointed in {Path(checkpoints.manager.directory)}"
        raise Interrupted(f"interrupted during epoch {done + 1}{where}") from None
    losses_ = history.history.get("loss", [])
    if not losses_ or not np.isfinite(losses_[-1]) or "val_loss" not in history.history:
        epoch = initial_epoch + len(losses_)
        kept = (
            f"the last good checkpoint (epoch {saver.last_good}) is kept in {checkpoints.manager.directory}"
            if saver and saver.last_good
            else "no checkpoint was good"
        )
        raise TrainingError(
            f"the training loss became NaN in epoch {epoch}; {kept}; try a lower learning rate"
        )
    return history


def has_binary_kernels(model) -> bool:
    return any(costs.has_binary_kernel(layer) for layer in costs.flat_layers(model) if hasattr(layer, "kernel"))


# -- recipes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How to train: the schedule, optimiser settings and recipe, per step.

    `epochs` is per step; `batch_size` is global (split over a strategy's replicas);
    `weight_decay` None means the recipe's own: 1e-5 in step 1 of two-step, else 0.
    """

    recipe: str = "one-step"
    epochs: int = 1
    batch_size: int = 128
    learning_rate: float = 1e-3
    warmup_epochs: float = 0.0
    weight_decay: float | None = None
    label_smoothing: float = 0.0
    jit_compile: bool = False

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise TrainingError(f"recipe must be one of {', '.join(RECIPES)}; got {self.recipe!r}")
        if self.warmup_epochs >= self.epochs:
            raise TrainingError(f"the warm-up ({self.warmup_epochs} epochs) must be shorter than a step ({self.epochs} epochs)")

    def steps(self, method):
        """[(step folder name, method, weight decay)]: "" is the run folder itself."""
        if self.recipe == "one-step":
            return [("", method, self.weight_decay or 0.0)]
        first = TWO_STEP_WEIGHT_DECAY if self.weight_decay is None else self.weight_decay
        return [("step1", method.replace(binarise="activations"), first), ("step2", method, 0.0)]


def transfer_weights(source, target) -> int:
    """Copies every weight of `source` into the same place in `target` (layers in the same
    order, weights by name and shape), and returns how many; raises `TrainingError` if
    any source weight has no place. Extra target weights keep their values, except that
    ReBNN's alpha is set from the kernel it receives."""
    src_layers = [layer for layer in costs.flat_layers(source)]
    dst_layers = [layer for layer in costs.flat_layers(target)]
    if len(src_layers) != len(dst_layers):
        raise TrainingError(f"cannot transfer weights: {len(src_layers)} layers in step 1, {len(dst_layers)} in step 2")
    missing, copied = [], 0
    for src, dst in zip(src_layers, dst_layers):
        places = {_short(w): w for w in dst.weights}
        for w in src.weights:
            place = places.get(_short(w))
            if place is None or place.shape != w.shape:
                missing.append(f"{src.name}/{_short(w)} {tuple(w.shape)}")
                continue
            place.assign(w)
            copied += 1
        if isinstance(dst, rebnn.ReBNNConv2D) and src.weights:
            dst.init_alpha()
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise TrainingError(f"cannot transfer {len(missing)} step-1 weight(s) into step 2: {listed}")
    return copied


def _short(weight) -> str:
    """The weight's name within its layer: 'block1_sign/fc1/kernel:0' -> 'fc1/kernel'."""
    name = weight.name.split(":")[0]
    return name.split("/", 1)[1] if "/" in name else name


def _step_dir(run_dir: Path, name: str) -> Path:
    path = run_dir / name if name else run_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def train(
    build: Callable,
    method,
    train_data: tf.data.Dataset,
    eval_data: tf.data.Dataset,
    recipe: Recipe,
    run_dir,
    *,
    steps_per_epoch: int,
    teacher: Callable | None = None,
    strategy: tf.distribute.Strategy | None = None,
    resume: bool = False,
    verbose=1,
    on_step: Callable | None = None,
    callbacks=(),
):
    """Trains `build(method)` with `recipe`, writing the run folder; returns the model.

    - `build(method)` builds the (uncompiled) model; `teacher()` the frozen teacher, if
      distilling (both are called inside the strategy's scope).
    - Two-step: step 1 trains `method` with real weights, step 2 the binary `method`
      starting from step 1's weights (every one of them must carry over).
    - `resume`: steps with a `model.h5` are done; the first one without restarts from its
      latest checkpoint, at the epoch after it, with its optimiser state.
    - Under a multi-worker strategy, only the chief writes `run_dir`; other workers write
      to a temporary folder, removed at the end.
    - `on_step(name, method, weight_decay)` is called as each step starts; `callbacks`
      go to every `fit`.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if recipe.batch_size % strategy.num_replicas_in_sync:
        raise TrainingError(
            f"the global batch size {recipe.batch_size} does not split over "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    chief = is_chief(strategy)
    out = Path(run_dir) if chief else Path(tempfile.mkdtemp(prefix="lqm-worker-"))
    train_data, eval_data = distribute(train_data), distribute(eval_data)
    try:
        previous = model = None
        for name, step_method, weight_decay in recipe.steps(method):
            step_dir = _step_dir(out, name)
            final = step_dir / "model.h5"
            if resume and final.exists():
                previous = final
                continue
            if on_step:
                on_step(name, step_method, weight_decay)
            with strategy.scope():
                model = build(step_method)
                if previous is not None:
                    source = previous if isinstance(previous, tf.keras.Model) else saving.load_model(previous)
                    transfer_weights(source, model)
                trainer = compile_classifier(
                    model,
                    learning_rate=recipe.learning_rate,
                    total_steps=recipe.epochs * steps_per_epoch,
                    warmup_steps=round(recipe.warmup_epochs * steps_per_epoch),
                    weight_decay=weight_decay,
                    label_smoothing=recipe.label_smoothing,
                    teacher=teacher() if teacher else None,
                    jit_compile=recipe.jit_compile,
                )
                checkpoints = Checkpoints(step_dir / "checkpoints", model, trainer.optimizer)
                initial_epoch = checkpoints.restore(model) if resume else 0
            if initial_epoch < recipe.epochs:
                fit(
                    trainer, train_data, eval_data, epochs=recipe.epochs, run_dir=step_dir,
                    initial_epoch=initial_epoch, checkpoints=checkpoints, target=model, callbacks=callbacks,
                    verbose=verbose,
                )  # fmt: skip
            saving.save_model(model, final)
            previous = model
            resume = False  # later steps start afresh
        if model is None:
            raise TrainingError(f"{run_dir} is complete: every step has its model.h5")
        if name:
            saving.save_model(model, out / "model.h5")
        return model
    finally:
        if not chief:
            shutil.rmtree(out, ignore_errors=True)
