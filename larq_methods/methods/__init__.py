"""The methods, one module each, and the registry that lists them.

A method's module holds its layers, quantizers, hooks and preset records, and says what it
adds to the binary block through name tables (as timm's `create_act.py`):

- `THRESHOLDS`: `Method.threshold` -> a sign layer's constructor, called with `name=`;
- `ACTIVATIONS`: `Method.activation` -> an activation layer's constructor (`BEFORE_ADD`:
  those placed before the shortcut addition, after each convolution's BatchNorm);
- `WEIGHTS`: `Method.weights` -> `conv(method, filters, kernel_size, **common)`, the binary
  convolution;
- `SCHEDULES`: a recipe's `schedule` -> `schedule(learning_rate, steps_per_epoch,
  total_steps, warmup_steps)`;
- `PRESETS`: `Preset` records (name, the `Method` parts, paper, what it follows).

To add a method: write its module here with those tables, and list it in `MODULES`.
`plain` is the larq-zoo backbones' own binarisation (Bi-Real Net's and QuickNet's signs).
"""

from larq_methods.methods import dybnn, ftbnn, gaaf, insta, plain, reactnet, rebnn
from larq_methods.methods.preset import Preset

MODULES = (reactnet, insta, dybnn, rebnn, ftbnn, gaaf, plain)


def _table(name: str) -> dict:
    table = {}
    for module in MODULES:
        for key, value in getattr(module, name, {}).items():
            if key in table:
                raise ValueError(f"{module.__name__} registers {name} {key!r} twice")
            table[key] = value
    return table


THRESHOLDS = _table("THRESHOLDS")
ACTIVATIONS = _table("ACTIVATIONS")
WEIGHTS = _table("WEIGHTS")
SCHEDULES = _table("SCHEDULES")
BEFORE_ADD = frozenset(name for module in MODULES for name in getattr(module, "BEFORE_ADD", ()))
PRESETS = {preset.name: preset for module in MODULES for preset in getattr(module, "PRESETS", ())}

__all__ = ["ACTIVATIONS", "BEFORE_ADD", "MODULES", "PRESETS", "Preset", "SCHEDULES", "THRESHOLDS", "WEIGHTS"]
