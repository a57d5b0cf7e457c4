"""Constraints over decisions (`require count(edge == skip) < 4`, `forbid all(decision("cell/*")
== skip)`), evaluated on a configuration once a walk has made it.

`count(COND)` is the number of decisions the configuration makes for which COND holds, where
COND compares a decision reference with a value; `any(COND)` is whether one does, `all(COND)`
whether every one does (true when the reference matches none of the decisions made). A
reference is a glob over stable decision names (`decision("cell/*/edge")`: `*` any text, `/`
included, `?` one character, everything else itself; `[0]` is the text `[0]`), or an op, block
or cell whose body is one decision (its decision in every instance, found by where it stands).
A decision's value is compared in its configuration form: a label or symbol as its name
(`skip`, `relu`), numbers as numbers; `<`, `<=`, `>`, `>=` hold only between numbers.

The counting interpreter never sees these constraints (the Space gives it an IR without them):
like params/flops constraints, they are checked after a walk, by `Space` (sampling,
enumeration, `choose`, `validate`) and by `count --metrics` (archdsl.metric_count).

May import: archdsl.ast, errors, naming, printer, values, shared_names (its walk),
resolve.decision_refs, and
archdsl.interp (its choosers, and the walk's state: `seen`, `decided`, `genv`, `value`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import ast as A
from .errors import (
    ArchDSLError,
    ArchNameError,
    ArchTypeError,
    ConstraintError,
    Span,
    did_you_mean,
)
from .interp import Chooser, Default, Reject
from .interp.keys import to_json_key
from .naming import Scope
from .printer import format_expr
from .resolve.decision_refs import one_decision
from .shared_names import walk
from .values import Decision, arith, describe, to_json

if TYPE_CHECKING:
    from .interp import Interp
    from .semantics import SpaceIR

__all__ = ["uses_decisions", "DecisionConstraints", "NAME_WALKS", "NAME_QUIET"]

NAME_WALKS = 400  # walks at most that look for the names of decisions (_names)
NAME_QUIET = 8  # ... stopping after this many in a row find no new name


def _refs(e: A.Node) -> Iterator[A.Node]:
    return (x for x in walk(e) if isinstance(x, (A.Name, A.Call)) and x.ref
            and x.ref[0] in ("decision_glob", "decision_block"))


def _counts(e: A.Node) -> Iterator[A.Call]:
    return (x for x in walk(e) if isinstance(x, A.Call) and x.ref and x.ref[0] == "count")


def _reads_state(e: A.Node) -> bool:
    """Whether a constraint reads anything but decisions through globs and constants: a
    param, a local, a metric, an op named bare."""
    return any(isinstance(x, A.Name) and x.ref and x.ref[0] in (
        "gparam", "local", "node", "metric", "decision_block") for x in walk(e))


def uses_decisions(c: A.Constraint) -> bool:
    """Whether a constraint counts over decisions (count/any/all)."""
    return next(_refs(c.expr), None) is not None


def _key(s: Span) -> tuple[str, int, int, int, int]:
    return (s.file, s.line, s.column, s.end_line, s.end_column)


class _Ref:
    """Which decisions a reference names."""

    def __init__(self, x: A.Name | A.Call):
        self.node = x
        self.glob: re.Pattern[str] | None = None
        self.span: tuple | None = None
        if x.ref[0] == "decision_glob":
            self.text = x.ref[1]
            self.glob = re.compile("".join(".*" if ch == "*" else "." if ch == "?"
                                           else re.escape(ch) for ch in x.ref[1]), re.S)
        else:
            body = one_decision(x.ref[1])
            self.text = x.ref[1].name
            self.span = _key(body.span) if body is not None else None

    def matches(self, d: Decision) -> bool:
        if self.glob is not None:
            return self.glob.fullmatch(d.name) is not None
        return _key(d.span) == self.span


def _jkey(v: Any) -> Any:
    """A configuration value as a key: true is not 1, 2 equals 2.0 (a list as a tuple)."""
    return to_json_key(tuple(v) if isinstance(v, list) else v)


def _holds(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return _jkey(a) == _jkey(b)
    if op == "!=":
        return _jkey(a) != _jkey(b)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) \
            or not isinstance(b, (int, float)):
        return False
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


class DecisionConstraints:
    """The constraints of a space that count over decisions, evaluated on the state of the
    interpreter's last walk (its `seen`, `decided` and `genv`), or, where they read only
    decisions named by globs and constants (`on_config`), on a configuration alone."""

    def __init__(self, ir: SpaceIR, it: Interp):
        self.it = it
        self.constraints = [c for c in ir.constraints if uses_decisions(c)]
        self.refs: dict[int, _Ref] = {id(x): _Ref(x) for c in self.constraints
                                      for x in _refs(c.expr)}  # type: ignore[arg-type]
        self._names_checked = False
        # globs only, and nothing else read but constants: a configuration alone is enough
        self.on_config = all(r.glob is not None for r in self.refs.values()) and not any(
            _reads_state(c.expr) for c in self.constraints)
        self._config: dict[str, Any] | None = None  # failure()'s, while it runs

    def __bool__(self) -> bool:
        return bool(self.constraints)

    def __len__(self) -> int:
        return len(self.constraints)

    def referenced(self, d: Decision) -> bool:
        """Whether some constraint reads decision `d` (it must then be enumerated)."""
        return any(r.matches(d) for r in self.refs.values())

    # ---- evaluation ------------------------------------------------------------------------
    def failure(self, config: dict[str, Any] | None = None) -> ConstraintError | None:
        """The first constraint the last walk's configuration breaks, if any; or `config`'s,
        where the constraints need nothing else (`on_config`)."""
        self._config = config
        try:
            return self._first_failure()
        finally:
            self._config = None

    def _first_failure(self) -> ConstraintError | None:
        for c in self.constraints:
            v = self._value(c.expr)
            if not isinstance(v, bool):
                raise ArchTypeError(f"expected true or false, got {describe(v)}", c.expr.span)
            if v != (c.kind == "require"):
                return ConstraintError(f"{c.kind} {format_expr(c.expr)}: not satisfied",
                                       c.span)
        return None

    def _value(self, e: A.Expr) -> Any:
        if isinstance(e, A.Call) and e.ref and e.ref[0] == "count":
            return self._count(e)
        if not any(True for _ in _refs(e)):  # no count inside: the interpreter's business
            return self.it.value(e, {}, Scope("$constraint"), None)
        if isinstance(e, A.Compare):
            a, b = self._value(e.left), self._value(e.right)
            if e.op in ("==", "!="):
                return _holds(e.op, to_json(a), to_json(b))
            if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) \
                    or not isinstance(b, (int, float)):
                raise ArchTypeError(f"cannot compare {describe(a)} and {describe(b)} with "
                                    f"'{e.op}'", e.span)
            return _holds(e.op, a, b)
        if isinstance(e, A.BoolOp):
            a = self._truth(e.left)
            if (e.op == "and" and not a) or (e.op == "or" and a):
                return a
            return self._truth(e.right)
        if isinstance(e, A.Not):
            return not self._truth(e.operand)
        if isinstance(e, A.BinOp):
            return arith(e.op, self._value(e.left), self._value(e.right), e.span)
        if isinstance(e, A.Neg):
            return -self._value(e.operand)
        raise ArchTypeError(f"{format_expr(e)} cannot hold a count over decisions", e.span)

    def _truth(self, e: A.Expr) -> bool:
        v = self._value(e)
        if not isinstance(v, bool):
            raise ArchTypeError(f"expected true or false, got {describe(v)}", e.span)
        return v

    def _count(self, e: A.Call) -> int | bool:
        cond: A.Compare = e.args[0].value  # type: ignore[assignment]
        left = id(cond.left) in self.refs
        ref = self.refs[id(cond.left if left else cond.right)]
        other = self._operand(cond.right if left else cond.left)
        op = cond.op if left else _FLIP[cond.op]
        it = self.it
        n = total = 0
        if self._config is not None:
            for name, v in self._config.items():
                if ref.glob.fullmatch(name) is not None:  # type: ignore[union-attr]
                    total += 1
                    n += _holds(op, v, other)
        else:
            for name, d in it.seen.items():
                if ref.matches(d):
                    total += 1
                    n += _holds(op, to_json(it.decided[name]), other)
        if e.ref[1] == "any":
            return n > 0
        if e.ref[1] == "all":
            return n == total
        return n

    def _operand(self, x: A.Expr) -> Any:
        """The value a decision is compared with, in configuration form (a bare name: its
        text, whatever it also names)."""
        if isinstance(x, A.Name) and x.ref and x.ref[0] in ("symbol", "layer", "block"):
            return x.id
        return to_json(self._value(x))

    # ---- the names a reference may match ---------------------------------------------------
    def check_names(self) -> None:
        """ArchNameError at a reference that matches no decision this space was seen to make
        (the default configuration and walks that take every option in turn: `_names`), with the
        closest name as a hint; ArchNameError too where a compared label is no option of
        any decision the reference matches."""
        if self._names_checked or not self.constraints:
            return
        seen = self._names()
        for c in self.constraints:
            for x in _refs(c.expr):
                ref = self.refs[id(x)]
                got = [d for d in seen.values() if ref.matches(d)]
                if not got:
                    shown = f'decision("{ref.text}")' if ref.glob else f"'{ref.text}'"
                    some = ", ".join(f"'{n}'" for n in list(seen)[:4]) or "none"
                    hint = (did_you_mean(ref.text, seen) or f"the space's decisions include "
                            f"{some}" + (" ..." if len(seen) > 4 else "")) if ref.glob \
                        else f"{ref.text} makes no decision in this space"
                    raise ArchNameError(f"no decision matches {shown}", x.span, hint=hint)
                self._check_option(c, x, got)
        self._names_checked = True

    def _check_option(self, c: A.Constraint, x: A.Node, got: list[Decision]) -> None:
        """A label or number compared with `==`/`!=` is an option of some decision matched."""
        for e in _counts(c.expr):
            cond = e.args[0].value
            if x is not cond.left and x is not cond.right or cond.op not in ("==", "!="):
                continue
            other = cond.right if x is cond.left else cond.left
            if isinstance(other, A.Lit):
                value = other.value
            elif isinstance(other, A.Name) and other.ref and other.ref[0] in (
                    "symbol", "layer", "block"):
                value = other.id
            else:
                return
            labels: list[Any] = []
            for d in got:
                if d.options is None or d.kind == "some":
                    return  # a range or a subset: not listed here
                labels += list(d.labels())
            if not any(_jkey(v) == _jkey(value) for v in labels):
                shown = sorted({str(v) for v in labels})
                raise ArchNameError(
                    f"no decision that {format_expr(x)} names has the option {value!r}",
                    other.span, hint=did_you_mean(str(value), shown)
                    or "its options: " + ", ".join(shown[:8]))

    def _names(self) -> dict[str, Decision]:
        """The decisions the default configuration makes, then those of walks that take, at
        each decision, the option taken least often so far (so every option of every decision
        met is taken in turn, and the decisions inside it are met): until every option of every
        decision met (of at most MANY options) was taken and NAME_QUIET walks in a row found
        no new name, NAME_WALKS walks at most."""
        it = self.it
        seen: dict[str, Decision] = {}
        least = _LeastTaken()
        quiet = 0
        for ch in [Default()] + [least] * NAME_WALKS:
            before = len(seen)
            try:
                it.walk(ch)
            except (Reject, ArchDSLError):
                pass  # the names met before the walk stopped are names all the same (an
                # error of the space itself is reported where it is used, not here)
            seen.update(it.seen)
            quiet = quiet + 1 if len(seen) == before and ch is least else 0
            if quiet >= NAME_QUIET and not any(least.untaken.values()):
                break
        return seen


class _LeastTaken(Chooser):
    """Each decision at an option it took least often in earlier walks (drawn among those, so
    that decisions do not turn in step; any option where a decision has more than MANY); a
    range at its bounds."""

    MANY = 64

    def __init__(self) -> None:
        self.taken: dict[tuple[str, int], int] = {}
        self.untaken: dict[str, set[int]] = {}  # per decision met: options not taken yet
        self.rng = random.Random(0)

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        n = 2 if d.options is None else len(d.options)
        if n > self.MANY:
            i = self.rng.randrange(n)
        else:
            ok = [j for j in range(n) if weights is None or weights[j] > 0] or [0]
            self.untaken.setdefault(d.name, set(ok))
            fewest = min(self.taken.get((d.name, j), 0) for j in ok)
            ok = [j for j in ok if self.taken.get((d.name, j), 0) == fewest]
            i = ok[self.rng.randrange(len(ok))]
        self.taken[(d.name, i)] = self.taken.get((d.name, i), 0) + 1
        self.untaken.get(d.name, set()).discard(i)
        if d.options is None:
            return d.hi if i else d.lo
        return d.options[i]
