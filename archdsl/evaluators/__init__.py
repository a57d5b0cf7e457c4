"""Evaluators: what a search optimises.

An evaluator scores one architecture: `evaluate(arch)` returns a dict with `objective` (a
number, higher is better) and any other figures worth keeping (params, flops, ...); `cost`, when
given, is a simulated duration in seconds (NAS-Bench-201 lookups report the training time they
stand for). It raises (any exception) or returns NaN when the trial fails.

    get_evaluator("digits")            # train on scikit-learn's digits data (the default)
    get_evaluator("train", data="my.npz", device="cuda")   # train on your data (docs/training.md)
    get_evaluator("nb201")             # look the cell up in NAS-Bench-201
    get_evaluator("mymodule:score")    # your function: score(arch) -> float | dict
    get_evaluator("supernet:ckpt.pt")  # inherited weights of a trained supernet (docs/one_shot.md)

An evaluator may take a reporter as well, `evaluate(arch, reporter)`, to report a value after each
epoch and be stopped early (archdsl/reporting.py); and may have `prepare(space)`, called once per
worker before its first trial (to load data and check it against the space).
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
           "result_of", "import_function"]


class Evaluator:
    """Base class: `evaluate(arch) -> {"objective": float, ...}`."""

    name = ""
    # the names of what its results hold, when known (objectives are checked against them
    # before a search starts); None: not known until a result comes
    metrics: tuple[str, ...] | None = None

    def prepare(self, space: Any) -> None:
        """Called once per worker, before its first trial, with the search space: load what
        every trial needs and check it against the space (nothing, by default)."""

    def evaluate(self, arch: Architecture) -> dict[str, Any]:
        raise NotImplementedError


class FunctionEvaluator(Evaluator):
    """A user's function `fn(arch) -> float | dict` (a dict holds "objective"), or
    `fn(arch, reporter)`: one that reports as it goes (archdsl/reporting.py) gets the reporter."""

    def __init__(self, fn: Callable[..., Any], name: str):
        self.fn, self.name = fn, name

    def evaluate(self, arch: Architecture, reporter: Any = None) -> dict[str, Any]:
        return self.fn(arch) if reporter is None else self.fn(arch, reporter)


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


def _nb201(**options: Any) -> Evaluator:
    from .nb201 import NB201Evaluator

    return NB201Evaluator(**options)


def _digits(**options: Any) -> Evaluator:
    from .digits import DigitsEvaluator

    return DigitsEvaluator(**options)


def _train(**options: Any) -> Evaluator:
    from .train import TrainEvaluator

    return TrainEvaluator(**options)


EVALUATORS: dict[str, Callable[..., Evaluator]] = {"digits": _digits, "train": _train,
                                                   "nb201": _nb201}
# the options each takes (get_evaluator's keyword arguments); `module:function` takes device
# (the runner hands it to a function that takes a reporter, as `reporter.device`)
OPTIONS = {"digits": ("device", "threads"), "train": ("data", "device", "threads"), "nb201": (),
           "supernet": ("device", "threads"), "module:function": ("device",)}


def get_evaluator(spec: str, **options: Any) -> Evaluator:
    """`digits`, `train`, `nb201`, or `module:function` (the module is imported from the working
    folder or the Python path). `options` (data, device, threads; None: not given) go to the
    evaluators that take them (OPTIONS); one given to an evaluator that does not take it is an
    ArchDSLError."""
    if spec.startswith("supernet:"):  # a trained supernet's checkpoint (docs/one_shot.md)
        from .supernet import SupernetEvaluator

        return SupernetEvaluator(spec[len("supernet:"):], **_options("supernet", options))
    module, sep, func = spec.partition(":")
    if spec not in EVALUATORS and (not sep or not module or not func):
        raise ArchDSLError(f"unknown evaluator '{spec}'",
                           hint=did_you_mean(spec, EVALUATORS) or
                           "evaluators: digits, train, nb201, supernet:CHECKPOINT, or "
                           "module:function for your own")
    given = _options(spec, options)
    if spec in EVALUATORS:
        return EVALUATORS[spec](**given)
    if "device" in given:
        from ..devices import check_device

        check_device(given["device"])
    return FunctionEvaluator(import_function(spec, "evaluator"), spec)


def _options(spec: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options given (not None), each one the evaluator takes (OPTIONS), else ArchDSLError."""
    given = {k: v for k, v in options.items() if v is not None}
    takes = OPTIONS.get(spec, OPTIONS["module:function"])
    for k in given:
        if k not in takes:
            raise ArchDSLError(f"evaluator '{spec}' takes no {k} option",
                               hint=f"{k} is an option of: "
                                    + ", ".join(n for n, o in OPTIONS.items() if k in o))
    return given


def import_function(spec: str, what: str) -> Callable[..., Any]:
    """The function `module:function` names (the module imported from the working folder or
    the Python path); ArchDSLError naming `what` it is for when it cannot be found."""
    module, _, func = spec.partition(":")
    if str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any failure to import is the user's to see
        raise ArchDSLError(f"{what} '{spec}': cannot import module '{module}': "
                           f"{type(e).__name__}: {e}") from None
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise ArchDSLError(f"{what} '{spec}': module '{module}' has no function '{func}'",
                           hint=did_you_mean(func, [n for n in dir(mod) if not n.startswith("_")]))
    return fn
