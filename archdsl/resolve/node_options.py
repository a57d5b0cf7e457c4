"""The hint of a `one_of` whose alternatives compute on graph nodes (`one_of { linear(a, 4) |
relu(a) }`, an error): what works instead, written from its alternatives: a choice among the
computations (`choice(linear(a, 4), relu(a))`, which decides first:
archdsl.interp.domains.expression_choice), a param holding the layers, applied to the nodes,
or a pipeline from the node.

May import: archdsl.ast, layers, printer.
"""

from __future__ import annotations

from .. import ast as A
from ..layers import MERGES
from ..printer import format_expr

__all__ = ["one_of_hint", "choose_layers_hint"]


def one_of_hint(alts: list[A.Alt], nodes: set[str]) -> str:
    """The hint of a one_of whose alternatives compute tensors: the same as a choice."""
    opts = ", ".join(f"{a.label}: {format_expr(a.expr)}" if a.label else format_expr(a.expr)
                     for a in alts)
    hint = f"choose among the computations with `choice({opts})`"
    layers = choose_layers_hint([(a.label, a.expr) for a in alts], nodes)
    return hint + (f"; or {layers}" if layers else "")


def choose_layers_hint(opts: list[tuple[str | None, A.Expr]], nodes: set[str]) -> str | None:
    """Where every option applies layers to the same nodes (`gcn(h, e, 16)`, `h -> relu`):
    the param that chooses the layers, applied to those nodes, and for one node the pipeline."""
    texts: list[str] = []
    common: list[str] | None = None
    for label, x in opts:
        got = _layers_on_nodes(x, nodes)
        if got is None or (common is not None and got[1] != common):
            return None
        texts.append(f"{label}: {got[0]}" if label else got[0])
        common = got[1]
    if not common:
        return None
    on = ", ".join(common)
    hint = (f"choose the layers, then apply them to the nodes: `param op = "
            f"choice({', '.join(texts)})`, then `op({on})`")
    if len(common) == 1:
        hint += f", or choose in a pipeline: `{on} -> one_of {{ {' | '.join(texts)} }}`"
    return hint


def _layers_on_nodes(x: A.Expr, nodes: set[str]) -> tuple[str, list[str]] | None:
    """`linear(a, 4)` -> ("linear(4)", ["a"]); `a -> linear(4) -> relu` -> ("linear(4) ->
    relu", ["a"]); None for anything else."""
    if isinstance(x, A.Pipeline) and isinstance(x.stages[0], A.Name) \
            and x.stages[0].id in nodes and len(x.stages) > 1:
        return " -> ".join(format_expr(st) for st in x.stages[1:]), [x.stages[0].id]
    if isinstance(x, A.Call) and x.func not in MERGES:
        on = [a.value.id for a in x.args if a.name is None and isinstance(a.value, A.Name)
              and a.value.id in nodes]
        rest = [a for a in x.args if not (a.name is None and isinstance(a.value, A.Name)
                                          and a.value.id in nodes)]
        if not on:
            return None
        args = ", ".join(format_expr(a.value) if a.name is None
                         else f"{a.name} = {format_expr(a.value)}" for a in rest)
        return (f"{x.func}({args})" if args else x.func), on
    return None
