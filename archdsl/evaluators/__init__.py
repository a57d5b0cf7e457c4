"""Evaluators: what a search optimises.

An evaluator scores one architecture: `evaluate(arch)` returns a dict with `objective` (a
number, higher is better) and any other figures worth keeping (params, flops, ...); `cost`, when
given, is a simulated duration in seconds (NAS-Bench-201 lookups report the training time they
stand for). It raises (any exception) or returns NaN when the trial fails.

    get_evaluator("digits")            # train on scikit-learn's digits data (the default)
    get_evaluator("nb201")             # look the cell up in NAS-Bench-201
    get_evaluator("mymodule:score")    # your function: score(arch) -> float | dict
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ArchDSLError, EvaluationError, did_you_mean
from ..graph import Architecture

__all__ = ["Evaluator", "FunctionEvaluator", "get_evaluator", "as_evaluator", "EVALUATORS",
           "result_of"]


class Evaluator:
    """Base class: `evaluate(arch) -> {"objective": float, ...}`."""

    name = ""

    def evaluate(self, arch: Architecture) -> dict[str, Any]:
        raise NotImplementedError


class FunctionEvaluator(Evaluator):
    """A user's function `fn(arch) -> float | dict` (a dict holds "objective")."""

    def __init__(self, fn: Callable[[Architecture], Any], name: str):
        self.fn, self.name = fn, name

    def evaluate(self, arch: Architecture) -> dict[str, Any]:
        return self.fn(arch)


def as_evaluator(obj: Any) -> Evaluator:
    """What `search(evaluator_object=...)` evaluates with: an object with an `evaluate(arch)`
    method as it is, or a plain function `fn(arch) -> number | dict`; anything else is an
    ArchDSLError."""
    if callable(getattr(obj, "evaluate", None)):
        return obj
    if callable(obj):
        return FunctionEvaluator(obj, getattr(obj, "__qualname__", type(obj).__name__))
    raise ArchDSLError(f"evaluator_object must be a function fn(arch) -> number | dict, or an "
                       f"object with an evaluate(arch) method; got {_show(obj)} "
                       f"({type(obj).__name__})")


def result_of(out: Any) -> dict[str, Any]:
    """An evaluator's answer as {"objective": float, ...} with every other entry plain JSON
    (text keys; numbers, text, true/false, null, lists and dicts of them; numpy and torch
    scalars become numbers): EvaluationError if it is not one."""
    if isinstance(out, dict):
        if "objective" not in out:
            raise EvaluationError("the evaluator returned a dict without 'objective': "
                                  f"{sorted(map(repr, out))}")
        result = dict(out)
    else:
        result = {"objective": out}
    v = _scalar(result["objective"])
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise EvaluationError(f"the objective must be a number, got {_show(v)}")
    try:
        v = float(v)
    except OverflowError:
        raise EvaluationError(f"the objective is too large for a float: {_show(v)}") from None
    if not math.isfinite(v):
        raise EvaluationError(f"the objective is {v}")
    result["objective"] = v
    for key in result:
        if not isinstance(key, str):
            raise EvaluationError(f"the evaluator's result has a key that is not text: "
                                  f"{_show(key)}")
    return {k: _plain(v, k) for k, v in result.items()}


def _scalar(v: Any) -> Any:
    """A numpy or torch scalar (shape ()) as the Python value it holds; anything else as is."""
    item = getattr(v, "item", None)
    if callable(item) and isinstance(getattr(v, "shape", None), tuple) and v.shape == ():
        try:
            return item()
        except (TypeError, ValueError, RuntimeError):
            return v
    return v


def _plain(v: Any, where: str) -> Any:
    """`v` as plain JSON data, or EvaluationError naming the metric `where`."""
    v = _scalar(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x, f"{where}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                raise EvaluationError(f"metric '{where}' has a key that is not text: {_show(k)}")
        return {k: _plain(x, f"{where}.{k}") for k, x in v.items()}
    raise EvaluationError(f"metric '{where}' is not a number, text, list or dict: "
                          f"{_show(v)} ({type(v).__name__})")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _nb201() -> Evaluator:
    from .nb201 import NB201Evaluator

    return NB201Evaluator()


def _digits() -> Evaluator:
    from .digits import DigitsEvaluator

    return DigitsEvaluator()


EVALUATORS: dict[str, Callable[[], Evaluator]] = {"digits": _digits, "nb201": _nb201}


def get_evaluator(spec: str) -> Evaluator:
    """`digits`, `nb201`, or `module:function` (the module is imported from the working folder
    or the Python path)."""
    if spec in EVALUATORS:
        return EVALUATORS[spec]()
    module, sep, func = spec.partition(":")
    if not sep or not module or not func:
        raise ArchDSLError(f"unknown evaluator '{spec}'",
                           hint=did_you_mean(spec, EVALUATORS) or
                           "evaluators: digits, nb201, or module:function for your own")
    if str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any failure to import is the user's to see
        raise ArchDSLError(f"evaluator '{spec}': cannot import module '{module}': "
                           f"{type(e).__name__}: {e}") from None
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise ArchDSLError(f"evaluator '{spec}': module '{module}' has no function '{func}'",
                           hint=did_you_mean(func, [n for n in dir(mod) if not n.startswith("_")]))
    return FunctionEvaluator(fn, spec)
