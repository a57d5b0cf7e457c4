"""`count(metrics=True)` (archdsl.metric_count): constraints on params/flops applied by building
the architectures the decisions able to change them give, the rest counted by multiplication."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.metric_count import caveat

SPACE = """
input x: [4]
param w = choice(4, 8, 16)
block b(k) {{
    linear(k) -> optional {{ dropout(choice(0.1, 0.2, 0.3)) }} -> {act}
}}
network {{
    x -> linear(w) -> repeat(choice(1, 2)) {{ b(choice(w, 2 * w)) }} -> linear(choice(2, 3))
}}
train {{ batch = choice(1, 2)  lr = {lr} }}
require params <= {limit}
"""


@settings(max_examples=6, deadline=None)
@given(st.integers(60, 900), st.sampled_from(["relu", "choice(relu, tanh)"]))
def test_count_with_metrics_is_the_number_of_configurations_that_satisfy_them(
        limit: int, act: str) -> None:
    stepped = archdsl.loads(SPACE.format(limit=limit, act=act, lr="float(0.1 .. 0.2, step = 0.1)"))
    every = sum(1 for _ in stepped.enumerate())  # each configuration built and planned
    assert stepped.count(metrics=True) == every
    assert stepped.count() >= every


def test_a_continuous_decision_is_counted_once_with_metrics() -> None:
    # it failed: "'train/lr' is continuous; give it a step to enumerate"
    src = SPACE.format(limit=400, act="relu", lr="float(1e-4 .. 1e-1, log)")
    space = archdsl.loads(src)
    stepped = archdsl.loads(src.replace("float(1e-4 .. 1e-1, log)", "0.01"))
    assert space.count(metrics=True) == stepped.count(metrics=True) > 0
    assert caveat(space) is None  # built-in layers: params/flops do not depend on a float


def test_the_caveat_names_a_user_operation() -> None:
    pytest.importorskip("torch")
    from archdsl.backends import pytorch as pt

    from archdsl.layers import ArgSpec

    pt.register_op("scaled_mc", type("M", (), {}), shape=lambda in_shape, **args: in_shape,
                   args=(ArgSpec("s", "float", 1.0),))
    src = SPACE.format(limit=400, act="scaled_mc", lr="float(1e-4 .. 1e-1, log)")
    note = caveat(archdsl.loads(src))
    assert note is not None and "scaled_mc" in note and "continuous" in note
    assert caveat(archdsl.loads(src.replace("float(1e-4 .. 1e-1, log)", "0.1"))) is None


def test_archdsl_count_metrics_on_a_space_with_a_continuous_decision(tmp_path, capsys) -> None:
    from archdsl.cli import main

    path = tmp_path / "s.arch"
    path.write_text(SPACE.format(limit=400, act="relu", lr="float(1e-4 .. 1e-1, log)"))
    assert main(["count", "--metrics", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    n = archdsl.load(path).count(metrics=True)
    assert out == ["# 1 continuous decision(s) counted once: train/lr", str(n)]


def test_count_walks_no_default_configuration_without_a_continuous_decision(
        tmp_path, capsys, monkeypatch) -> None:
    # `count` walked the default configuration to list continuous decisions (minutes for a
    # space of 65,536 decisions)
    from archdsl.cli import main

    def no_default(self):
        raise AssertionError("count computed the default configuration")

    monkeypatch.setattr(archdsl.Space, "default", no_default)
    path = tmp_path / "s.arch"
    path.write_text(SPACE.format(limit=400, act="relu", lr="0.1"))
    assert main(["count", str(path), "--json"]) == 0
    count = archdsl.load(path).count()
    assert capsys.readouterr().out.strip() == f'{{"count": {count}, "continuous": []}}'


def test_count_with_metrics_refuses_a_space_too_large_to_build_one_by_one() -> None:
    from archdsl import ArchLimitError

    space = archdsl.loads("input x: [4]\nnetwork { x -> repeat(7) { linear(int(1 .. 8)) } }\n"
                          "require params <= 1000\n")
    with pytest.raises(ArchLimitError, match="more than the limit of 1,000,000") as e:
        space.count(metrics=True)
    assert e.value.span is not None and e.value.span.line == 2
