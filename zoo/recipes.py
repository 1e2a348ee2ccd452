"""Training recipes by name: what `lqm train NAME` runs when no option says otherwise.

"paper" is ReActNet's recipe as its released code runs it (`run.sh`, liuzechun/ReActNet;
the recipe the papers report), which INSTA-BNN, DyBNN, ReBNN and FTBNN train with too:

- two steps: binary activations with real weights, then both binary from step 1's
  weights (`training.Recipe(recipe="two-step")`);
- distillation from the model's float twin with the distributional loss (cross-entropy
  against the teacher's softmax);
- Adam, batch 256, learning rate 1.25e-3 (ReActNet-A's; ReActNet-18's 2.5e-3 at batch 512
  is the same rate per image), decayed linearly to 0 per step, no warm-up;
- weight decay 1e-5 in step 1, 0 in step 2;
- epochs per step scaled to the dataset (`EPOCHS`): the code's 128 on ImageNet; on
  Fashion-MNIST 10, where this project's study found its baseline converged (ReActNet-18:
  its last two epochs within 0.2 point on three seeds; at 5 it was still rising 0.8 point
  an epoch), and 15 for the ReActNet-A backbone (`BACKBONE_EPOCHS`: at 10 its PreciseBN
  accuracy still rose 0.3 point in the last epoch, at 15 0.05); on other data, the same
  number of optimiser steps as the backbone's on Fashion-MNIST (`epochs_for`).

A float model (no quantizer) trains one step of twice the epochs, with step 1's weight
decay and no teacher: that is how a float twin is made to teach.

"one-step" and "two-step" are the library's plain recipes (`training.Recipe`): one epoch,
batch 128, Adam 1e-3, no teacher unless one is given.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

from larq_methods import training
from zoo.registry import get_entry

RECIPE_PRESETS = ("paper", "one-step", "two-step")
DEFAULT_RECIPE = "paper"

# ReActNet's released run.sh, per step
PAPER_BATCH_SIZE = 256
PAPER_LEARNING_RATE = 1.25e-3
# epochs per step, by dataset
EPOCHS = {"imagenet2012": 128, "fashion_mnist": 10}
# by (dataset, backbone) where a backbone needs other epochs than EPOCHS (its float twin too)
BACKBONE_EPOCHS = {("fashion_mnist", "reactnet-a"): 15}
# a dataset not in EPOCHS gets Fashion-MNIST's number of optimiser steps (60,000 images)
_REFERENCE = ("fashion_mnist", 60_000)
MAX_EPOCHS = 128


def epochs_for(dataset: str, num_examples: int, backbone: str | None = None) -> int:
    """Epochs per step of the paper recipe for `backbone` on `dataset` of `num_examples`
    training images: `BACKBONE_EPOCHS` or `EPOCHS` for `dataset`, or as many as give the
    backbone's number of optimiser steps on Fashion-MNIST (at least its epochs there, at
    most ImageNet's)."""
    if dataset in EPOCHS:
        return BACKBONE_EPOCHS.get((dataset, backbone), EPOCHS[dataset])
    name, size = _REFERENCE
    reference = BACKBONE_EPOCHS.get((name, backbone), EPOCHS[name])
    scaled = math.ceil(reference * size / max(1, num_examples))
    return min(MAX_EPOCHS, max(reference, scaled))


def twin_epochs(epochs: int) -> int:
    """The epochs of a float twin's one step that teaches a two-step run of `epochs` per
    step: both steps' epochs, so that the twin sees as many batches as its students."""
    return 2 * epochs


def is_float(model: str) -> bool:
    """Whether the registered `model` has no quantizer (a float twin)."""
    return get_entry(model).method.binarise == "none"


def float_twin(model: str) -> str | None:
    """The registered float model of `model`'s backbone (`float-resnet18` for every
    ReActNet-18 model), or None (a float model, or a backbone without one)."""
    from zoo.named import FLOAT_MODELS

    if is_float(model):
        return None
    backbone = get_entry(model).backbone
    return next((name for name, base in FLOAT_MODELS if base == backbone), None)


def paper(model: str, dataset: str, num_examples: int) -> training.Recipe:
    """The paper recipe for `model` on `dataset` (see the module's docstring)."""
    epochs = epochs_for(dataset, num_examples, get_entry(model).backbone)
    common = dict(batch_size=PAPER_BATCH_SIZE, learning_rate=PAPER_LEARNING_RATE, schedule="linear")
    if is_float(model):
        return training.Recipe(recipe="one-step", epochs=twin_epochs(epochs), weight_decay=training.TWO_STEP_WEIGHT_DECAY, **common)
    return training.Recipe(recipe="two-step", epochs=epochs, **common)


def teacher_recipe(recipe: training.Recipe) -> training.Recipe:
    """How a float twin is trained to teach a run of `recipe`: one step of as many epochs
    as the student's steps together, the same batch and rate, step 1's weight decay."""
    return training.Recipe(
        recipe="one-step",
        epochs=twin_epochs(recipe.epochs) if recipe.recipe == "two-step" else recipe.epochs,
        batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        weight_decay=training.TWO_STEP_WEIGHT_DECAY,
        jit_compile=recipe.jit_compile,
        precision=recipe.precision,
    )


def resolve(name: str, model: str, dataset: str, num_examples: int) -> training.Recipe:
    """The recipe preset `name` for `model` on `dataset`."""
    if name == "paper":
        return paper(model, dataset, num_examples)
    if name in training.RECIPES:
        return training.Recipe(recipe=name)
    raise training.TrainingError(f"recipe must be one of {', '.join(RECIPE_PRESETS)}; got {name!r}")


@dataclass(frozen=True)
class Plan:
    """What a run trains with: the recipe, the teacher (a model file, run folder or
    registered name; None for none) and, where the teacher is a registered name whose
    pretrained weights may not fit, the recipe that trains it first."""

    recipe: training.Recipe
    teacher: str | None = None
    teacher_recipe: training.Recipe | None = None


def plan(
    model: str,
    dataset: str,
    num_examples: int | Callable[[], int],
    *,
    recipe: str = DEFAULT_RECIPE,
    teacher: str | None = None,
    **changes,
) -> Plan:
    """The recipe preset `recipe` for `model` on `dataset`, with `changes` (fields of
    `training.Recipe`, such as `epochs=3`) replacing its parts, and its teacher: the one
    given, none for "none", or by default the paper recipe's float twin, trained first
    with `teacher_recipe` of the final recipe unless its pretrained weights fit.

    Every caller (`lqm train`, `lqm compare`, the benchmarks, library users) gets its
    recipe here. `num_examples` (the training images, or a function that counts them) is
    read only where the paper recipe scales its epochs to the dataset."""
    if recipe == "paper" and changes.get("epochs") is None and dataset not in EPOCHS:
        num_examples = num_examples() if callable(num_examples) else num_examples
    else:
        num_examples = 0  # not needed: the dataset's epochs are known or given
    chosen = resolve(recipe, model, dataset, num_examples)
    chosen = dataclasses.replace(chosen, **{k: v for k, v in changes.items() if v is not None})
    if teacher is not None and teacher.lower() == "none":
        return Plan(chosen)
    if teacher is None and recipe == "paper" and float_twin(model):
        return Plan(chosen, float_twin(model), teacher_recipe(chosen))
    return Plan(chosen, teacher)
