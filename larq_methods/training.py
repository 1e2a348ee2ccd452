"""Training recipes: one-step and ReActNet's two-step, distillation, the optimiser and its
schedule, the training loop with exact resume (checkpoints at step boundaries, logs,
curves) and `tf.distribute`.

The library builds no model itself: `train` takes `build(method) -> model`, so any
backbone with any `Method` trains with any recipe; `zoo.run` wraps it into a run that is
described by one configuration.

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

import contextlib
import csv
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from larq_methods import costs, hooks, losses, precise_bn, rebnn, saving

RECIPES = ("one-step", "two-step")
SCHEDULES = ("linear", "step")
# GAAF's proxy regime (the authors' `net_01.py`): from these epochs on, these factors of the
# initial rate.
STEP_SCHEDULE = ((80, 0.2), (150, 0.1), (200, 0.02), (240, 0.01), (270, 0.002))
STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# ReActNet's step 1 weight decay (binary activations, real weights); step 2 has none.
TWO_STEP_WEIGHT_DECAY = 1e-5


class TrainingError(Exception):
    """A run that cannot start, or that stopped without a usable model."""


class NonFiniteLoss(TrainingError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


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


def step_decay(learning_rate: float, steps_per_epoch: int):
    """GAAF's step schedule (`STEP_SCHEDULE`), per optimiser step: constant for runs under
    80 epochs, such as the authors' 15-epoch proxy training."""
    # PiecewiseConstantDecay switches after a boundary: epoch e starts at step e * steps
    boundaries = [epoch * steps_per_epoch - 1 for epoch, _ in STEP_SCHEDULE]
    values = [learning_rate] + [learning_rate * factor for _, factor in STEP_SCHEDULE]
    return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


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


class Trainer(tf.keras.Model):
    """The one training step of every run: trains `student`, on the labels or, with a
    frozen `teacher`, on the distributional loss against it.

    Calling it calls the student; its metrics are the loss and the top-1 accuracy against
    the labels, held in its own `loss_tracker` and `accuracy` (so a checkpoint can carry
    them across an interruption mid-epoch). Every layer of the student that is a
    `hooks.TrainingHook` takes part in each step: its `hook_variables()` are watched on the
    tape, and `before_update()` / `after_update(state, grads)` run around the optimiser's
    update (ReBNN's adaptive balance is one such layer).
    """

    def __init__(self, student, teacher=None, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
            self._teacher_logits = outputs_logits(teacher)
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")
        self.accuracy = tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy]

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        target = y
        y_pred = tf.cast(y_pred, tf.float32)  # the loss in float32 under mixed precision
        if self.teacher is not None:
            target = tf.cast(self.teacher(x, training=False), tf.float32)
            if self._teacher_logits:
                target = tf.nn.softmax(target)
        return self.compiled_loss(target, y_pred, sample_weight, regularization_losses=self.losses)

    def _update_metrics(self, loss, y, y_pred, sample_weight):
        # weighted by batch size, as Keras' own loss tracker: a short last batch counts less
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(y_pred)[0])
        self.accuracy.update_state(y, y_pred, sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        layers = hooks.hooked_layers(self.student)
        watched = [layer.hook_variables() for layer in layers]
        extra = [v for vs in watched for v in vs]
        scaled = hasattr(self.optimizer, "get_scaled_loss")  # a loss-scaling optimiser
        with tf.GradientTape() as tape:
            tape.watch(extra)  # hook variables need not be trainable
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
            target = self.optimizer.get_scaled_loss(loss) if scaled else loss
        variables = self.trainable_variables
        grads = tape.gradient(target, variables + extra)
        if scaled:
            grads = self.optimizer.get_unscaled_gradients(grads)
        extra_grads = [tf.zeros_like(v) if g is None else g for v, g in zip(extra, grads[len(variables) :])]
        if extra_grads:  # each replica holds its share; hooks get the whole batch's
            extra_grads = tf.distribute.get_replica_context().all_reduce("sum", extra_grads)
        states = [layer.before_update() for layer in layers]
        self.optimizer.apply_gradients(zip(grads[: len(variables)], variables))
        for layer, state, vs in zip(layers, states, watched):
            layer.after_update(state, extra_grads[: len(vs)])
            extra_grads = extra_grads[len(vs) :]
        return self._update_metrics(loss, y, y_pred, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        return self._update_metrics(self.compute_loss(x, y, y_pred, sample_weight), y, y_pred, sample_weight)


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
    schedule=None,
) -> Trainer:
    """A compiled `Trainer` of `model`: Adam with warm-up and linear decay to zero per
    step, and accuracy on the labels.

    The loss is the cross-entropy on the labels (with `label_smoothing`), or, with a
    `teacher`, the distributional loss against it. Fit the trainer; save `model`.
    Weight decay: `add_weight_decay`. `schedule` replaces the warm-up and linear decay.
    """
    add_weight_decay(model, weight_decay)
    from_logits = outputs_logits(model)
    trainer = Trainer(model, teacher)
    if teacher is not None:
        loss = losses.DistributionalLoss(from_logits=from_logits)
    else:
        loss = losses.SparseCrossentropy(label_smoothing, from_logits=from_logits)
    trainer.compile(
        optimizer=tf.keras.optimizers.Adam(schedule or WarmupLinearDecay(learning_rate, total_steps, warmup_steps)),
        loss=loss,
        jit_compile=jit_compile,
    )
    return trainer


# -- mixed precision ----------------------------------------------------------------------


def mixed_policy() -> str:
    """The mixed precision policy for this machine: float16 on a GPU (with loss scaling),
    bfloat16 on CPUs and TPUs."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def precision_policy(name: str):
    """Builds models under the Keras dtype policy `name` inside the block.

    Under a mixed policy, layers compute in float16 or bfloat16 and keep float32 weights,
    except where precision matters: every sign (`quantizers.BinarySign`: its threshold and
    comparison), INSTA's and DyBNN's statistics and hyper-functions, the classifier's
    softmax and the loss run in float32, and ReBNN's balance does its arithmetic and sums
    in float32. A mixed_float16 trainer scales its loss (Keras wraps the optimiser).
    """
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def float32_copy(model, build, method):
    """A float32 build of `method` holding `model`'s weights: what a mixed-precision run
    saves, so that its model.h5 loads, evaluates and converts as a float32 model's."""
    with precision_policy("float32"):
        copy = build(method)
    copy.set_weights(model.get_weights())
    return copy


def set_determinism(enabled: bool) -> None:
    """Turns TensorFlow's op determinism on or off for this process: with it, the same
    seed gives bit-identical training on the same machine (kernels pick deterministic
    algorithms and reductions; tf.data keeps its order)."""
    from tensorflow.python.framework import config as tf_config

    if enabled:
        tf.config.experimental.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


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


class SignOscillation(tf.Module):
    """ReBNN's weight-oscillation ratio per layer with a 1-bit kernel: the fraction of
    latent weights whose sign flipped since the last `snapshot()` (an epoch's end).

    The signs of the last snapshot are variables, so a checkpoint carries them and a run
    resumed mid-epoch reports the same ratios as an uninterrupted one.
    """

    def __init__(self, model):
        super().__init__(name="oscillation")
        self._layers = binary_kernel_layers(model)
        self.signs = [
            tf.Variable(rebnn.latent_sign_bits(layer), trainable=False, name=f"sign_{i}")
            for i, layer in enumerate(self._layers)
        ]

    def ratios(self) -> dict[str, float]:
        if not self._layers:
            return {}
        ratios = {
            f"oscillation/{layer.name}": float(rebnn.oscillation_ratio(previous, rebnn.latent_sign_bits(layer)))
            for layer, previous in zip(self._layers, self.signs)
        }
        return {**ratios, "oscillation/mean": float(np.mean(list(ratios.values())))}

    def snapshot(self) -> None:
        for layer, previous in zip(self._layers, self.signs):
            previous.assign(rebnn.latent_sign_bits(layer))


class Checkpoints:
    """The whole state of a run at a step boundary, through `tf.train.CheckpointManager`:
    model, optimiser (its `iterations` is the number of steps taken, and so the place in
    the data), the running training metrics of the current epoch, the completed epochs,
    the oscillation snapshot and the training seconds so far.

    A save writes the checkpoint's files, then atomically rewrites the `checkpoint` index
    that names the latest one: a save cut short leaves the previous checkpoint in force.
    """

    def __init__(self, folder, model, optimizer, *, metrics=(), oscillation=None, max_to_keep=2):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="seconds")
        parts = dict(model=model, optimizer=optimizer, epoch=self.epoch, seconds=self.seconds, metrics=list(metrics))
        if oscillation is not None:
            parts["oscillation"] = oscillation
        self.checkpoint = tf.train.Checkpoint(**parts)
        self.model = model
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(folder), max_to_keep=max_to_keep)

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def save(self, epoch: int, seconds: float) -> str:
        # numbered by save, never by epoch: a Ctrl-C save must not overwrite the last good one
        self.epoch.assign(epoch)
        self.seconds.assign(seconds)
        self._build_optimizer()  # a Ctrl-C before the first step would otherwise save no Adam moments
        return self.manager.save()

    def restore(self) -> int:
        """Restores the latest checkpoint; returns its number of completed epochs."""
        if self.latest is None:
            return 0
        self._build_optimizer()  # slots must exist to be restored
        try:
            self.checkpoint.restore(self.latest).assert_existing_objects_matched()
        except AssertionError:
            raise TrainingError(
                f"the checkpoint {self.latest} does not hold a whole run state (written by an "
                "older lqm, or for another model); start a new run from its weights with --init"
            ) from None
        return int(self.epoch.numpy())

    def _build_optimizer(self) -> None:
        # creates the slots (Adam's moments) that a fresh optimiser makes only at its first step
        self.checkpoint.optimizer.build(self.model.trainable_variables)


def restore_weights(folder, model) -> int:
    """Loads the model weights of the latest checkpoint in `folder` (no optimiser needed);
    returns its number of completed epochs."""
    latest = tf.train.latest_checkpoint(str(folder))
    if latest is None:
        raise TrainingError(f"no checkpoint in {folder}")
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    tf.train.Checkpoint(model=model, epoch=epoch).restore(latest).expect_partial().assert_existing_objects_matched()
    return int(epoch.numpy())


def _finite(model) -> bool:
    return all(np.isfinite(w.numpy()).all() for w in model.trainable_weights)


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


HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def append_history(history_csv, row: dict) -> None:
    """Appends one epoch's row; the first row writes the header (`HISTORY_KEYS` first,
    then the others in sorted order). Values are written with `repr`, so two identical runs write
    identical files."""
    path = Path(history_csv)
    if path.exists() and path.stat().st_size:
        with open(path, newline="") as f:
            keys = next(csv.reader(f))
    else:
        first = [k for k in HISTORY_KEYS if k in row]
        keys = [*first, *sorted(k for k in row if k not in first)]
        path.write_text(",".join(keys) + "\n")
    with open(path, "a", newline="") as f:
        csv.writer(f).writerow(["" if row.get(k) is None else repr(row[k]) for k in keys])


def plot_history(history_csv, png) -> None:
    """Loss and accuracy, training and evaluation, per epoch (whole-epoch ticks); written
    atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    history = read_history(history_csv)
    if not history.get("epoch"):
        return
    epochs = [int(e) + 1 for e in history["epoch"]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "train"), (f"val_{metric}", "eval"), (f"val_precise_bn_{metric}", "eval, PreciseBN")):
            if key in history:
                ax.plot(epochs, history[key], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(0.5, max(epochs) + 0.5)
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


EpochData = Callable[[int, int], tf.data.Dataset]


def epoch_data(data) -> EpochData:
    """`data(epoch, skip_batches)` from a dataset factory, or from a fixed `tf.data`
    dataset (whose iteration must then give the same batches every time for a run
    resumed mid-epoch to be exact)."""
    if callable(data):
        return data
    return lambda epoch, skip: data.skip(skip)


def fit(
    trainer: Trainer,
    train_data,
    eval_data: tf.data.Dataset,
    *,
    epochs: int,
    steps_per_epoch: int,
    run_dir,
    checkpoints: Checkpoints,
    oscillation: SignOscillation | None = None,
    completed: int = 0,
    seconds: float = 0.0,
    checkpoint_steps: int | None = None,
    checkpoint_seconds: float = 600.0,
    strategy=None,
    callbacks=(),
    precise_batches: int = 0,
    verbose=1,
) -> float:
    """Trains from the state in `trainer` (restored or fresh) to `epochs` epochs of
    `steps_per_epoch` steps; returns the training seconds of the whole run.

    The place in the data is `trainer.optimizer.iterations`: epoch `iterations // steps`,
    whose first `iterations % steps` batches are skipped, so a run resumed at any step
    sees exactly the batches it had not trained on. `completed` epochs have their row in
    `history.csv` (it is cut back to them first). After every epoch: evaluation, one row
    of `history.csv` (loss, accuracy, learning rate, oscillation ratios), TensorBoard
    scalars, `curves.png`, a checkpoint. Checkpoints are also written every
    `checkpoint_steps` steps and every `checkpoint_seconds` of training, so that a run
    killed outright loses little. `precise_batches` > 0 adds `val_precise_bn_accuracy`
    to each row: the test accuracy with statistics re-estimated over that many of the
    epoch's training batches (`precise_bn.accuracy`; training is unchanged by it).
    `callbacks` are Keras callbacks, called per epoch and
    per batch with the student as their model; one that sets `model.stop_training` ends the
    run after that epoch.

    Raises `Interrupted` on Ctrl-C, after checkpointing the step it stopped at, and
    `TrainingError` when the loss became NaN (the last good checkpoint stays).
    """
    run_dir = Path(run_dir)
    student = trainer.student
    data = epoch_data(train_data)
    # outside every scope, get_strategy() is the default (one-device) strategy
    distributed = strategy is not None and strategy is not tf.distribute.get_strategy()
    train_function = trainer.make_train_function()
    callbacks = tf.keras.callbacks.CallbackList(list(callbacks), model=student)
    history_csv = run_dir / "history.csv"
    truncate_history(history_csv, completed)
    writers = {split: tf.summary.create_file_writer(str(run_dir / "logs" / split)) for split in ("train", "validation")}
    started = time.perf_counter()

    def elapsed():
        return seconds + time.perf_counter() - started

    def save(epoch):
        if _finite(student):
            checkpoints.save(epoch, elapsed())
            return True
        return False

    step = int(trainer.optimizer.iterations.numpy())
    last_save, last_save_time = step, time.perf_counter()
    done, training_metrics, current = completed, None, completed
    try:
        for epoch in range(completed, epochs):
            current = epoch
            first = step - epoch * steps_per_epoch
            if first < 0 or first > steps_per_epoch:
                raise TrainingError(f"the checkpoint's {step} steps do not fit epoch {epoch + 1} of {steps_per_epoch} steps")
            if first == 0:
                trainer.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            progress = tf.keras.utils.Progbar(steps_per_epoch, stateful_metrics=["loss", "accuracy"], verbose=verbose)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            batches = data(epoch, first)
            if distributed:
                batches = strategy.experimental_distribute_dataset(batches)
            iterator = iter(batches)
            logs = {m.name: float(m.result()) for m in trainer.metrics}
            for batch in range(first, steps_per_epoch):
                callbacks.on_train_batch_begin(batch)
                try:
                    logs = {k: float(v) for k, v in train_function(iterator).items()}
                except (tf.errors.OutOfRangeError, StopIteration):
                    raise TrainingError(
                        f"the training data ran out after {batch} of {steps_per_epoch} batches of epoch {epoch + 1} "
                        "(fewer images than the dataset counted: one that failed to decode?)"
                    ) from None
                step += 1
                callbacks.on_train_batch_end(batch, logs)
                # the bar's last update waits for the evaluation
                progress.update(batch + 1, [(k, logs[k]) for k in ("loss", "accuracy")], finalize=False)
                if not math.isfinite(logs["loss"]):
                    break
                if (checkpoint_steps and step - last_save >= checkpoint_steps) or (
                    time.perf_counter() - last_save_time >= checkpoint_seconds
                ):
                    save(epoch)
                    last_save, last_save_time = step, time.perf_counter()
            row = {"epoch": epoch, "loss": logs.get("loss"), "accuracy": logs.get("accuracy")}
            row["learning_rate"] = float(trainer.optimizer.learning_rate.numpy())  # of the last step
            if not math.isfinite(logs.get("loss", math.nan)) or not _finite(student):
                append_history(history_csv, row)
                good = int(checkpoints.epoch.numpy()) if checkpoints.latest else 0
                kept = f"the last good checkpoint (epoch {good}) is kept in {checkpoints.manager.directory}"
                raise NonFiniteLoss(f"the training loss became NaN in epoch {epoch + 1}; {kept}; try a lower learning rate")
            # evaluation resets the metrics: keep the epoch's training state for a Ctrl-C here
            training_metrics = [v.numpy() for m in trainer.metrics for v in m.variables]
            evaluation = trainer.evaluate(eval_data, verbose=0, return_dict=True)
            row.update({f"val_{k}": float(v) for k, v in evaluation.items()})
            if precise_batches:  # it restores the model itself, should Ctrl-C stop it
                row["val_precise_bn_accuracy"] = precise_bn.accuracy(student, data(epoch, 0), eval_data, precise_batches)
            training_metrics = None
            if oscillation is not None:
                row.update(oscillation.ratios())
                oscillation.snapshot()
            append_history(history_csv, row)
            done = epoch + 1
            # as Keras' TensorBoard callback lays them out: train/ and validation/, epoch_*
            for key, value in row.items():
                if key != "epoch":
                    split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                    with writers[split].as_default():
                        tf.summary.scalar(f"epoch_{name}", value, step=epoch)
            for writer in writers.values():
                writer.flush()
            plot_history(history_csv, run_dir / "curves.png")
            callbacks.on_epoch_end(epoch, row)
            save(epoch + 1)
            last_save, last_save_time = step, time.perf_counter()
            shown = ("loss", "accuracy", "val_loss", "val_accuracy", "val_precise_bn_accuracy")
            progress.update(steps_per_epoch, [(k, row[k]) for k in shown if k in row], finalize=True)
            if getattr(student, "stop_training", False):  # a callback ended the run (early stop)
                break
    except KeyboardInterrupt:
        # `iterations` counts the steps taken: the checkpoint resumes at the next one.
        if training_metrics is not None:
            for variable, value in zip((v for m in trainer.metrics for v in m.variables), training_metrics):
                variable.assign(value)
        where = f"; its state is checkpointed in {checkpoints.manager.directory}" if save(done) else ""
        raise Interrupted(f"interrupted during epoch {current + 1}{where}") from None
    return elapsed()


def binary_kernel_layers(model) -> list:
    """The layers of `model` (nested models included) whose kernels are 1-bit."""
    return [layer for layer in costs.flat_layers(model) if hasattr(layer, "kernel") and costs.has_binary_kernel(layer)]


def has_binary_kernels(model) -> bool:
    return bool(binary_kernel_layers(model))


# -- recipes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How to train: the schedule, optimiser settings and recipe, per step.

    `epochs` is per step; `batch_size` is global (split over a strategy's replicas);
    `weight_decay` None means the recipe's own: 1e-5 in step 1 of two-step, else 0.
    `precise_bn`: the training batches of a PreciseBN evaluation after every epoch
    (`precise_bn`), 0 for none; it measures, and changes nothing that training does.
    `schedule`: "linear" (warm-up, then linear decay to zero per step: ReActNet's) or
    "step" (GAAF's proxy training: `step_decay`). `precision`: "float32", or a Keras mixed
    precision policy (`mixed_policy()` picks the machine's): see `precision_policy`.
    """

    recipe: str = "one-step"
    epochs: int = 1
    batch_size: int = 128
    learning_rate: float = 1e-3
    warmup_epochs: float = 0.0
    weight_decay: float | None = None
    label_smoothing: float = 0.0
    jit_compile: bool = False
    schedule: str = "linear"
    precision: str = "float32"
    precise_bn: int = 0

    def __post_init__(self):
        if self.precise_bn < 0:
            raise TrainingError(f"precise_bn is a number of batches, 0 or more; got {self.precise_bn}")
        if self.precision not in PRECISIONS:
            raise TrainingError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.recipe not in RECIPES:
            raise TrainingError(f"recipe must be one of {', '.join(RECIPES)}; got {self.recipe!r}")
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if self.warmup_epochs >= self.epochs:
            raise TrainingError(f"the warm-up ({self.warmup_epochs} epochs) must be shorter than a step ({self.epochs} epochs)")

    def steps(self, method):
        """[(step folder name, method, weight decay)]: "" is the run folder itself."""
        if self.recipe == "one-step":
            return [("", method, self.weight_decay or 0.0)]
        first = TWO_STEP_WEIGHT_DECAY if self.weight_decay is None else self.weight_decay
        return [("step1", method.replace(binarise="activations"), first), ("step2", method, 0.0)]


def transfer_weights(source, target, *, what: str = "step-1 weight(s) into step 2") -> int:
    """Copies every weight of `source` into the same place in `target` (layers in the same
    order, weights by name and shape), and returns how many; raises `TrainingError` if
    any source weight has no place. Extra target weights keep their values, unless the
    layer's `after_transfer` sets them (ReBNN's learned alpha from the kernel it receives)."""
    src_layers = [layer for layer in costs.flat_layers(source)]
    dst_layers = [layer for layer in costs.flat_layers(target)]
    if len(src_layers) != len(dst_layers):
        raise TrainingError(f"cannot transfer weights: {len(src_layers)} layers in step 1, {len(dst_layers)} in step 2")
    missing, copied = [], 0
    for src, dst in zip(src_layers, dst_layers):
        places = {_short(w): w for w in dst.weights}
        received = set()
        for w in src.weights:
            place = places.get(_short(w))
            if place is None or place.shape != w.shape:
                missing.append(f"{src.name}/{_short(w)} {tuple(w.shape)}")
                continue
            place.assign(w)
            received.add(_short(w))
            copied += 1
        if received and isinstance(dst, hooks.TrainingHook):
            dst.after_transfer(received)  # e.g. ReBNN's scale from the kernel it received
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise TrainingError(f"cannot transfer {len(missing)} {what}: {listed}")
    return copied


def _short(weight) -> str:
    """The weight's name within its layer: 'block1_sign/fc1/kernel:0' -> 'fc1/kernel'."""
    name = weight.name.split(":")[0]
    return name.split("/", 1)[1] if "/" in name else name


def _step_dir(run_dir: Path, name: str) -> Path:
    path = run_dir / name if name else run_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def start_from(source, target) -> int:
    """Starts `target` from the weights of `source`, a model of the same kind (a run's
    `--init`): `check_same_method`, then `transfer_weights`; returns how many it copied."""
    check_same_method(source, target)
    return transfer_weights(source, target, what="initial weight(s) into this model")


def check_same_method(source, target) -> None:
    """Refuses to start `target` from `source` when their layers differ in kind (another
    method or backbone), naming the first difference."""
    src, dst = list(costs.flat_layers(source)), list(costs.flat_layers(target))
    for a, b in zip(src, dst):
        if type(a) is not type(b) and not _real_and_binary(a, b):
            raise TrainingError(
                f"the initial weights are of another model or method: layer {a.name} is a "
                f"{type(a).__name__} there and {b.name} a {type(b).__name__} here"
            )
    if len(src) != len(dst):
        raise TrainingError(f"the initial weights are of another model: {len(src)} layers there, {len(dst)} here")


def _real_and_binary(a, b) -> bool:
    """Real-weight and binary forms of one convolution (the two steps of a recipe)."""
    conv = (tf.keras.layers.Conv2D, tf.keras.layers.DepthwiseConv2D)
    return isinstance(a, conv) and isinstance(b, conv)


def run_seconds(run_dir, recipe: "Recipe", method) -> float:
    """Training seconds of a run: every step's, every segment's (resumed runs included),
    as its latest checkpoint records them."""
    total = 0.0
    for name, _, _ in recipe.steps(method):
        latest = tf.train.latest_checkpoint(str(Path(run_dir) / name / "checkpoints"))
        if latest:
            total += float(tf.train.load_variable(latest, "seconds/.ATTRIBUTES/VARIABLE_VALUE"))
    return total


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
      (Keras callbacks) go to every step's `fit`.
    - `recipe.precision`: the models train under that dtype policy (`precision_policy`)
      and are saved as float32 models (`float32_copy`).
    """
    strategy = strategy or tf.distribute.get_strategy()
    if recipe.batch_size % strategy.num_replicas_in_sync:
        raise TrainingError(
            f"the global batch size {recipe.batch_size} does not split over "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    chief = is_chief(strategy)
    out = Path(run_dir) if chief else Path(tempfile.mkdtemp(prefix="lqm-worker-"))
    if callable(train_data):
        make_data = train_data
        train_data = lambda epoch, skip: distribute(make_data(epoch, skip))  # noqa: E731
    else:
        train_data = distribute(train_data)
    eval_data = distribute(eval_data)
    if recipe.precise_bn and strategy.num_replicas_in_sync > 1:
        raise TrainingError("the PreciseBN evaluation (precise_bn) runs on one device; train on one or turn it off")
    steps = recipe.steps(method)
    try:
        previous = model = None
        worked = False
        for index, (name, step_method, weight_decay) in enumerate(steps):
            step_dir = _step_dir(out, name)
            final = step_dir / "model.h5"
            if resume and final.exists():
                last = index == len(steps) - 1
                if not last or _checkpoint_epochs(step_dir / "checkpoints") >= recipe.epochs:
                    previous = final
                    continue
            if on_step:
                on_step(name, step_method, weight_decay)
            with strategy.scope(), precision_policy(recipe.precision):
                model = build(step_method)
                trainer = compile_classifier(
                    model,
                    learning_rate=recipe.learning_rate,
                    total_steps=recipe.epochs * steps_per_epoch,
                    warmup_steps=round(recipe.warmup_epochs * steps_per_epoch),
                    weight_decay=weight_decay,
                    label_smoothing=recipe.label_smoothing,
                    teacher=teacher() if teacher else None,
                    jit_compile=recipe.jit_compile,
                    schedule=step_decay(recipe.learning_rate, steps_per_epoch) if recipe.schedule == "step" else None,
                )
                oscillation = SignOscillation(model) if has_binary_kernels(model) else None
                checkpoints = Checkpoints(
                    step_dir / "checkpoints", model, trainer.optimizer, metrics=trainer.metrics, oscillation=oscillation
                )
                restoring = resume and checkpoints.latest is not None
                if not restoring:
                    source = previous if previous is not None else (init() if init and index == 0 else None)
                    if source is not None:
                        source = source if isinstance(source, tf.keras.Model) else saving.load_model(source)
                        if previous is None:
                            start_from(source, model)
                        else:
                            transfer_weights(source, model)
                        if oscillation is not None:
                            oscillation.snapshot()
                completed = checkpoints.restore() if restoring else 0
                seconds = float(checkpoints.seconds.numpy()) if restoring else 0.0
            fit(
                trainer, train_data, eval_data, epochs=recipe.epochs, steps_per_epoch=steps_per_epoch,
                run_dir=step_dir, checkpoints=checkpoints, oscillation=oscillation, completed=completed,
                seconds=seconds, checkpoint_steps=checkpoint_steps, checkpoint_seconds=checkpoint_seconds,
                strategy=strategy, callbacks=callbacks, precise_batches=recipe.precise_bn, verbose=verbose,
            )  # fmt: skip
            saved = model if recipe.precision == "float32" else float32_copy(model, build, step_method)
            saving.save_model(saved, final)
            previous, worked = model, True
            resume = False  # later steps start afresh
        if not worked:
            raise TrainingError(f"{run_dir} is complete: every step has its model.h5 and {recipe.epochs} epoch(s)")
        if name:
            saving.save_model(saved, out / "model.h5")
        return saved
    finally:
        if not chief:
            shutil.rmtree(out, ignore_errors=True)


def is_complete(run_dir, recipe: Recipe, method) -> bool:
    """Whether every step of the run has its model.h5 and the last one `recipe.epochs`."""
    steps = recipe.steps(method)
    if not all((Path(run_dir) / name / "model.h5").exists() for name, _, _ in steps):
        return False
    return _checkpoint_epochs(Path(run_dir) / steps[-1][0] / "checkpoints") >= recipe.epochs


def _checkpoint_epochs(folder) -> int:
    """Completed epochs of the latest checkpoint in `folder` (0 if none)."""
    latest = tf.train.latest_checkpoint(str(folder))
    return int(tf.train.load_variable(latest, "epoch/.ATTRIBUTES/VARIABLE_VALUE")) if latest else 0
