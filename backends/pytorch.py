"""The PyTorch backend: an architecture -> an `nn.Module`, its source, or an exported file.

`build(arch)` runs the code that `source(arch)` returns (and `export(arch, "model.py")` writes;
`codegen.py` generates it), so the exported file and the in-memory model cannot differ: the same
forward statements, and the same layer constructors in the same order, so the same seed gives
the same weights. Layers made before are copied from checked recipes (`layercopy.py`).

    >>> from archdsl.backends import pytorch
    >>> model = pytorch.build(arch, seed=0)  # an ordinary nn.Module, the same weights every time
    >>> print(pytorch.source(arch))          # the same model as a standalone .py file
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archdsl.errors import ArchDSLError, ArchLimitError, ArchValueError
from archdsl.graph import Architecture

from .codegen import check_class_name, generate, input_shapes, module_class, module_refs, source
from .layercopy import copies_allowed, layer
from .ops import OPS
from .ops_user import register_op
from .plan import MAX_PARAMS, Plan, Step, check_size, metrics, plan

__all__ = ["build", "source", "export", "summary", "example_inputs", "interpret", "register_op",
           "plan", "metrics", "Plan", "MAX_PARAMS"]

_FORMATS = (".py", ".pt", ".onnx")

@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """With a seed: torch's random state seeded for the duration, and restored afterwards."""
    if seed is None:
        yield
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ArchValueError(f"the seed must be an integer from 0 to 2**63 - 1, got {seed!r}")
    with torch.random.fork_rng(devices=[]):  # layers are made on the CPU: wake no GPU
        torch.manual_seed(seed)
        yield


def _make_layer(ctor: str, env: dict[str, Any], key: tuple[str, torch.dtype] | None,
                owner: Step) -> nn.Module:
    """The layer, with a failed allocation reported at the layer's .arch span."""
    try:
        return layer(ctor, env, key)
    except (MemoryError, OverflowError) as e:
        problem = str(e) or type(e).__name__
    except RuntimeError as e:
        if "alloc" not in str(e).lower() and "overflow" not in str(e).lower():
            raise
        problem = str(e).split("\n")[0]
    raise ArchLimitError(f"{owner.op}: cannot make its {owner.params:,} parameters ({problem})",
                         owner.span, "make the layer smaller") from None


def build(arch: Architecture | Plan, class_name: str = "Net", seed: int | None = None,
          max_params: int = MAX_PARAMS) -> nn.Module:
    """The architecture as a ready `nn.Module` (parameters initialised, nothing run).

    It runs the code `source()` writes: the same forward statements, and the same layer
    constructors in the same order (so the same torch seed gives the same weights). With `seed`,
    the weights are drawn from `torch.manual_seed(seed)` and torch's random state is left as it
    was; without, from torch's current random state. A network with more than `max_params`
    parameters is refused (`ArchLimitError`) before anything is allocated, as is a layer whose
    tensors cannot be allocated."""
    check_class_name(class_name)
    p = arch if isinstance(arch, Plan) else plan(arch)
    check_size(p, max_params)
    code = generate(p, comments=False)
    cls = module_class(class_name, code.signature, tuple(stmt for stmt, _ in code.body))
    env = {"torch": torch, "nn": nn, "F": torch.nn.functional}
    if code.imports:  # user operations: `from M import C as _name` in the file
        for s in code.owners:
            op = OPS.get(s.op)
            if op is not None and op.user_class is not None:
                env[f"_{s.op}"] = op.user_class  # the class itself, importable or not
    dtype = torch.get_default_dtype() if copies_allowed() else None
    with _seeded(seed):
        layers = [(a, _make_layer(ctor, env, (ctor, dtype) if dtype is not None and own else None,
                                  owner))
                  for (a, ctor, _), own, owner in zip(code.modules, code.copyable, code.owners,
                                                      strict=True)]
    if dtype is not None:  # no registration hooks: what setattr would do, without its checks
        model = cls([])
        model._modules.update(layers)
    else:
        model = cls(layers)
    model.input_shapes = input_shapes(p)
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
                                     **module_refs(s))
        values[s.node] = eval(_expr(expr), env, {"_x": [values[i] for i in s.inputs]})  # noqa: S307
    return values


@functools.lru_cache(maxsize=4096)
def _expr(text: str) -> Any:
    return compile(text, "<archdsl-layer>", "eval")


# =========================================================================== helpers
def example_inputs(arch: Architecture | Plan, batch: int = 2,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """Random inputs of the declared shapes: integers from 0 to N - 1 for an `index(N)` input,
    token ids below the smallest vocabulary for an embedding's input, else floats."""
    p = arch if isinstance(arch, Plan) else plan(arch)
    out = []
    for n in p.inputs:
        t = p.steps[n].out
        if t.dtype == "long":
            vocab = t.bound or min(s.args["num"] for s in p.layers()
                                   if s.op == "embedding" and n in s.inputs)
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


def export(arch: Architecture, path: str | Path, model: nn.Module | None = None,
           seed: int = 0) -> Path:
    """Write the architecture as `.py` (standalone source), `.pt` (TorchScript) or `.onnx`.

    `model` supplies trained weights for `.pt` and `.onnx`; without it, a model is built with
    `build(arch, seed=seed)`, so the same seed writes the same weights.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise ArchValueError(f"cannot export to '{path.suffix or path.name}'",
                             hint="the output must end in .py, .pt or .onnx")
    p = plan(arch)
    text = source(p) if suffix == ".py" else None
    model = model if model is not None or text is not None else build(p, seed=seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is not None:
            path.write_text(text, "utf-8")
            return path
        assert model is not None
        model.eval()
        with _seeded(seed):
            xs = example_inputs(p, batch=1)
        _write_model(model, xs, path, [p.steps[n].name for n in p.inputs])
    except OSError as e:
        raise ArchDSLError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _write_model(model: nn.Module, xs: tuple[torch.Tensor, ...], path: Path,
                 names: list[str]) -> None:
    """TorchScript or ONNX; what PyTorch cannot convert (a user operation TorchScript cannot
    compile, ONNX without the onnx package) is an ArchDSLError naming the format."""
    fmt = "TorchScript" if path.suffix.lower() == ".pt" else "ONNX"
    try:
        if fmt == "TorchScript":
            with warnings.catch_warnings():  # deprecated, yet the one portable format for C++
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.jit.script(model).save(str(path))
        else:
            _onnx(model, xs, path, names)
    except (OSError, ArchDSLError):
        raise
    except ImportError as e:
        raise ArchDSLError(f"cannot write {fmt}: {e}", hint="pip install onnx") from None
    except Exception as e:  # noqa: BLE001 - PyTorch's converters raise many kinds
        first = str(e).strip().split("\n")[0]
        raise ArchDSLError(f"cannot convert the model to {fmt}: {type(e).__name__}: {first}",
                           hint="write .py instead, or use layers that PyTorch can convert"
                           ) from None


def _onnx(model: nn.Module, xs: tuple[torch.Tensor, ...], path: Path, names: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, xs, str(path), input_names=names, output_names=["output"],
                          dynamic_axes={n: {0: "batch"} for n in [*names, "output"]},
                          dynamo=False)
