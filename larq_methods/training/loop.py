"""The training loop of one step of a recipe: epochs of batches, evaluation, history and
checkpoints, with an exact resume at any step.

The place in the data is `trainer.optimizer.iterations`: epoch `iterations // steps`,
whose first `iterations % steps` batches are skipped, so a run resumed at any step sees
exactly the batches it had not trained on.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from larq_methods import precise_bn, saving
from larq_methods.training.errors import Interrupted, NonFiniteLoss, TrainingError, WriteError
from larq_methods.training.history import (
    TensorBoardLog,
    append_history,
    plot_history,
    truncate_history,
)
from larq_methods.training.interrupts import CheckSignals, DeferredSignals

EpochData = Callable[[int, int], tf.data.Dataset]
# the metrics the progress bar shows at an epoch's end
SHOWN = ("loss", "accuracy", "val_loss", "val_accuracy", "val_precise_bn_accuracy")


def epoch_data(data) -> EpochData:
    """`data(epoch, skip_batches)` from a dataset factory, or from a fixed `tf.data`
    dataset (whose iteration must then give the same batches every time for a run
    resumed mid-epoch to be exact)."""
    if callable(data):
        return data
    return lambda epoch, skip: data.skip(skip)


@dataclass(frozen=True)
class LoopOptions:
    """How long one step trains and how often it checkpoints.

    `epochs` of `steps_per_epoch` steps. Checkpoints are written after every epoch, and
    also every `checkpoint_steps` steps and every `checkpoint_seconds` of training, so that
    a run killed outright loses little. `precise_batches` > 0 adds
    `val_precise_bn_accuracy` to each row: the evaluation accuracy with BatchNorm's
    statistics re-estimated over that many of the epoch's training batches
    (`precise_bn.accuracy`; training is unchanged by it). `verbose`: Keras' progress bar.
    """

    epochs: int
    steps_per_epoch: int
    checkpoint_steps: int | None = None
    checkpoint_seconds: float = 600.0
    precise_batches: int = 0
    verbose: int = 1


def _finite(model) -> bool:
    return all(np.isfinite(w.numpy()).all() for w in model.trainable_weights)


class Loop:
    """Trains from the state in `trainer` (restored or fresh) to `options.epochs` epochs.

    `completed` epochs have their row in `history.csv` (it is cut back to them first);
    `seconds` is the training time before this segment. After every epoch: evaluation,
    one row of `history.csv` (loss, accuracy, learning rate, oscillation ratios),
    TensorBoard scalars, `curves.png`, a checkpoint. `callbacks` are Keras callbacks,
    called per epoch and per batch with the student as their model; one that sets
    `model.stop_training` ends the run after that epoch. `oscillation`: a
    `methods.rebnn.SignOscillation` whose ratios each row records.
    """

    def __init__(self, trainer, train_data, eval_data, run_dir, checkpoints, options: LoopOptions, *,
                 oscillation=None, completed=0, seconds=0.0, strategy=None, callbacks=()):  # fmt: skip
        self.trainer, self.student = trainer, trainer.student
        self.data, self.eval_data = epoch_data(train_data), eval_data
        self.run_dir, self.checkpoints, self.options = Path(run_dir), checkpoints, options
        self.oscillation, self.completed, self.seconds = oscillation, completed, seconds
        # outside every scope, get_strategy() is the default (one-device) strategy
        self.strategy = strategy if strategy is not None and strategy is not tf.distribute.get_strategy() else None
        self.callbacks = tf.keras.callbacks.CallbackList(list(callbacks), model=self.student)

    def elapsed(self) -> float:
        return self.seconds + time.perf_counter() - self.started

    def save(self, epoch) -> bool:
        """Checkpoints the state as of `epoch` completed epochs, unless it is not finite."""
        if _finite(self.student):
            with self.writing("a checkpoint"):
                self.checkpoints.save(epoch, self.elapsed())
            return True
        return False

    @contextlib.contextmanager
    def writing(self, what: str):
        """Turns a failed write (a full disk, a folder that became read-only) into a
        `WriteError` that names the last good checkpoint, which a failed save leaves in
        force (`Checkpoints`)."""
        try:
            yield
        except (OSError, tf.errors.OpError, saving.FileError) as e:
            reason = getattr(e, "strerror", None) or str(getattr(e, "message", e)).splitlines()[0]
            for temp in Path(self.checkpoints.manager.directory).glob("*_temp"):  # a save cut short
                shutil.rmtree(temp, ignore_errors=True)
            good = int(tf.train.load_variable(self.checkpoints.latest, "epoch/.ATTRIBUTES/VARIABLE_VALUE")) if self.checkpoints.latest else None
            kept = (
                f"the last good checkpoint (epoch {good}) is kept in {self.checkpoints.manager.directory}"
                if good is not None
                else "no checkpoint was written yet"
            )
            raise WriteError(f"could not write {what} in {self.run_dir} ({reason}); {kept}") from None

    def run(self) -> float:
        """Trains; returns the training seconds of the whole run. Raises `Interrupted` on
        Ctrl-C (or a SIGTERM given a Python handler), after finishing the step in progress
        (`DeferredSignals`) and checkpointing, and `NonFiniteLoss` when the loss became NaN
        (the last good checkpoint stays)."""
        self.train_function = self.trainer.make_train_function()
        self.history_csv = self.run_dir / "history.csv"
        truncate_history(self.history_csv, self.completed)
        self.tensorboard = TensorBoardLog(self.run_dir)
        self.started = time.perf_counter()
        self.step = int(self.trainer.optimizer.iterations.numpy())
        self.last_save, self.last_save_time = self.step, time.perf_counter()
        self.done, self.training_metrics, self.current = self.completed, None, self.completed
        # Ctrl-C and SIGTERM stop the run between steps, never inside TensorFlow
        with DeferredSignals() as self.signals:
            try:
                for epoch in range(self.completed, self.options.epochs):
                    self.current = epoch
                    self.signals.check()
                    if not self._epoch(epoch):
                        break
                self.signals.check()
            except KeyboardInterrupt:
                self._interrupted()
        return self.elapsed()

    def _epoch(self, epoch) -> bool:
        """Trains, evaluates and records epoch `epoch`; False when a callback ends the run."""
        steps = self.options.steps_per_epoch
        first = self.step - epoch * steps
        if first < 0 or first > steps:
            raise TrainingError(f"the checkpoint's {self.step} steps do not fit epoch {epoch + 1} of {steps} steps")
        if first == 0:
            self.trainer.reset_metrics()
        self.callbacks.on_epoch_begin(epoch)
        progress = tf.keras.utils.Progbar(steps, stateful_metrics=["loss", "accuracy"], verbose=self.options.verbose)
        if self.options.verbose:
            print(f"Epoch {epoch + 1}/{self.options.epochs}")
        logs = self._train_batches(epoch, first, progress)
        row = {"epoch": epoch, "loss": logs.get("loss"), "accuracy": logs.get("accuracy")}
        row["learning_rate"] = float(self.trainer.optimizer.learning_rate.numpy())  # of the last step
        self._check_finite(epoch, row, logs)
        self._evaluate(epoch, row)
        self._record(epoch, row)
        progress.update(steps, [(k, row[k]) for k in SHOWN if k in row], finalize=True)
        return not getattr(self.student, "stop_training", False)  # a callback ended the run (early stop)

    def _batches(self, epoch, first):
        batches = self.data(epoch, first)
        if self.strategy is not None:
            batches = self.strategy.experimental_distribute_dataset(batches)
        return iter(batches)

    def _train_batches(self, epoch, first, progress) -> dict:
        """The batches of `epoch` from `first` on (or until the loss is not finite)."""
        steps = self.options.steps_per_epoch
        iterator = self._batches(epoch, first)
        logs = {m.name: float(m.result()) for m in self.trainer.metrics}
        for batch in range(first, steps):
            self.signals.check()
            self.callbacks.on_train_batch_begin(batch)
            try:
                logs = {k: float(v) for k, v in self.train_function(iterator).items()}
            except (tf.errors.OutOfRangeError, StopIteration):
                raise TrainingError(
                    f"the training data ran out after {batch} of {steps} batches of epoch {epoch + 1} "
                    "(fewer images than the dataset counted: one that failed to decode?)"
                ) from None
            self.step += 1
            self.callbacks.on_train_batch_end(batch, logs)
            # the bar's last update waits for the evaluation
            progress.update(batch + 1, [(k, logs[k]) for k in ("loss", "accuracy")], finalize=False)
            if not math.isfinite(logs["loss"]):
                break
            self._checkpoint_if_due(epoch)
        return logs

    def _checkpoint_if_due(self, epoch) -> None:
        options = self.options
        by_steps = options.checkpoint_steps and self.step - self.last_save >= options.checkpoint_steps
        if by_steps or time.perf_counter() - self.last_save_time >= options.checkpoint_seconds:
            self.save(epoch)
            self.last_save, self.last_save_time = self.step, time.perf_counter()

    def _check_finite(self, epoch, row, logs) -> None:
        if math.isfinite(logs.get("loss", math.nan)) and _finite(self.student):
            return
        append_history(self.history_csv, row)
        good = int(self.checkpoints.epoch.numpy()) if self.checkpoints.latest else 0
        kept = f"the last good checkpoint (epoch {good}) is kept in {self.checkpoints.manager.directory}"
        raise NonFiniteLoss(f"the training loss became NaN in epoch {epoch + 1}; {kept}; try a lower learning rate")

    def _evaluate(self, epoch, row) -> None:
        # evaluation resets the metrics: keep the epoch's training state for a Ctrl-C here
        self.training_metrics = [v.numpy() for m in self.trainer.metrics for v in m.variables]
        evaluation = self.trainer.evaluate(self.eval_data, verbose=0, return_dict=True, callbacks=[CheckSignals(self.signals)])
        row.update({f"val_{k}": float(v) for k, v in evaluation.items()})
        if self.options.precise_batches:  # it restores the model itself, should Ctrl-C stop it
            row["val_precise_bn_accuracy"] = precise_bn.accuracy(
                self.student, self.data(epoch, 0), self.eval_data, self.options.precise_batches
            )
        self.training_metrics = None

    def _record(self, epoch, row) -> None:
        """The epoch's row, scalars, curves, callbacks and checkpoint."""
        if self.oscillation is not None:
            row.update(self.oscillation.ratios())
            self.oscillation.snapshot()
        with self.writing("the history"):
            append_history(self.history_csv, row)
            self.done = epoch + 1
            self.tensorboard.write(row, epoch)
            plot_history(self.history_csv, self.run_dir / "curves.png")
        self.callbacks.on_epoch_end(epoch, row)
        self.save(epoch + 1)
        self.last_save, self.last_save_time = self.step, time.perf_counter()

    def _interrupted(self):
        # `iterations` counts the steps taken: the checkpoint resumes at the next one.
        if self.training_metrics is not None:
            variables = (v for m in self.trainer.metrics for v in m.variables)
            for variable, value in zip(variables, self.training_metrics):
                variable.assign(value)
        where = f"; its state is checkpointed in {self.checkpoints.manager.directory}" if self.save(self.done) else ""
        raise Interrupted(f"interrupted during epoch {self.current + 1}{where}") from None
