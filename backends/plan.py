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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from archdsl.errors import ArchLimitError, ShapeError, Span, amount
from archdsl.graph import Architecture

from .ops import OPS, TT, Lowered, Op, ShapeProblem

__all__ = ["Step", "Plan", "plan", "metrics", "check_size", "MAX_PARAMS"]

# `build` refuses a network with more parameters than this (8 GiB of float32 weights) before
# allocating anything, and `archdsl check` refuses a default architecture above it; pass
# `max_params` to `build` for bigger ones
MAX_PARAMS = 2**31


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


# the public attributes of nn.Module (tests/test_backend_pytorch.py checks the list against
# PyTorch's), and the generated class's own, which a layer's attribute name must not shadow
_RESERVED = frozenset("""T_destination add_module apply bfloat16 buffers call_super_init children
    compile cpu cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train type xpu zero_grad training
    input_shapes""".split())


def _input_type(shape: list[int], long: bool, bound: int | None = None) -> TT:
    """An input's type: integers (`long`, below `bound` where `index(N)` declares it) or
    floats."""
    layout = {1: "vector", 2: "seq", 3: "image"}.get(len(shape), "tensor")
    return TT(tuple(shape), layout, "long" if long else "float", bound)


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
        segs.append(re.sub(r"\W+", "", seg.replace("[", "").replace("]", ""), flags=re.ASCII))
    name = re.sub(r"_+", "_", "_".join(segs)).strip("_") or "layer"
    return name if not name[0].isdigit() else "l_" + name


@functools.lru_cache(maxsize=65536)
def _base_name(path: str, op: str, has_modules: bool) -> str:
    """A layer's module name before it is made unique: its path's, with the operation appended
    when the path's last part is not the operation's own name and the layer has modules."""
    base = _module_name(path)
    if has_modules and not path.rsplit("/", 1)[-1].startswith(op):
        base = f"{base}_{op}"
    return base


# (operation, arguments, input types) -> (the rule, and its output type, params, flops and
# lowering, or the (message, hint) of the ShapeProblem it raised). The built-in shape rules are
# pure functions of these, and the architectures of one space repeat the same layers over and
# over; user-registered operations (arbitrary code) are never cached.
_RULES: dict[tuple, tuple[Op, tuple]] = {}
_RULES_MAX = 1 << 16
_JSON_SCALARS = frozenset({int, float, str, bool, type(None)})


def _json_value(v: Any) -> bool:
    """Whether v is made of JSON values only, whose repr tells any two of them apart (1, 1.0
    and True included)."""
    t = type(v)
    if t in _JSON_SCALARS:
        return True
    if t is list:
        return all(_json_value(x) for x in v)
    if t is dict:
        return all(type(k) is str and _json_value(x) for k, x in v.items())
    return False


def _apply_rule(rule: Op, args: dict[str, Any], ins: list[TT]) -> tuple:
    try:
        t = rule.infer(args, ins)
        return t, rule.params(args, ins, t), rule.flops(args, ins, t), rule.lower(args, ins, t)
    except ShapeProblem as e:
        return e.message, e.hint


def plan(arch: Architecture) -> Plan:
    """Infer every node's output type and the network's parameters and FLOPs, statically.

    A shape mismatch raises `ShapeError` at the .arch span of the layer that caused it.
    """
    cached = arch.cache.get("plan")
    if cached is not None:
        return cached
    steps: dict[int, Step] = {}
    used: Counter[str] = Counter()
    taken: set[str] = set()
    out_node = arch.output()
    for n, d, preds, t, params, flops, lowered in _typed(arch):
        op, args, span = d["op"], d["args"], d.get("span")
        if op == "output":
            out_node = preds[0]
        elif lowered is None:  # an input
            steps[n] = Step(n, op, args, [], t, 0, 0, _module_name(args["name"]), args["name"],
                            span, None)
        else:
            path = d.get("path", op)
            base = name = _base_name(path, op, bool(lowered.modules))
            suffixes = [k for k in lowered.modules if k]
            while _name_taken(name, suffixes, taken):
                used[base] += 1
                name = f"{base}_{used[base]}"
            taken.add(name)
            taken.update(f"{name}_{k}" for k in suffixes)
            steps[n] = Step(n, op, args, preds, t, params, flops, name, d.get("path", ""), span,
                            lowered)
    arch.cache["plan"] = result = Plan(steps, arch.inputs(), out_node, arch.space_file)
    return result


# one node of the graph, in topological order, as `_typed` gives it: (node, its attributes,
# its inputs in port order, its output type, params, flops, lowering); the output node has no
# type (None, 0, 0, None) and an input no lowering
Typed = tuple[int, dict[str, Any], list[int], Any, int, int, Any]


def _typed(arch: Architecture) -> Iterator[Typed]:
    """Every node with its inferred type, parameters and FLOPs: what `plan` and `metrics`
    share (the module names, which only the generated code needs, are `plan`'s). A shape
    mismatch raises `ShapeError` at the layer's span."""
    g = arch.graph
    nodes = g._node  # networkx's own dicts: much cheaper than its views in this loop
    pred = g._pred
    multi = g.is_multigraph()
    types: dict[int, TT] = {}
    rules = _RULES
    scalars = _JSON_SCALARS
    for n in sorted(nodes):
        d = nodes[n]
        op, args = d["op"], d["args"]
        nbrs = pred[n]
        if not nbrs:
            preds = []
        elif multi and len(nbrs) == 1:
            ((u, keys),) = nbrs.items()
            preds = [u] * len(keys)
        else:
            preds = _predecessors(nbrs, multi)
        if op == "output":
            yield n, d, preds, None, 0, 0, None
            continue
        if op == "input":
            long = "index" in args or any(nodes[s]["op"] == "embedding" for s in g._succ[n])
            t = types[n] = _input_type(list(args["shape"]), long, args.get("index"))
            yield n, d, preds, t, 0, 0, None
            continue
        span = d.get("span")
        rule = OPS.get(op)
        if rule is None:
            raise ShapeError(f"the PyTorch backend has no operation '{op}'", span,
                             "register it with archdsl.backends.pytorch.register_op")
        ins = [types[p] for p in preds]
        if op != "embedding" and rule.user_class is None:  # your operations take any input
            for t in ins:
                if t.dtype == "long":
                    raise ShapeError(f"{op}: its input holds integers (indices or token ids), "
                                     "which only an embedding or your own operations take",
                                     span)
        akey = None
        if rule.user_class is None:
            for v in args.values():
                if type(v) not in scalars and not _json_value(v):
                    break
            else:
                akey = repr(args)
        if akey is None:
            result = _apply_rule(rule, args, ins)
        else:
            key = (op, akey, *ins)
            entry = rules.get(key)
            if entry is not None and entry[0] is rule:
                result = entry[1]
            else:
                result = _apply_rule(rule, args, ins)
                if len(rules) >= _RULES_MAX:
                    rules.clear()
                rules[key] = (rule, result)
        if len(result) == 2:
            raise ShapeError(result[0], span, result[1]) from None
        t, params, flops, lowered = result
        types[n] = t
        yield n, d, preds, t, params, flops, lowered


def _name_taken(name: str, suffixes: list[str], taken: set[str]) -> bool:
    """Whether a layer cannot be called `name`: it, or an attribute `name_SUFFIX` of one of its
    other modules, is taken, reserved or a keyword."""
    for n in (name, *(f"{name}_{k}" for k in suffixes)):
        if n in taken or n in _RESERVED or keyword.iskeyword(n):
            return True
    return False


def _predecessors(nbrs: dict, multi: bool) -> list[int]:
    """A node's inputs in port order (`Architecture.predecessors`), from networkx's `_pred`."""
    if not nbrs:
        return []
    if multi:
        if len(nbrs) == 1:
            for u, keys in nbrs.items():
                return [u] * len(keys)
        pairs = sorted((d.get("port", 0), u) for u, keys in nbrs.items() for d in keys.values())
    else:
        pairs = sorted((d.get("port", 0), u) for u, d in nbrs.items())
    return [u for _, u in pairs]


def metrics(arch: Architecture) -> dict[str, Any]:
    """{"params", "flops", "output_shape"} of an architecture, computed statically: what
    `plan` gives, without naming the modules (the architecture's plan, where it has one, or a
    pass of the shape rules, whose figures the architecture keeps)."""
    p = arch.cache.get("plan")
    if p is not None:
        return {"params": p.params, "flops": p.flops, "output_shape": p.output_shape}
    figures = arch.cache.get("metrics")
    if figures is None:
        params = flops = 0
        types: dict[int, TT] = {}
        out_node = arch.output()
        for n, d, preds, t, p_, f_, _ in _typed(arch):
            if d["op"] == "output":
                out_node = preds[0]
            else:
                types[n] = t
                params += p_
                flops += f_
        figures = arch.cache["metrics"] = (params, flops, types[out_node].shape)
    return {"params": figures[0], "flops": figures[1], "output_shape": list(figures[2])}


def check_size(p: Plan, max_params: int = MAX_PARAMS) -> None:
    """ArchLimitError, at the largest layer, when the planned network has more parameters than
    `max_params`."""
    if p.params <= max_params:
        return
    big = max(p.layers(), key=lambda s: s.params)
    raise ArchLimitError(f"the network has {amount(p.params)} parameters, more than the limit of "
                         f"{max_params:,} (this layer has {amount(big.params)})", big.span,
                         "make the layer smaller (archdsl.backends.pytorch.build takes "
                         "max_params for bigger models)")
