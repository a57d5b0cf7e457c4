"""Syntax tree -> .arch text. `parse(format_module(m))` gives back the same tree."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import ast as A
from .quoting import escape_text

__all__ = ["format_expr", "format_module", "format_body", "format_value_literal", "format_comment"]

# the parser's escapes (docs/language.md, Literals); other characters stand as they are
_STRING_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r",
                   ord("\t"): "\\t"}

_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6,
         "neg": 7, "**": 8}


def format_value_literal(v: object) -> str:
    if v.__class__ is int:  # the commonest
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        r = repr(v)
        if r in ("inf", "-inf", "nan"):
            raise ValueError(f"{r} has no .arch literal")
        if "e" in r and "." not in r.split("e")[0]:
            mant, exp = r.split("e")
            r = f"{mant}.0e{exp}"
        return r
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.translate(_STRING_ESCAPES) + '"'
    raise ValueError(f"no literal for {v!r}")


def format_comment(text: str) -> str:
    """A .arch comment holding `text` (a file name, a decision's path): every line break and
    other non-printable character escaped, so that it stays one comment line."""
    return "# " + escape_text(text)


def _negative_number(v: object) -> bool:
    """True for a number printed with a leading '-' (-0.0 too)."""
    if isinstance(v, float):
        return math.copysign(1.0, v) < 0
    return isinstance(v, int) and not isinstance(v, bool) and v < 0


def _prec(e: A.Expr) -> int:
    if isinstance(e, A.Lit) and _negative_number(e.value):
        return _PREC["neg"]  # printed with a leading '-', it reads as a negation
    if isinstance(e, A.BinOp):
        return _PREC[e.op]
    if isinstance(e, A.BoolOp):
        return _PREC[e.op]
    if isinstance(e, A.Not):
        return _PREC["not"]
    if isinstance(e, A.Compare):
        return _PREC["cmp"]
    if isinstance(e, A.Neg):
        return _PREC["neg"]
    if isinstance(e, A.Pipeline):
        return 0
    return _ATOM


_ATOM = 10


def _wrap(e: A.Expr, min_prec: int) -> str:
    s = format_expr(e)
    return f"({s})" if _prec(e) < min_prec else s


def format_expr(e: A.Expr) -> str:
    rule = _FORMAT.get(e.__class__)
    if rule is None:
        raise TypeError(f"cannot print {type(e).__name__}")
    return rule(e)


# one small function per construct
def _lit(e: A.Lit) -> str:
    if _negative_number(e.value):
        return f"-{format_value_literal(-e.value)}"
    return format_value_literal(e.value)


def _call(e: A.Call) -> str:
    parts = []
    for a in e.args:
        v = format_expr(a.value)
        parts.append(f"{a.name} = {v}" if a.name else f"{a.label}: {v}" if a.label else v)
    return f"{e.func}({', '.join(parts)})"


def _binop(e: A.BinOp) -> str:
    p = _PREC[e.op]
    if e.op == "**":  # right-associative; the left side is an atom
        return f"{_wrap(e.left, p + 1)} ** {_wrap(e.right, _PREC['neg'])}"
    return f"{_wrap(e.left, p)} {e.op} {_wrap(e.right, p + 1)}"


def _boolop(e: A.BoolOp) -> str:
    p = _PREC[e.op]
    return f"{_wrap(e.left, p)} {e.op} {_wrap(e.right, p + 1)}"


def _residual(e: A.Residual) -> str:
    s = f"residual {{ {format_expr(e.body)} }}"
    if e.skip is not None:
        s += f" skip {{ {format_expr(e.skip)} }}"
    return s


_FORMAT: dict[type, Callable[[Any], str]] = {
    A.Lit: _lit,
    A.Name: lambda e: e.id,
    A.ListLit: lambda e: "[" + ", ".join(format_expr(x) for x in e.items) + "]",
    A.Range: lambda e: f"{_wrap(e.lo, 1)} .. {_wrap(e.hi, 1)}",
    A.Call: _call,
    A.BinOp: _binop,
    A.Neg: lambda e: f"-{_wrap(e.operand, _PREC['neg'])}",
    A.Compare: lambda e: f"{_wrap(e.left, _PREC['+'])} {e.op} {_wrap(e.right, _PREC['+'])}",
    A.BoolOp: _boolop,
    A.Not: lambda e: f"not {_wrap(e.operand, _PREC['not'])}",
    A.Pipeline: lambda e: " -> ".join(_wrap(s, 1) for s in e.stages),
    A.Shared: lambda e: f"shared {_wrap(e.expr, _ATOM)}",  # `shared` takes an atom
    A.Repeat: lambda e: f"repeat({format_expr(e.count)}) {{ {format_expr(e.body)} }}",
    A.OneOf: lambda e: "one_of { " + " | ".join(_alt(a) for a in e.alts) + " }",
    A.Optional: lambda e: f"optional {{ {format_expr(e.body)} }}",
    A.Residual: _residual,
    A.Parallel: lambda e: f"parallel({e.merge}) {{ " + " | ".join(_alt(a) for a in e.alts)
    + " }",
}


def _alt(a: A.Alt) -> str:
    s = format_expr(a.expr)
    return f"{a.label}: {s}" if a.label else s


def _constraint(c: A.Constraint) -> str:
    return f"{c.kind} {format_expr(c.expr)}"


def format_body(b: A.Body, indent: str = "    ") -> list[str]:
    params = [f"{indent}param {p.name} = {format_expr(p.value)}" for p in b.params]
    if b.is_graph:
        out = params
        if b.inputs:
            out.append(f"{indent}input {', '.join(b.inputs)}")
        out += [f"{indent}{n.name} = {format_expr(n.value)}" for n in b.nodes]
        out.append(f"{indent}return {format_expr(b.result)}")
    else:
        # Newlines carry no meaning, so a pipeline after a statement that ends in an expression
        # could continue it (`param k = act` then `(relu) -> x` reads `act(relu) -> x`); every
        # other statement starts with a keyword, so the pipeline goes first.
        out = [indent + format_expr(b.result), *params]
    out += [indent + _constraint(c) for c in b.constraints]
    return out


def _params(ps: list[A.Param]) -> str:
    if not ps:
        return ""
    return "(" + ", ".join(p.name + (f" = {format_expr(p.default)}" if p.default else "")
                           for p in ps) + ")"


def format_block(b: A.BlockDecl) -> list[str]:
    depth = f" max_depth {b.max_depth}" if b.max_depth is not None else ""
    if b.keyword == "op":
        return [f"op {b.name}{_params(b.params)}{depth} = {format_expr(b.body.result)}"]
    return [f"{b.keyword} {b.name}{_params(b.params)}{depth} {{", *format_body(b.body), "}"]


def format_module(m: A.Module) -> str:
    out: list[str] = []
    for imp in m.imports:
        path = format_value_literal(imp.path)
        if imp.names is None:
            out.append(f"import {path}")
        else:
            out.append(f'from {path} import {", ".join(imp.names)}')
    for i in m.inputs:
        kind = f" index({format_expr(i.index)})" if i.index is not None else ""
        out.append(f"input {i.name}: {format_expr(i.shape)}{kind}")
    for p in m.params:
        kw = "shared" if isinstance(p, A.SharedDecl) else "param"
        out.append(f"{kw} {p.name} = {format_expr(p.value)}")
    for b in m.blocks:
        out += format_block(b)
    if m.network is not None:
        out += ["network {", *format_body(m.network), "}"]
    if m.train:
        out += ["train {", *[f"    {t.name} = {format_expr(t.value)}" for t in m.train], "}"]
    out += [_constraint(c) for c in m.constraints]
    return "\n".join(out) + "\n"
