"""Values as keys: `to_json_key` compares values as the language does (1 == 1.0, true is not 1),
`memo_key` tells values apart as a walk does (for the caches' keys).

May import: archdsl.values only.
"""

from __future__ import annotations

from typing import Any

from ..values import Net, Record, Sym, Tensor

__all__ = ["to_json_key", "memo_key", "Unkeyed"]


def to_json_key(v: Any) -> Any:
    """A hashable, type-aware key for comparing values."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", v)
    if isinstance(v, tuple):
        return ("l", tuple(to_json_key(x) for x in v))
    if isinstance(v, Sym):
        return ("s", v.name)
    if isinstance(v, str):
        return ("t", v)
    if isinstance(v, Net):
        return ("net", v.text(), tuple((k, to_json_key(x)) for k, x in v.env))
    if isinstance(v, Tensor):
        return ("tensor", v.name)
    if isinstance(v, Record):
        return ("r", v.name, tuple((k, to_json_key(x)) for k, x in v.args))
    return ("?", repr(v))


class Unkeyed(Exception):
    """A value that cannot be part of a cache key (a tensor, or something unhashable)."""


def memo_key(v: Any) -> Any:
    """A hashable key that tells values apart as the walk does (Nets by expression and env)."""
    t = type(v)
    if t is Net:
        return ("net", id(v.expr), tuple([(k, memo_key(x)) for k, x in v.env]))
    if t is tuple:
        return ("l", tuple([memo_key(x) for x in v]))
    if t is Tensor:
        raise Unkeyed
    if t is float:
        return ("float", repr(v))  # -0.0 is not 0.0 to a layer's arguments
    try:
        hash(v)
    except TypeError:
        raise Unkeyed from None
    return (t.__name__, v)
