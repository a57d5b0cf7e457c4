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
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archdsl.errors import ArchDSLError, ArchValueError
from archdsl.graph import Architecture

from .ops import TT, register_op
from .plan import Plan, Step, metrics, plan

__all__ = ["build", "source", "export", "summary", "example_inputs", "interpret", "register_op",
           "plan",
           "metrics", "Plan"]

_FORMATS = (".py", ".pt", ".onnx")


# =========================================================================== code generation
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
    copyable: list[bool]  # per module: made by a built-in lowering (no imports)
    imports: list[str]
    signature: str  # the forward's parameters
    body: list[tuple[str, str]]  # (statement, comment)


def _module_refs(s: Step) -> dict[str, str]:
    """The `{m}` / `{m_SUFFIX}` fields of a layer's forward template: its module attributes."""
    assert s.lowered is not None
    return {f"m_{k}" if k else "m": f"self.{s.name}_{k}" if k else f"self.{s.name}"
            for k in s.lowered.modules}


@functools.lru_cache(maxsize=4096)
def _shape_text(t: TT) -> str:
    return str(t)


def _generate(p: Plan, comments: bool = True) -> _Code:
    """The module's layers and forward statements (with no comments for `comments=False`)."""
    zero, reads, order, out = _dataflow(p)
    steps = p.steps
    inputs = {n: steps[n].name for n in p.inputs}
    imports: list[str] = []
    modules: list[tuple[str, str, str]] = []
    copyable: list[bool] = []
    for s in steps.values():
        lw = s.lowered
        if lw is None:  # an input
            continue
        if lw.imports:
            imports += [i for i in lw.imports if i not in imports]
        for suffix, ctor in lw.modules.items():
            modules.append((f"{s.name}_{suffix}" if suffix else s.name, ctor, s.path))
            copyable.append(not lw.imports)
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
        if n in zero:
            expr = f"torch.zeros_like({xs[0]})"
        else:
            assert s.lowered is not None
            mods = s.lowered.modules
            if len(mods) == 1 and "" in mods:
                expr = s.lowered.expr.format(x=xs, m=f"self.{s.name}")
            else:
                expr = s.lowered.expr.format(x=xs, **_module_refs(s))
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
                     f"{_shape_text(s.out)} {s.path}" if comments else ""))
    body.append((f"return {var[out]}", ""))
    sig = ", ".join(f"{v}: torch.Tensor" for v in inputs.values())
    return _Code(modules, copyable, imports, sig, body)


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


# =========================================================================== fast layer copies
# A layer's constructor (say `nn.Conv2d(16, 16, 3, padding=1, bias=False)`) spends most of its
# time in Python bookkeeping that is the same every time: nn.Module.__init__, attribute checks,
# argument parsing. The first time a constructor text is built, its module is recorded as a
# `_Recipe`: its plain attributes, its tensors' shapes and types, its children. Later builds make
# the module from the recipe: the same attributes, new uninitialised tensors, then the layer's own
# `reset_parameters()`, which is how PyTorch's layers initialise their weights at the end of
# their constructors. A recipe is only kept when a copy made that way, from the same random state,
# equals the real module exactly (attributes, tensors, and the random state afterwards), so the
# same seed gives the same weights as the real constructors (and as `source()`'s file). Only
# PyTorch's own layers made by the built-in lowerings are copied, and only while nothing could
# make a real constructor behave differently (a device or dispatch mode, inference mode, global
# module registration hooks, a patched registration method of nn.Module); the default dtype is
# part of the key.
@dataclass
class _Recipe:
    cls: type
    attrs: dict[str, Any]  # immutable values, shared; None where a new object goes
    fresh: tuple[tuple[str, type], ...]  # empty hook dicts: a new one each
    sets: tuple[tuple[str, frozenset], ...]  # e.g. _non_persistent_buffers_set
    params: tuple[tuple[str, tuple[int, ...] | None, torch.dtype | None, bool], ...]
    buffers: tuple[tuple[str, tuple[int, ...] | None, torch.dtype | None], ...]
    children: tuple[tuple[str, _Recipe], ...]
    reset: bool  # call reset_parameters()
    # the tensors' values (parameters, then buffers) where reset_parameters() draws no random
    # numbers (normalisation layers): copied instead of running it
    values: tuple[torch.Tensor | None, ...] | None = None


_IMMUTABLE = frozenset({bool, int, float, str, type(None), torch.dtype, torch.device})
_RECIPES: dict[tuple[str, torch.dtype], _Recipe | None] = {}  # None: use the real constructor
_RECIPES_MAX = 8192
_MODULE_STATE = ("_parameters", "_buffers", "_modules")


def _immutable(v: Any) -> bool:
    if type(v) is tuple:
        return all(_immutable(x) for x in v)
    return type(v) in _IMMUTABLE


def _recipe(m: nn.Module) -> _Recipe | None:
    """How to copy m, or None where its state is not of the plain kind a recipe can copy."""
    cls = type(m)
    if not cls.__module__.startswith("torch.nn.") or cls.__new__ is not object.__new__:
        return None
    attrs: dict[str, Any] = {}
    fresh, sets = [], []
    for k, v in vars(m).items():
        if k in _MODULE_STATE:
            attrs[k] = None  # keeps the key order
        elif type(v) in (dict, OrderedDict):
            if v:  # a hook the constructor registered would belong to m
                return None
            attrs[k] = None
            fresh.append((k, type(v)))
        elif type(v) is set and all(type(x) is str for x in v):
            attrs[k] = None
            sets.append((k, frozenset(v)))
        elif _immutable(v):
            attrs[k] = v
        else:
            return None
    params = []
    for k, p in m._parameters.items():
        if p is None:
            params.append((k, None, None, False))
        elif type(p) is not nn.Parameter or vars(p) or p.device.type != "cpu" or p.layout != \
                torch.strided or not p.is_contiguous():
            return None
        else:
            params.append((k, tuple(p.shape), p.dtype, p.requires_grad))
    buffers = []
    for k, b in m._buffers.items():
        if b is None:
            buffers.append((k, None, None))
        elif type(b) is not torch.Tensor or vars(b) or b.device.type != "cpu" or b.layout != \
                torch.strided or not b.is_contiguous() or b.requires_grad:
            return None
        else:
            buffers.append((k, tuple(b.shape), b.dtype))
    children = []
    for k, c in m._modules.items():
        r = _recipe(c) if c is not None else None
        if r is None:
            return None
        children.append((k, r))
    reset = bool(params or buffers)
    if reset and not callable(getattr(m, "reset_parameters", None)):
        return None
    return _Recipe(cls, attrs, tuple(fresh), tuple(sets), tuple(params), tuple(buffers),
                   tuple(children), reset)


def _empty(shape: tuple[int, ...], dtype: torch.dtype, poison: bool) -> torch.Tensor:
    t = torch.empty(shape, dtype=dtype)
    if poison:  # so that a reset_parameters() that leaves a tensor as it was cannot pass
        t.fill_(float("nan") if dtype.is_floating_point else -1)
    return t


def _make(r: _Recipe, poison: bool = False) -> nn.Module:
    """A new module from a recipe: children first, then its own tensors, as constructors do.
    With `poison` (checking a new recipe), tensors start as NaN or -1 and the values of a
    reset_parameters() that draws no random numbers are kept in the recipe."""
    children = {k: _make(c, poison) for k, c in r.children}
    torch._C._log_api_usage_once("python.nn_module")
    m = object.__new__(r.cls)
    d = dict(r.attrs)
    for k, t in r.fresh:
        d[k] = t()
    for k, v in r.sets:
        d[k] = set(v)
    values = r.values if not poison else None
    if values is not None:
        n = len(r.params)
        d["_parameters"] = {k: None if v is None else nn.Parameter(v.clone(), grad)
                            for (k, _, _, grad), v in zip(r.params, values[:n], strict=True)}
        d["_buffers"] = {k: None if v is None else v.clone()
                         for (k, _, _), v in zip(r.buffers, values[n:], strict=True)}
    else:
        d["_parameters"] = {k: None if shape is None else nn.Parameter(_empty(shape, dtype, poison),
                                                                       grad)
                            for k, shape, dtype, grad in r.params}
        d["_buffers"] = {k: None if shape is None else _empty(shape, dtype, poison)
                         for k, shape, dtype in r.buffers}
    d["_modules"] = children
    vars(m).update(d)
    if r.reset and values is None:
        if poison:
            before = torch.get_rng_state()
            m.reset_parameters()
            if torch.equal(before, torch.get_rng_state()):
                r.values = tuple(None if t is None else t.detach().clone()
                                 for t in [*m._parameters.values(), *m._buffers.values()])
        else:
            m.reset_parameters()
    return m


def _same_module(a: nn.Module, b: nn.Module) -> bool:
    """Whether b is an exact copy of a: class, attributes in order, tensors, children."""
    if type(a) is not type(b) or list(vars(a)) != list(vars(b)):
        return False
    for k, v in vars(a).items():
        w = vars(b)[k]
        if k not in _MODULE_STATE and (type(v) is not type(w) or v != w):
            return False
    for mine, theirs in ((a._parameters, b._parameters), (a._buffers, b._buffers)):
        if list(mine) != list(theirs):
            return False
        for k, t in mine.items():
            u = theirs[k]
            if t is None or u is None:
                if t is not u:
                    return False
            elif (type(t) is not type(u) or t.dtype != u.dtype or t.shape != u.shape
                  or t.requires_grad != u.requires_grad or t.stride() != u.stride()
                  or not torch.equal(t, u)):
                return False
    return list(a._modules) == list(b._modules) and all(
        _same_module(c, b._modules[k]) for k, c in a._modules.items())


# the nn.Module methods a constructor registers its state through, as recipes were checked with
# them: a tool that patches one (say to put new weights on the meta device) gets real constructors
_REGISTRATION = ("register_parameter", "register_buffer", "register_module", "add_module",
                 "__setattr__", "__init__")
_ORIGINAL = {k: vars(nn.Module)[k] for k in _REGISTRATION}


def _copies_allowed() -> bool:
    """Whether nothing in effect now could make a real constructor differ from a recipe."""
    from torch.nn.modules import module as tm

    module_methods = vars(nn.Module)
    if any(module_methods.get(k) is not f for k, f in _ORIGINAL.items()):
        return False
    return not (tm._global_module_registration_hooks or tm._global_parameter_registration_hooks
                or tm._global_buffer_registration_hooks
                or torch._C._is_torch_function_mode_enabled()
                or torch._C._len_torch_dispatch_stack()
                or torch.is_inference_mode_enabled())


def _layer(ctor: str, env: dict[str, Any], key: tuple[str, torch.dtype] | None) -> nn.Module:
    """The module a constructor text makes: from its recipe where it has one (never for key
    None); the first time, from the constructor itself, checking a recipe against it."""
    r = _RECIPES.get(key, False) if key is not None else None
    if r is not None and r is not False:
        return _make(r)
    if r is None:
        return eval(_constructor(ctor), env)  # noqa: S307 - our own generated code
    before = torch.get_rng_state()
    real = eval(_constructor(ctor), env)  # noqa: S307
    after = torch.get_rng_state()
    r = _recipe(real)
    if r is not None:
        torch.set_rng_state(before)
        try:
            copy = _make(r, poison=True)
            if not (torch.equal(torch.get_rng_state(), after) and _same_module(real, copy)):
                r = None
        except Exception:  # noqa: BLE001 - anything unexpected: keep to the real constructor
            r = None
        finally:
            torch.set_rng_state(after)
    if len(_RECIPES) >= _RECIPES_MAX:
        _RECIPES.clear()
    _RECIPES[key] = r
    return real


def build(arch: Architecture | Plan, class_name: str = "Net") -> nn.Module:
    """The architecture as a ready `nn.Module` (parameters initialised, nothing run).

    It runs the code `source()` writes: the same forward statements, and the same layer
    constructors in the same order (so the same torch seed gives the same weights)."""
    p = arch if isinstance(arch, Plan) else plan(arch)
    code = _generate(p, comments=False)
    cls = _module_class(class_name, tuple(code.imports), code.signature,
                        tuple(stmt for stmt, _ in code.body))
    env = {"torch": torch, "nn": nn, "F": torch.nn.functional}
    for line in code.imports:  # user operations: `from M import C as _name`
        module, _, rest = line.removeprefix("from ").partition(" import ")
        cls_name, _, alias = rest.partition(" as ")
        env[alias] = getattr(importlib.import_module(module), cls_name)
    dtype = torch.get_default_dtype() if _copies_allowed() else None
    layers = [(a, _layer(ctor, env, (ctor, dtype) if dtype is not None and own else None))
              for (a, ctor, _), own in zip(code.modules, code.copyable, strict=True)]
    if dtype is not None:  # no registration hooks: what setattr would do, without its checks
        model = cls([])
        model._modules.update(layers)
    else:
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
