"""The operation library of the PyTorch backend: for every layer name, a shape rule, a parameter
count, a multiply-accumulate count, and a lowering to PyTorch source.

Nothing here imports torch: shape inference, `params` and `flops` are pure arithmetic on the
declared input shape, so constraints can be checked (and diagrams labelled) without building a
model. Shapes never include the batch axis. Every tensor also carries a layout, which says what
its axes mean:

| layout | shape | made by |
| --- | --- | --- |
| `image` | [channels, height, width] | a 3-D input, conv2d, pooling |
| `signal` | [channels, length] | conv1d, 1-D pooling |
| `seq` | [length, features] | a 2-D input, embedding, attention |
| `vector` | [features] | a 1-D input, flatten, global pooling, linear on a vector |
| `tensor` | anything else | inputs of 4 or more axes |

Users add operations with `register_op` (`ops_user.py`, re-exported as
`archdsl.backends.pytorch.register_op`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from archdsl.layers import LAYERS

__all__ = ["TT", "Op", "OPS", "Lowered", "ShapeProblem", "conv_padding", "missing_ops"]


@dataclass(frozen=True, slots=True)
class TT:
    """The static type of a tensor: shape without the batch axis, layout, and element type."""

    shape: tuple[int, ...]
    layout: str
    dtype: str = "float"  # or "long" (token ids, indices)
    bound: int | None = None  # a long input declared `index(N)`: its values are below N

    def __str__(self) -> str:
        return "[" + ", ".join(str(s) for s in self.shape) + "]"

    def describe(self) -> str:
        what = {"image": "an image [channels, height, width]",
                "signal": "a signal [channels, length]",
                "seq": "a sequence [length, features]",
                "vector": "a vector [features]"}.get(self.layout, f"a {len(self.shape)}-D tensor")
        return f"{self} ({what})"


class ShapeProblem(Exception):
    """Raised by shape rules; the compiler turns it into a ShapeError at the layer's span."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Lowered:
    """PyTorch source for one layer.

    `modules` maps a name suffix ("" for the layer's own name) to constructor source such as
    `nn.Conv2d(3, 16, 3, padding=1)`; `expr` is a str.format template for the forward
    expression, with `{m}` (or `{m_SUFFIX}`) for the module attributes and `{x[i]}` for inputs.
    """

    expr: str
    modules: dict[str, str] = field(default_factory=dict)
    imports: tuple[str, ...] = ()  # extra import lines the generated file needs


Infer = Callable[[dict, list[TT]], TT]
Count = Callable[[dict, list[TT], TT], int]
Lower = Callable[[dict, list[TT], TT], Lowered]


@dataclass(frozen=True)
class Op:
    name: str
    infer: Infer
    params: Count
    flops: Count
    lower: Lower
    user_class: Any = None  # the nn.Module class of a user-registered operation


OPS: dict[str, Op] = {}


def _zero(args: dict, ins: list[TT], out: TT) -> int:
    return 0


def _op(name: str, infer: Infer, lower: Lower, params: Count = _zero,
        flops: Count = _zero) -> None:
    OPS[name] = Op(name, infer, params, flops, lower)


def _need(x: TT, layouts: Sequence[str], op: str, hint: str | None = None) -> None:
    if x.layout not in layouts:
        want = {"image": "[channels, height, width]", "signal": "[channels, length]",
                "seq": "[length, features]", "vector": "[features]"}
        wanted = " or ".join(want.get(k, k) for k in layouts)
        raise ShapeProblem(f"{op} expects {wanted}, got {x.describe()}", hint)


# ------------------------------------------------------------------ convolution and pooling
def conv_padding(padding: Any, kernel: int, dilation: int, stride: int) -> int | str:
    """The padding in elements, or "same" (PyTorch's, for even kernels at stride 1)."""
    if padding == "valid":
        return 0
    if padding == "same":
        span = dilation * (kernel - 1)
        if span % 2 == 0:
            return span // 2
        if stride == 1:
            return "same"
        raise ShapeProblem(f"padding = same with an even kernel ({kernel}) needs stride 1",
                           "use an odd kernel, or give the padding as a number")
    if not isinstance(padding, int) or padding < 0:
        raise ShapeProblem(f"padding must be same, valid or a non-negative integer, got {padding}")
    return padding


def _out_len(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _spatial(x: TT, dims: int) -> tuple[int, ...]:
    return x.shape[1:1 + dims]


def _conv_infer(dims: int) -> Infer:
    def infer(a: dict, ins: list[TT]) -> TT:
        x = ins[0]
        name = f"conv{dims}d"
        _need(x, ("image",) if dims == 2 else ("signal", "seq"), name,
              "flatten or pooling came too early?" if len(x.shape) < dims + 1 else None)
        cin, k, s, d = x.shape[0], a["kernel"], a["stride"], a["dilation"]
        groups = _groups(a, cin)
        if min(k, s, d, a["out"], groups) < 1:
            raise ShapeProblem(f"{name}: out, kernel, stride, dilation and groups must be >= 1")
        if cin % groups or a["out"] % groups:
            raise ShapeProblem(f"{name}: groups = {groups} must divide the input channels ({cin}) "
                               f"and the output channels ({a['out']})")
        p = conv_padding(a["padding"], k, d, s)
        out = []
        for n in _spatial(x, dims):
            m = n if p == "same" else _out_len(n, k, s, p, d)
            if m < 1:
                raise ShapeProblem(f"{name}: a kernel of {k} (dilation {d}) does not fit an input "
                                   f"of size {n} with padding {p}", "use padding = same")
            out.append(m)
        return TT((a["out"], *out), "image" if dims == 2 else "signal")
    return infer


def _groups(a: dict, cin: int) -> int:
    g = a.get("groups", 1)
    return cin if g == "depthwise" else g


def _conv_params(a: dict, ins: list[TT], out: TT) -> int:
    cin = ins[0].shape[0]
    k = a["kernel"] ** (len(out.shape) - 1)
    return a["out"] * (cin // _groups(a, cin)) * k + (a["out"] if a["bias"] else 0)


def _conv_flops(a: dict, ins: list[TT], out: TT) -> int:
    cin = ins[0].shape[0]
    k = a["kernel"] ** (len(out.shape) - 1)
    return a["out"] * (cin // _groups(a, cin)) * k * math.prod(out.shape[1:])


def _conv_lower(dims: int) -> Lower:
    def lower(a: dict, ins: list[TT], out: TT) -> Lowered:
        cin = ins[0].shape[0]
        p = conv_padding(a["padding"], a["kernel"], a["dilation"], a["stride"])
        kw = _kwargs(stride=(a["stride"], 1), padding=(repr(p) if p == "same" else p, 0),
                     dilation=(a["dilation"], 1), groups=(_groups(a, cin), 1),
                     bias=(a["bias"], True))
        return Lowered("{m}({x[0]})", {"": f"nn.Conv{dims}d({cin}, {a['out']}, {a['kernel']}{kw})"})
    return lower


def _kwargs(**pairs: tuple[Any, Any]) -> str:
    """`, k=v` for every keyword whose value differs from its PyTorch default."""
    return "".join(f", {k}={v}" for k, (v, default) in pairs.items() if v != default)


def _pool_infer(kind: str) -> Infer:
    def infer(a: dict, ins: list[TT]) -> TT:
        x = ins[0]
        _need(x, ("image", "signal"), f"{kind}_pool")
        k, p = a["kernel"], a["padding"]
        s = a["stride"] or k
        if not isinstance(p, int):
            raise ShapeProblem(f"{kind}_pool: padding must be a number, got {p}")
        if k < 1 or s < 1 or p < 0:
            raise ShapeProblem(f"{kind}_pool: kernel and stride must be >= 1, padding >= 0")
        if p > k // 2:
            raise ShapeProblem(f"{kind}_pool: padding ({p}) must be at most half the kernel ({k})")
        out = []
        for n in x.shape[1:]:
            m = _out_len(n, k, s, p)
            if m < 1:
                raise ShapeProblem(f"{kind}_pool: a window of {k} does not fit an input of size {n}",
                                   "pool less often, or use global_avg_pool")
            out.append(m)
        return TT((x.shape[0], *out), x.layout)
    return infer


def _pool_lower(kind: str) -> Lower:
    def lower(a: dict, ins: list[TT], out: TT) -> Lowered:
        d = len(ins[0].shape) - 1
        k, p = a["kernel"], a["padding"]
        s = a["stride"] or k
        extra = ", count_include_pad=False" if kind == "avg" and p else ""
        return Lowered(f"F.{kind}_pool{d}d({{x[0]}}, {k}, {s}, {p}{extra})")
    return lower


def _global_infer(a: dict, ins: list[TT]) -> TT:
    x = ins[0]
    _need(x, ("image", "signal", "seq"), "global pooling")
    return TT((x.shape[-1],) if x.layout == "seq" else (x.shape[0],), "vector")


def _global_lower(fn: str) -> Lower:
    def lower(a: dict, ins: list[TT], out: TT) -> Lowered:
        x = ins[0]
        dims = "1" if x.layout == "seq" else "2" if x.layout == "signal" else "(2, 3)"
        return Lowered(f"torch.{fn}({{x[0]}}, dim={dims})")
    return lower


_op("conv1d", _conv_infer(1), _conv_lower(1), _conv_params, _conv_flops)
_op("conv2d", _conv_infer(2), _conv_lower(2), _conv_params, _conv_flops)
_op("max_pool", _pool_infer("max"), _pool_lower("max"))
_op("avg_pool", _pool_infer("avg"), _pool_lower("avg"))
_op("global_avg_pool", _global_infer, _global_lower("mean"))
_op("global_max_pool", _global_infer, _global_lower("amax"))


def _rcb_infer(a: dict, ins: list[TT]) -> TT:
    x = ins[0]
    _need(x, ("image",), "relu_conv_bn")
    k, s = a["kernel"], a["stride"]
    out = a["out"] or x.shape[0]
    p = (k - 1) // 2
    return TT((out, *(_out_len(n, k, s, p) for n in x.shape[1:])), "image")


def _rcb_params(a: dict, ins: list[TT], out: TT) -> int:
    return ins[0].shape[0] * out.shape[0] * a["kernel"] ** 2 + 2 * out.shape[0]


def _rcb_flops(a: dict, ins: list[TT], out: TT) -> int:
    return ins[0].shape[0] * out.shape[0] * a["kernel"] ** 2 * math.prod(out.shape[1:])


def _rcb_lower(a: dict, ins: list[TT], out: TT) -> Lowered:
    k, cin, cout = a["kernel"], ins[0].shape[0], out.shape[0]
    kw = _kwargs(stride=(a["stride"], 1), padding=((k - 1) // 2, 0))
    return Lowered("{m}({x[0]})", {"": f"nn.Sequential(nn.ReLU(), nn.Conv2d({cin}, {cout}, {k}"
                                       f"{kw}, bias=False), nn.BatchNorm2d({cout}))"})


_op("relu_conv_bn", _rcb_infer, _rcb_lower, _rcb_params, _rcb_flops)


# ------------------------------------------------------------------ dense layers
def _linear_infer(a: dict, ins: list[TT]) -> TT:
    x = ins[0]
    _need(x, ("vector", "seq"), "linear",
          "flatten or global_avg_pool first" if x.layout == "image" else None)
    if a["out"] < 1:
        raise ShapeProblem(f"linear: out must be >= 1, got {a['out']}")
    return TT((*x.shape[:-1], a["out"]), x.layout)


def _linear_params(a: dict, ins: list[TT], out: TT) -> int:
    return ins[0].shape[-1] * a["out"] + (a["out"] if a["bias"] else 0)


def _linear_flops(a: dict, ins: list[TT], out: TT) -> int:
    return math.prod(ins[0].shape) * a["out"]


def _linear_lower(a: dict, ins: list[TT], out: TT) -> Lowered:
    kw = _kwargs(bias=(a["bias"], True))
    return Lowered("{m}({x[0]})", {"": f"nn.Linear({ins[0].shape[-1]}, {a['out']}{kw})"})


def _embedding_infer(a: dict, ins: list[TT]) -> TT:
    x = ins[0]
    if x.dtype != "long" or len(x.shape) != 1:
        raise ShapeProblem(f"embedding takes a declared input of token ids [length], got "
                           f"{x.describe()}", "apply embedding directly to a 1-D input")
    if a["num"] < 1 or a["dim"] < 1:
        raise ShapeProblem("embedding: num and dim must be >= 1")
    if x.bound is not None and x.bound > a["num"]:
        raise ShapeProblem(f"embedding: its input holds indices up to {x.bound - 1}, but it has "
                           f"{a['num']} rows (num)", f"give it num = {x.bound} or more")
    return TT((x.shape[0], a["dim"]), "seq")


def _heads(op: str, heads: int, x: TT) -> None:
    """The head count divides the features of the sequence x."""
    d = x.shape[-1]
    if heads < 1 or d % heads:
        raise ShapeProblem(f"{op}: {heads} heads do not divide the {d} features",
                           "choose a width that is a multiple of the head count")


def _attention_infer(a: dict, ins: list[TT]) -> TT:
    x = ins[0]
    _need(x, ("seq",), "attention")
    _heads("attention", a["heads"], x)
    return x


def _attention_flops(a: dict, ins: list[TT], out: TT) -> int:
    n, d = ins[0].shape
    return 4 * n * d * d + 2 * n * n * d


def _attention_lower(a: dict, ins: list[TT], out: TT) -> Lowered:
    kw = _kwargs(dropout=(a["dropout"], 0.0))
    return Lowered("{m}({x[0]}, {x[0]}, {x[0]}, need_weights=False)[0]",
                   {"": f"nn.MultiheadAttention({ins[0].shape[-1]}, {a['heads']}{kw}, "
                        "batch_first=True)"})


def _cross_infer(a: dict, ins: list[TT]) -> TT:
    x, mem = ins
    _need(x, ("seq",), "cross_attention", "its first input is the sequence that asks")
    _need(mem, ("seq",), "cross_attention",
          "make an image a sequence with tokens" if mem.layout == "image" else None)
    _heads("cross_attention", a["heads"], x)
    return x


def _cross_params(a: dict, ins: list[TT], out: TT) -> int:
    d, m = ins[0].shape[-1], ins[1].shape[-1]
    return 2 * d * d + 2 * d * m + 4 * d  # query, key, value and output projections, biases


def _cross_flops(a: dict, ins: list[TT], out: TT) -> int:
    (n, d), (k, m) = ins[0].shape, ins[1].shape
    return 2 * n * d * d + 2 * k * m * d + 2 * n * k * d


def _cross_lower(a: dict, ins: list[TT], out: TT) -> Lowered:
    d, m = ins[0].shape[-1], ins[1].shape[-1]
    kw = _kwargs(dropout=(a["dropout"], 0.0), kdim=(m, d), vdim=(m, d))
    return Lowered("{m}({x[0]}, {x[1]}, {x[1]}, need_weights=False)[0]",
                   {"": f"nn.MultiheadAttention({d}, {a['heads']}{kw}, batch_first=True)"})


def _tokens_infer(a: dict, ins: list[TT]) -> TT:
    x = ins[0]
    _need(x, ("image", "signal"), "tokens")
    return TT((math.prod(x.shape[1:]), x.shape[0]), "seq")


_op("linear", _linear_infer, _linear_lower, _linear_params, _linear_flops)
_op("cross_attention", _cross_infer, _cross_lower, _cross_params, _cross_flops)
_op("embedding", _embedding_infer,
    lambda a, ins, out: Lowered("{m}({x[0]})", {"": f"nn.Embedding({a['num']}, {a['dim']})"}),
    lambda a, ins, out: a["num"] * a["dim"])
_op("attention", _attention_infer, _attention_lower,
    lambda a, ins, out: 4 * ins[0].shape[-1] ** 2 + 4 * ins[0].shape[-1], _attention_flops)


# ------------------------------------------------------------------ normalisation
def _bn_infer(a: dict, ins: list[TT]) -> TT:
    _need(ins[0], ("image", "signal", "vector"), "batchnorm",
          "normalise a sequence's features with layernorm" if ins[0].layout == "seq" else None)
    return ins[0]


def _bn_lower(a: dict, ins: list[TT], out: TT) -> Lowered:
    d = 2 if ins[0].layout == "image" else 1
    return Lowered("{m}({x[0]})", {"": f"nn.BatchNorm{d}d({ins[0].shape[0]})"})


def _gn_infer(a: dict, ins: list[TT]) -> TT:
    x = ins[0]
    _need(x, ("image", "signal", "vector"), "groupnorm")
    if a["groups"] < 1 or x.shape[0] % a["groups"]:
        raise ShapeProblem(f"groupnorm: {a['groups']} groups do not divide the "
                           f"{x.shape[0]} channels")
    return x


_op("batchnorm", _bn_infer, _bn_lower, lambda a, ins, out: 2 * ins[0].shape[0])
_op("layernorm", lambda a, ins: ins[0],
    lambda a, ins, out: Lowered("{m}({x[0]})", {"": f"nn.LayerNorm({ins[0].shape[-1]})"}),
    lambda a, ins, out: 2 * ins[0].shape[-1])
_op("groupnorm", _gn_infer,
    lambda a, ins, out: Lowered("{m}({x[0]})",
                                {"": f"nn.GroupNorm({a['groups']}, {ins[0].shape[0]})"}),
    lambda a, ins, out: 2 * ins[0].shape[0])


# ------------------------------------------------------------------ elementwise and reshaping
def _same(a: dict, ins: list[TT]) -> TT:
    return ins[0]


def _fn(template: str) -> Lower:
    return lambda a, ins, out: Lowered(template)


for _name, _tmpl in [("relu", "torch.relu({x[0]})"), ("gelu", "F.gelu({x[0]})"),
                     ("silu", "F.silu({x[0]})"), ("tanh", "torch.tanh({x[0]})"),
                     ("sigmoid", "torch.sigmoid({x[0]})"), ("identity", "{x[0]}"),
                     ("zero", "torch.zeros_like({x[0]})")]:
    _op(_name, _same, _fn(_tmpl))


def _softmax_infer(a: dict, ins: list[TT]) -> TT:
    n = len(ins[0].shape)
    if not -n <= a["dim"] < n:
        raise ShapeProblem(f"softmax: dim {a['dim']} is outside a tensor of {n} axes "
                           f"{ins[0]} (the batch axis is not counted)")
    return ins[0]


def _softmax_lower(a: dict, ins: list[TT], out: TT) -> Lowered:
    d = a["dim"] if a["dim"] < 0 else a["dim"] + 1
    return Lowered(f"torch.softmax({{x[0]}}, dim={d})")


def _dropout_infer(a: dict, ins: list[TT]) -> TT:
    if not 0.0 <= a["p"] < 1.0:
        raise ShapeProblem(f"dropout: p must be in [0, 1), got {a['p']}")
    return ins[0]


_op("softmax", _softmax_infer, _softmax_lower)
_op("tokens", _tokens_infer, _fn("{x[0]}.flatten(2).transpose(1, 2)"))
_op("dropout", _dropout_infer,
    lambda a, ins, out: Lowered("{m}({x[0]})", {"": f"nn.Dropout({a['p']!r})"}))
_op("flatten", lambda a, ins: TT((math.prod(ins[0].shape),), "vector"),
    _fn("torch.flatten({x[0]}, 1)"))


# ------------------------------------------------------------------ merges
def _same_shapes(op: str, ins: list[TT]) -> None:
    for x in ins[1:]:
        if x.shape != ins[0].shape:
            raise ShapeProblem(
                f"{op}: input shapes differ: {', '.join(str(t) for t in ins)}",
                "`residual { ... }` projects its shortcut automatically" if op == "add" else None)


def _projection(body: TT, skip: TT) -> tuple[int, int] | None:
    """(stride, output channels) of the shortcut projection a residual add needs, if any."""
    if body.shape == skip.shape:
        return None
    if body.layout != skip.layout or len(body.shape) != len(skip.shape):
        raise ShapeProblem(f"residual: the body's output {body.describe()} cannot be added to "
                           f"its input {skip.describe()}")
    if body.layout in ("vector", "seq"):
        if body.shape[:-1] != skip.shape[:-1]:
            raise ShapeProblem(f"residual: the body changed the sequence length: {skip} -> {body}")
        return 1, body.shape[-1]
    if body.layout not in ("image", "signal"):
        raise ShapeProblem(f"residual: cannot project {skip} to {body}")
    strides = {s // b if b and s % b == 0 else 0 for s, b in zip(skip.shape[1:], body.shape[1:],
                                                                  strict=True)}
    if len(strides) != 1 or 0 in strides:
        raise ShapeProblem(f"residual: the body's output {body} is not its input {skip} "
                           "downsampled by one whole factor on every axis")
    return strides.pop(), body.shape[0]


def _add_infer(a: dict, ins: list[TT]) -> TT:
    if a.get("residual") and len(ins) == 2:
        _projection(ins[0], ins[1])
        return ins[0]
    _same_shapes("add", ins)
    return ins[0]


def _add_params(a: dict, ins: list[TT], out: TT) -> int:
    proj = a.get("residual") and len(ins) == 2 and _projection(ins[0], ins[1])
    if not proj:
        return 0
    cin, cout = ins[1].shape[0 if ins[1].layout in ("image", "signal") else -1], proj[1]
    return cin * cout + (2 * cout if ins[1].layout in ("image", "signal") else 0)


def _add_flops(a: dict, ins: list[TT], out: TT) -> int:
    proj = a.get("residual") and len(ins) == 2 and _projection(ins[0], ins[1])
    if not proj:
        return 0
    skip = ins[1]
    if skip.layout in ("image", "signal"):
        return skip.shape[0] * math.prod(out.shape)
    return math.prod(skip.shape) * proj[1]


def _add_lower(a: dict, ins: list[TT], out: TT) -> Lowered:
    proj = a.get("residual") and len(ins) == 2 and _projection(ins[0], ins[1])
    if not proj:
        return Lowered(" + ".join(f"{{x[{i}]}}" for i in range(len(ins))))
    stride, cout = proj
    skip = ins[1]
    if skip.layout in ("image", "signal"):
        d = len(skip.shape) - 1
        kw = _kwargs(stride=(stride, 1))
        src = (f"nn.Sequential(nn.Conv{d}d({skip.shape[0]}, {cout}, 1{kw}, bias=False), "
               f"nn.BatchNorm{d}d({cout}))")
    else:
        src = f"nn.Linear({skip.shape[-1]}, {cout}, bias=False)"
    return Lowered("{x[0]} + {m_proj}({x[1]})", {"proj": src})


def _concat_axis(x: TT) -> int:
    """The axis concat joins, counted without the batch axis."""
    return 0 if x.layout in ("image", "signal") else len(x.shape) - 1


def _concat_infer(a: dict, ins: list[TT]) -> TT:
    ax = _concat_axis(ins[0])
    for x in ins[1:]:
        rest = [s for i, s in enumerate(x.shape) if i != ax]
        rest0 = [s for i, s in enumerate(ins[0].shape) if i != ax]
        if x.layout != ins[0].layout or rest != rest0:
            raise ShapeProblem(f"concat: inputs {', '.join(str(t) for t in ins)} differ on an "
                               "axis other than the one joined",
                               "inputs of a concat need the same spatial size")
    shape = list(ins[0].shape)
    shape[ax] = sum(x.shape[ax] for x in ins)
    return TT(tuple(shape), ins[0].layout)


def _concat_lower(a: dict, ins: list[TT], out: TT) -> Lowered:
    xs = ", ".join(f"{{x[{i}]}}" for i in range(len(ins)))
    return Lowered(f"torch.cat([{xs}], dim={_concat_axis(ins[0]) + 1})")


def _multiply_infer(a: dict, ins: list[TT]) -> TT:
    _same_shapes("multiply", ins)
    return ins[0]


_op("add", _add_infer, _add_lower, _add_params, _add_flops)
_op("concat", _concat_infer, _concat_lower)
_op("multiply", _multiply_infer,
    lambda a, ins, out: Lowered(" * ".join(f"{{x[{i}]}}" for i in range(len(ins)))))


def missing_ops() -> list[str]:
    """Layers the language knows that this backend cannot build (none for the built-ins)."""
    return sorted(n for n in LAYERS if n not in OPS)
