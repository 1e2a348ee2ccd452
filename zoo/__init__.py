"""Model definitions: backbones, named models, their registry and pretrained weights."""

import larq_methods  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
from zoo import larqzoo, named, reactnet, resnete  # noqa: F401  (register the models)
from zoo import pretrained
from zoo.larqzoo import BiRealNet, QuickNet
from zoo.named import PRESETS
from zoo.pretrained import WeightsError
from zoo.reactnet import ReActNet18, ReActNetA
from zoo.resnete import ResNetE18
from zoo.registry import UnknownModelError, create_model, get_entry, list_models

__all__ = [
    "PRESETS",
    "BiRealNet",
    "QuickNet",
    "ReActNet18",
    "ReActNetA",
    "ResNetE18",
    "UnknownModelError",
    "WeightsError",
    "create_model",
    "get_entry",
    "list_models",
    "pretrained",
]
