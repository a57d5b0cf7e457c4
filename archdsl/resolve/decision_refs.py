"""Constraints over decisions, as the resolver sees them: `count(COND)`, `any(COND)` and
`all(COND)` in a top-level `require`/`forbid`, where COND compares a decision reference with a
value. A reference is `decision("GLOB")` (matched against stable decision names: `*` stands for
any text, `/` included, `?` for one character) or the bare name of an op, block or cell whose
body is one decision (that decision, in each of its instances).

This module checks their form and records what each part denotes (its `ref`): the call
("count", func), the reference ("decision_glob", glob) or ("decision_block", block). Whether a
reference matches a decision of the space is checked once the space can be walked
(archdsl.decision_constraints).

May import: archdsl.ast, errors, and .kinds.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import ast as A
from ..errors import ArchNameError, ArchTypeError, did_you_mean
from .kinds import TENSOR, VALUE, Ctx

__all__ = ["COUNTS", "resolve_count", "one_decision"]

COUNTS = frozenset({"count", "any", "all"})
_EXAMPLE = 'count(decision("cell/*/edge") == skip)'


def one_decision(blk: A.BlockDecl) -> A.Node | None:
    """The expression that is the whole body of `blk`, where that is one decision (a `one_of`,
    an `optional`, or a choice, int, float or bool call); None otherwise."""
    body = blk.body
    if body.params or body.constraints or body.is_graph:
        return None
    r = body.result
    if isinstance(r, A.Pipeline) and len(r.stages) == 1:
        r = r.stages[0]
    if isinstance(r, (A.OneOf, A.Optional)):
        return r
    if isinstance(r, A.Call) and r.ref and r.ref[0] == "decision" and r.func != "some":
        return r
    return None


def _is_reference(x: A.Expr, ctx: Ctx) -> bool:
    if isinstance(x, A.Call):
        return x.func == "decision" and x.func not in ctx.blocks
    return isinstance(x, A.Name) and x.id in ctx.blocks


def resolve_count(e: A.Call, ctx: Ctx, expr: Callable[[A.Expr], str]) -> str:
    """Resolve `count(COND)` (or any/all) in a constraint; `expr` resolves the compared value."""
    f = e.func
    if "params" not in ctx.metrics:  # a block's (or the network's) own constraint
        raise ArchTypeError(
            f"{f}(...) over decisions stands in a top-level constraint", e.func_span,
            hint=f'move it out of the body and name the decisions by their stable names: '
                 f'{_EXAMPLE}')
    if len(e.args) != 1 or e.args[0].name is not None:
        raise ArchTypeError(f"{f}(...) takes one condition, e.g. {_EXAMPLE}", e.span)
    cond = e.args[0].value
    if not isinstance(cond, A.Compare):
        raise ArchTypeError(f"the condition of {f}(...) compares a decision with a value, e.g. "
                            f"{_EXAMPLE}", cond.span)
    sides = [cond.left, cond.right]
    refs = [x for x in sides if _is_reference(x, ctx)]
    if not refs:
        names = sorted(b.name for b in ctx.blocks.values() if one_decision(b) is not None)
        hint = next((did_you_mean(x.id, names) for x in sides if isinstance(x, A.Name)
                     and did_you_mean(x.id, names)), None)
        raise ArchNameError(
            f"the condition of {f}(...) compares no decision", cond.span,
            hint=hint or 'name one by its stable name, decision("network/*/kernel") (* matches '
            'any text), or by an op whose body is one decision'
            + (f" ({', '.join(names[:5])})" if names else ""))
    if len(refs) == 2:
        raise ArchTypeError(f"the condition of {f}(...) compares two decisions; compare one "
                            "with a value", cond.span)
    ref = refs[0]
    _reference(ref, ctx)
    other = cond.right if ref is cond.left else cond.left
    if expr(other) == TENSOR:
        raise ArchTypeError("a decision is compared with a value, not a tensor", other.span)
    e.ref = ("count", f)
    return VALUE


def _reference(x: A.Expr, ctx: Ctx) -> None:
    """Record what a decision reference denotes, or raise the error its form deserves."""
    if isinstance(x, A.Name):
        blk = ctx.blocks[x.id]
        if one_decision(blk) is None:
            raise ArchTypeError(
                f"{blk.keyword} '{blk.name}' is not one decision: only an op, block or cell "
                "whose body is one decision (`op edge = one_of { ... }`) can be named bare",
                x.span, hint=f'name its decisions by their stable names: decision("*/{blk.name}/*")')
        x.ref = ("decision_block", blk)
        return
    assert isinstance(x, A.Call)
    pos = [a.value for a in x.args]
    if len(pos) != 1 or x.args[0].name is not None or not isinstance(pos[0], A.Lit) \
            or not isinstance(pos[0].value, str) or not pos[0].value:
        raise ArchTypeError('decision(...) takes a decision\'s stable name in quotes, e.g. '
                            'decision("network/conv2d/kernel"); * matches any text', x.span)
    x.ref = ("decision_glob", pos[0].value)
