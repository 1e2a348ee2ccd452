"""`Recipe`: how to train, per step: one-step, or ReActNet's two steps."""

from __future__ import annotations

from dataclasses import dataclass

from larq_methods.training.errors import TrainingError
from larq_methods.training.schedules import SCHEDULES

RECIPES = ("one-step", "two-step")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# ReActNet's step 1 weight decay (binary activations, real weights); step 2 has none.
TWO_STEP_WEIGHT_DECAY = 1e-5


@dataclass(frozen=True)
class Recipe:
    """How to train: the schedule, optimiser settings and recipe, per step.

    `epochs` is per step; `batch_size` is global (split over a strategy's replicas);
    `weight_decay` None means the recipe's own: 1e-5 in step 1 of two-step, else 0.
    `precise_bn`: the training batches of a PreciseBN evaluation after every epoch
    (`precise_bn`), 0 for none; it measures, and changes nothing that training does.
    `schedule`: "linear" (warm-up, then linear decay to zero per step: ReActNet's) or a
    method's own, such as "step" (GAAF's proxy training); see `schedules.SCHEDULES`.
    `precision`: "float32", or a Keras mixed precision policy (`mixed_policy()` picks the
    machine's): see `precision_policy`.
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
