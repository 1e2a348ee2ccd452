"""Named models: a backbone with a method preset, as the papers describe them.

The presets live with their methods (`larq_methods.methods`: the `Method` parts each sets,
its paper, and whether it follows the authors' released code or the paper); a named model
is its backbone's own method with the preset's parts replaced, so a method on QuickNet keeps
QuickNet's weight binarisation unless it changes it. ReActNet-A is MobileNetV1 based
("-mobilenet"), ReActNet-18 is ResNet-18 based ("-resnet18").
"""

from larq_methods import methods
from larq_methods.method import Method
from zoo.registry import get_entry, register_preset

# Each preset's own `Method` (from the default `Method()`), by name.
PRESETS = {name: preset.method() for name, preset in methods.PRESETS.items()}

# (name, backbone, preset)
NAMED_MODELS = (
    ("insta-mobilenet", "reactnet-a", "insta"),
    ("insta-plus-mobilenet", "reactnet-a", "insta-plus"),
    ("insta-resnet18", "reactnet-18", "insta"),
    ("insta-plus-resnet18", "reactnet-18", "insta-plus"),
    ("dybnn-mobilenet", "reactnet-a", "dybnn"),
    ("dybnn-resnet18", "reactnet-18", "dybnn"),
    ("rebnn-resnet18", "reactnet-18", "rebnn"),
    ("ftbnn-resnet18", "reactnet-18", "ftbnn"),
    ("gaaf-resnet18", "reactnet-18", "gaaf"),
    ("insta-quicknet", "quicknet", "insta"),
    ("insta-birealnet", "birealnet", "insta"),
    ("dybnn-quicknet", "quicknet", "dybnn"),
    ("dybnn-birealnet", "birealnet", "dybnn"),
)

# Float counterparts: each backbone with its own method and every quantizer off (no sign,
# real weights), to train as a teacher for distillation or as a reference.
FLOAT_MODELS = (
    ("float-mobilenet", "reactnet-a"),
    ("float-resnet18", "reactnet-18"),
    ("float-birealnet", "birealnet"),
    ("float-quicknet", "quicknet"),
)


def preset_method(preset: str, model: str) -> Method:
    """The method preset `preset` on the backbone of the registered `model`: the
    backbone's own method with the preset's parts replaced."""
    return methods.PRESETS[preset].method(get_entry(get_entry(model).backbone).method)


for _name, _backbone, _preset in NAMED_MODELS:
    _record = methods.PRESETS[_preset]
    register_preset(_name, _backbone, preset_method(_preset, _backbone), f"{_record.paper} on {_backbone}", _record.follows)

for _name, _backbone in FLOAT_MODELS:
    register_preset(
        _name,
        _backbone,
        get_entry(_backbone).method.replace(binarise="none"),
        f"float counterpart of {_backbone} (quantizers off): a teacher for distillation",
    )
