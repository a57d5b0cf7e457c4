"""The one-shot supernet: a whole search space as one weight-sharing `nn.Module`.

A configuration's forward pass runs the stand-alone model `pytorch.build` makes for it (its
generated forward pass over layers kept on the meta device, each made once per position and
constructor and shared by every configuration having it) with its parameters replaced by slices
of one WEIGHT BANK (swapped into torch's own sliceable layers directly, through
`torch.func.functional_call` into any other): for every layer position (the plan's module
name, which comes from the layer's stable path) and parameter, one tensor of the largest shape
any configuration needs. A slice is a prefix on every axis (the
first `out` filters, the first `in` channels), except the kernel axes of convolution weights,
which are centre-cropped (a 3x3 kernel is the centre of the 5x5). So a configuration trains only
the slices its path uses, and `model_for(config)` (the export: the stand-alone model with the
slices copied in) computes exactly what the supernet computes for it.

Buffers (BatchNorm statistics) are never sliced: they are kept per (position, exact shape). The
parameters of layers that cannot be sliced safely (attention's packed projections, your own
operations, any layer outside `SLICEABLE`) are shared only between configurations needing the
same shape. A configuration that needs more than the bank holds grows it (old values kept in the
prefix or centre), logs a line and calls `on_grow(old, new)` so a trainer can update its
optimizer. A float decision that changes a shape is refused at its .arch line.

May import: torch, archdsl's space, errors and values, and this package's pytorch and plan.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archdsl.errors import ArchDSLError, ConfigError, ShapeError
from archdsl.space import Space
from archdsl.values import Decision

from . import pytorch
from .codegen import generate, module_class
from .ops import OPS
from .plan import Plan, check_size, plan
from .supernet_darts import DartsMixin, Relaxed

__all__ = ["Supernet", "SLICEABLE", "space_hash"]

log = logging.getLogger(__name__)

# layers whose parameters are sliced (prefix, centre crop of conv kernels); any other layer's
# parameters are shared only between configurations that need the exact same shape
SLICEABLE: frozenset[type] = frozenset({nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d,
                                        nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.Embedding})
CACHE = 64  # stand-alone models kept (least recently used dropped)
FORMAT = "archdsl-supernet"
VERSION = 1

Key = tuple[str, str]  # (parameter name in the stand-alone model, kind)
Shape = tuple[int, ...]


def space_hash(space: Space) -> str:
    """The identity of a space's source: its text and the bytes of the files it imports."""
    h = hashlib.sha256(space.ir.text.encode())
    for f in space.ir.files[1:]:
        path = Path(f)
        h.update(f"{path.name}:".encode())
        h.update(path.read_bytes() if path.is_file() else b"")
    return h.hexdigest()[:16]


def _kind(layer_cls: type, mod: nn.Module, t: torch.Tensor) -> str:
    """How a parameter shares: the class name of a sliceable layer (grouped convolutions apart),
    or `=CLASS[shape]` for one shared by that exact shape only."""
    cls = type(mod)
    if cls in SLICEABLE and layer_cls.__module__.startswith("torch.nn"):
        if cls in (nn.Conv1d, nn.Conv2d) and mod.groups > 1:
            return cls.__name__ + ("/depthwise" if mod.groups == mod.in_channels else "/groups")
        return cls.__name__
    return f"={cls.__module__}.{cls.__qualname__}{list(t.shape)}"


def _index(full: Sequence[int], need: Sequence[int], key: Key) -> tuple[slice, ...]:
    """The slice of a bank tensor of shape `full` a layer needing `need` uses: a prefix on every
    axis, the centre on the kernel axes of a convolution's weight."""
    centre = 2 if key[1].startswith("Conv") and key[0].endswith(".weight") else len(full)
    out = []
    for i, (f, n) in enumerate(zip(full, need, strict=True)):
        o = (f - n) // 2 if i >= centre else 0
        out.append(slice(o, o + n))
    return tuple(out)


def _seed(base: int, name: str) -> int:
    return (base * 1_000_003 + int(hashlib.sha256(name.encode()).hexdigest()[:12], 16)) % 2**62


@dataclass
class _Entry:
    """A configuration's stand-alone model (on the meta device: the bank holds its tensors) and
    where each of its parameters and buffers lives."""

    plan: Plan
    model: nn.Module
    params: list[tuple[str, Key, Shape]]  # model name, bank key, shape
    buffers: list[tuple[str, str]]  # model name, slot in `stats`
    # where each tensor goes when every layer holding one is a SLICEABLE torch layer (they
    # read their tensors as attributes, so they are swapped in directly); None: functional_call
    direct: list[tuple[dict[str, Any], str, str]] | None = None  # (module's dict, key, name)


class Supernet(DartsMixin, nn.Module):
    """Every architecture of `space` in one module; `forward(*inputs, config=...)` runs one.

    `scan` sampled configurations (with the default and the largest and smallest ones a walk
    finds) size the bank before training, so growth during training is rare. DARTS
    (`relax`, `mixed`, `arch_parameters`, `derive`, `darts_step`) is in supernet_darts.py."""

    def __init__(self, space: Space, *, seed: int = 0, scan: int = 256):
        super().__init__()
        self.space, self.seed = space, seed
        self.space_hash = space_hash(space)
        self.bank = nn.ParameterDict()  # slot -> the largest tensor of one (position, kind)
        self.stats = nn.Module()  # slot -> a buffer of one (position, exact shape)
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)  # device and dtype
        self._slots: dict[Key, str] = {}
        self._stat_slots: dict[tuple[str, Shape], str] = {}
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        # (module name, constructor text) -> the layer on the meta device, its parameters'
        # (name, bank key, shape), its buffers' (name, stats slot) and its `direct` part:
        # shared by every entry having that layer at that position
        self._layers: dict[tuple[str, str], tuple[nn.Module, list, list, list | None]] = {}
        self._rng = random.Random(seed)
        self._sizes: dict[str, tuple[int, dict]] = {}  # json config -> (params, config)
        self.on_grow: Callable[[nn.Parameter | None, nn.Parameter], None] | None = None
        self.last_config: dict[str, Any] | None = None
        self.meta: dict[str, Any] = {}  # saved with the checkpoint (JSON values)
        self.alphas = nn.ParameterDict()  # DARTS: slot -> one decision's architecture weights
        self._alpha_slot: dict[str, str] = {}
        self._relaxed: Relaxed | None = None
        self._mixed: _Entry | None = None
        self._alpha_of: list[tuple[str, str]] = []
        configs = self._walks() + list(space.samples(scan, seed=seed)) if scan > 0 else []
        check_floats(space, [space.default(), *configs[3:6]])
        self._scan(configs)

    # ---- running one configuration -------------------------------------------------------
    def sample(self, rng: random.Random | int | None = None) -> dict[str, Any]:
        """A uniformly sampled configuration (from the supernet's own generator by default)."""
        return self.space.sample(self._rng if rng is None else rng)

    def forward(self, *inputs: torch.Tensor, config: dict[str, Any] | None = None) -> Any:
        """The output of `config`'s architecture (a sampled one when None; `last_config` says
        which) with the bank's weights."""
        if config is None:
            config = self.sample()
        e = self._entry(config)
        self.last_config = config
        e.model.train(self.training)
        tensors = self._tensors(e)
        if e.direct is None:
            return torch.func.functional_call(e.model, tensors, inputs)
        saved = []
        try:  # what functional_call does, without its generality's cost
            for where, key, name in e.direct:
                saved.append((where, key, where[key]))
                where[key] = tensors[name]
            return e.model(*inputs)
        finally:
            for where, key, old in saved:
                where[key] = old

    def model_for(self, config: dict[str, Any]) -> nn.Module:
        """The export: `config`'s stand-alone model (as `pytorch.build` makes it, in training
        mode) holding copies of the slices and statistics the supernet uses for it."""
        e = self._entry(config)
        model = _built(e.plan).to(self._anchor.device)
        tensors = self._tensors(e)
        with torch.no_grad():
            for name, t in [*model.named_parameters(), *model.named_buffers()]:
                t.copy_(tensors[name])
        return model.train()

    def recalibrate(self, config: dict[str, Any], batches: Iterable[Any]) -> int:
        """Reset the BatchNorm statistics `config` uses and estimate them again (an exact mean
        over the batches) from `batches` in training mode, without gradients. A batch is an
        input tensor or a tuple whose first items are the inputs (labels after them are
        ignored). Returns the number of batches run."""
        e = self._entry(config)
        bns = [(n, m) for n, m in e.model.named_modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        slots = dict(e.buffers)
        momenta = [m.momentum for _, m in bns]
        for n, m in bns:
            getattr(self.stats, slots[f"{n}.running_mean"]).zero_()
            getattr(self.stats, slots[f"{n}.running_var"]).fill_(1)
            getattr(self.stats, slots[f"{n}.num_batches_tracked"]).zero_()
            m.momentum = None  # a cumulative average
        was, count = self.training, 0
        ins = len(e.plan.inputs)
        try:
            self.train()
            with torch.no_grad():
                for batch in batches:
                    xs = tuple(batch[:ins]) if isinstance(batch, tuple | list) else (batch,)
                    self(*(x.to(self._anchor.device) for x in xs), config=config)
                    count += 1
        finally:
            for (_, m), mom in zip(bns, momenta, strict=True):
                m.momentum = mom
            self.train(was)
        return count

    def bank_parameters(self) -> list[nn.Parameter]:
        """The shared weights (what SPOS trains)."""
        return list(self.bank.values())

    def extremes(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(largest, smallest) configuration by parameters, among those scanned and the walks
        taking every decision's largest or smallest option (the sandwich rule's ends)."""
        if not self._sizes:
            for c in self._walks():
                self._size(c)
        ranked = sorted(self._sizes.values(), key=lambda s: s[0])
        return ranked[-1][1], ranked[0][1]

    # ---- checkpoints ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the bank, the statistics, the space's hash and `meta` to `path`."""
        path = Path(path)
        ckpt = {"format": FORMAT, "version": VERSION, "space_hash": self.space_hash,
                "seed": self.seed, "meta": self.meta,
                "params": [[n, k, s] for (n, k), s in self._slots.items()],
                "stats": [[n, list(shape), s] for (n, shape), s in self._stat_slots.items()],
                "darts": None if self._relaxed is None else {
                    "base": self._relaxed.base, "alphas": [[n, s] for n, s in
                                                           self._alpha_slot.items()]},
                "state": {k: v.detach().cpu() for k, v in self.state_dict().items()}}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(ckpt, path)
        except OSError as e:
            raise ArchDSLError(f"cannot write {path}: {e.strerror or e}") from None
        return path

    @classmethod
    def load(cls, path: str | Path, space: Space) -> Supernet:
        """A supernet saved by `save`, for `space` (the space it was trained on: its hash is
        checked). The file is read with `torch.load(weights_only=True)`: no code runs."""
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except OSError as e:
            raise ArchDSLError(f"cannot read the checkpoint {path}: {e.strerror or e}") from None
        except Exception as e:  # noqa: BLE001 - torch's unpickler raises many kinds
            # (torch's message itself advises loading with weights_only=False: not repeated)
            raise ArchDSLError(f"{path} is not a supernet checkpoint (torch cannot read it: "
                               f"{type(e).__name__})",
                               hint="give the file `archdsl supernet -o` wrote") from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            raise ArchDSLError(f"{path} is not a supernet checkpoint",
                               hint="give the file `archdsl supernet -o` wrote")
        if ckpt.get("version") != VERSION:
            raise ArchDSLError(f"{path}: supernet checkpoint version {ckpt.get('version')!r}, "
                               f"this archdsl reads version {VERSION}")
        mine = space_hash(space)
        if ckpt.get("space_hash") != mine:
            raise ArchDSLError(f"{path} was trained on another space (hash "
                               f"{ckpt.get('space_hash')}, {Path(space.file).name} has {mine})",
                               hint="give the .arch file the supernet was trained on, unchanged")
        try:
            net = cls(space, seed=int(ckpt["seed"]), scan=0)
            net._restore(ckpt)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ArchDSLError(f"{path}: a damaged supernet checkpoint ({type(e).__name__}: "
                               f"{e})") from None
        return net

    def _restore(self, ckpt: dict[str, Any]) -> None:
        state, meta = ckpt["state"], ckpt["meta"]
        if not isinstance(state, dict) or not isinstance(meta, dict):
            raise TypeError("state and meta must be dictionaries")
        if not isinstance(meta.get("data", ""), str):
            raise TypeError("meta's data must name the data")
        for name, kind, slot in ckpt["params"]:
            t = state[f"bank.{slot}"]
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise TypeError(f"bank.{slot} is not a float tensor")
            self.bank[str(slot)] = nn.Parameter(t)
            self._slots[(str(name), str(kind))] = str(slot)
        for name, shape, slot in ckpt["stats"]:
            t = state[f"stats.{slot}"]
            if not isinstance(t, torch.Tensor) or list(t.shape) != list(shape):
                raise TypeError(f"stats.{slot} is not a tensor of shape {shape}")
            self.stats.register_buffer(str(slot), t)
            self._stat_slots[(str(name), tuple(int(s) for s in shape))] = str(slot)
        self.meta = meta
        darts = ckpt.get("darts")
        if darts is not None:
            self.relax(darts["base"])
            for name, slot in darts["alphas"]:
                t = state[f"alphas.{slot}"]
                mine = self.alphas[self._alpha_slot[str(name)]]
                if not isinstance(t, torch.Tensor) or t.shape != mine.shape:
                    raise TypeError(f"alphas.{slot} is not a tensor of shape {list(mine.shape)}")
                with torch.no_grad():
                    mine.copy_(t)
        rest = [k for k in state if not k.startswith(("bank.", "stats.", "alphas."))]
        if rest:  # save() writes nothing else
            raise TypeError(f"unknown entries {rest[:3]}")

    # ---- the bank -------------------------------------------------------------------------
    def _entry(self, config: dict[str, Any]) -> _Entry:
        """The configuration's model and bank slots (kept: least recently used dropped)."""
        if not isinstance(config, dict):
            raise ConfigError("a configuration is a JSON object mapping decision names to values")
        try:
            key = json.dumps(config, sort_keys=True)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"a configuration holds JSON values only ({e})") from None
        e = self._cache.get(key)
        if e is not None:
            self._cache.move_to_end(key)
            return e
        p = plan(self.space.materialize(config))
        e = self._cache[key] = self._shared_entry(p)
        if len(self._cache) > CACHE:
            self._cache.popitem(last=False)
        return e

    def _entry_for(self, r: Relaxed) -> _Entry:
        """The mixed graph's model; its layers draw from the bank under the module names they
        have in the configuration they came from (the mixing modules hold no bank weights)."""
        p = plan(r.arch)
        rename: dict[str, str] = {}
        for s in p.layers():
            assert s.lowered is not None
            if s.node in r.mixes:
                self._alpha_of.append((f"{s.name}.alpha", r.mixes[s.node]))
                continue
            a, n = r.origin[s.node]
            o = plan(a).steps[n]
            for k in s.lowered.modules:
                rename[f"{s.name}_{k}" if k else s.name] = f"{o.name}_{k}" if k else o.name
        model = _built(p)
        params: list[tuple[str, Key, Shape]] = []
        for attr, layer in model.named_children():
            if attr in rename:  # not: the mixing modules
                params += [(attr + n[len(rename[attr]):], k, shape)
                           for n, k, shape in self._admit(rename[attr], layer)]
        buffers = []
        for n, b in model.named_buffers():
            attr, _, rest = n.partition(".")
            buffers.append((n, self._stat(f"{rename.get(attr, attr)}.{rest}", b)))
        return _Entry(p, model.to("meta"), params, buffers)

    def _shared_entry(self, p: Plan) -> _Entry:
        """A configuration's model assembled from layers made once per (module name,
        constructor text), their bank slots found once: the generated forward pass (one class
        per distinct pass) over meta-device layers shared between entries (each forward swaps
        its own tensors in). A network too large to build is refused as `pytorch.build`
        refuses it, before any layer is made."""
        check_size(p)
        code = generate(p, comments=False)
        model = module_class("Net", code.signature, tuple(stmt for stmt, _ in code.body))([])
        params: list[tuple[str, Key, Shape]] = []
        buffers: list[tuple[str, str]] = []
        direct: list[tuple[dict[str, Any], str, str]] | None = []
        for (attr, ctor, _), owner in zip(code.modules, code.owners, strict=True):
            got = self._layers.get((attr, ctor))
            if got is None:
                layer = _layer(ctor, owner.op, self.seed)
                admitted = self._admit(attr, layer)  # from its real tensors, then to meta
                stats = [(f"{attr}.{n}", self._stat(f"{attr}.{n}", b))
                         for n, b in layer.named_buffers()]
                layer.to("meta")
                got = (layer, admitted, stats,
                       _direct(layer, attr, [n for n, _, _ in admitted] + [n for n, _ in stats]))
                self._layers[(attr, ctor)] = got
            model._modules[attr] = got[0]
            params += got[1]
            buffers += got[2]
            direct = None if direct is None or got[3] is None else direct + got[3]
        return _Entry(p, model, params, buffers, direct)

    def _tensors(self, e: _Entry) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, key, shape in e.params:
            full = self.bank[self._slots[key]]
            out[name] = full if full.shape == shape else full[_index(full.shape, shape, key)]
        for name, slot in e.buffers:
            out[name] = getattr(self.stats, slot)
        return out

    def _admit(self, attr: str, layer: nn.Module) -> list[tuple[str, Key, Shape]]:
        """Bank slots for a layer's parameters (`attr` is its module name), made or grown."""
        out = []
        for sub, mod in layer.named_modules():
            own = [(n, t) for n, t in mod._parameters.items() if t is not None]
            if not own:
                continue
            prefix = f"{attr}.{sub}." if sub else f"{attr}."
            keys = [(prefix + n, _kind(type(layer), mod, t)) for n, t in own]
            need = {k: tuple(t.shape) for k, (_, t) in zip(keys, own, strict=True)}
            grow = [k for k in keys if k not in self._slots or any(
                a < b for a, b in zip(self.bank[self._slots[k]].shape, need[k], strict=True))]
            if grow:
                self._grow(mod, keys, need, grow, [t for _, t in own])
            out += [(k[0], k, need[k]) for k in keys]
        return out

    def _grow(self, mod: nn.Module, keys: list[Key], need: dict[Key, Shape], grow: list[Key],
              own: list[torch.Tensor]) -> None:
        """New bank tensors for `grow` (keys of one module `mod`): the layer's own
        initialisation at the new shape, the old values copied into their slice."""
        if keys[0][1].startswith("="):  # exact shapes: the layer's own values
            fresh = {k: t.detach() for k, t in zip(keys, own, strict=True)}
        else:
            shapes = {k: tuple(max(a, b) for a, b in zip(self.bank[self._slots[k]].shape, need[k],
                                                          strict=True))
                      if k in self._slots else need[k] for k in keys}
            fresh = self._fresh(mod, keys, shapes)
        for k in grow:
            old = self.bank[self._slots[k]] if k in self._slots else None
            new = fresh[k].to(self._anchor.device, copy=True)
            if old is not None:
                with torch.no_grad():
                    new[_index(new.shape, old.shape, k)] = old
                log.info("supernet: %s grows from %s to %s", k[0], list(old.shape),
                         list(new.shape))
            param = nn.Parameter(new, requires_grad=True)
            slot = self._slots.setdefault(k, f"p{len(self._slots)}")
            self.bank[slot] = param
            if self.on_grow is not None:
                self.on_grow(old, param)

    def _fresh(self, mod: nn.Module, keys: list[Key], shapes: dict[Key, Shape]
               ) -> dict[Key, torch.Tensor]:
        """The tensors `mod`'s own reset_parameters() draws at `shapes` (a sliceable layer's
        initialisation reads only its tensors), from a seed of the position."""
        c = object.__new__(type(mod))
        vars(c).update(vars(mod))
        names = [n for n, t in mod._parameters.items() if t is not None]
        key_of = dict(zip(names, keys, strict=True))
        c._parameters = {n: None if n not in key_of else
                         nn.Parameter(torch.empty(shapes[key_of[n]], dtype=self._anchor.dtype))
                         for n in mod._parameters}
        c._buffers = {n: None if b is None else torch.empty(b.shape, dtype=b.dtype)
                      for n, b in mod._buffers.items()}
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(_seed(self.seed, keys[0][0]))
            c.reset_parameters()
        return {k: c._parameters[n].detach() for n, k in zip(names, keys, strict=True)}

    def _stat(self, name: str, b: torch.Tensor) -> str:
        """The slot of buffer `name` at `b`'s exact shape (made from `b`'s value if new)."""
        key = (name, tuple(b.shape))
        slot = self._stat_slots.get(key)
        if slot is None:
            slot = self._stat_slots[key] = f"b{len(self._stat_slots)}"
            self.stats.register_buffer(slot, b.detach().to(self._anchor.device, copy=True))
        return slot

    # ---- sizing before training -------------------------------------------------------------
    def _walks(self) -> list[dict[str, Any]]:
        """The default configuration and the walks taking each decision's largest and its
        smallest option (where a valid architecture follows)."""
        out = [self.space.default()]
        for largest in (True, False):
            try:
                out.append(self.space.choose(_extreme(largest)))
            except ArchDSLError:
                out.append(out[0])
        return out

    def _size(self, config: dict[str, Any]) -> Plan | None:
        try:
            p = plan(self.space.materialize(config))
        except ArchDSLError:  # shapes that do not fit: not a network to size the bank for
            return None
        self._sizes.setdefault(json.dumps(config, sort_keys=True), (p.params, config))
        return p

    def _scan(self, configs: list[dict[str, Any]]) -> None:
        """Size the bank for `configs` from their plans, building each distinct layer once."""
        layers: dict[str, nn.Module] = {}
        for config in configs:
            p = self._size(config)
            if p is None:
                continue
            for s in p.layers():
                assert s.lowered is not None
                for suffix, ctor in s.lowered.modules.items():
                    layer = layers.get(ctor)
                    if layer is None:
                        layer = layers[ctor] = _layer(ctor, s.op, self.seed)
                    self._admit(f"{s.name}_{suffix}" if suffix else s.name, layer)


def _direct(layer: nn.Module, attr: str, names: list[str]
            ) -> list[tuple[dict[str, Any], str, str]] | None:
    """For each tensor name (`attr.` and its name in the layer), the dictionary of the module
    holding it (parameters or buffers) and its key there; None when such a module is not a
    SLICEABLE layer."""
    out = []
    for name in names:
        path, _, key = name[len(attr) + 1:].rpartition(".")
        mod = layer.get_submodule(path)
        if type(mod) not in SLICEABLE:
            return None
        out.append((mod._parameters if key in mod._parameters else mod._buffers, key, name))
    return out


def _built(p: Plan) -> nn.Module:
    """`p`'s stand-alone model, for its structure and shapes only (its drawn weights are never
    used: the bank holds the tensors), without touching torch's random state. Saving and
    restoring the CPU generator costs far less than a seeded build (whose manual_seed also
    wakes every accelerator's lazy seeding)."""
    state = torch.get_rng_state()
    try:
        return pytorch.build(p)
    finally:
        torch.set_rng_state(state)


def _layer(ctor: str, op: str, seed: int) -> nn.Module:
    """The module a layer's constructor text makes (as `pytorch.build` binds its names)."""
    env = {"torch": torch, "nn": nn, "F": torch.nn.functional}
    user = OPS[op].user_class
    if user is not None:
        env[f"_{op}"] = user
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(_seed(seed, ctor))  # the CPU's only
        return eval(ctor, env)  # noqa: S307 - the backend's own generated constructor


def _extreme(largest: bool) -> Callable[[Decision, list[int] | None], Any]:
    """A `Space.choose` policy: every decision's largest (or smallest) option where options
    are numbers, else its last (or first) option; a continuous decision's bound."""
    def policy(d: Decision, weights: list[int] | None) -> Any:
        if d.options is None:
            return d.hi if largest else d.lo
        ok = [i for i in range(len(d.options)) if weights is None or weights[i] > 0] or [0]
        opts = d.options
        if isinstance(opts, range | list) and all(
                isinstance(opts[i], int | float) and not isinstance(opts[i], bool) for i in ok):
            return (max if largest else min)(ok, key=lambda i: opts[i])
        return ok[-1] if largest else ok[0]
    return policy


def _signature(space: Space, config: dict[str, Any]) -> Any:
    """Every layer's module name, operation and output shape, or the error building it."""
    try:
        p = plan(space.materialize(config))
    except ArchDSLError as e:
        return e.message
    return [(s.name, s.op, s.out.shape, s.params) for s in p.layers()]


def check_floats(space: Space, configs: list[dict[str, Any]]) -> None:
    """ShapeError at its .arch line for a continuous decision whose value changes a layer's
    shape (its bounds give different layers) in one of `configs`; a dropout rate is fine."""
    done: set[str] = set()
    for config in configs:
        for d in space.decisions(config):
            if not d.continuous or d.name in done:
                continue
            done.add(d.name)
            lo, hi = (_signature(space, {**config, d.name: v}) for v in (d.lo, d.hi))
            if lo != hi:
                raise ShapeError(f"'{d.name}' is a continuous decision that changes the "
                                 "network's shapes: a supernet cannot share weights over "
                                 "infinitely many shapes", d.span,
                                 "give it a step (float(lo .. hi, step = s)) or make it a choice")
