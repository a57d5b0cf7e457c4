"""The PyTorch backend: an architecture -> Python source for an `nn.Module` -> the module.

One code generator serves both uses: `build(arch)` executes the same source that
`source(arch)` returns (and `export(arch, "model.py")` writes), so the exported file and the
in-memory model cannot differ. The forward pass is straight-line code: no per-layer dispatch at run
time, zero branches of sums dropped, identities aliased, and a variable reused as soon as the tensor
it held is no longer needed (so intermediates are released early).

    >>> from archdsl.backends import pytorch
    >>> model = pytorch.build(arch)          # an ordinary nn.Module
    >>> print(pytorch.source(arch))          # the same model as a standalone .py file
"""

from __future__ import annotations

import functools
import importlib
import linecache
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archdsl.errors import ArchDSLError, ArchValueError
from archdsl.graph import Architecture

from .ops import register_op
from .plan import Plan, Step, metrics, plan

__all__ = ["build", "source", "export", "summary", "example_inputs", "interpret", "register_op",
           "plan",
           "metrics", "Plan"]

_FORMATS = (".py", ".pt", ".onnx")


# =========================================================================== code generation
class _Forward:
    """Which nodes the forward pass computes, under which variable names."""

    def __init__(self, p: Plan):
        self.p = p
        self.zero: set[int] = set()  # nodes whose value is identically zero
        self.zero_src: dict[int, int] = {}  # zero node -> node to take zeros_like of
        self.rep: dict[int, int] = {}  # node -> node holding the same tensor
        for n, s in p.steps.items():
            self._classify(n, s)

    def _sum_terms(self, s: Step) -> list[int] | None:
        """The non-zero inputs of a plain (non-projecting) sum; None for other layers."""
        if s.op != "add" or s.lowered is None or s.lowered.modules:
            return None
        return [i for i in s.inputs if i not in self.zero]

    def _classify(self, n: int, s: Step) -> None:
        terms = self._sum_terms(s)
        if s.op == "zero" or (terms is not None and not terms) or (
                s.op == "identity" and s.inputs[0] in self.zero):
            self.zero.add(n)
            first = s.inputs[0]
            self.zero_src[n] = self.zero_src.get(first, self.rep.get(first, first))
        elif s.op == "identity":
            self.rep[n] = self.rep.get(s.inputs[0], s.inputs[0])
        elif terms is not None and len(terms) == 1:
            self.rep[n] = self.rep.get(terms[0], terms[0])

    def args_of(self, n: int) -> list[int]:
        """The nodes a computed node reads, after dropping zero terms and aliases."""
        s = self.p.steps[n]
        if n in self.zero:
            return [self.zero_src[n]]
        terms = self._sum_terms(s)
        ins = terms if terms is not None else s.inputs
        return [self.rep.get(i, i) for i in ins]

    def schedule(self) -> tuple[list[int], int]:
        """Computed nodes in order, and the node the network returns."""
        out = self.rep.get(self.p.output, self.p.output)
        needed: set[int] = set()
        todo = [out]
        while todo:
            n = todo.pop()
            if n in needed:
                continue
            needed.add(n)
            if self.p.steps[n].op != "input":
                todo.extend(self.args_of(n))
        order = [n for n in self.p.steps if n in needed and self.p.steps[n].op != "input"]
        return order, out


def _line(text: str, comment: str, width: int = 100) -> str:
    full = f"{text}  # {comment}"
    return full if len(full) <= width else text


@dataclass
class _Code:
    """What the generator produces, before it is laid out as a file."""

    modules: list[tuple[str, str, str]]  # (attribute, constructor source, where from)
    imports: list[str]
    signature: str  # the forward's parameters
    body: list[tuple[str, str]]  # (statement, comment)


def _module_refs(s: Step) -> dict[str, str]:
    """The `{m}` / `{m_SUFFIX}` fields of a layer's forward template: its module attributes."""
    assert s.lowered is not None
    return {f"m_{k}" if k else "m": f"self.{s.name}_{k}" if k else f"self.{s.name}"
            for k in s.lowered.modules}


def _generate(p: Plan) -> _Code:
    fw = _Forward(p)
    order, out = fw.schedule()
    inputs = {n: p.steps[n].name for n in p.inputs}
    imports: list[str] = []
    modules: list[tuple[str, str, str]] = []
    for s in p.layers():
        assert s.lowered is not None
        imports += [i for i in s.lowered.imports if i not in imports]
        for suffix, ctor in s.lowered.modules.items():
            modules.append((f"{s.name}_{suffix}" if suffix else s.name, ctor, s.path))
    # forward: straight-line code; a variable is reused once its tensor is dead
    last_use: dict[int, int] = {}
    for i, n in enumerate(order):
        for a in fw.args_of(n):
            last_use[a] = i
    last_use[out] = len(order)
    var: dict[int, str] = dict(inputs)
    free: list[str] = []
    fresh = (f"x{i}" if i else "x" for i in range(10**9))
    body: list[tuple[str, str]] = []
    for i, n in enumerate(order):
        s = p.steps[n]
        args = fw.args_of(n)
        xs = [var[a] for a in args]
        if n in fw.zero:
            expr = f"torch.zeros_like({xs[0]})"
        else:
            assert s.lowered is not None
            expr = s.lowered.expr.format(x=xs, **_module_refs(s))
        for a in dict.fromkeys(args):
            if last_use.get(a) == i and a not in inputs:
                free.append(var[a])
        if free:
            name = xs[0] if xs and xs[0] in free else min(free, key=lambda v: (len(v), v))
            free.remove(name)
        else:
            name = next(v for v in fresh if v not in inputs.values())
        var[n] = name
        body.append((f"{name} = {expr}", f"{s.out} {s.path}"))
    body.append((f"return {var[out]}", ""))
    sig = ", ".join(f"{v}: torch.Tensor" for v in inputs.values())
    return _Code(modules, imports, sig, body)


_PRELUDE = ["import torch", "import torch.nn.functional as F", "from torch import nn"]


def source(arch: Architecture | Plan, class_name: str = "Net") -> str:
    """A standalone Python file (needing only PyTorch) defining the architecture's module."""
    p = arch if isinstance(arch, Plan) else plan(arch)
    code = _generate(p)
    shapes = ", ".join(f"{p.steps[n].name!r}: {list(p.steps[n].out.shape)}" for n in p.inputs)
    lines = [
        f'"""Generated by archdsl from {Path(p.source_file).name or "a search space"}: '
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
        f"    input_shapes = {{{shapes}}}",
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
    ]
    lines += [_line(f"        self.{a} = {ctor}", where) for a, ctor, where in code.modules]
    lines += ["", f"    def forward(self, {code.signature}) -> torch.Tensor:"]
    lines += [_line(f"        {stmt}", c) if c else f"        {stmt}" for stmt, c in code.body]
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=1024)
def _module_class(class_name: str, imports: tuple[str, ...], signature: str,
                  body: tuple[str, ...]) -> type[nn.Module]:
    """A module class with this forward pass; its __init__ takes the layers, in order."""
    text = "\n".join([*_PRELUDE, *imports, "", "",
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


@functools.lru_cache(maxsize=8192)
def _constructor(text: str) -> Any:
    return compile(text, "<archdsl-layer>", "eval")


def build(arch: Architecture | Plan, class_name: str = "Net") -> nn.Module:
    """The architecture as a ready `nn.Module` (parameters initialised, nothing run).

    It runs the code `source()` writes: the same forward statements, and the same layer
    constructors in the same order (so the same torch seed gives the same weights)."""
    p = arch if isinstance(arch, Plan) else plan(arch)
    code = _generate(p)
    cls = _module_class(class_name, tuple(code.imports), code.signature,
                        tuple(stmt for stmt, _ in code.body))
    env = {"torch": torch, "nn": nn, "F": torch.nn.functional}
    for line in code.imports:  # user operations: `from M import C as _name`
        module, _, rest = line.removeprefix("from ").partition(" import ")
        cls_name, _, alias = rest.partition(" as ")
        env[alias] = getattr(importlib.import_module(module), cls_name)
    layers = [(a, eval(_constructor(ctor), env)) for a, ctor, _ in code.modules]  # noqa: S307
    model = cls(layers)
    model.input_shapes = {p.steps[n].name: list(p.steps[n].out.shape) for n in p.inputs}
    return model


def interpret(model: nn.Module, arch: Architecture | Plan,
              *inputs: torch.Tensor) -> dict[int, torch.Tensor]:
    """Run `model` one layer at a time over the same plan, with nothing dropped or aliased, and
    return every node's value: for debugging and for checking the generated forward pass."""
    p = arch if isinstance(arch, Plan) else plan(arch)
    values: dict[int, torch.Tensor] = dict(zip(p.inputs, inputs, strict=True))
    env = {"torch": torch, "F": torch.nn.functional, "nn": nn, "self": model}
    for s in p.layers():
        assert s.lowered is not None
        expr = s.lowered.expr.format(x=[f"_x[{i}]" for i in range(len(s.inputs))],
                                     **_module_refs(s))
        values[s.node] = eval(_expr(expr), env, {"_x": [values[i] for i in s.inputs]})  # noqa: S307
    return values


@functools.lru_cache(maxsize=4096)
def _expr(text: str) -> Any:
    return compile(text, "<archdsl-layer>", "eval")


# =========================================================================== helpers
def example_inputs(arch: Architecture | Plan, batch: int = 2,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """Random inputs of the declared shapes (token ids for embedding inputs)."""
    p = arch if isinstance(arch, Plan) else plan(arch)
    out = []
    for n in p.inputs:
        t = p.steps[n].out
        if t.dtype == "long":
            vocab = min(s.args["num"] for s in p.layers() if s.op == "embedding" and n in s.inputs)
            out.append(torch.randint(0, vocab, (batch, *t.shape), generator=generator))
        else:
            out.append(torch.randn(batch, *t.shape, generator=generator))
    return tuple(out)


def summary(arch: Architecture | Plan) -> list[dict[str, Any]]:
    """One row per layer: name, op, output shape, parameters, multiply-accumulates, source."""
    p = arch if isinstance(arch, Plan) else plan(arch)
    rows = []
    for s in p.steps.values():
        where = f"{Path(s.span.file).name}:{s.span.line}" if s.span else ""
        rows.append({"name": s.name, "op": s.op, "shape": list(s.out.shape), "params": s.params,
                     "flops": s.flops, "path": s.path, "where": where})
    return rows


def export(arch: Architecture, path: str | Path, model: nn.Module | None = None) -> Path:
    """Write the architecture as `.py` (standalone source), `.pt` (TorchScript) or `.onnx`.

    `model` supplies trained weights for `.pt` and `.onnx` (default: a freshly built one).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise ArchValueError(f"cannot export to '{path.suffix or path.name}'",
                             hint="the output must end in .py, .pt or .onnx")
    p = plan(arch)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".py":
            path.write_text(source(p), "utf-8")
            return path
        model = model if model is not None else build(p)
        model.eval()
        xs = example_inputs(p, batch=1)
        if suffix == ".pt":
            with warnings.catch_warnings():  # deprecated, yet the one portable format for C++
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.jit.script(model).save(str(path))
        else:
            _onnx(model, xs, path, [p.steps[n].name for n in p.inputs])
    except OSError as e:
        raise ArchDSLError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _onnx(model: nn.Module, xs: tuple[torch.Tensor, ...], path: Path, names: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, xs, str(path), input_names=names, output_names=["output"],
                          dynamic_axes={n: {0: "batch"} for n in [*names, "output"]},
                          dynamo=False)
