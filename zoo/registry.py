"""A registry of named models in the style of timm: `create_model`, `list_models`."""

import difflib
import fnmatch
import os
from dataclasses import dataclass
from typing import Callable

from larq_methods.method import Method
from zoo import pretrained


@dataclass(frozen=True)
class ModelEntry:
    name: str
    constructor: Callable
    description: str
    method: object  # the `Method` the constructor gets unless one is passed
    backbone: str = ""
    # What the model follows, in one word: "code" (the authors' released code), "paper"
    # (the publication; no code was released), "ours", or "larq-zoo" (its factories).
    follows: str = "ours"


_REGISTRY: dict[str, ModelEntry] = {}


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


def _add(entry: ModelEntry):
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry


def register_model(name: str, description: str, method, follows: str = "ours"):
    """Registers the decorated backbone constructor under `name`."""

    def decorator(constructor):
        _add(ModelEntry(name, constructor, description, method, backbone=name, follows=follows))
        return constructor

    return decorator


def register_preset(name: str, backbone: str, method, description: str, follows: str = "ours"):
    """Registers a named model: a registered backbone with a `Method` preset."""
    _add(ModelEntry(name, _REGISTRY[backbone].constructor, description, method, backbone, follows))


def list_models(pattern: str = "*") -> list[str]:
    """The registered model names matching a shell-style `pattern`, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}; {hint}`lqm models` lists the {len(_REGISTRY)} "
            "available"
        ) from None


def create_model(name: str, **kwargs):
    """Builds the registered model `name`; `kwargs` go to its constructor (a `method`
    argument replaces the model's own).

    `weights` is a weights-file path or the dataset of registered pretrained weights, e.g.
    "fashion_mnist": those are fetched into the cache, and the shape, classes, width and
    method they were trained with are the defaults (other values are refused).
    """
    entry = get_entry(name)
    weights = kwargs.get("weights")
    # a name with a file suffix is a path (the constructor reports it missing), not a dataset
    if isinstance(weights, str) and not os.path.exists(weights) and not os.path.splitext(weights)[1]:
        kwargs.update(_pretrained_arguments(name, weights, kwargs))
    kwargs.setdefault("method", entry.method)
    return entry.constructor(**kwargs)


def _pretrained_arguments(name: str, dataset: str, kwargs: dict) -> dict:
    """The constructor arguments that load `name`'s `dataset` weights: theirs, checked
    against the ones given."""
    weights = pretrained.get(name, dataset)
    trained = {"alpha": weights.alpha, "num_classes": weights.num_classes}
    if kwargs.get("input_tensor") is None:
        trained["input_shape"] = weights.input_shape
    if "method" in weights.recipe:
        trained["method"] = Method(**weights.recipe["method"])
    for key, value in trained.items():
        given = kwargs.get(key)
        if given is not None and (tuple(given) if key == "input_shape" else given) != value:
            raise pretrained.WeightsError(
                f"the {name} {dataset} weights were trained with {key}={value}, not {given}"
            )
    return {**trained, "weights": str(pretrained.fetch(name, dataset))}
