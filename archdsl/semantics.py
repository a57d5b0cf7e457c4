"""Syntax tree -> search-space IR: the resolver's front door and its last stage.

`resolve_file` and `resolve_text` run the stages of `archdsl.resolve` in order: the imports are
read (`resolve.imports`), the main file's sections are resolved in the order of the text (here,
each expression by `resolve.names`, which hands every construct to `resolve.checks`), recursion
is checked, the inline `shared` decisions are named (`shared_names`), and the result is
assembled into a `SpaceIR`. After it, every `Name` and `Call` in the tree carries a `ref` saying what it
denotes, every `one_of` knows its labels, every `shared` decision knows its name, and the whole
space has been checked for unknown names, wrong argument counts, misplaced tensors or layers,
and unbounded recursion. Values that depend on decisions are checked later, when they are known.

May import: archdsl.ast, errors, layers, parser, sources, shared_names and archdsl.resolve's
modules; not the interpreter or anything after it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import ast as A
from .errors import ArchNameError, ArchSyntaxError, ArchTypeError
from .layers import LAYERS
from .parser import parse
from .resolve.checks import (
    check_recursion,
    check_shared_placement,
    check_top_param,
    check_train_entry,
    once,
)
from .resolve.imports import MAX_IMPORTS, Loader
from .resolve.inputs import check_input_kind, check_inputs_read
from .resolve.kinds import METRICS_BLOCK, METRICS_TOP, NET, TENSOR, Ctx, block_arity, net_arity
from .resolve.names import Resolver
from .shared_names import name_shared
from .sources import import_roots, read_source

__all__ = ["SpaceIR", "resolve_file", "resolve_text", "MAX_IMPORTS", "block_arity", "net_arity"]


@dataclass(eq=False)
class SpaceIR:
    """A resolved search space: what the interpreter walks."""

    file: str
    text: str
    inputs: list[A.InputDecl]
    params: list[A.ParamDecl | A.SharedDecl]
    blocks: dict[str, A.BlockDecl]
    network: A.Body | None
    network_span: A.Span | None
    train: list[A.TrainEntry]
    constraints: list[A.Constraint]
    # per body: the shared decisions it owns, with their body-relative names
    shared_in: dict[int, list[tuple[A.Shared, str]]] = field(default_factory=dict)
    param_kinds: dict[str, str] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)  # id(expr) -> value/net/tensor/any
    files: list[str] = field(default_factory=list)


def resolve_file(path: str | Path, import_paths: Sequence[str | Path] = ()) -> SpaceIR:
    """Read, parse and check a .arch file; its imports are read from its own folder (symbolic
    links resolved) and from `import_paths`, nowhere else."""
    text = read_source(path)
    key = Path(os.path.realpath(path))
    roots = import_roots(key.parent, import_paths)
    return _resolve_main(roots, parse(text, str(path)), text, key)


def resolve_text(text: str, file: str = "<string>", base_dir: str | Path | None = None,
                 import_paths: Sequence[str | Path] = ()) -> SpaceIR:
    """Parse and check .arch text; imports are read from `base_dir` (default: the current
    folder) and from `import_paths`, nowhere else."""
    roots = import_roots(Path(base_dir) if base_dir is not None else Path.cwd(), import_paths)
    return _resolve_main(roots, parse(text, file), text, roots[0] / "<string>")


def _no_network(mod: A.Module, text: str) -> ArchSyntaxError:
    """The error for a main file without a `network` section (a library, or an empty file),
    at the end of its text."""
    lines = text.rstrip("\n").split("\n")
    line, col = len(lines), len(lines[-1]) + 1
    name = Path(mod.file).name
    return ArchSyntaxError(
        "this file has no `network` section" + (" (it is empty)" if not text.strip() else "")
        + ": a file without a network is a library of blocks and may only be imported",
        A.Span(mod.file, line, col, line, col + 1, text),
        hint=f"add `network {{ ... }}` to search it, or import it from a file that has one: "
             f'import "{name}"')


def _resolve_main(roots: list[Path], mod: A.Module, text: str, key: Path) -> SpaceIR:
    """Resolve the main module `mod` (its `text`, read from `key`; imports from `roots`)."""
    res = Resolver()

    def check_imported(defined: list[A.BlockDecl], blocks: dict[str, A.BlockDecl]) -> None:
        for b in defined:
            res.block(b, Ctx(blocks, {}, main=False))

    loader = Loader(roots, check_imported)
    blocks = loader.load(mod, key, [key])
    gparams = _params(res, mod, blocks)
    input_names: set[str] = set()
    for inp in mod.inputs:
        if inp.name in input_names or inp.name in gparams:
            raise ArchNameError(f"'{inp.name}' is declared twice", inp.span)
        input_names.add(inp.name)
        res.expr(inp.shape, Ctx(blocks, {}))
        if inp.index is not None:
            res.expr(inp.index, Ctx(blocks, {}))
            check_input_kind(inp)
    for blk in blocks.values():
        if blk.module == mod.file:
            res.block(blk, Ctx(blocks, gparams))
    _network(res, mod, text, Ctx(blocks, gparams, inputs=input_names, metrics=METRICS_BLOCK))
    seen: set[str] = set()
    for te in mod.train:
        check_train_entry(te, seen)
        res.expr(te.value, Ctx(blocks, gparams, in_train=True))
    for c in mod.constraints:
        res.constraint(c, Ctx(blocks, gparams, metrics=METRICS_TOP))
    check_recursion(res.calls, blocks)
    check_shared_placement(mod, blocks)
    check_inputs_read(mod, res.kinds)
    shared_in = name_shared(mod, blocks)
    return SpaceIR(mod.file, text, mod.inputs, mod.params, blocks, mod.network,
                   mod.network_span, mod.train, mod.constraints, shared_in, gparams,
                   res.kinds, [str(p) for p in loader.loaded])


def _params(res: Resolver, mod: A.Module, blocks: dict[str, A.BlockDecl]) -> dict[str, str]:
    """Resolve the top-level params and shared sub-networks, each seeing those before it;
    returns their kinds (and notes their tensor arities in `res.arity`)."""
    gparams: dict[str, str] = {}
    for pd in mod.params:
        ctx = Ctx(blocks, gparams)  # the params before this one (not a copy: O(n) in all)
        once(pd.name, gparams, "param '{}' is declared twice", pd.span)
        if pd.name in blocks or pd.name in LAYERS:
            raise ArchNameError(f"param '{pd.name}' has the name of a block or layer", pd.span)
        kind = res.expr(pd.value, ctx)
        check_top_param(pd, kind)
        gparams[pd.name] = NET if isinstance(pd, A.SharedDecl) else kind
        arity = res.arity_of(pd.value, kind)
        if arity is not None:
            res.arity[pd.name] = arity
    return gparams


def _network(res: Resolver, mod: A.Module, text: str, ctx: Ctx) -> None:
    """Resolve the `network` section, which a main file has, with its inputs."""
    if mod.network is None:
        raise _no_network(mod, text)
    if not mod.inputs:
        raise ArchNameError("the network has no input", mod.network_span,
                            hint="declare one before it: `input image: [1, 8, 8]`")
    res.body(mod.network, ctx, "network")
    if mod.network.is_graph is False and len(mod.inputs) > 1:
        if res.kinds.get(id(mod.network.result)) != TENSOR:
            raise ArchTypeError("a network with several inputs must name them: "
                                "start the pipeline with an input, or write a graph",
                                mod.network.result.span)


