"""Decision domains: the `Decision` a call of `choice`, `some`, `bool`, `int` or `float` makes,
from its evaluated arguments (options, range bounds, step, log scale, prior, default), with
every check of those arguments (an empty range, a default outside it, a domain past
MAX_DOMAIN...). One function per kind of call; the evaluation of the arguments is the caller's.
A choice among computations on graph nodes (`expression_choice`) has its options' texts as
options: it decides before any option is evaluated.

May import: archdsl.ast, archdsl.errors, archdsl.printer, archdsl.values, and .keys and .limits
of this package.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .. import ast as A
from ..errors import ArchLimitError, ArchTypeError, ArchValueError, Span, amount
from ..printer import format_expr
from ..values import Decision, describe, to_json
from .keys import to_json_key
from .limits import MAX_DOMAIN

__all__ = ["decision_of", "expression_choice"]

Eval = Callable[[A.Expr], Any]  # an argument's value


def expression_choice(e: A.Call, kinds: dict[int, str]) -> bool:
    """Whether `e` is a choice among computations on graph nodes (`choice(linear(a, 4),
    relu(a))`): a choice of tensors not all of whose options are node names. It decides first
    and evaluates the chosen option only; an input choice (`choice(n0, n1)`) evaluates all."""
    return e.func == "choice" and kinds.get(id(e)) == "tensor" and any(
        x.__class__ is not A.Name for x in e.positional)


def decision_of(e: A.Call, ev: Eval, name: str, texts: bool = False) -> Decision:
    """The decision `e` makes, named `name`; `ev` evaluates its arguments (the default first,
    then the others in order: errors and nested decisions keep that order). With `texts` (an
    expression choice) the options and the default are the options' texts, not evaluated."""
    kw = e.keywords
    opt = format_expr if texts else ev
    default = opt(kw["default"]) if "default" in kw else None
    f = e.func
    if f == "choice" or f == "some":
        return _options(e, ev, name, default, opt)
    if f == "bool":
        return _bool(e, ev, name, default)
    rng: A.Range = e.positional[0]  # type: ignore[assignment]
    lo = ev(rng.lo)
    hi = ev(rng.hi)
    log = len(e.positional) > 1
    if "log" in kw:
        log = ev(kw["log"]) is True
    step = ev(kw["step"]) if "step" in kw else None
    if f == "int":
        return _int(e, rng, name, lo, hi, step, log, default)
    return _float(e, rng, name, lo, hi, step, log, default)


def _options(e: A.Call, ev: Eval, name: str, default: Any, opt: Eval) -> Decision:
    """choice(...) or some(...): options listed, each `opt(x)`."""
    f, kw = e.func, e.keywords
    opts = [opt(x) for x in e.positional]
    if f == "choice":
        seen = set()
        for x, o in zip(e.positional, opts, strict=True):
            k = to_json_key(o)
            if k in seen:
                raise ArchValueError(f"choice option {to_json(o)!r} appears twice", x.span)
            seen.add(k)
    prior = None
    if "prior" in kw:
        prior = ev(kw["prior"])
        if not (isinstance(prior, tuple) and len(prior) == len(opts) and all(
                isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 0
                for p in prior) and sum(prior) > 0):
            raise ArchValueError(f"prior must be a list of {len(opts)} non-negative weights",
                                 kw["prior"].span)
        prior = tuple(finite(p, kw["prior"].span, "a prior weight") for p in prior)
        if not math.isfinite(sum(prior)):
            raise ArchValueError("the prior's weights add up to more than a float holds",
                                 kw["prior"].span)
    labels = [a.label for a in e.args if a.name is None] if f == "choice" else []
    d = Decision(name, f, e.span, options=opts, default=default, prior=prior,
                 labels=labels if labels and labels[0] is not None else None)
    if default is not None and to_json_key(default) not in {to_json_key(o) for o in opts}:
        raise ArchValueError(f"default {to_json(default)!r} is not one of the options",
                             kw["default"].span)
    return d


def _bool(e: A.Call, ev: Eval, name: str, default: Any) -> Decision:
    kw = e.keywords
    prior = None
    if "prior" in kw:
        p = ev(kw["prior"])
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ArchValueError("bool prior is the probability of true, in [0, 1]",
                                 kw["prior"].span)
        prior = (p, 1 - p)
    return Decision(name, "bool", e.span, options=[True, False], default=default, prior=prior)


def _int(e: A.Call, rng: A.Range, name: str, lo: Any, hi: Any, step: Any, log: bool,
         default: Any) -> Decision:
    kw = e.keywords
    for v, x in ((lo, rng.lo), (hi, rng.hi)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ArchTypeError(f"int range bounds are integers, got {describe(v)}", x.span)
    if step is None:
        step = 1
    if isinstance(step, bool) or not isinstance(step, int) or step <= 0:
        raise ArchValueError("step must be a positive integer", kw["step"].span)
    if hi < lo:
        raise ArchValueError(f"empty range: {lo} .. {hi}", rng.span)
    if log and lo <= 0:
        raise ArchValueError("a log-scale range must be positive", rng.span)
    n = (hi - lo) // step + 1  # not len(range): that overflows past sys.maxsize
    if n > MAX_DOMAIN:
        raise ArchLimitError(f"int(...) has {amount(n)} values, more than the limit of "
                             f"{MAX_DOMAIN:,}", rng.span,
                             hint="give it a larger step: int(a .. b, step = s), or use "
                             "float(a .. b, log) for a wide range")
    r = range(lo, hi + 1, step)
    if default is not None and default not in r:
        raise ArchValueError(f"default {default} is not in the range", kw["default"].span)
    return Decision(name, "int", e.span, options=r, log=log, default=default)


def _float(e: A.Call, rng: A.Range, name: str, lo: Any, hi: Any, step: Any, log: bool,
           default: Any) -> Decision:
    kw = e.keywords
    for v, x in ((lo, rng.lo), (hi, rng.hi)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ArchTypeError(f"float range bounds are numbers, got {describe(v)}", x.span)
    lo, hi = finite(lo, rng.lo.span), finite(hi, rng.hi.span)
    if hi < lo:
        raise ArchValueError(f"empty range: {lo} .. {hi}", rng.span)
    if log and lo <= 0:
        raise ArchValueError("a log-scale range must be positive", rng.span)
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
            raise ArchValueError("step must be a positive number", kw["step"].span)
        q = (hi - lo) / finite(step, kw["step"].span)
        if not q < MAX_DOMAIN:  # also when q overflows to inf
            raise ArchLimitError(f"float(..., step = {step}) has more than {MAX_DOMAIN:,} "
                                 "values", rng.span,
                                 hint="give it a larger step, or drop the step to make it "
                                 "continuous")
        n = int(math.floor(q + 1e-9)) + 1
        opts = [round(lo + i * step, 12) for i in range(n)]
        if default is not None:  # one of the values (to rounding): that value
            x = float_default(default, kw["default"].span)
            default = next((o for o in opts if abs(o - x) <= 1e-9 * max(1.0, abs(o))), None)
            if default is None:
                raise ArchValueError(f"default {x} is not one of the range's values "
                                     f"({amount(n)} from {lo} in steps of {step})",
                                     kw["default"].span)
        return Decision(name, "float", e.span, options=opts, log=log, default=default)
    if default is not None:
        default = float_default(default, kw["default"].span)
        if not lo <= default <= hi:
            raise ArchValueError(f"default {default} is outside the range", kw["default"].span)
    return Decision(name, "float", e.span, lo=lo, hi=hi, log=log, default=default)


def finite(v: int | float, span: Span, what: str = "a range bound or step") -> float:
    """A number as a float (huge integers are an error, not an OverflowError)."""
    try:
        x = float(v)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise ArchValueError(f"{what} must be a finite number", span)
    return x


def float_default(v: Any, span: Span) -> float:
    """A float range's `default`, as a finite float."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArchTypeError(f"a float range's default is a number, got {describe(v)}", span)
    return finite(v, span, "a default")
