"""Loose-end merges: `return concat(loose_ends)` in a graph body merges the body's nodes that
no other node, and nothing else in the `return`, reads (the interpreter finds them per
configuration: archdsl.interp.blocks). This module holds the static side: where the name
`loose_ends` may stand (alone, as the one argument of a merge, in tensor positions of a graph
body's `return`), the node names it reserves, and the rule that makes the set never empty
(the body has a node, and the return does not read its last one elsewhere).

May import: archdsl.ast, errors, layers, shared_names (its walks); not .names or
archdsl.semantics (they import this).
"""

from __future__ import annotations

from .. import ast as A
from ..errors import ArchNameError, ArchTypeError
from ..layers import MERGES
from ..shared_names import walk

__all__ = ["LOOSE", "REF", "loose_arg", "allowed_merges", "check_loose_merge", "misplaced",
           "refuse_name", "check_node_name", "check_inputs", "check_return"]

LOOSE = "loose_ends"
REF = ("loose", None)  # the `ref` of the name `loose_ends` in an allowed merge
_EXAMPLE = "`return concat(loose_ends)` merges the nodes that nothing else reads"


def loose_arg(e: A.Call) -> A.Name | None:
    """The name `loose_ends` among a merge call's arguments, if there (any position)."""
    if e.func not in MERGES:
        return None
    for a in e.args:
        if isinstance(a.value, A.Name) and a.value.id == LOOSE:
            return a.value
    return None


def allowed_merges(result: A.Expr) -> set[int]:
    """The ids of the merge calls of a graph `return` that stand where a tensor is computed
    (the return itself, a pipeline's first stage, an operand of `+`/`*`, a positional argument
    of a call): where `loose_ends` may be merged. Structures (repeat, one_of...) and later
    pipeline stages hold sub-networks, not tensors of this graph."""
    out: set[int] = set()
    stack: list[A.Expr] = [result]
    while stack:
        x = stack.pop()
        if isinstance(x, A.Call):
            if x.func in MERGES:
                out.add(id(x))
            stack.extend(x.positional)
        elif isinstance(x, A.BinOp):
            stack.extend((x.left, x.right))
        elif isinstance(x, A.Pipeline):
            stack.append(x.stages[0])
    return out


def check_loose_merge(e: A.Call, name: A.Name, allowed: set[int]) -> None:
    """A merge naming `loose_ends` stands in a graph `return` and merges that name alone."""
    if id(e) not in allowed:
        raise misplaced(name)
    if len(e.args) != 1 or e.args[0].name is not None:
        other = next(a for a in e.args if a.value is not name)
        if other.name is not None:
            raise ArchTypeError(f"'{e.func}({LOOSE})' takes no option '{other.name}'",
                                other.span, hint="merge its result with other nodes for that: "
                                f"`add({e.func}({LOOSE}), n0, project = true)`")
        raise ArchTypeError(f"'{LOOSE}' is merged alone: '{e.func}' takes no other tensor "
                            "with it", other.span,
                            hint=f"merge the result with the rest: `{e.func}({LOOSE}) + n0`"
                            if e.func == "add" else "merge the result with the rest: "
                            f"`concat({e.func}({LOOSE}), n0)`")


def misplaced(name: A.Name) -> ArchTypeError:
    """`loose_ends` anywhere but alone in a merge of a graph `return`."""
    return ArchTypeError(f"'{LOOSE}' can only be merged in the `return` of a graph body "
                         f"(`add({LOOSE})`, `concat({LOOSE})` or `multiply({LOOSE})`)",
                         name.span, hint=_EXAMPLE)


def refuse_name(name: A.Name) -> None:
    """`loose_ends` met as a name of its own (not merged where it may be): an error."""
    raise misplaced(name)


def check_node_name(st: A.NodeStmt) -> None:
    """`loose_ends` is reserved: no graph node takes it as its name."""
    if st.name == LOOSE:
        raise ArchNameError(f"'{LOOSE}' is reserved and cannot name a node", st.span,
                            hint=f"rename the node; {_EXAMPLE}")


def check_inputs(body: A.Body) -> None:
    """`loose_ends` is reserved: no graph input takes it as its name."""
    if LOOSE in body.inputs:
        raise ArchNameError(f"'{LOOSE}' is reserved and cannot name an input", body.span,
                            hint=f"rename the input; {_EXAMPLE}")


def check_return(body: A.Body) -> None:
    """A graph body whose `return` merges `loose_ends` always has a loose end: it has a node,
    and the return does not read its last node besides (no other node can read it)."""
    names = [x for x in walk(body.result) if isinstance(x, A.Name) and x.ref == REF]
    if not names:
        return
    if not body.nodes:
        raise ArchTypeError(f"'{LOOSE}' merges the nodes of the graph, and this one has none "
                            "(its inputs are never loose ends)", names[0].span,
                            hint="define a node (`n1 = n0 -> ...`) or return the input")
    last = body.nodes[-1].name
    for x in walk(body.result):
        if isinstance(x, A.Name) and x.id == last and x.ref and x.ref[0] == "node":
            raise ArchTypeError(
                f"the `return` reads '{last}', the last node, so '{LOOSE}' could be empty "
                "(no other node can read it)", x.span,
                hint=f"drop '{last}' from the rest of the `return`: as the last node it is "
                f"always among the '{LOOSE}'")
