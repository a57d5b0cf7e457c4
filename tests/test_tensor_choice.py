"""Choosing between operations applied to graph nodes: `choice(linear(a, 4), relu(a))` (a
choice among computations: it decides first and builds the chosen option only, its decisions
named under `NAME[i]`; labels as `choice(gcn: ..., sage: ...)`), while `choice(a, x)` over node
names stays an input choice. `one_of { linear(a, 4) | relu(a) }` is one FILE:LINE:COL error
whose hint writes the forms that work; exit 1 from the command line, no traceback. Counts equal enumerations (edges constraints included), built models are
the chosen option's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _example_ops import example_ops
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.cli import main
from archdsl.search import SEARCHERS, make_searcher


@pytest.fixture
def graph_ops() -> Iterator[None]:
    """examples/gnn_ops.py's gcn and sage (2 tensors each) registered for one test."""
    with example_ops():
        yield


def _space(node: str, params: str = "") -> str:
    return (f"input x: [8]\nnetwork {{\n{params}    a = x -> linear(8)\n    b = {node}\n"
            "    return b -> linear(2)\n}\n")


def _cli_error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture) -> list[str]:
    """`archdsl check` of `text`: exit 1, no traceback; stderr's lines."""
    (tmp_path / "bad.arch").write_text(text)
    code = main(["check", str(tmp_path / "bad.arch")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err
    return err.splitlines()


def test_one_of_over_computations_is_an_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    err = _cli_error(tmp_path, _space("one_of { linear(a, 4) | relu(a) }"), capsys)
    assert err[0] == (f"{tmp_path / 'bad.arch'}:4:18: error: an alternative is a layer or "
                      "pipeline, not a tensor: one_of cannot choose between computations on "
                      "nodes")
    assert err[-1] == ("hint: choose among the computations with `choice(linear(a, 4), "
                       "relu(a))`; or choose the layers, then apply them to the nodes: "
                       "`param op = choice(linear(4), relu)`, then `op(a)`, or choose in a "
                       "pipeline: `a -> one_of { linear(4) | relu }`")


def test_one_of_hint_for_two_input_operations(tmp_path: Path, capsys: pytest.CaptureFixture,
                                              graph_ops: None) -> None:
    text = ("input h: [12, 6]\ninput e: [2, 30] index(12)\nnetwork {\n"
            "    h2 = one_of { gcn: gcn(h, e, 16) | sage: sage(h, e, 16) }\n"
            "    return h2 -> global_avg_pool -> linear(3)\n}\n")
    err = _cli_error(tmp_path, text, capsys)
    assert err[0].endswith("bad.arch:4:24: error: an alternative is a layer or pipeline, not a "
                           "tensor: one_of cannot choose between computations on nodes")
    assert err[-1] == ("hint: choose among the computations with `choice(gcn: gcn(h, e, 16), "
                       "sage: sage(h, e, 16))`; or choose the layers, then apply them to the "
                       "nodes: `param op = choice(gcn: gcn(16), sage: sage(16))`, then "
                       "`op(h, e)`")


def test_the_hinted_forms_work(graph_ops: None) -> None:
    space = archdsl.loads(_space("op(a)", "    param op = choice(linear(4), relu)\n"))
    assert space.count() == 2
    space = archdsl.loads(_space("a -> one_of { linear(4) | relu }"))
    assert space.count() == 2
    gnn = archdsl.loads("input h: [12, 6]\ninput e: [2, 30] index(12)\nnetwork {\n"
                        "    param op = choice(gcn: gcn(16), sage: sage(8))\n"
                        "    h2 = op(h, e)\n    return h2 -> global_avg_pool -> linear(3)\n}\n")
    outs = {gnn.materialize(c).graph.nodes[n]["args"].get("out")
            for c in gnn.enumerate() for n in gnn.materialize(c).layers()}
    assert {16, 8} <= outs


def test_input_choices_are_unchanged() -> None:
    space = archdsl.loads(_space("choice(a, x)"))
    assert space.count() == 2
    assert sorted(c["network/b/choice"] for c in space.enumerate()) == ["a", "x"]


# ---------------------------------------------------------------- choices among computations
_MIXED = """input x: [8]
network {
    a = x -> linear(8)
    b = choice(wide: linear(a, choice(16, 32)) -> relu, narrow: relu(a) + x, skip: x)
    require edges <= 4
    return concat(b, a)
}
"""


def _layers(space: archdsl.Space, config: dict) -> list[tuple[str, object]]:
    arch = space.materialize(config)
    return [(arch.graph.nodes[n]["op"], arch.graph.nodes[n]["args"].get("out"))
            for n in arch.layers()]


def test_a_choice_among_computations_decides_first() -> None:
    space = archdsl.loads(_MIXED, file="m.arch")
    # narrow reads a and x: 5 edges with a's and the return's, past `edges <= 4`
    configs = list(space.enumerate())
    assert space.count() == len(configs) == 3
    assert configs == [{"network/b/choice": "wide", "network/b/choice[0]/linear/out": 16},
                       {"network/b/choice": "wide", "network/b/choice[0]/linear/out": 32},
                       {"network/b/choice": "skip"}]
    assert _layers(space, configs[1]) == [("linear", 8), ("linear", 32), ("relu", None),
                                          ("concat", None)]
    assert _layers(space, configs[2]) == [("linear", 8), ("concat", None)]
    assert space.materialize(configs[0]).hash != space.materialize(configs[1]).hash
    for c in space.samples(20, seed=1):
        assert c in configs


def test_the_same_network_two_ways_hashes_equal_and_loose_ends_follow() -> None:
    space = archdsl.loads("input x: [8]\ncell c {\n    input n0\n    n1 = n0 -> linear(8)\n"
                          "    n2 = choice(p: relu(n1), q: n1 -> relu, s: n0)\n"
                          "    n3 = linear(n1, 8)\n    return concat(loose_ends)\n}\n"
                          "network { x -> c -> linear(2) }\n")
    arch = {v: space.materialize({"network/c/n2/choice": v}) for v in "pqs"}
    assert arch["p"].hash == arch["q"].hash != arch["s"].hash
    # s: n2 is n0, so the loose ends are n0 (as n2) and n3
    concat = next(n for n in arch["s"].graph.nodes if arch["s"].graph.nodes[n]["op"] == "concat")
    assert [arch["s"].graph.nodes[u]["op"] for u, _ in arch["s"].graph.in_edges(concat)] == \
        ["input", "linear"]


def test_two_input_operations_labelled(graph_ops: None, tmp_path: Path) -> None:
    from archdsl.backends import pytorch as pt

    space = archdsl.loads("input h: [12, 6]\ninput e: [2, 30] index(12)\nnetwork {\n"
                          "    h2 = choice(gcn: gcn(h, e, 16), sage: sage(h, e, choice(8, 16)))\n"
                          "    return h2 -> global_avg_pool -> linear(3)\n}\n", file="g.arch")
    configs = list(space.enumerate())
    assert space.count() == len(configs) == 3
    assert [_layers(space, c)[0] for c in configs] == [("gcn", 16), ("sage", 8), ("sage", 16)]
    assert configs[1] == {"network/h2/choice": "sage", "network/h2/choice[1]/sage/out": 8}
    model = pt.build(space.materialize(configs[2]), seed=0).eval()
    h, e = pt.example_inputs(space.materialize(configs[2]), batch=2)
    assert tuple(model(h, e).shape) == (2, 3)


def test_uniform_sampling_weighs_options_by_their_counts() -> None:
    space = archdsl.loads(_space("choice(linear(a, choice(4, 8, 16)), relu(a))"))
    assert space.count() == 4
    picks = [c["network/b/choice"] for c in space.samples(400, seed=0)]
    assert 0.15 < picks.count("relu(a)") / 400 < 0.35  # 1 architecture of 4


def test_configuration_errors_name_the_options(tmp_path: Path) -> None:
    space = archdsl.loads(_MIXED, file="m.arch")
    with pytest.raises(archdsl.ConfigError) as ei:
        space.materialize({"network/b/choice": "linear(a, 16)"})
    assert 'not one of {"wide", "narrow", "skip"}' in ei.value.message


_OPTIONS = ["a", "x", "relu(a)", "a -> relu", "linear(a, choice(2, 4))", "a + x",
            "linear(x, 4, bias = bool())", "choice(a, x) -> relu"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_OPTIONS), min_size=2, max_size=4, unique=True),
       st.integers(2, 6))
def test_count_equals_enumeration(options: list[str], most: int) -> None:
    if all(o in ("a", "x") for o in options):
        options = [*options, "relu(a)"]
    text = (f"input x: [4]\nnetwork {{\n    a = x -> linear(4)\n"
            f"    b = choice({', '.join(options)})\n    require edges <= {most}\n"
            "    return b -> linear(2)\n}\n")
    space = archdsl.loads(text)
    n = space.count()
    if n == 0:  # every option reads too many edges
        with pytest.raises(archdsl.ArchDSLError, match="no configuration"):
            list(space.enumerate())
        return
    configs = list(space.enumerate())
    assert n == len(configs)
    assert len({space.materialize(c).hash for c in configs}) <= n


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_proposes_valid_configurations(name: str) -> None:
    space = archdsl.loads(_MIXED, file="m.arch")
    s = make_searcher(name, space, seed=3)
    seen = set()
    for i in range(6):
        cand = s.ask()
        if cand is None:  # grid: the 3 architectures, then nothing
            break
        assert space.validate(cand.config) == cand.config
        seen.add(space.materialize(cand.config).hash)
        s.tell(cand, float(i))
    assert len(seen) >= 2
