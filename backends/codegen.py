"""Code generation: a plan -> the Python source of an `nn.Module` (a file, or a forward pass).

One generator serves both uses: `source(plan)` is the standalone file that `export(arch,
"model.py")` writes, and `build` (in `pytorch.py`) executes the same forward statements and the
same layer constructors. The forward pass is straight-line code: no per-layer dispatch at run
time, zero branches of sums dropped, identities aliased, and a variable reused as soon as the
tensor it held is no longer needed (so intermediates are released early).

Text that comes from a .arch file (its file name, input names, layer paths) reaches the source
only through `archdsl.quoting`: escaped in the docstring and comments, a string literal in
`input_shapes`, and a safe identifier as a forward parameter (`input class` -> `class_`).
"""

from __future__ import annotations

import functools
import keyword
import linecache
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from archdsl.errors import ArchValueError
from archdsl.graph import Architecture
from archdsl.quoting import escape_text, py_identifier, py_literal

from .ops import TT
from .plan import Plan, Step, plan

__all__ = ["source", "generate", "module_class", "module_refs", "check_class_name"]


def _dataflow(p: Plan) -> tuple[set[int], dict[int, list[int]], list[int], int]:
    """Which nodes the forward pass computes and what each reads: zero branches of sums are
    dropped, identities and one-term sums aliased to the node holding the same tensor.

    Returns the nodes whose value is identically zero (each computed as zeros_like of the node
    it reads), the nodes every layer reads, the computed nodes in order, and the node the
    network returns."""
    zero: set[int] = set()  # nodes whose value is identically zero
    zero_src: dict[int, int] = {}  # zero node -> node to take zeros_like of
    rep: dict[int, int] = {}  # node -> node holding the same tensor
    reads: dict[int, list[int]] = {}
    steps = p.steps
    for n, s in steps.items():  # topological order: a node's inputs are classified before it
        op = s.op
        if op == "input":
            continue
        ins = s.inputs
        terms = None  # the non-zero inputs of a plain (non-projecting) sum
        if op == "add" and s.lowered is not None and not s.lowered.modules:
            terms = [i for i in ins if i not in zero]
        if op == "zero" or (terms is not None and not terms) or (
                op == "identity" and ins[0] in zero):
            zero.add(n)
            first = ins[0]
            zero_src[n] = src = zero_src.get(first, rep.get(first, first))
            reads[n] = [src]
            continue
        if op == "identity":
            rep[n] = rep.get(ins[0], ins[0])
        elif terms is not None and len(terms) == 1:
            rep[n] = rep.get(terms[0], terms[0])
        reads[n] = [rep.get(i, i) for i in (terms if terms is not None else ins)]
    out = rep.get(p.output, p.output)
    needed: set[int] = set()
    todo = [out]
    while todo:
        n = todo.pop()
        if n not in needed:
            needed.add(n)
            todo.extend(reads.get(n, ()))  # inputs read nothing
    order = [n for n in reads if n in needed]
    return zero, reads, order, out


def _line(text: str, comment: str, width: int = 100) -> str:
    full = f"{text}  # {comment}"
    return full if len(full) <= width else text


@dataclass
class _Code:
    """What the generator produces, before it is laid out as a file."""

    modules: list[tuple[str, str, str]]  # (attribute, constructor source, where from)
    owners: list[Step]  # per module: the layer it belongs to
    copyable: list[bool]  # per module: made by a built-in lowering (no imports)
    imports: list[str]
    signature: str  # the forward's parameters
    body: list[tuple[str, str]]  # (statement, comment)


def module_refs(s: Step) -> dict[str, str]:
    """The `{m}` / `{m_SUFFIX}` fields of a layer's forward template: its module attributes."""
    assert s.lowered is not None
    return {f"m_{k}" if k else "m": f"self.{s.name}_{k}" if k else f"self.{s.name}"
            for k in s.lowered.modules}


@functools.lru_cache(maxsize=4096)
def _shape_text(t: TT) -> str:
    return str(t)


def generate(p: Plan, comments: bool = True) -> _Code:
    """The module's layers and forward statements (with no comments for `comments=False`)."""
    zero, reads, order, out = _dataflow(p)
    steps = p.steps
    inputs: dict[int, str] = {}
    for n in p.inputs:  # forward parameters: `input class` -> `class_`
        inputs[n] = py_identifier(steps[n].name, inputs.values())
    imports: list[str] = []
    modules: list[tuple[str, str, str]] = []
    copyable: list[bool] = []
    owners: list[Step] = []
    for s in steps.values():
        lw = s.lowered
        if lw is None:  # an input
            continue
        if lw.imports:
            imports += [i for i in lw.imports if i not in imports]
        for suffix, ctor in lw.modules.items():
            modules.append((f"{s.name}_{suffix}" if suffix else s.name, ctor, s.path))
            copyable.append(not lw.imports)
            owners.append(s)
    # forward: straight-line code; a variable is reused once its tensor is dead
    last_use: dict[int, int] = {}
    for i, n in enumerate(order):
        for a in reads[n]:
            last_use[a] = i
    last_use[out] = len(order)
    var: dict[int, str] = dict(inputs)
    input_vars = set(inputs.values())
    free: list[str] = []
    fresh = (f"x{i}" if i else "x" for i in range(10**9))
    body: list[tuple[str, str]] = []
    for i, n in enumerate(order):
        s = steps[n]
        args = reads[n]
        xs = [var[a] for a in args]
        lw = s.lowered
        assert lw is not None
        if n in zero:
            expr = f"torch.zeros_like({xs[0]})"
        elif s.op == "add" and not lw.modules:  # a plain sum of its non-zero terms
            expr = " + ".join(xs)
        elif len(lw.modules) == 1 and "" in lw.modules:
            expr = lw.expr.format(x=xs, m=f"self.{s.name}")
        else:
            expr = lw.expr.format(x=xs, **module_refs(s))
        for a in (args if len(args) == 1 else dict.fromkeys(args)):
            if last_use.get(a) == i and a not in inputs:
                free.append(var[a])
        if free:
            name = xs[0] if xs and xs[0] in free else min(free, key=lambda v: (len(v), v))
            free.remove(name)
        else:
            name = next(v for v in fresh if v not in input_vars)
        var[n] = name
        body.append((f"{name} = {expr}",
                     f"{_shape_text(s.out)} {escape_text(s.path)}" if comments else ""))
    body.append((f"return {var[out]}", ""))
    sig = ", ".join(f"{v}: torch.Tensor" for v in inputs.values())
    return _Code(modules, owners, copyable, imports, sig, body)


_PRELUDE = ["import torch", "import torch.nn.functional as F", "from torch import nn"]


def check_class_name(class_name: str) -> None:
    """Refuse a class name that is not a plain identifier (it is written into source)."""
    if not class_name.isidentifier() or keyword.iskeyword(class_name) or not class_name.isascii():
        raise ArchValueError(f"the class name {escape_text(class_name)!r} is not a Python "
                             "identifier")


def _check_importable(code: _Code) -> None:
    """A user operation's class must be importable by the file: not from __main__ or a
    function's locals."""
    for s in code.owners:
        assert s.lowered is not None
        for line in s.lowered.imports:
            module, _, rest = line.removeprefix("from ").partition(" import ")
            if module == "__main__" or "<" in rest:
                where = "the main script" if module == "__main__" else "a function"
                raise ArchValueError(f"{s.op}: its class is defined in {where}, which the "
                                     "generated file cannot import", s.span,
                                     "define the class in a module of its own")


def input_shapes(p: Plan) -> dict[str, list[int]]:
    """The declared input shapes by input name, without the batch axis."""
    return {p.steps[n].name: list(p.steps[n].out.shape) for n in p.inputs}


def source(arch: Architecture | Plan, class_name: str = "Net") -> str:
    """A standalone Python file (needing only PyTorch) defining the architecture's module."""
    check_class_name(class_name)
    p = arch if isinstance(arch, Plan) else plan(arch)
    code = generate(p)
    _check_importable(code)
    origin = escape_text(Path(p.source_file).name) or "a search space"
    lines = [
        f'"""Generated by archdsl from {origin}: '
        f'{p.params:,} parameters, {p.flops:,} multiply-accumulates per example.',
        "",
        "Needs only PyTorch. Inputs have a batch axis in front of the shapes below.",
        '"""',
        "",
        *_PRELUDE,
        *code.imports,
        "",
        "",
        f"class {class_name}(nn.Module):",
        f"    input_shapes = {py_literal(input_shapes(p))}",
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
    ]
    lines += [_line(f"        self.{a} = {ctor}", escape_text(where))
              for a, ctor, where in code.modules]
    lines += ["", f"    def forward(self, {code.signature}) -> torch.Tensor:"]
    lines += [_line(f"        {stmt}", c) if c else f"        {stmt}" for stmt, c in code.body]
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=1024)
def module_class(class_name: str, signature: str, body: tuple[str, ...]) -> type[nn.Module]:
    """A module class with this forward pass; its __init__ takes the layers, in order (made by
    the caller, so user operations' classes need no import here)."""
    text = "\n".join([*_PRELUDE, "", "",
                      f"class {class_name}(nn.Module):",
                      "    def __init__(self, layers: list) -> None:",
                      "        super().__init__()",
                      "        for name, layer in layers:",
                      "            setattr(self, name, layer)",
                      "",
                      f"    def forward(self, {signature}) -> torch.Tensor:",
                      *(f"        {stmt}" for stmt in body)]) + "\n"
    name = f"<archdsl-generated-{len(_SOURCES)}>"
    _SOURCES.append(text)
    linecache.cache[name] = (len(text), None, text.splitlines(keepends=True), name)
    ns: dict[str, Any] = {"__name__": "archdsl_generated"}
    exec(compile(text, name, "exec"), ns)  # noqa: S102 - our own generated code
    return ns[class_name]


_SOURCES: list[str] = []  # generated forward passes, kept for inspect, TorchScript, tracebacks

