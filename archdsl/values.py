"""Run-time values of the language and the decisions that produce them."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import ast as A
from .errors import ArchLimitError, ArchTypeError, ArchValueError, ConfigError, Span
from .layers import Sym
from .printer import format_expr

__all__ = ["Net", "Record", "Tensor", "Decision", "Labelled", "Subsets", "to_json", "arith", "MAX_INT_BITS", "Sym"]

MAX_INT_BITS = 4096


@dataclass(frozen=True, slots=True)
class Net:
    """A sub-network not yet applied: a stage expression and the values it sees."""

    expr: A.Expr
    env: tuple  # ((name, value), ...) for the local names the expression uses

    def text(self) -> str:
        return format_expr(self.expr)


@dataclass(frozen=True, slots=True)
class Record:
    """A call in the train section, e.g. adam(lr = 0.001)."""

    name: str
    args: tuple  # ((name or None, value), ...)


@dataclass(frozen=True, slots=True)
class Tensor:
    """A tensor flowing through the architecture graph: the id of the node that makes it."""

    node: int
    name: str = ""  # the graph-body node name it was bound to, for tensor choices


def to_json(v: Any) -> Any:
    """The JSON form of a value, as it appears in configurations."""
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, Sym):
        return v.name
    if isinstance(v, tuple):
        return [to_json(x) for x in v]
    if isinstance(v, Net):
        return v.text()
    if isinstance(v, Record):
        parts = [f"{k} = {to_json(x)}" if k else str(to_json(x)) for k, x in v.args]
        return f"{v.name}({', '.join(parts)})"
    if isinstance(v, Tensor):
        return v.name
    if isinstance(v, Labelled):
        return v.label
    raise TypeError(f"no JSON form for {v!r}")


class Labelled:
    """What a walk records for a labelled choice (`choice(small: 8, big: 32)`): the value it
    chose and that option's label, which is the value's JSON form in configurations."""

    __slots__ = ("label", "value")

    def __init__(self, label: str, value: Any):
        self.label, self.value = label, value


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, Sym):
        return f"the name '{v.name}'"
    if isinstance(v, tuple):
        return "a list"
    if isinstance(v, Net):
        return "a layer"
    if isinstance(v, Tensor):
        return "a tensor"
    return type(v).__name__


def describe(v: Any) -> str:
    return _kind(v)


def _check_int(v: int, span: Span) -> int:
    if v.bit_length() > MAX_INT_BITS:
        raise ArchLimitError(f"a number larger than 2**{MAX_INT_BITS}", span)
    return v


def arith(op: str, a: Any, b: Any, span: Span) -> Any:
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, num) \
            or not isinstance(b, num):
        if op == "+" and isinstance(a, str) and isinstance(b, str):
            if len(a) + len(b) > 10_000:
                raise ArchLimitError("a string longer than 10,000 characters", span)
            return a + b
        raise ArchTypeError(f"cannot apply '{op}' to {_kind(a)} and {_kind(b)}", span)
    try:
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            r = a / b
        elif op == "//":
            r = a // b
        elif op == "%":
            r = a % b
        elif op == "**":
            if isinstance(a, int) and isinstance(b, int) and b >= 0 and abs(a) > 1 \
                    and b * math.log2(abs(a)) > MAX_INT_BITS:
                raise ArchLimitError(f"{a} ** {b} is larger than 2**{MAX_INT_BITS}", span)
            if isinstance(a, int) and isinstance(b, int) and b < 0 and a == 0:
                raise ArchValueError("zero cannot be raised to a negative power", span)
            r = a ** b
            if isinstance(r, complex):
                raise ArchValueError("a negative number raised to a fractional power", span)
        else:  # pragma: no cover
            raise AssertionError(op)
    except ZeroDivisionError:
        raise ArchValueError("division by zero", span) from None
    except OverflowError:
        raise ArchLimitError("a number too large to represent", span) from None
    if isinstance(r, int):
        return _check_int(r, span)
    if isinstance(r, float) and not math.isfinite(r):
        raise ArchLimitError("a number too large to represent", span)
    return r


class Subsets(Sequence):
    """The options of `some(...)`: the non-empty subsets of `names`, each in the order of
    `names`; option i holds the names whose bit is set in i + 1. Nothing is listed: there are
    2**len(names) - 1 of them. `lists=True` gives each as a list (its JSON form)."""

    __slots__ = ("names", "lists")

    def __init__(self, names: Sequence[str], lists: bool = False):
        self.names, self.lists = tuple(names), lists

    def __len__(self) -> int:
        return (1 << len(self.names)) - 1

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("subset index out of range")
        m = i + 1
        picked = [x for k, x in enumerate(self.names) if m >> k & 1]
        return picked if self.lists else tuple(picked)

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        """The option that is `value` (a list or tuple of names in order); ValueError if none."""
        if isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value):
            m, k = 0, 0
            for x in value:
                while k < len(self.names) and self.names[k] != x:
                    k += 1
                if k == len(self.names):
                    break
                m |= 1 << k
                k += 1
            else:
                if m:
                    return m - 1
        raise ValueError(f"{value!r} is not a subset of {list(self.names)}")


class Decision:
    """One open choice: its stable name, its domain, default and prior, and where it stands."""

    __slots__ = ("name", "kind", "options", "lo", "hi", "step", "log", "default", "prior", "span",
                 "_memo")

    def __init__(self, name: str, kind: str, span: Span, options: Any = None,
                 lo: Any = None, hi: Any = None, step: Any = None, log: bool = False,
                 default: Any = None, prior: tuple | None = None,
                 labels: list[str] | None = None):
        self.name, self.kind, self.span = name, kind, span
        self.options = options  # a list (choice/bool/one_of/some), a range (int) or None (float)
        self.lo, self.hi, self.step, self.log = lo, hi, step, log
        self.default, self.prior = default, prior
        # labels and the index of string labels, built once and shared by renamed copies;
        # "given": the labels a labelled choice gives its options (configurations hold them)
        self._memo: dict[str, Any] = {}
        if labels is not None:
            self._memo["labels"] = self._memo["given"] = list(labels)

    def renamed(self, name: str) -> Decision:
        """The same domain under another name."""
        d = Decision.__new__(Decision)
        d.name, d.kind, d.span, d.options = name, self.kind, self.span, self.options
        d.lo, d.hi, d.step, d.log = self.lo, self.hi, self.step, self.log
        d.default, d.prior, d._memo = self.default, self.prior, self._memo
        return d

    @property
    def continuous(self) -> bool:
        return self.options is None

    @property
    def size(self) -> int:
        return 1 if self.options is None else len(self.options)

    def labels(self) -> Sequence:
        """The options' JSON forms (a lazy sequence for `some`)."""
        labels = self._memo.get("labels")
        if labels is None:
            o = self.options
            labels = self._memo["labels"] = Subsets(o.names, lists=True) \
                if isinstance(o, Subsets) else [to_json(v) for v in o]
        return labels

    def _str_index(self) -> dict[str, int]:
        """The first option whose label is each string (one dict lookup, not a scan)."""
        index = self._memo.get("str_index")
        if index is None:
            index = self._memo["str_index"] = {}
            for i, lab in enumerate(self.labels()):
                if type(lab) is str:
                    index.setdefault(lab, i)
        return index

    @property
    def labelled(self) -> bool:
        """Whether the options carry labels of their own (`choice(small: 8, big: 32)`)."""
        return "given" in self._memo

    def label(self, value: Any) -> Any:
        """The JSON form of an option in configurations: its label, if it has one."""
        if not self.labelled:
            return to_json(value)
        return self._memo["given"][self._value_index(value)]

    def _value_index(self, value: Any) -> int:
        """The option that is `value` (by identity, else by its JSON form)."""
        for i, o in enumerate(self.options):
            if o is value:
                return i
        j = to_json(value)
        for i, o in enumerate(self.options):
            oj = to_json(o)
            if oj == j and isinstance(oj, bool) == isinstance(j, bool):
                return i
        raise ValueError(f"{value!r} is not an option of {self.name!r}")

    def default_index(self) -> int:
        if self.default is None:
            return 0
        if self.labelled:
            return self._value_index(self.default)
        return self.index_of_json(to_json(self.default), self.span)

    def index_of_json(self, j: Any, span: Span | None = None) -> int:
        """The option a JSON value names; ConfigError if none does."""
        if isinstance(self.options, range):
            if isinstance(j, float) and j.is_integer():
                j = int(j)
            if isinstance(j, int) and not isinstance(j, bool) and j in self.options:
                return self.options.index(j)
        elif isinstance(self.options, Subsets):
            try:
                return self.options.index(j)
            except ValueError:
                pass
        elif type(j) is str:  # only a string label equals a string
            i = self._str_index().get(j)
            if i is not None:
                return i
        else:
            labels = self.labels()
            for i, lab in enumerate(labels):
                if lab == j and type(lab) is type(j) or (
                        isinstance(lab, (int, float)) and isinstance(j, (int, float))
                        and not isinstance(lab, bool) and not isinstance(j, bool) and lab == j):
                    return i
        hint = None
        if self.labelled:
            with contextlib.suppress(ValueError, TypeError):
                hint = (f"a configuration gives the option's label: "
                        f"{json_text(self.label(self.options[self._value_index(j)]))}")
        raise ConfigError(f"'{self.name}': {json_text(j)} is not one of {self.domain_text()}",
                          span or self.span, hint=hint)

    def value_of_json(self, j: Any, span: Span | None = None) -> Any:
        if self.options is None:
            if isinstance(j, bool) or not isinstance(j, (int, float)):
                raise ConfigError(f"'{self.name}': expected a number, got {json_text(j)}",
                                  span or self.span)
            try:
                x = float(j)
            except OverflowError:
                raise ConfigError(f"'{self.name}': {json_text(j)} is outside "
                                  f"{self.domain_text()}", span or self.span) from None
            if not (self.lo <= x <= self.hi):
                raise ConfigError(f"'{self.name}': {x} is outside {self.domain_text()}",
                                  span or self.span)
            return x
        return self.options[self.index_of_json(j, span)]

    def domain_text(self) -> str:
        if self.options is None:
            return f"float({self.lo} .. {self.hi}{', log' if self.log else ''})"
        if isinstance(self.options, range):
            r = self.options
            step = f", step = {r.step}" if r.step != 1 else ""
            return f"int({r.start} .. {r[-1] if len(r) else r.start}{step})"
        labels = [json_text(x) for x in itertools.islice(self.labels(), 13)]
        if len(labels) > 12:
            labels = labels[:12] + ["..."]
        return "{" + ", ".join(labels) + "}"

    def describe(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind,
                             "line": self.span.line, "column": self.span.column}
        if self.options is None:
            d.update(low=self.lo, high=self.hi, log=self.log)
        elif isinstance(self.options, range):
            d.update(low=self.options.start, high=self.options[-1], step=self.options.step,
                     log=self.log)
        else:
            d["options"] = self.labels()
            if self.labelled:
                d["values"] = [to_json(o) for o in self.options]
        if self.default is not None:
            d["default"] = self.label(self.default)
        return d

    def __repr__(self) -> str:
        return f"Decision({self.name!r}, {self.domain_text()})"


def json_text(j: Any) -> str:
    import json

    if isinstance(j, int) and not isinstance(j, bool) and j.bit_length() > 64:
        digits = int(j.bit_length() * math.log10(2)) + 1
        return f"an integer of about {digits:,} digits"
    try:
        return json.dumps(j)
    except (TypeError, ValueError):
        return repr(j)
