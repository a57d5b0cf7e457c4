"""Your own operations: `register_op` adds a layer, backed by an `nn.Module` class of yours, to
the language (`archdsl.layers`) and to the PyTorch backend's operation library (`ops.OPS`), with
its shape rule, counts and lowering. Re-exported as `archdsl.backends.pytorch.register_op`.

May import: archdsl.layers, archdsl.quoting and .ops (nothing here imports torch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from archdsl.layers import ArgSpec, register_layer
from archdsl.quoting import py_literal

from .ops import OPS, TT, Lowered, Op, ShapeProblem

__all__ = ["register_op"]

_LAYOUTS = {1: "vector", 2: "seq", 3: "image"}


def register_op(name: str, module: type, shape: Callable[..., Sequence[int]],
                args: Sequence[ArgSpec] = (), params: Callable[..., int] | None = None,
                flops: Callable[..., int] | None = None, doc: str = "",
                inputs: int = 1) -> None:
    """Add a layer that .arch files can use by name, backed by your own `nn.Module` class.

    - `module(in_shape=[...], **args)` builds the layer; `in_shape` has no batch axis.
      For `.py` export the class must be importable (defined in a module, not in `__main__`).
    - `shape(in_shape, **args)` returns the output shape (no batch axis); raise ValueError with a
      message to reject an input, which is then reported at the .arch line that used the layer.
    - `params(in_shape, **args)` / `flops(...)`: counts for constraints; by default `params`
      builds the module once and counts its parameters, and `flops` is 0.
    - `inputs = k` > 1: the layer takes k tensors, given first in a graph body
      (`graph_conv(h, edges, 32)`), and its forward takes them in that order. Then `shape`,
      `params` and `flops` get `in_shapes` (a list of k shapes) instead of `in_shape`, and the
      class is built as `module(in_shapes=[...], **args)`.
    """
    if isinstance(inputs, bool) or not isinstance(inputs, int) or inputs < 1:
        raise ValueError(f"{name}: inputs must be a whole number >= 1, got {inputs!r}")
    register_layer(name, tuple(args), inputs, doc)  # checks the names
    many = inputs > 1
    key = "in_shapes" if many else "in_shape"

    def given(ins: list[TT]) -> Any:
        """What the user's functions get: one shape, or the list of them."""
        return [list(t.shape) for t in ins] if many else list(ins[0].shape)

    def infer(a: dict, ins: list[TT]) -> TT:
        try:
            out = tuple(int(s) for s in shape(given(ins), **a))
        except (ValueError, TypeError) as e:
            raise ShapeProblem(f"{name}: {e}") from None
        if not out or min(out) < 1:
            raise ShapeProblem(f"{name}: its shape rule gave {list(out)}")
        first = ins[0]
        keep = out == first.shape or (len(out) == len(first.shape) and first.layout != "seq")
        return TT(out, first.layout if keep else _LAYOUTS.get(len(out), "tensor"))

    def count_params(a: dict, ins: list[TT], out: TT) -> int:
        if params is not None:
            return int(params(given(ins), **a))
        m = module(**{key: given(ins)}, **a)
        return sum(p.numel() for p in m.parameters())

    def count_flops(a: dict, ins: list[TT], out: TT) -> int:
        return int(flops(given(ins), **a)) if flops is not None else 0

    def lower(a: dict, ins: list[TT], out: TT) -> Lowered:
        kw = "".join(f", {k}={py_literal(v)}" for k, v in a.items())
        alias = f"_{name}"  # build() binds this name to the class itself
        xs = ", ".join(f"{{x[{i}]}}" for i in range(len(ins)))
        return Lowered(f"{{m}}({xs})", {"": f"{alias}({key}={given(ins)}{kw})"},
                       (f"from {module.__module__} import {module.__qualname__} as {alias}",))

    OPS[name] = Op(name, infer, count_params, count_flops, lower, user_class=module)
