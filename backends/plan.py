"""Static shape inference: an architecture graph and its declared input shapes -> a `Plan`.

The plan is the backend's IR: one `Step` per layer with its output type, parameter count,
multiply-accumulates, readable module name and PyTorch lowering, in topological order. It is made
without torch and without running anything, so constraints (`require params <= ...`) and
diagrams can use it; the code generator in `pytorch.py` turns it into an `nn.Module`.
"""

from __future__ import annotations

import functools
import keyword
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from archdsl.errors import ShapeError, Span
from archdsl.graph import Architecture

from .ops import OPS, TT, Lowered, ShapeProblem

__all__ = ["Step", "Plan", "plan", "metrics"]


@dataclass
class Step:
    node: int  # the architecture graph's node
    op: str
    args: dict[str, Any]
    inputs: list[int]  # nodes, in port order
    out: TT
    params: int
    flops: int
    name: str  # module attribute name, stable and readable
    path: str
    span: Span | None
    lowered: Lowered | None  # None for inputs


@dataclass
class Plan:
    steps: dict[int, Step]  # node -> step, in topological (creation) order
    inputs: list[int]
    output: int  # the node whose value the network returns
    source_file: str = ""

    @property
    def params(self) -> int:
        return sum(s.params for s in self.steps.values())

    @property
    def flops(self) -> int:
        return sum(s.flops for s in self.steps.values())

    @property
    def output_shape(self) -> list[int]:
        return list(self.steps[self.output].out.shape)

    def layers(self) -> list[Step]:
        return [s for s in self.steps.values() if s.op != "input"]


# attributes of nn.Module that a layer's name must not shadow
_RESERVED = frozenset("""training forward train eval apply cuda cpu to type float double half
    parameters buffers children modules state_dict load_state_dict zero_grad register_buffer
    register_parameter add_module named_parameters named_buffers named_children named_modules
    requires_grad_ extra_repr input_shapes""".split())


def _input_type(shape: list[int], long: bool) -> TT:
    layout = {1: "vector", 2: "seq", 3: "image"}.get(len(shape), "tensor")
    return TT(tuple(shape), layout, "long" if long else "float")


@functools.lru_cache(maxsize=65536)
def _module_name(path: str) -> str:
    """`network/repeat[1]/conv_bn/conv2d#2` -> `repeat1_conv_bn_conv2d_2` (an identifier)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) > 1 and parts[0] == "network":
        parts = parts[1:]
    segs = []
    for part in parts:
        seg = re.sub(r"#(\d+)", r"_\1", part)
        seg = re.sub(r"(\d)\[(\d+)\]", r"\1_\2", seg)
        segs.append(re.sub(r"\W+", "", seg.replace("[", "").replace("]", "")))
    name = re.sub(r"_+", "_", "_".join(segs)).strip("_") or "layer"
    return name if not name[0].isdigit() else "l_" + name


def plan(arch: Architecture) -> Plan:
    """Infer every node's output type and the network's parameters and FLOPs, statically.

    A shape mismatch raises `ShapeError` at the .arch span of the layer that caused it.
    """
    cached = arch.cache.get("plan")
    if cached is not None:
        return cached
    g = arch.graph
    steps: dict[int, Step] = {}
    used: Counter[str] = Counter()
    taken: set[str] = set()
    inputs = arch.inputs()
    out_node = arch.output()
    all_preds = arch.all_predecessors()
    for n in sorted(g.nodes):
        d = g.nodes[n]
        op, args, span = d["op"], d["args"], d.get("span")
        preds = all_preds[n]
        if op == "output":
            out_node = preds[0]
            continue
        if op == "input":
            long = any(g.nodes[s]["op"] == "embedding" for s in g.successors(n))
            t = _input_type(list(args["shape"]), long)
            steps[n] = Step(n, op, args, [], t, 0, 0, _module_name(args["name"]), args["name"],
                            span, None)
            continue
        rule = OPS.get(op)
        if rule is None:
            raise ShapeError(f"the PyTorch backend has no operation '{op}'", span,
                             "register it with archdsl.backends.pytorch.register_op")
        ins = [steps[p].out for p in preds]
        if op != "embedding" and any(t.dtype == "long" for t in ins):
            raise ShapeError(f"{op}: its input holds token ids, which only an embedding takes",
                             span)
        try:
            t = rule.infer(args, ins)
            params, flops = rule.params(args, ins, t), rule.flops(args, ins, t)
            lowered = rule.lower(args, ins, t)
        except ShapeProblem as e:
            raise ShapeError(e.message, span, e.hint) from None
        path = d.get("path", op)
        base = _module_name(path)
        if not path.rsplit("/", 1)[-1].startswith(op) and lowered.modules:
            base = f"{base}_{op}"
        name = base
        while name in taken or name in _RESERVED or keyword.iskeyword(name):
            used[base] += 1
            name = f"{base}_{used[base]}"
        taken.add(name)
        steps[n] = Step(n, op, args, preds, t, params, flops, name, d.get("path", ""), span,
                        lowered)
    arch.cache["plan"] = result = Plan(steps, inputs, out_node, arch.space_file)
    return result


def metrics(arch: Architecture) -> dict[str, Any]:
    """{"params", "flops", "output_shape"} of an architecture, computed statically."""
    p = plan(arch)
    return {"params": p.params, "flops": p.flops, "output_shape": p.output_shape}
