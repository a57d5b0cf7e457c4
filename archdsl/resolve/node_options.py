"""Options among graph nodes: the options of a choice (or `some`) among nodes are node names,
and an option that computes a tensor (`linear(a, 4)`, `a -> relu`), or a `one_of` alternative
that does, is an error whose hint writes what works instead: a param holding the layers,
applied to the nodes, or a pipeline from the node.

May import: archdsl.ast, errors, layers, printer.
"""

from __future__ import annotations

from .. import ast as A
from ..errors import ArchTypeError
from ..layers import MERGES
from ..printer import format_expr

__all__ = ["check_node_options", "choose_layers_hint", "own_node_hint"]


def check_node_options(e: A.Call, nodes: set[str]) -> None:
    """The options of a choice or `some` among nodes name nodes: an option that computes a
    tensor (`linear(a, 4)`, `a -> relu`) is an error whose hint shows how to choose the
    operations instead (a param holding them, applied to the nodes)."""
    for x in e.positional:
        if isinstance(x, A.Name):
            continue
        opts = [(a.label, a.value) for a in e.args if a.name is None]
        hint = (choose_layers_hint(opts, nodes) if e.func == "choice" else None) \
            or own_node_hint(x)
        raise ArchTypeError(f"an option of {e.func}(...) among nodes must name a node: it "
                            "cannot apply layers or make a decision", x.span, hint=hint)


def own_node_hint(x: A.Expr) -> str:
    return (f"give it its own node (`n = {format_expr(x)}`) and choose among the nodes; "
            "every option among nodes is computed, whichever is chosen")


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
