"""`Checkpoints`: the whole state of a run at a step boundary, for an exact resume."""

from __future__ import annotations

import tensorflow as tf

from larq_methods.training.errors import TrainingError


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
                "older lqm, or for another model); start a new run from its weights (`init`)",
                parameters=("init",),
            ) from None
        return int(self.epoch.numpy())

    def _build_optimizer(self) -> None:
        # creates the slots (Adam's moments) that a fresh optimiser makes only at its first step
        self.checkpoint.optimizer.build(self.model.trainable_variables)
