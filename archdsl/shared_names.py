"""Names of inline `shared` decisions, found statically: the interpreter's naming of stages
mirrored over the syntax tree (copies written [*]), and the walks that find, or drop, `shared`
and decisions below a node. The resolver's last stage (`name_shared`), run by
`archdsl.semantics` once names are resolved; the interpreter and the diagrams use its walks.

May import: archdsl.ast and naming only.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import ast as A
from .naming import Scope

__all__ = ["first_shared", "first_decision", "drop_shared", "walk", "stage_segment",
           "static_stage", "static_names"]


def first_shared(e: A.Node) -> A.Shared | None:
    """The first inline `shared` decision inside `e`, if any."""
    return next((x for x in walk(e) if isinstance(x, A.Shared)), None)


def first_decision(e: A.Node) -> A.Node | None:
    """The first decision (a decision call or an inline `shared` one) inside `e`, if any."""
    return next((x for x in walk(e) if isinstance(x, A.Shared) or (
        isinstance(x, A.Call) and x.ref and x.ref[0] == "decision")), None)


def drop_shared(node: A.Node) -> None:
    """Replace every `shared X` below `node` by `X` (in place)."""
    for k, v in vars(node).items():
        if isinstance(v, A.Shared):
            while isinstance(v, A.Shared):
                v = v.expr
            setattr(node, k, v)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                while isinstance(x, A.Shared):
                    x = v[i] = x.expr
    for x in A.children(node):
        drop_shared(x)


def walk(e: A.Node) -> Iterator[A.Node]:
    """`e` and every node inside it, in pre-order (a node, then its children in field order);
    by an explicit stack, not nested generators (one frame per level cost a walk of a deep
    tree its depth at every node)."""
    stack = [e]
    children = A.children
    while stack:
        x = stack.pop()
        yield x
        kids = children(x)
        if kids:
            stack.extend(kids[::-1])  # type: ignore[index]  # children are lists or tuples


def stage_segment(e: A.Expr) -> str | None:
    """The name segment a pipeline stage adds to decision paths (None: adds none)."""
    if isinstance(e, A.Call):
        return e.func
    if isinstance(e, A.Name):
        return e.id
    if isinstance(e, A.Repeat):
        return "repeat"
    if isinstance(e, A.OneOf):
        return "one_of"
    if isinstance(e, A.Optional):
        return "optional"
    if isinstance(e, A.Residual):
        return "residual"
    if isinstance(e, A.Parallel):
        return "parallel"
    if isinstance(e, A.Shared):
        return stage_segment(e.expr)
    return None


def static_stage(e: A.Expr, sc: Scope, found: list, own: bool = False) -> None:
    """Mirror of the interpreter's naming, with copies written [*]."""
    if isinstance(e, A.Pipeline):
        for st in e.stages:
            static_stage(st, sc, found)
        return
    seg = stage_segment(e)
    inner = sc if (own or seg is None) else sc.child(seg)
    if isinstance(e, A.Call):
        _static_call_args(e, inner, found)
    elif isinstance(e, A.Repeat):
        static_names(e.count, inner, "", found)
        static_stage(e.body, inner.index("*"), found)  # type: ignore[arg-type]
    elif isinstance(e, (A.OneOf, A.Parallel)):
        for i, alt in enumerate(e.alts):
            static_stage(alt.expr, inner.index(i), found)
    elif isinstance(e, A.Optional):
        static_stage(e.body, inner, found)
    elif isinstance(e, A.Residual):
        static_stage(e.body, inner, found)
        if e.skip is not None:
            static_stage(e.skip, inner.child("skip"), found)
    elif isinstance(e, (A.BinOp,)):
        static_names(e, sc, None, found)


def _static_call_args(e: A.Call, sc: Scope, found: list) -> None:
    names: list[str] = []
    if e.ref and e.ref[0] == "block":
        names = [p.name for p in e.ref[1].params]
    elif e.ref and e.ref[0] == "layer":
        names = [a.name for a in e.ref[1].args]
    i = 0
    for a in e.args:
        key = a.name
        if key is None:
            if isinstance(a.value, (A.Name, A.Call)) and _is_tensorish(a.value):
                key = "in"
            else:
                key = names[i] if i < len(names) else "arg"
                i += 1
        static_names(a.value, sc, key, found)


def _is_tensorish(e: A.Expr) -> bool:
    """Whether `e` is a tensor (mirrors the checker's kinds, which these helpers do not see)."""
    if isinstance(e, A.Name):
        return bool(e.ref) and e.ref[0] == "node"
    if isinstance(e, A.Pipeline):
        return _is_tensorish(e.stages[0])
    if isinstance(e, A.BinOp):
        return _is_tensorish(e.left) or _is_tensorish(e.right)
    if isinstance(e, A.Call) and e.ref:
        if e.ref[0] == "decision":
            return e.func in ("choice", "some") and all(_is_tensorish(x) for x in e.positional)
        if e.ref[0] == "apply":
            return True
        return e.ref[0] in ("layer", "block") and any(_is_tensorish(x) for x in e.positional)
    return False


def static_names(e: A.Expr, sc: Scope, key: str | None, found: list) -> None:
    """Name the shared decisions inside an expression evaluated in scope `sc`."""
    if isinstance(e, A.Shared):
        k = key if key is not None else e.expr.func  # type: ignore[attr-defined]
        found.append((e, sc.key(k) if k else sc.path))
        return
    if isinstance(e, A.Call) and e.ref and e.ref[0] in ("block", "layer", "apply"):
        _static_call_args(e, sc.child(e.func), found)
        return
    if isinstance(e, A.Pipeline):
        first = e.stages[0]
        static_names(first, sc, key, found)
        for st in e.stages[1:]:
            static_stage(st, sc, found)
        return
    if isinstance(e, (A.Repeat, A.OneOf, A.Optional, A.Residual, A.Parallel)):
        static_stage(e, sc, found)
        return
    for v in vars(e).values():
        if isinstance(v, A.Expr):
            static_names(v, sc, key, found)
        elif isinstance(v, list):
            for x in v:
                if isinstance(x, A.Expr):
                    static_names(x, sc, key, found)
                elif isinstance(x, A.Arg):
                    static_names(x.value, sc, key, found)


def name_shared(mod: A.Module, blocks: dict[str, A.BlockDecl]) -> dict[int, list[tuple[A.Shared,
                                                                                         str]]]:
    """Name each body's inline `shared` decisions (made once per instance of the body): id of
    the body -> its decisions with their body-relative names. Outside bodies, at the top level,
    every value is decided once per architecture, so `shared` there is dropped (the checks that
    it stands nowhere else come first: `resolve_checks.check_shared_placement`)."""
    shared_in: dict[int, list[tuple[A.Shared, str]]] = {}
    may_share: dict[int, bool] = {}  # id of a file's text -> it holds the word `shared`
    seen: set[int] = set()
    for blk in blocks.values():
        if id(blk.body) not in seen:
            seen.add(id(blk.body))
            shared_in[id(blk.body)] = _shared_body(blk.body, may_share)
    if mod.network is not None:
        shared_in[id(mod.network)] = _shared_body(mod.network, may_share)
    if _may_share(mod.span.text, may_share):
        for pd in mod.params:
            drop_shared(pd)
        for te in mod.train:
            drop_shared(te)
        for c in mod.constraints:
            drop_shared(c)
    return shared_in


def _may_share(text: str, cache: dict[int, bool]) -> bool:
    """Whether a file's `text` may hold a `shared` decision (only the parser makes a Shared,
    from the word `shared`; no text: not known, so it may)."""
    may = cache.get(id(text))
    if may is None:
        may = cache[id(text)] = not text or "shared" in text
    return may


def _shared_body(body: A.Body, may_share: dict[int, bool]) -> list[tuple[A.Shared, str]]:
    found: list[tuple[A.Shared, str]] = []
    if not _may_share(body.span.text, may_share):
        return found  # no `shared` in its file: nothing to name
    sc = Scope("")
    for pd in body.params:
        static_names(pd.value, sc, pd.name, found)
    if body.is_graph:
        for st in body.nodes:
            static_names(st.value, sc.child(st.name), None, found)
        static_names(body.result, sc.child("return"), None, found)
    elif isinstance(body.result, A.Pipeline):
        static_names(body.result, sc, None, found)
    else:
        static_stage(body.result, sc, found, own=True)
    return found
