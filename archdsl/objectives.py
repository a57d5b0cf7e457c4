"""What a search optimises: one or more named objectives, each maximized or minimized.

    objs = parse_objectives(["maximize:accuracy", "minimize:params"])
    values(objs, {"objective": 0.97, "accuracy": 0.97, "params": 12_345})   # (0.97, -12345.0)

An objective names a value of a trial: `objective` (the evaluator's main value), any metric the
evaluator returns (`accuracy`, `valid_loss`, nb201's `c10_valid_12`, ...), `params` and `flops`
(from static shapes, for every trial) or `latency` (the compiled model's forward time on the
trial's device, measured when an objective names it). `values` gives them signed so that higher
is better for every one (a minimized value is negated): what searchers are told. With no
objective named, a search has the one objective `maximize:objective`, as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ArchDSLError, EvaluationError, did_you_mean

__all__ = ["Objective", "DEFAULT", "parse_objectives", "values", "raw_values", "to_json",
           "from_json", "DIRECTIONS"]

DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Objective:
    direction: str  # maximize or minimize
    name: str  # the value of a trial it reads

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "maximize" else -1.0

    def __str__(self) -> str:
        return f"{self.direction}:{self.name}"


DEFAULT = (Objective("maximize", "objective"),)


def parse_objectives(specs: Sequence[str] | None) -> tuple[Objective, ...]:
    """`DIRECTION:NAME` texts as Objectives (DEFAULT for none); ArchDSLError for a bad one."""
    if not specs:
        return DEFAULT
    out: list[Objective] = []
    for spec in specs:
        direction, sep, name = str(spec).partition(":")
        if not sep or not name:
            raise ArchDSLError(f"--objective '{spec}' is not DIRECTION:NAME",
                               hint="e.g. --objective maximize:accuracy --objective "
                                    "minimize:params")
        if direction not in DIRECTIONS:
            raise ArchDSLError(f"--objective '{spec}': unknown direction '{direction}'",
                               hint=did_you_mean(direction, DIRECTIONS)
                               or "directions: maximize, minimize")
        if not name.replace("_", "a").replace(".", "a").isalnum():
            raise ArchDSLError(f"--objective '{spec}': '{name}' is not a metric's name")
        if any(o.name == name for o in out):
            raise ArchDSLError(f"--objective names '{name}' twice",
                               hint="each metric may be one objective only")
        out.append(Objective(direction, name))
    return tuple(out)


def raw_values(objs: Sequence[Objective], result: Mapping[str, Any]) -> tuple[float, ...]:
    """Each objective's value in a trial's result (its `objective` and metrics), as given;
    EvaluationError naming a missing or non-numeric one, and what the result holds."""
    out = []
    for o in objs:
        v = result.get(o.name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            have = sorted(k for k, x in result.items()
                          if isinstance(x, (int, float)) and not isinstance(x, bool))
            what = "does not return" if v is None else f"returns {v!r} for"
            raise EvaluationError(f"the evaluator {what} the objective '{o.name}'",
                                  hint=did_you_mean(o.name, have)
                                  or "its numeric results: " + ", ".join(have))
        out.append(float(v))
    return tuple(out)


def values(objs: Sequence[Objective], result: Mapping[str, Any]) -> tuple[float, ...]:
    """The objectives signed so that higher is better (see the module doc)."""
    return tuple(o.sign * v for o, v in zip(objs, raw_values(objs, result), strict=True))


def to_json(objs: Sequence[Objective]) -> list[str]:
    return [str(o) for o in objs]


def from_json(stored: Any) -> tuple[Objective, ...]:
    """The objectives a study stored (DEFAULT for a study made before they were stored)."""
    if stored is None:
        return DEFAULT
    return parse_objectives(stored)
