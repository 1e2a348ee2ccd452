"""The record of a method preset: a method as its paper describes it."""

from __future__ import annotations

from dataclasses import dataclass, field

FOLLOWS = ("code", "paper", "ours", "larq-zoo")


@dataclass(frozen=True)
class Preset:
    """A method as a paper describes it.

    - `name`: the preset's name (`lqm train --method NAME`, and the prefix of named models
      such as `insta-resnet18`).
    - `parts`: the parts of `Method` it sets; a named model takes its backbone's method
      with these replaced.
    - `paper`: the paper, in one line.
    - `follows`: "code" (the authors' released code, which produced the paper's figures),
      "paper" (the publication: no code was released), or "ours".
    """

    name: str
    parts: dict = field(default_factory=dict)
    paper: str = ""
    follows: str = "ours"

    def __post_init__(self):
        if self.follows not in FOLLOWS:
            raise ValueError(f"follows must be one of {', '.join(FOLLOWS)}; got {self.follows!r}")

    def method(self, base=None):
        """The preset's `Method`: `base` (default `Method()`) with `parts` replaced."""
        from larq_methods.method import Method

        return (base or Method()).replace(**self.parts)
