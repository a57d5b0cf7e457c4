"""The static checks of the `input` declarations, run once the network has been resolved: an
input's `index(N)` bound is a constant, and the network reads every input it declares.

May import: archdsl.ast, errors, shared_names and .kinds (like .checks; never .names,
archdsl.semantics or the interpreter).
"""

from __future__ import annotations

from .. import ast as A
from ..errors import ArchNameError, ArchTypeError
from ..shared_names import first_decision, walk
from .kinds import TENSOR

__all__ = ["check_input_kind", "check_inputs_read"]


def check_input_kind(inp: A.InputDecl) -> None:
    """`index(N)` holds no decision (an input's type is fixed, as its shape is)."""
    if inp.index is None:
        return
    d = first_decision(inp.index)
    if d is not None:
        raise ArchTypeError("an input's index bound is fixed: it cannot hold a decision", d.span)


def check_inputs_read(mod: A.Module, kinds: dict[int, str]) -> None:
    """Every declared input is read somewhere in the network's text: a name of it in the body
    (a pipeline network of one input reads it implicitly when it does not start with a
    tensor). `kinds`: the resolver's kind of each expression, by id."""
    body = mod.network
    if body is None or not mod.inputs:
        return
    names = {inp.name for inp in mod.inputs}
    read: set[str] = set()
    for x in walk(body):
        if isinstance(x, A.Name) and x.ref is not None and x.ref[0] == "node" and x.id in names:
            read.add(x.id)
    if not body.is_graph and len(mod.inputs) == 1 and kinds.get(id(body.result)) != TENSOR:
        return  # `network { linear(4) }`: the one input flows into the pipeline
    for inp in mod.inputs:
        if inp.name not in read:
            others = len(mod.inputs) > 1
            raise ArchNameError(f"input '{inp.name}' is never read by the network", inp.span,
                                hint=f"use it in the network (`h = {inp.name} -> ...`), or "
                                "remove its declaration" if others or body.is_graph else
                                f"start the network from it (`{inp.name} -> ...`), or "
                                "remove its declaration")
