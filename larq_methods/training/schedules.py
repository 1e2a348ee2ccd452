"""Learning-rate schedules by name: ReActNet's linear decay, and the methods' own
(`larq_methods.methods.SCHEDULES`: GAAF's step schedule)."""

import tensorflow as tf

from larq_methods import methods


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


def linear(learning_rate: float, steps_per_epoch: int, total_steps: int, warmup_steps: int = 0):
    """Warm-up, then linear decay to zero per step (`WarmupLinearDecay`)."""
    del steps_per_epoch
    return WarmupLinearDecay(learning_rate, total_steps, warmup_steps)


# name -> schedule(learning_rate, steps_per_epoch, total_steps, warmup_steps)
SCHEDULES = {"linear": linear, **methods.SCHEDULES}


def make_schedule(recipe, steps_per_epoch: int):
    """The learning-rate schedule of `recipe` (its `schedule`, rate, epochs and warm-up)."""
    return SCHEDULES[recipe.schedule](
        recipe.learning_rate,
        steps_per_epoch,
        recipe.epochs * steps_per_epoch,
        round(recipe.warmup_epochs * steps_per_epoch),
    )
