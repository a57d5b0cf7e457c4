"""Constraints over decisions (issue 16, item 5): `count(...)`, `any(...)`, `all(...)` over
decisions named by a glob of stable names or by an op whose body is one decision. `count
--metrics` equals a brute-force count (every configuration of the space without the constraint,
filtered here by an independent reading of it), samples and every searcher's proposals satisfy
it, and a reference that names nothing is a file:line:col error."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.errors import (
    ArchDSLError,
    ArchNameError,
    ArchTypeError,
    ConstraintError,
    EmptySpaceError,
)

BASE_FLAT = """
input x: [4]
op e = one_of { a: identity | b: relu | c: linear(4) }
network {
    x -> repeat(choice(1, 2)) { e -> linear(choice(4, 8)) } -> e
}
"""

OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
       ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def _glob(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")))


def _matching(config: dict[str, Any], ref: str) -> list[Any]:
    """The values of the decisions `ref` names in a configuration: the op `e`'s decisions are
    those whose last segment is `e` or `e#N` (the naming rule); otherwise a glob."""
    if ref == "e":
        return [v for k, v in config.items() if re.fullmatch(r"(.*/)?e(#\d+)?", k)]
    g = _glob(ref)
    return [v for k, v in config.items() if g.fullmatch(k)]


def _predicate(func: str, ref: str, op: str, value: Any, cmp: str, k: int
               ) -> Callable[[dict[str, Any]], bool]:
    def holds(config: dict[str, Any]) -> bool:
        vals = _matching(config, ref)
        n = sum(1 for v in vals if OPS[op](v, value))
        if func == "any":
            return n > 0
        if func == "all":
            return n == len(vals)
        return OPS[cmp](n, k)
    return holds


def _text(func: str, ref: str, op: str, value: Any, cmp: str, k: int) -> str:
    r = ref if ref == "e" else f'decision("{ref}")'
    cond = f"{func}({r} {op} {value})"
    return cond if func != "count" else f"{cond} {cmp} {k}"


_CASES = st.one_of(
    st.tuples(st.sampled_from(["count", "any", "all"]), st.just("e"),
              st.sampled_from(["==", "!="]), st.sampled_from(["a", "b", "c"]),
              st.sampled_from(list(OPS)), st.integers(0, 3)),
    st.tuples(st.sampled_from(["count", "any", "all"]),
              st.sampled_from(["*/linear/out", "network/repeat[0]/*out", "*out"]),
              st.sampled_from(list(OPS)), st.sampled_from([4, 8]),
              st.sampled_from(list(OPS)), st.integers(0, 3)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_CASES, kind=st.sampled_from(["require", "forbid"]))
def test_count_metrics_equals_brute_force(case: tuple, kind: str) -> None:
    constraint = _text(*case)
    pred = _predicate(*case)
    free = archdsl.loads(BASE_FLAT)
    space = archdsl.loads(BASE_FLAT + f"{kind} {constraint}\n")
    want = sum(1 for c in free.enumerate() if pred(c) == (kind == "require"))
    assert space.count() == free.count()  # a plain count leaves it out
    assert space.count(metrics=True) == want
    if not want:
        with pytest.raises(EmptySpaceError):
            space.sample(0)
        return
    got = list(space.enumerate())
    assert len(got) == want and all(pred(c) == (kind == "require") for c in got)
    if want:
        rng = random.Random(0)
        for uniform in (True, False):
            for _ in range(10):
                assert pred(space.sample(rng, uniform)) == (kind == "require")
        assert pred(space.default()) == (kind == "require")


def test_counted_with_params_constraints_too() -> None:
    text = BASE_FLAT + "require count(e == c) >= 1\nrequire params <= 60\n"
    space = archdsl.loads(text)
    free = archdsl.loads(BASE_FLAT)
    want = 0
    for c in free.enumerate():
        if len([v for v in _matching(c, "e") if v == "c"]) >= 1 \
                and free.metrics(free.materialize(c))["params"] <= 60:
            want += 1
    assert 0 < space.count(metrics=True) == want < free.count()


def test_the_values_of_layer_arguments_are_enumerated_where_read() -> None:
    text = """
input x: [3, 8, 8]
network { x -> conv2d(8, kernel = choice(1, 3, 5)) -> conv2d(8, kernel = choice(1, 3, 5))
          -> dropout(choice(0.1, 0.2)) }
train { batch = choice(16, 32) }
require count(decision("*kernel") == 5) == 1
require any(decision("train/batch") == 32)
"""
    assert archdsl.loads(text).count(metrics=True) == 2 * 2 * 2 * 1  # 4 kernels, 2 rates, 1 batch


def test_a_violating_configuration_is_refused() -> None:
    space = archdsl.loads(BASE_FLAT + "forbid all(e == a)\n")
    bad = {"network/repeat": 1, "network/repeat[0]/e": "a", "network/repeat[0]/linear/out": 4,
           "network/e": "a"}
    for check in (space.validate, space.materialize):
        with pytest.raises(ConstraintError, match="forbid all"):
            check(bad)
    good = dict(bad, **{"network/e": "b"})
    assert space.validate(good) == good

    def policy(d: Any, weights: Any) -> int:
        return 0  # the first option everywhere: every edge `a`

    with pytest.raises(ConstraintError):
        space.choose(policy)
    rng = random.Random(1)
    for _ in range(20):
        good = space.mutate(good, rng)
        assert not all(v == "a" for v in _matching(good, "e"))


def _error(text: str, kind: type[ArchDSLError], match: str) -> ArchDSLError:
    with pytest.raises(kind, match=match) as got:
        archdsl.loads(text, file="c.arch")
    return got.value


def test_a_glob_that_matches_nothing_is_an_error_at_its_place() -> None:
    e = _error(BASE_FLAT + 'require count(decision("network/repeet*") == a) < 2\n',
               ArchNameError, r'no decision matches decision\("network/repeet\*"\)')
    assert (e.span.line, e.span.column) == (7, 15)
    assert "network/repeat" in (e.hint or "")


def test_a_misspelt_op_gets_did_you_mean() -> None:
    e = _error(BASE_FLAT + "require count(ee == a) < 2\n", ArchNameError, "compares no decision")
    assert e.hint == "did you mean 'e'?"


def test_a_label_no_decision_has_is_an_error() -> None:
    e = _error(BASE_FLAT + "require count(e == d) < 2\n", ArchNameError, "has the option 'd'")
    assert "a, b, c" in (e.hint or "")


@pytest.mark.parametrize("constraint, kind, match", [
    ("require count(e) < 2", ArchTypeError, "compares a decision with a value"),
    ("require count(1 == 1) < 2", ArchNameError, "compares no decision"),
    ("require count(e == a, e == b) < 2", ArchTypeError, "takes one condition"),
    ('require count(decision(x) == a) < 2', ArchTypeError, "stable name in quotes"),
    ('require count(decision("*/e") == e) < 2', ArchTypeError, "compares two decisions"),
    ("require count(e == a) < params", ArchTypeError, "not both"),
])
def test_malformed_counts(constraint: str, kind: type[ArchDSLError], match: str) -> None:
    _error(BASE_FLAT + constraint + "\n", kind, match)


def test_a_block_that_is_not_one_decision_cannot_be_named_bare() -> None:
    text = BASE_FLAT.replace("network {", "block two { e -> e }\nnetwork {") \
        .replace("-> e\n}", "-> two\n}") + "require count(two == a) < 2\n"
    _error(text, ArchTypeError, "block 'two' is not one decision")


def test_a_count_in_a_body_is_refused_with_a_hint() -> None:
    text = BASE_FLAT.replace("-> e\n}", "-> e\n    require count(e == a) < 2\n}")
    e = _error(text, ArchTypeError, "stands in a top-level constraint")
    assert "decision(" in (e.hint or "")


def test_cli_count_check_and_errors(tmp_path: Any, capsys: Any) -> None:
    from archdsl.cli import main

    f = tmp_path / "s.arch"
    f.write_text(BASE_FLAT + "require count(e == a) < 2\n")
    assert main(["count", str(f)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["# 1 constraint(s) over decisions not applied; --metrics applies them by "
                   "enumerating the space", "126"]
    assert main(["count", str(f), "--metrics"]) == 0
    free = archdsl.loads(BASE_FLAT)
    want = sum(1 for c in free.enumerate() if [v for v in _matching(c, "e")].count("a") < 2)
    assert capsys.readouterr().out.splitlines() == [str(want)]
    assert main(["check", str(f)]) == 0
    assert "  1 constraint(s) over decisions, checked on each configuration (not applied to " \
        "the count)" in capsys.readouterr().out
    f.write_text(BASE_FLAT + 'require count(decision("nope") == a) < 2\n')
    assert main(["count", str(f)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{f}:7:15: error: no decision matches") and "Traceback" not in err


DEEP = """
input x: [4]
op e = one_of { a: identity | b: one_of { c: relu | d: one_of { f: tanh | g: linear(choice(4, 8, 16)) } } }
network { x -> e -> repeat(choice(1, 2, 3)) { e } -> optional { linear(choice(2, 3)) } }
"""


def test_every_name_of_the_space_can_be_referred_to() -> None:
    """The check that a reference names a decision finds names deep in rare branches (here
    the kernel of a third copy's innermost alternative)."""
    names = sorted({n for c in archdsl.loads(DEEP).enumerate() for n in c})
    assert len(names) == 19
    for n in names:
        space = archdsl.loads(DEEP + f'require count(decision("{n}") > 100) < 1\n')
        assert space.count() == archdsl.loads(DEEP).count()


@pytest.mark.parametrize("text, word", [
    ('input x: [4]\nnetwork { x -> linear(4) }\nrequire decision("a") == 3\n', "names decisions"),
    ("input x: [4]\nnetwork { x -> linear(count(3)) }\n", "counts over decisions"),
])
def test_count_and_decision_elsewhere_say_where_they_belong(text: str, word: str) -> None:
    e = _error(text, ArchNameError, "unknown layer")
    assert word in (e.hint or "") and "top-level" in (e.hint or "")


def test_count_metrics_says_when_a_constraint_reads_a_continuous_decision(
        tmp_path: Any, capsys: Any) -> None:
    from archdsl.cli import main

    f = tmp_path / "c.arch"
    f.write_text("input x: [4]\nnetwork { x -> linear(choice(8, 16)) }\n"
                 "train { lr = float(0.0001 .. 0.1, log) }\n"
                 'require count(decision("train/lr") < 0.01) == 1\n')
    assert main(["count", str(f), "--metrics"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "# 1 continuous decision(s) counted once: train/lr",
        "# continuous decisions were counted at one value each; constraints over decisions read "
        "train/lr", "2"]


def test_a_configuration_alone_gives_what_a_walk_gives() -> None:
    """Constraints with globs and constants only are checked on the configuration without a
    walk (`on_config`); the answer is the walk's, on every configuration."""
    space = archdsl.loads(BASE_FLAT + 'require count(decision("*out") == 8) + 1 <= 2 or '
                          'all(decision("network/e") != c)\n')
    dc = space.decision_constraints
    assert dc.on_config and not archdsl.loads(BASE_FLAT + "forbid all(e == a)\n") \
        .decision_constraints.on_config
    seen = set()
    for config in archdsl.loads(BASE_FLAT).enumerate():
        space.decisions(config)  # a walk of it
        walked = dc.failure() is None
        assert (dc.failure(config) is None) == walked
        seen.add(walked)
    assert seen == {True, False}


def test_a_decision_behind_the_last_of_many_options_is_found() -> None:
    """The names a glob may match are found by walks that take every option of every decision
    met, even where a decision has dozens of options (the last one here holds the decision)."""
    opts = " | ".join(f"l{i}: linear({i + 1})" for i in range(39))
    space = archdsl.loads(f"""input x: [8]
network {{ x -> one_of {{ {opts} | deep: linear(choice(30, 40)) }} -> linear(2) }}
require count(decision("network/one_of[39]/linear/out") == 30) <= 1
""")
    assert space.count() == 41
    assert all(c.get("network/one_of[39]/linear/out") in (None, 30, 40)
               for c in space.samples(20, seed=1))
