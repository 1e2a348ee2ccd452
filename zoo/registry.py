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


_REGISTRY: dict[str, ModelEntry] = {}


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


def register_model(name: str, description: str):
    """Registers the decorated constructor under `name`."""

    def decorator(constructor):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, constructor, description)
        return constructor

    return decorator


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
    """Builds the registered model `name`; `kwargs` go to its constructor."""
    return get_entry(name).constructor(**kwargs)
