"""DARTS relaxation for the supernet: one graph in which every open discrete decision of a base
configuration is a softmax-weighted sum of its options' outputs.

For each decision D and each of its options, the base configuration with D changed to that
option is materialized; its layer graph is merged with the base's (a node is the same node when
its path, operation, arguments and occurrence agree). Where a consumer reads another tensor
under the option, a `darts_mix` node sums the options' tensors with weights softmax(alpha_D),
so every option runs on the same input (DARTS's mixed operation; an input choice mixes the
inputs; an optional mixes the body with the identity). The options' outputs must have one shape:
otherwise a ShapeError at the decision's .arch line. Decisions the base does not reach (inside
an untaken branch or a deeper repeat copy) stay at their defaults; continuous ones at the base
value; a decision whose options change nothing the base computes (the operation of a node the
base leaves unconnected) gets no weight (`Relaxed.fixed()`); an option that breaks a constraint
as the base's one change is left out of its decision's weights. The merged graph's layers keep their stand-alone module names (`origin`), so the mixed
network draws its weights from the same bank as single paths.

May import: torch, networkx, archdsl's space, graph, errors and values, and .ops and .plan.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch
from torch import nn

from archdsl.errors import ArchDSLError, ArchLimitError, ConfigError, ConstraintError, ShapeError
from archdsl.graph import Architecture
from archdsl.space import Space
from archdsl.values import Decision

from .ops import OPS, TT, Lowered, Op, ShapeProblem
from .plan import plan

__all__ = ["Mix", "Relaxed", "relax", "MIX", "MAX_OPTIONS"]

MIX = "darts_mix"  # the operation of a mixing node (not a layer of the language)
MAX_OPTIONS = 64  # a decision with more options than this is not relaxed (an error)
Config = dict[str, Any]


class Mix(nn.Module):
    """sum_i softmax(alpha)_i * x_i; the supernet supplies `alpha` (one per decision)."""

    def __init__(self, in_shapes: list[list[int]], n: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(n))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.alpha, 0)
        out = w[0] * xs[0]
        for i in range(1, len(xs)):
            out = out + w[i] * xs[i]
        return out


def _mix_infer(a: dict, ins: list[TT]) -> TT:
    if any(t.shape != ins[0].shape or t.dtype != ins[0].dtype for t in ins[1:]):
        raise ShapeProblem(f"--strategy darts: the options of '{a['decision']}' give tensors of "
                           f"different shapes ({', '.join(str(t) for t in ins)}), and a "
                           "softmax mixes tensors of one shape only",
                           "train this space with --strategy spos, which shares weights "
                           "across shapes")
    return ins[0]


def _mix_lower(a: dict, ins: list[TT], out: TT) -> Lowered:
    xs = ", ".join(f"{{x[{i}]}}" for i in range(len(ins)))
    return Lowered(f"{{m}}({xs})", {"": f"_{MIX}(in_shapes={[list(t.shape) for t in ins]}, "
                                        f"n={len(ins)})"},
                   (f"from {Mix.__module__} import Mix as _{MIX}",))


MIX_OP = Op(MIX, _mix_infer, lambda a, ins, out: len(ins), lambda a, ins, out: 0, _mix_lower,
            user_class=Mix)
OPS[MIX] = MIX_OP  # and again by relax(), should OPS have been restored without it since


@dataclass
class Relaxed:
    """The mixed graph of a base configuration, and what its nodes stand for."""

    arch: Architecture
    base: Config
    options: dict[str, list[int]]  # decision -> the option indices its alpha weighs, in order
    origin: dict[int, tuple[Architecture, int]] = field(default_factory=dict)  # layer node
    mixes: dict[int, str] = field(default_factory=dict)  # mixing node -> decision name

    def fixed(self) -> list[str]:
        """Open decisions that got no weight: their options change nothing the base's network
        computes (say, the operation of a node the base leaves unconnected); they keep the
        base's value."""
        mixed = set(self.mixes.values())
        return [name for name in self.options if name not in mixed]


def _keys(arch: Architecture) -> dict[int, tuple]:
    """Each node's identity across configurations: path, operation, arguments, occurrence."""
    seen: dict[tuple, int] = {}
    out = {}
    for n, d in sorted(arch.graph.nodes(data=True)):
        base = (d.get("path", ""), d["op"], json.dumps(d["args"], sort_keys=True, default=str))
        seen[base] = seen.get(base, -1) + 1
        out[n] = (*base, seen[base])
    return out


def _policy(base: Config, prefs: dict[str, list[int]]
            ) -> Callable[[Decision, list[int] | None], Any]:
    """Space.choose policy: for a decision in `prefs`, its first option there that leads to
    an architecture; else the base's value; else the default."""
    def pick(d: Decision, weights: list[int] | None) -> Any:
        if d.name in prefs:
            ok = [i for i in prefs[d.name] if weights is None or weights[i] > 0]
            return ok[0] if ok else prefs[d.name][0]
        if d.name in base:
            try:
                return d.value_of_json(base[d.name]) if d.continuous else \
                    d.index_of_json(base[d.name])
            except ConfigError:  # not an option here (its options follow a changed one)
                pass
        if d.continuous:
            return d.default if d.default is not None else (d.lo + d.hi) / 2
        i = d.default_index()
        if weights is not None and weights[i] == 0:
            i = next((j for j, w in enumerate(weights) if w > 0), i)
        return i
    return pick


def choose(space: Space, base: Config, prefs: dict[str, list[int]]) -> Config:
    """The configuration with the options `prefs` prefers, the rest as in `base` (or
    default)."""
    return space.choose(_policy(base, prefs))


def relax(space: Space, base: Config) -> Relaxed:
    """The mixed graph of `base` (see the module doc)."""
    OPS.setdefault(MIX, MIX_OP)
    a0 = space.materialize(base)
    decisions = [d for d in space.decisions(base) if not d.continuous and d.size > 1]
    variants: list[tuple[Decision, int, Architecture]] = []
    options: dict[str, list[int]] = {}
    for d in decisions:
        if d.size > MAX_OPTIONS:
            raise ArchLimitError(f"--strategy darts: '{d.name}' has {d.size:,} options; a "
                                 f"softmax over more than {MAX_OPTIONS} is not relaxed", d.span,
                                 "give it fewer options, or use --strategy spos")
        mine = d.index_of_json(base[d.name])
        options[d.name] = []
        for i in range(d.size):
            if i == mine:
                options[d.name].append(i)
                continue
            try:
                a = space.materialize(choose(space, base, {d.name: [i]}))
                plan(a)
            except (ConstraintError, ShapeError):  # no valid architecture follows: left out
                continue
            variants.append((d, i, a))
            options[d.name].append(i)
    return _merge(a0, base, variants, options, decisions)


def _merge(a0: Architecture, base: Config, variants: list[tuple[Decision, int, Architecture]],
           options: dict[str, list[int]], decisions: list[Decision]) -> Relaxed:
    k0 = _keys(a0)
    where: dict[tuple, tuple[Architecture, int]] = {k: (a0, n) for n, k in k0.items()}
    ports: dict[tuple, list[tuple]] = {k: [k0[u] for u in a0.predecessors(n)]
                                       for n, k in k0.items()}
    base_keys = set(where)
    subst: dict[tuple, dict[str, dict[int, tuple]]] = {}  # a base tensor an option replaces
    sel: dict[tuple[tuple, int], dict[str, dict[int, tuple]]] = {}  # a port reading another
    vias: dict[tuple, list[tuple]] = {}  # a new layer's ports: the replaced ones it stands for
    readers: dict[tuple, list[tuple[tuple, int]]] = {}  # base tensor -> base ports reading it
    for k, srcs in list(ports.items()):
        for p, s in enumerate(srcs):
            readers.setdefault(s, []).append((k, p))
    for vi, (d, i, a) in enumerate(variants):
        ka: dict[int, tuple] = {}
        for n, k in _keys(a).items():  # topological order
            srcs = [ka[u] for u in a.predecessors(n)]
            if k in ports and ports[k] != srcs and (k not in base_keys or
                                                    len(ports[k]) != len(srcs)):
                k = (*k, vi)  # another layer under the same name (it reads other tensors)
            ka[n] = k
        present = set(ka.values())
        for n, k in ka.items():
            srcs = [ka[u] for u in a.predecessors(n)]
            if k not in base_keys:
                if k not in where:
                    where[k], ports[k] = (a, n), srcs
                    vias[k] = [tuple(r for r in readers.get(s, []) if r[0] not in present)
                               for s in srcs]
                continue
            for p, (s0, s) in enumerate(zip(ports[k], srcs, strict=True)):
                if s0 == s:
                    continue
                table = subst.setdefault(s0, {}) if s0 not in present else \
                    sel.setdefault((k, p), {})
                # a base tensor the option reads instead (an identity option passes its input
                # on): the port of a replaced layer that read it, whose own choices then apply
                via = tuple(r for r in readers.get(s, []) if r[0] not in present)
                table.setdefault(d.name, {})[i] = (s, via)
    relaxed = Relaxed(Architecture(nx.MultiDiGraph(), dict(base), dict(a0.train), a0.space_file),
                      dict(base), options)
    order = {d.name: j for j, d in enumerate(decisions)}
    spans = {d.name: d.span for d in decisions}
    g = relaxed.arch.graph
    made: dict[tuple, int] = {}
    values: dict[tuple, int] = {}
    busy: set[tuple] = set()

    def node(op: str, args: dict, span: Any, path: str, ins: list[int]) -> int:
        n = len(g)
        g.add_node(n, op=op, args=args, span=span, path=path)
        for p, u in enumerate(ins):
            g.add_edge(u, n, key=p, port=p)
        return n

    def alt(s: tuple, via: tuple[tuple[tuple, int], ...]) -> int:
        chosen = [r for r in via if r in sel]
        return port(*chosen[0]) if chosen else value(s)

    def mix(name: str, base_value: int, alts: dict[int, tuple]) -> int:
        ins = [base_value if i not in alts else alt(*alts[i]) for i in options[name]]
        m = node(MIX, {"n": len(ins), "decision": name}, spans[name], f"{name}/mix", ins)
        relaxed.mixes[m] = name
        return m

    def emit(k: tuple) -> int:
        if k in made:
            return made[k]
        if k in busy:
            raise ArchDSLError("--strategy darts: the options of this space cannot be merged "
                               "into one graph (a cycle)", hint="use --strategy spos")
        busy.add(k)
        a, n = where[k]
        ins = [port(k, p) if k in base_keys else alt(s, vias[k][p])
               for p, s in enumerate(ports[k])]
        d = a.graph.nodes[n]
        made[k] = out = node(d["op"], d["args"], d.get("span"), d.get("path", ""), ins)
        busy.discard(k)
        relaxed.origin[out] = (a, n)
        return out

    def port(k: tuple, p: int) -> int:
        """What port p of node k reads: its base tensor, mixed by the choices of the port."""
        v = value(ports[k][p])
        for name, alts in sorted(sel.get((k, p), {}).items(), key=lambda t: order[t[0]]):
            v = mix(name, v, alts)
        return v

    def value(k: tuple) -> int:
        if k not in values:
            v = emit(k)
            for name, alts in sorted(subst.get(k, {}).items(), key=lambda t: order[t[0]]):
                v = mix(name, v, alts)
            values[k] = v
        return values[k]

    for n in a0.inputs():
        emit(k0[n])
    emit(k0[a0.output()])
    _topological(relaxed)
    return relaxed


def _topological(r: Relaxed) -> None:
    """Renumber the merged graph's nodes in a topological order, inputs first (in the base's
    order), output last: what `plan` and `Architecture` read from the numbering."""
    g = r.arch.graph
    order = list(nx.lexicographical_topological_sort(
        g, key=lambda n: (g.nodes[n]["op"] != "input", n)))
    new = {n: i for i, n in enumerate(order)}
    h = nx.MultiDiGraph()
    for n in order:
        h.add_node(new[n], **g.nodes[n])
    for u, v, k, d in g.edges(keys=True, data=True):
        h.add_edge(new[u], new[v], key=k, **d)
    r.arch.graph = h
    r.origin = {new[n]: v for n, v in r.origin.items()}
    r.mixes = {new[n]: v for n, v in r.mixes.items()}
    r.arch.cache.clear()


def derive(space: Space, r: Relaxed, alphas: dict[str, torch.Tensor], tries: int = 2000
           ) -> Config:
    """The configuration DARTS derives: each relaxed decision at its largest weight. Where that
    breaks a constraint, the best by summed log-weights of `tries` valid samples."""
    logp = {name: torch.log_softmax(a.detach().float().cpu(), 0).tolist()
            for name, a in alphas.items()}
    prefs = {name: [r.options[name][j] for j in sorted(range(len(lp)), key=lambda j: -lp[j])]
             for name, lp in logp.items()}
    try:
        return choose(space, r.base, prefs)
    except (ConstraintError, ShapeError):
        pass
    labels = {d.name: d for d in space.decisions(r.base)}

    def score(c: Config) -> float:
        total = 0.0
        for name, lp in logp.items():
            if name in c:
                i = labels[name].index_of_json(c[name])
                total += lp[r.options[name].index(i)] if i in r.options[name] else -1e9
        return total
    return max(space.samples(tries, seed=0), key=score)


def weights_table(r: Relaxed, alphas: dict[str, torch.Tensor],
                  space: Space) -> dict[str, dict[str, float]]:
    """{decision: {option label: softmax weight}} for reports."""
    labels = {d.name: d.labels() for d in space.decisions(r.base)}
    out = {}
    for name, a in alphas.items():
        w = torch.softmax(a.detach().float().cpu(), 0).tolist()
        out[name] = {str(labels[name][i]): round(x, 6) if math.isfinite(x) else x
                     for i, x in zip(r.options[name], w, strict=True)}
    return out


class DartsMixin:
    """The supernet's DARTS side (mixed into `Supernet`): one architecture weight (alpha) per
    relaxed decision, the mixed forward pass over the bank, and the first-order update."""

    # the supernet's (set in Supernet.__init__; its methods _entry_for and _tensors are used)
    space: Space
    training: bool
    _anchor: torch.Tensor
    alphas: nn.ParameterDict  # slot -> the alpha of one decision
    _alpha_slot: dict[str, str]  # decision -> slot
    _relaxed: Relaxed | None
    _mixed: Any  # the supernet's _Entry for the mixed graph
    _alpha_of: list[tuple[str, str]]  # (mixing module's parameter name, decision)
    _entry_for: Callable[[Relaxed], Any]
    _tensors: Callable[[Any], dict[str, torch.Tensor]]

    def relax(self, base: Config | None = None) -> Relaxed:
        """The mixed network of `base` (the space's default when None), made once: one alpha
        (zeros: uniform weights) per decision whose options change the graph. ShapeError at a
        decision's .arch line where its options' outputs differ in shape."""
        if self._relaxed is not None:
            if base is not None and base != self._relaxed.base:
                raise ArchDSLError("the supernet is relaxed around another configuration")
            return self._relaxed
        r = relax(self.space, base if base is not None else self.space.default())
        entry = self._entry_for(r)
        used = sorted({name for name in r.mixes.values()}, key=list(r.options).index)
        for name in used:
            slot = f"a{len(self.alphas)}"
            self.alphas[slot] = nn.Parameter(torch.zeros(len(r.options[name]),
                                                         device=self._anchor.device))
            self._alpha_slot[name] = slot
        self._relaxed, self._mixed = r, entry
        return r

    def mixed(self, *inputs: torch.Tensor) -> Any:
        """The relaxed network's output: every option of every relaxed decision, mixed."""
        self.relax()
        e = self._mixed
        tensors = self._tensors(e)
        for pname, name in self._alpha_of:
            tensors[pname] = self.alphas[self._alpha_slot[name]]
        e.model.train(self.training)
        return torch.func.functional_call(e.model, tensors, inputs)

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture weights (what DARTS's architecture step trains)."""
        self.relax()
        return list(self.alphas.values())

    def derive(self) -> Config:
        """The architecture DARTS derives: each relaxed decision at its largest weight, the
        others as in the base configuration."""
        r = self.relax()
        alphas = {name: self.alphas[slot] for name, slot in self._alpha_slot.items()}
        return derive(self.space, r, alphas)

    def arch_weights(self) -> dict[str, dict[str, float]]:
        """{decision: {option: softmax weight}}, for reports."""
        r = self.relax()
        alphas = {name: self.alphas[slot] for name, slot in self._alpha_slot.items()}
        return weights_table(r, alphas, self.space)

    def darts_step(self, train: tuple[torch.Tensor, torch.Tensor],
                   valid: tuple[torch.Tensor, torch.Tensor],
                   loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   weights_opt: torch.optim.Optimizer, arch_opt: torch.optim.Optimizer) -> float:
        """One first-order DARTS step: the architecture weights descend the loss on a
        validation batch, then the bank's weights the loss on a training batch (each
        optimizer holds only its own parameters). Returns the training loss."""
        arch_opt.zero_grad(set_to_none=True)
        loss(self.mixed(*_inputs(valid[0])), valid[1]).backward()
        arch_opt.step()
        weights_opt.zero_grad(set_to_none=True)
        value = loss(self.mixed(*_inputs(train[0])), train[1])
        value.backward()
        weights_opt.step()
        return float(value.detach())


def _inputs(x: Any) -> tuple[Any, ...]:
    """A batch's x as the network's inputs: a tuple (one tensor per input) or one tensor."""
    return x if isinstance(x, tuple) else (x,)
