"""Fast layer construction: a layer made before is copied from a checked recipe.

A layer's constructor (say `nn.Conv2d(16, 16, 3, padding=1, bias=False)`) spends most of its
time in Python bookkeeping that is the same every time. `layer(ctor, env, key)` makes the module
a constructor text makes, from a recipe where one was recorded and checked against the real
constructor (see the comment at `_Recipe`), so the same seed gives the same weights as the real
constructors and as the exported file's.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["layer", "copies_allowed"]


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


def copies_allowed() -> bool:
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


def layer(ctor: str, env: dict[str, Any], key: tuple[str, torch.dtype] | None) -> nn.Module:
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

