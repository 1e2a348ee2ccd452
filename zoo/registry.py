"""A registry of named models in the style of timm: `create_model`, `list_models`."""

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ModelEntry:
    name: str
    constructor: Callable
    description: str
    method: object  # the `Method` the constructor gets unless one is passed
    backbone: str = ""


_REGISTRY: dict[str, ModelEntry] = {}


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


def _add(entry: ModelEntry):
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry


def register_model(name: str, description: str, method):
    """Registers the decorated backbone constructor under `name`."""

    def decorator(constructor):
        _add(ModelEntry(name, constructor, description, method, backbone=name))
        return constructor

    return decorator


def register_preset(name: str, backbone: str, method, description: str):
    """Registers a named model: a registered backbone with a `Method` preset."""
    _add(ModelEntry(name, _REGISTRY[backbone].constructor, description, method, backbone))


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
    argument replaces the model's own)."""
    entry = get_entry(name)
    kwargs.setdefault("method", entry.method)
    return entry.constructor(**kwargs)
