"""Training, split by job:

- `recipe`: `Recipe`, how to train (one-step, or ReActNet's two steps);
- `schedules`: learning-rate schedules by name;
- `step`: the one training step (`Trainer`) and `compile_classifier`;
- `loop`: the epochs of one step, with history and checkpoints (`Loop`);
- `checkpoints`: the whole run state for an exact resume;
- `interrupts`: Ctrl-C and SIGTERM, acted on between steps;
- `history`: `history.csv`, TensorBoard scalars, `curves.png`;
- `precision`: mixed precision and op determinism;
- `strategies`: `tf.distribute` strategies;
- `transfer`: weights from step 1 into step 2, or from `--init`;
- `steps`: `train`, the recipe's steps into a run folder, fresh or resumed.

The library builds no model itself: `train` takes `build(method) -> model`, so any
backbone with any `Method` trains with any recipe; `zoo.run` wraps it into a run that is
described by one configuration, and `zoo.recipes` decides which recipe a model gets.
"""

from larq_methods.training.checkpoints import Checkpoints
from larq_methods.training.errors import Interrupted, NonFiniteLoss, TrainingError, WriteError
from larq_methods.training.history import (
    append_history,
    plot_history,
    read_history,
    truncate_history,
    write_json,
)
from larq_methods.training.loop import Loop, LoopOptions
from larq_methods.training.precision import (
    float32_copy,
    mixed_policy,
    precision_policy,
    set_determinism,
)
from larq_methods.training.recipe import (
    PRECISIONS,
    RECIPES,
    TWO_STEP_WEIGHT_DECAY,
    Recipe,
)
from larq_methods.training.schedules import SCHEDULES, WarmupLinearDecay, make_schedule
from larq_methods.training.step import (
    Trainer,
    add_weight_decay,
    compile_classifier,
    conv_kernels,
    outputs_logits,
)
from larq_methods.training.steps import (
    binary_kernel_layers,
    has_binary_kernels,
    is_complete,
    run_seconds,
    train,
)
from larq_methods.training.strategies import (
    STRATEGIES,
    distribute,
    is_chief,
    make_strategy,
)
from larq_methods.training.transfer import (
    check_same_method,
    start_from,
    transfer_weights,
)

__all__ = [
    "PRECISIONS", "RECIPES", "SCHEDULES", "STRATEGIES", "TWO_STEP_WEIGHT_DECAY",
    "Checkpoints", "Interrupted", "Loop", "LoopOptions", "NonFiniteLoss", "Recipe", "Trainer", "TrainingError",
    "WarmupLinearDecay", "WriteError", "add_weight_decay", "append_history", "binary_kernel_layers", "check_same_method",
    "compile_classifier", "conv_kernels", "distribute", "float32_copy", "has_binary_kernels", "is_chief",
    "is_complete", "make_schedule", "make_strategy", "mixed_policy", "outputs_logits", "plot_history",
    "precision_policy", "read_history", "run_seconds", "set_determinism", "start_from", "train",
    "transfer_weights", "truncate_history", "write_json",
]  # fmt: skip
