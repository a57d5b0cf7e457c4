"""The vocabulary the resolver's stages share: the kinds of expressions, the context a name is
resolved in (what is in scope where), and how many tensors a sub-network takes.

May import: archdsl.ast only (it is the bottom of the resolver: .checks, .names and
archdsl.semantics import it, never the other way round).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ast as A

__all__ = ["VALUE", "NET", "TENSOR", "ANY", "METRICS_TOP", "METRICS_BLOCK", "Ctx",
           "block_arity", "net_arity"]

# what an expression denotes: a value, a sub-network (layer, block, pipeline...), a tensor (a
# graph node or a computation on nodes), or not known before sampling (a block's argument)
VALUE, NET, TENSOR, ANY = "value", "net", "tensor", "any"

METRICS_TOP = frozenset({"params", "flops"})  # names a top-level constraint may use
METRICS_BLOCK = frozenset({"edges"})  # names a body's constraint may use


@dataclass
class Ctx:
    """Where an expression is resolved: the names in scope and the section it stands in."""

    blocks: dict[str, A.BlockDecl]
    gparams: dict[str, str]  # name -> kind
    locals: set[str] = field(default_factory=set)
    nodes: set[str] | None = None  # graph node names, in graph bodies
    inputs: set[str] = field(default_factory=set)  # network inputs
    metrics: frozenset[str] = frozenset()
    in_train: bool = False
    in_graph: bool = False
    main: bool = True


def block_arity(blk: A.BlockDecl) -> int:
    """How many tensors a block takes: its graph's `input`s, or one for a pipeline body."""
    return len(blk.body.inputs) if blk.body.is_graph else 1


def net_arity(e: A.Expr) -> int:
    """How many tensors applying the sub-network `e` takes (a cell named or called without
    its nodes takes its inputs; anything else takes one)."""
    if isinstance(e, (A.Name, A.Call)) and e.ref and e.ref[0] == "block":
        return block_arity(e.ref[1])
    return 1
