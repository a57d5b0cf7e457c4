"""The public face of a search space: load, check, count, sample, enumerate, validate, fix."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .decision_constraints import DecisionConstraints, uses_decisions
from .errors import (
    ArchDSLError,
    ConfigError,
    ConstraintError,
    EmptySpaceError,
    ShapeError,
    did_you_mean,
)
from .gc_pause import no_gc
from .graph import Architecture
from .interp import (
    Chooser,
    Default,
    FromConfig,
    Interp,
    PerDecision,
    Reject,
    Replay,
    Uniform,
    needs_metrics,
    replays,
    sample_float,
)
from .semantics import SpaceIR, resolve_file, resolve_text
from .sources import read_regular
from .values import Decision, to_json

__all__ = ["Space", "load", "loads", "Policy", "MAX_TRIES"]

MAX_CONFIG_BYTES = 16_000_000  # a configuration file larger than this is refused unread
MAX_CONFIG_DIGITS = 4_300  # a longer integer in a configuration is refused (Python's default)
MAX_TRIES = 10_000  # samples drawn before giving up on constraints that reject them all

Config = dict[str, Any]

Policy = Callable[[Decision, "list[int] | None"], Any]
"""Answers one decision for `Space.choose`: `policy(decision, weights)` returns the index of an
option, or a number in range for a continuous decision. Where `weights` is given, weights[i] is
how many architectures follow option i, and an option with weight 0 leads to none."""


class Space:
    """A checked search space. Create one with `load(path)` or `loads(text)`."""

    def __init__(self, ir: SpaceIR):
        self.ir = ir
        # constraints over decisions are checked on each configuration after a walk, never by
        # the counting interpreter, which gets the IR without them
        rest = [c for c in ir.constraints if not uses_decisions(c)]
        self._interp = Interp(ir if len(rest) == len(ir.constraints)
                              else dataclasses.replace(ir, constraints=rest))
        self.decision_constraints = DecisionConstraints(ir, self._interp)
        self.decision_constraints.check_names()  # a reference that names nothing: an error
        self._count: int | None = None
        self._default: Config | None = None  # default()'s answer, once found
        # `require params <= ...`: checked on the planned architecture (static shapes)
        self.metric_constraints = [c for c in rest if needs_metrics(c)]
        self._checked: tuple[str, Architecture] | None = None  # sampled, built and checked

    # ---- facts -------------------------------------------------------------------------
    @property
    def file(self) -> str:
        return self.ir.file

    def count(self, metrics: bool = False) -> int:
        """The exact number of architectures (configurations of the discrete decisions).

        Constraints on `params`/`flops` and over decisions (`count(...)`) are left out (they
        need every architecture planned, or its configuration); with `metrics=True` they are
        applied, by enumerating the decisions able to change them and building and planning
        each architecture (archdsl.metric_count: small spaces only)."""
        if metrics and (self.metric_constraints or self.decision_constraints):
            from .metric_count import count_with_metrics

            return count_with_metrics(self)
        if self._count is None:
            self._count = sum(r.weight for r in self._interp.global_rows())
        return self._count

    def metrics(self, arch: Architecture) -> dict[str, Any]:
        """{"params", "flops", "output_shape"} of an architecture, from static shapes."""
        from .backends.plan import metrics  # the backend's shape rules; no torch needed

        return metrics(arch)

    def _metric_failure(self, arch: Architecture) -> ConstraintError | None:
        """The first `params`/`flops` constraint the architecture breaks, if any."""
        it = self._interp
        it.metric_values = self.metrics(arch)
        try:
            for c in self.metric_constraints:
                if not it.constraint_holds(c, {}):
                    from .printer import format_expr

                    return ConstraintError(
                        f"{c.kind} {format_expr(c.expr)}: not satisfied (params = "
                        f"{it.metric_values['params']:,}, flops = {it.metric_values['flops']:,})",
                        c.span)
        finally:
            it.metric_values = None
        return None

    def _decision_failure(self, config: Config | None = None) -> ConstraintError | None:
        """The first constraint over decisions the configuration breaks, if any; without
        `config`, the configuration of the interpreter's last walk."""
        dc = self.decision_constraints
        if not dc:
            return None
        if config is not None and dc.on_config:
            return dc.failure(config)  # no walk needed
        if config is not None:
            self._interp.walk(FromConfig(config))
        return dc.failure()

    def _satisfies_metrics(self, decided: dict) -> bool:
        """Whether the configuration the interpreter has just walked (`decided`) satisfies the
        constraints that counting leaves out: over decisions, and on params/flops."""
        if self._decision_failure() is not None:
            return False
        if not self.metric_constraints:
            return True
        config = {name: to_json(v) for name, v in decided.items()}
        try:
            return self._metric_failure(self._build(config)) is None
        except ShapeError:  # no params to speak of: not an architecture that satisfies it
            return False

    def decisions(self, config: Config | None = None) -> list[Decision]:
        """The decisions a configuration makes (the default one when none is given)."""
        it = self._interp
        it.walk(FromConfig(config if config is not None else self.default()))
        return list(it.seen.values())

    def continuous_decisions(self) -> list[Decision]:
        """The continuous decisions of the default configuration (none, without a walk, in a
        space that has no `float` range without a step)."""
        if not self._interp.an.has_continuous_calls():
            return []
        return [d for d in self.decisions() if d.continuous]

    def has_continuous(self) -> bool:
        return bool(self.continuous_decisions())

    # ---- sampling ----------------------------------------------------------------------
    def sample(self, rng: random.Random | int | None = None, uniform: bool = True, *,
               seed: int | None = None) -> Config:
        """One configuration: uniform over architectures, or each decision on its own.

        `rng` is a random.Random to draw from, or a seed; `seed=S` is the same as `rng=S`, so
        `sample(seed=S)` is the first of `samples(n, seed=S)`."""
        if seed is not None:
            if rng is not None:
                raise TypeError("sample() takes rng or seed, not both")
            rng = seed
        if not isinstance(rng, random.Random):
            rng = random.Random(rng)
        chooser = Uniform(rng) if uniform else PerDecision(rng)
        it = self._interp
        if self.count() == 0:  # the table every walk reads: no draw can succeed
            raise EmptySpaceError("no configuration satisfies the constraints",
                                  self.ir.network_span)
        last: ArchDSLError | None = None
        for _ in range(MAX_TRIES):
            try:
                config = it.sample(chooser)
            except Reject as r:
                last = r.why
                continue
            if self.decision_constraints:
                last = self._decision_failure(config)
                if last is not None:
                    continue
            if self.metric_constraints:
                arch = self._build(config)
                try:
                    last = self._metric_failure(arch)
                except ShapeError as e:  # shapes that do not fit have no params: reject
                    last = e
                if last is not None:
                    continue
                self._checked = (json.dumps(config, sort_keys=True), arch)
            return config
        raise EmptySpaceError(
            f"no configuration satisfied the constraints in {MAX_TRIES:,} tries"
            + (f"; the last failure: {last.message}" if last else ""),
            last.span if last else None)

    def samples(self, n: int, seed: int = 0, uniform: bool = True) -> Iterator[Config]:
        """`n` configurations drawn one after another from one random.Random(seed)."""
        rng = random.Random(seed)
        for _ in range(n):
            yield self.sample(rng, uniform)

    def enumerate(self) -> Iterator[Config]:
        """Every configuration, once each, in depth-first order of the decisions."""
        it = self._interp
        for d in self.decisions():
            if d.continuous:
                raise ArchDSLError(f"'{d.name}' is continuous; give it a step to enumerate",
                                   d.span)
        for decided in _dfs(it):
            if self._satisfies_metrics(decided):
                yield {name: to_json(v) for name, v in decided.items()}

    def choose(self, policy: Policy) -> Config:
        """The configuration `policy` makes, decision by decision in walk order (each decision
        is fixed by the answers before it: a repeat count decides how many copies' decisions
        follow). Every constraint is checked, params/flops included: ConstraintError (or
        ShapeError) if the configuration breaks one, ConfigError for an answer out of range."""
        it = self._interp
        try:
            decided = it.walk(_Policy(policy))
        except Reject as r:
            raise r.why from None
        failure = self._decision_failure()
        if failure is not None:
            raise failure
        config = _jsonify(decided)
        if self.metric_constraints:
            arch = self._build(config)
            failure = self._metric_failure(arch)
            if failure is not None:
                raise failure
            self._checked = (json.dumps(config, sort_keys=True), arch)
        return config

    def mutate(self, config: Config, rng: random.Random, decision: str | None = None) -> Config:
        """A valid configuration that differs from `config` in one decision: another option of
        a discrete decision, a fresh draw of a continuous one. The decision is drawn among those
        `config` makes (or named by `decision`). Decisions the change brings in (a repeat made
        longer, another branch taken) are drawn at random; those it leaves unreached are
        dropped. EmptySpaceError if no single change gives a valid configuration."""
        decisions = [d for d in self.decisions(config) if d.continuous or d.size > 1]
        if decision is not None:
            decisions = [d for d in decisions if d.name == decision]
            if not decisions:
                raise ConfigError(f"'{decision}' is not an open decision of this configuration")
        tries = 0
        last: ArchDSLError | None = None
        while decisions and tries < 200:
            tries += 1
            d = decisions[rng.randrange(len(decisions))]
            if d.continuous:
                new: Any = sample_float(d, rng)
            else:
                i = d.index_of_json(config[d.name])
                j = rng.randrange(d.size - 1)
                new = d.labels()[j + (j >= i)]
            try:
                return self.choose(_Fill({**config, d.name: new}, d.name, rng))
            except (ArchDSLError, _Refused) as e:
                last = e if isinstance(e, ArchDSLError) else last
                continue
        raise EmptySpaceError("no change of one decision gives a valid configuration"
                              + (f"; the last failure: {last.message}" if last else ""),
                              last.span if last else None)

    # ---- configurations ----------------------------------------------------------------
    def default(self) -> Config:
        """Every decision at its default (the first option where none is given) where a valid
        architecture follows, else its first option that leads to one: one walk, guided by
        the counts. Where counting cannot see a constraint (params/flops; an `edges`
        constraint that rejects that walk), the first valid configuration in enumeration
        order among the first MAX_TRIES."""
        if self._default is not None:
            return copy.deepcopy(self._default)
        it = self._interp
        try:
            decided = dict(it.walk(Default()))
            failure = self._decision_failure()
            if failure is not None:
                raise failure
            if self.metric_constraints:
                # a default whose shapes do not fit is reported, not searched around
                failure = self._metric_failure(self._build(_jsonify(decided)))
                if failure is not None:
                    raise failure
        except (ConstraintError, Reject):
            none = self.count() == 0
            first = None if none else next((d for d in itertools.islice(_dfs(it), MAX_TRIES)
                                            if self._satisfies_metrics(d)), None)
            if first is None:
                raise EmptySpaceError("no configuration satisfies the constraints"
                                      + ("" if none else f" (among the first {MAX_TRIES:,})"),
                                      self.ir.network_span) from None
            decided = first
        self._default = _jsonify(decided)
        return copy.deepcopy(self._default)

    def validate(self, config: Config) -> Config:
        """Check a configuration against the space; return it in canonical form."""
        if not isinstance(config, dict):
            raise ConfigError("a configuration is a JSON object mapping decision names to values")
        if self.metric_constraints:
            return self.materialize(config).config
        decided = _walk_config(self._interp, config)
        failure = self._decision_failure()
        if failure is not None:
            raise failure
        return {name: to_json(v) for name, v in decided.items()}

    def materialize(self, config: Config) -> Architecture:
        """The architecture a configuration chooses, as a layer graph."""
        if not isinstance(config, dict):
            raise ConfigError("a configuration is a JSON object mapping decision names to values")
        checked, self._checked = self._checked, None
        if checked is not None and checked[0] == json.dumps(config, sort_keys=True):
            return checked[1]  # just sampled: built and checked already
        arch = self._build(config)
        failure = self._decision_failure() or (
            self._metric_failure(arch) if self.metric_constraints else None)
        if failure is not None:
            raise failure
        return arch

    def _build(self, config: Config) -> Architecture:
        it = self._interp
        decided = _walk_config(it, config, build=True)
        graph = it.graph
        train = it.train_values()
        arch = Architecture(graph, {n: to_json(v) for n, v in decided.items()}, train,
                            self.ir.file)
        arch.cache["decisions"] = list(it.seen.values())  # what decisions(config) would walk
        return arch

    def fix(self, config: Config) -> str:
        """The .arch text of the chosen architecture, with no decisions left."""
        return self.materialize(config).to_arch()

    def __repr__(self) -> str:
        return f"Space({self.ir.file!r})"

    def _repr_svg_(self) -> str:
        """Jupyter shows a space as its diagram (needs graphviz's `dot`)."""
        from .backends.diagram import to_svg
        from .backends.diagram_space import space_dot

        return to_svg(space_dot(self))


class _Policy(Chooser):
    """A chooser that asks a `Policy` and checks its answers."""

    def __init__(self, policy: Policy):
        self.policy = policy

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        a = self.policy(d, weights)
        if d.options is None:
            return d.value_of_json(a)
        if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < len(d.options):
            raise ConfigError(f"'{d.name}': the policy answered {a!r}, not an option index "
                              f"0..{len(d.options) - 1}", d.span)
        if weights is not None and weights[a] == 0:
            raise ConstraintError(f"'{d.name}' = {d.labels()[a]!r} leads to no valid "
                                  "architecture", d.span)
        return d.options[a]


class _Refused(Exception):
    """The changed decision's new value leads nowhere: try another change."""


class _Fill:
    """A policy: the configuration's values where they are allowed, random ones elsewhere."""

    def __init__(self, config: Config, changed: str, rng: random.Random):
        self.config, self.changed, self.rng = config, changed, rng

    def __call__(self, d: Decision, weights: list[int] | None) -> Any:
        if d.name in self.config:
            try:
                if d.options is None:
                    return d.value_of_json(self.config[d.name])
                i = d.index_of_json(self.config[d.name])
                if weights is None or weights[i] > 0:
                    return i
            except ConfigError:
                pass
            if d.name == self.changed:
                raise _Refused
        if d.options is None:
            return sample_float(d, self.rng)
        allowed = [i for i in range(len(d.options)) if weights is None or weights[i] > 0]
        return allowed[self.rng.randrange(len(allowed))] if allowed else 0


def _jsonify(decided: dict) -> Config:
    return {name: to_json(v) for name, v in decided.items()}


def _dfs(it: Interp) -> Iterator[dict]:
    """Every configuration, depth first over the option indices (by replay)."""
    for _ in replays(it, Replay):
        yield dict(it.decided)


def _walk_config(it: Interp, config: Config, build: bool = False, fill: bool = False) -> dict:
    ch = FromConfig(config, fill_defaults=fill)
    try:
        decided = it.walk(ch, build=build)
    except Reject as r:
        raise r.why from None
    unknown = [k for k in config if k not in decided]
    if unknown:
        k = unknown[0]
        raise ConfigError(f"unknown decision '{k}' in the configuration",
                          hint=did_you_mean(k, decided) or
                          "this configuration may be for another space, or a branch it sets "
                          "is not chosen")
    return dict(decided)


def load(path: str | Path, import_paths: Sequence[str | Path] = ()) -> Space:
    """Read, parse and check a .arch file. Its imports may read `.arch` files inside its own
    folder (and the folders below it) and inside the folders of `import_paths`, nowhere else."""
    with no_gc():  # a large space is millions of objects and no cycles
        return Space(resolve_file(path, import_paths))


def loads(text: str, file: str = "<string>", base_dir: str | Path | None = None,
          import_paths: Sequence[str | Path] = ()) -> Space:
    """Parse and check .arch text; imports are relative to `base_dir` (default: cwd) and stay
    inside it or the folders of `import_paths`."""
    with no_gc():
        return Space(resolve_text(text, file, base_dir, import_paths))


class _Refused(ValueError):
    """JSON that parses but that a configuration may not hold (read_config's hooks)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            shown = key if len(key) <= 80 else key[:60] + "..." + key[-15:]
            raise _Refused(f"the key {shown!r} appears twice in one object; a configuration "
                           "gives each decision one value")
        seen[key] = value
    return seen


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused(f"the number {text[:40]} is too large to be a float")
    return value


def _short_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_CONFIG_DIGITS:
        raise _Refused(f"an integer of {digits:,} digits; a configuration's integers have at "
                       f"most {MAX_CONFIG_DIGITS:,}")
    return int(text)


def _not_a_number(text: str) -> Any:
    raise _Refused(f"{text} is not JSON (a configuration holds finite numbers only)")


def read_config(path: str | Path) -> Config:
    """Read a configuration from a JSON file (a ConfigError if it is not one): strict JSON, so
    a key twice in one object, NaN, Infinity, a float too large to hold or an integer of more
    than MAX_CONFIG_DIGITS digits is refused."""
    data = read_regular(str(path), MAX_CONFIG_BYTES, ConfigError, "the configuration",
                        "a configuration file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: cannot read the configuration: not UTF-8 text (byte "
                          f"0x{data[e.start]:02x} at offset {e.start})") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_finite,
                          parse_int=_short_int, parse_constant=_not_a_number)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}:{e.colno}: the configuration is not valid JSON: "
                          f"{e.msg}") from None
    except _Refused as e:
        raise ConfigError(f"{path}: cannot read the configuration: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: the configuration is nested too deeply to read") from None
    if isinstance(data, dict) and "config" in data and isinstance(data["config"], dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a configuration is a JSON object of decision names")
    return data
