"""The layer vocabulary the language knows: names, argument signatures, and input arity.

This is what the language needs to check a call (`conv2d(16, kernel = 3)`) without knowing
anything about tensors. Backends attach shape rules and modules to the same names; users add their
own layers with `register_layer`.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["ArgSpec", "LayerSig", "LAYERS", "register_layer", "check_arg_value", "Sym"]


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # the grammar's NAME


@dataclass(frozen=True, slots=True)
class Sym:
    """A bare identifier used as a value (`same`, `relu`, `adam`)."""

    name: str

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ArgSpec:
    name: str
    type: str  # int, float, bool, pad, int?, shape, any, or `sym:a|b|c`
    default: Any = None
    required: bool = False

    @property
    def needed(self) -> bool:
        """Whether a use of the layer must give this argument: it is required, or it has no
        default and `none` is no value of its type."""
        return self.required or (self.default is None and self.type not in ("int?", "any"))


def _lit(v: Any) -> str:
    """A default value as .arch writes it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


@dataclass(frozen=True)
class LayerSig:
    name: str
    args: tuple[ArgSpec, ...] = ()
    inputs: int | None = 1  # None: any number >= 2 (merges)
    doc: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def arg(self, name: str) -> ArgSpec | None:
        for a in self.args:
            if a.name == name:
                return a
        return None

    def signature(self) -> str:
        """How the layer is called, as .arch writes it: `linear(out, bias = true)`."""
        parts = [a.name if a.needed else f"{a.name} = {_lit(a.default)}" for a in self.args]
        return f"{self.name}({', '.join(parts)})"


def _a(name: str, type: str, default: Any = None, required: bool = False) -> ArgSpec:
    return ArgSpec(name, type, default, required)


_CONV = (
    _a("out", "int", required=True),
    _a("kernel", "int", 3),
    _a("stride", "int", 1),
    _a("padding", "pad", Sym("same")),
    _a("dilation", "int", 1),
    _a("groups", "groups", 1),  # or `depthwise`: one group per input channel
    _a("bias", "bool", True),
)
_POOL = (_a("kernel", "int", 2), _a("stride", "int?", None), _a("padding", "pad", 0))

LAYERS: dict[str, LayerSig] = {}


def register_layer(name: str, args: tuple[ArgSpec, ...] | list[ArgSpec] = (),
                   inputs: int | None = 1, doc: str = "", **extra: Any) -> LayerSig:
    """Make `name` usable in .arch files. Backends add shape rules and modules via `extra`.

    An argument without a default whose type has no `none` is made required. The name and the
    arguments' names must be .arch names that are no Python keyword: they become names in
    generated Python (`ValueError` otherwise)."""
    for n in (name, *(a.name for a in args)):
        if not _NAME.fullmatch(n) or keyword.iskeyword(n):
            what = "layer name" if n == name else f"{name}: argument name"
            raise ValueError(f"{what} {n!r} is not a .arch name ([A-Za-z_][A-Za-z0-9_]*, not a "
                             "Python keyword)")
    # an argument without a usable default is required: the checks of a call then ask for it
    args = tuple(replace(a, required=True) if a.needed else a for a in args)
    sig = LayerSig(name, args, inputs, doc, dict(extra))
    LAYERS[name] = sig
    return sig


for _name, _args, _doc in [
    ("conv1d", _CONV, "1-D convolution"),
    ("conv2d", _CONV, "2-D convolution"),
    ("linear", (_a("out", "int", required=True), _a("bias", "bool", True)), "fully connected"),
    ("batchnorm", (), "batch normalisation"),
    ("layernorm", (), "layer normalisation over the last axis"),
    ("groupnorm", (_a("groups", "int", 8),), "group normalisation"),
    ("relu", (), ""), ("gelu", (), ""), ("silu", (), ""), ("tanh", (), ""), ("sigmoid", (), ""),
    ("softmax", (_a("dim", "int", -1),), "softmax over an axis"),
    ("max_pool", _POOL, "max pooling"),
    ("avg_pool", _POOL, "average pooling"),
    ("global_avg_pool", (), "mean over all spatial axes"),
    ("global_max_pool", (), "max over all spatial axes"),
    ("dropout", (_a("p", "float", 0.5),), "dropout"),
    ("flatten", (), "flatten all but the batch axis"),
    ("identity", (), "pass the input through"),
    ("zero", (), "a zero tensor of the input's shape"),
    ("embedding", (_a("num", "int", required=True), _a("dim", "int", required=True)), ""),
    ("attention", (_a("heads", "int", required=True), _a("dropout", "float", 0.0)),
     "multi-head self-attention over [sequence, features]"),
    ("relu_conv_bn", (_a("kernel", "int", required=True), _a("out", "int?", None),
                      _a("stride", "int", 1)), "NAS-Bench-201's ReLU -> conv -> batchnorm"),
]:
    register_layer(_name, _args, 1, _doc)

register_layer("cross_attention", (_a("heads", "int", required=True), _a("dropout", "float", 0.0)),
               2, "multi-head attention from a sequence [Lq, F] to a memory [Lk, M] -> [Lq, F]")
register_layer("tokens", (), 1, "an image [C, H, W] as a sequence [H * W, C] (a signal "
               "[C, L] as [L, C])")

for _name in ("add", "concat", "multiply"):
    register_layer(_name, (), None, "merge of several tensors")

MERGES = frozenset({"add", "concat", "multiply"})

_TYPE_NAMES = {
    "int": "an integer", "float": "a number", "bool": "true or false", "int?": "an integer or none",
    "pad": "an integer, same or valid", "groups": "an integer or depthwise", "any": "a value",
}


def type_name(t: str) -> str:
    if t.startswith("sym:"):
        return "one of " + ", ".join(t[4:].split("|"))
    return _TYPE_NAMES.get(t, t)


def check_arg_value(t: str, v: Any) -> Any:
    """Return the value converted to type `t`, or raise TypeError with what was expected."""
    if t == "any":
        return v
    if t == "int":
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    elif t == "int?":
        if v is None or v == Sym("none"):
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    elif t == "float":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    elif t == "bool":
        if isinstance(v, bool):
            return v
    elif t == "pad":
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if v in (Sym("same"), Sym("valid")):
            return v
    elif t == "groups":
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if v == Sym("depthwise"):
            return v
    elif t.startswith("sym:"):
        if isinstance(v, Sym) and v.name in t[4:].split("|"):
            return v
    raise TypeError(f"expected {type_name(t)}")
