"""Choosing between operations applied to graph nodes: `choice(linear(a, 4), relu(a))` and
`one_of { linear(a, 4) | relu(a) }` in a graph node. A choice among nodes takes node names
only, so either form is one FILE:LINE:COL error at the first option that computes a tensor,
whose hint writes the forms that work (a param holding the layers, applied to the nodes; a
pipeline from the node); exit 1 from the command line, no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _example_ops import example_ops

import archdsl
from archdsl.cli import main
from archdsl.errors import ArchTypeError


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


_LAYERS_HINT = ("hint: choose the layers, then apply them to the nodes: `param op = "
                "choice(linear(4), relu)`, then `op(a)`, or choose in a pipeline: "
                "`a -> one_of { linear(4) | relu }`")


@pytest.mark.parametrize(("node", "col", "message"), [
    ("choice(linear(a, 4), relu(a))", 16,
     "an option of choice(...) among nodes must name a node: it cannot apply layers or make a "
     "decision"),
    ("choice(a -> linear(4), a -> relu)", 16,
     "an option of choice(...) among nodes must name a node: it cannot apply layers or make a "
     "decision"),
    ("one_of { linear(a, 4) | relu(a) }", 18,
     "an alternative is a layer or pipeline, not a tensor: one_of cannot choose between "
     "computations on nodes"),
])
def test_operations_on_nodes_as_options(tmp_path: Path, capsys: pytest.CaptureFixture,
                                        node: str, col: int, message: str) -> None:
    err = _cli_error(tmp_path, _space(node), capsys)
    assert err[0] == f"{tmp_path / 'bad.arch'}:4:{col}: error: {message}"
    assert err[-1] == _LAYERS_HINT


def test_hint_for_two_input_operations(tmp_path: Path, capsys: pytest.CaptureFixture,
                                       graph_ops: None) -> None:
    text = ("input h: [12, 6]\ninput e: [2, 30] index(12)\nnetwork {\n"
            "    h2 = choice(gcn: gcn(h, e, 16), sage: sage(h, e, 16))\n"
            "    return h2 -> global_avg_pool -> linear(3)\n}\n")
    err = _cli_error(tmp_path, text, capsys)
    assert err[0].endswith("bad.arch:4:22: error: an option of choice(...) among nodes must "
                           "name a node: it cannot apply layers or make a decision")
    assert err[-1] == ("hint: choose the layers, then apply them to the nodes: `param op = "
                       "choice(gcn: gcn(16), sage: sage(16))`, then `op(h, e)`")


@pytest.mark.parametrize(("node", "col", "token"), [
    ("choice(a -> linear(4), x)", 16, "a -> linear(4)"),  # not the same nodes: no layers hint
    ("choice(a, x -> relu)", 19, "x -> relu"),
    ("some(a, x -> relu)", 17, "x -> relu"),
    ("one_of { linear(a, 4) | relu(x) }", 18, "linear(a, 4)"),
])
def test_other_options_get_the_own_node_hint(node: str, col: int, token: str) -> None:
    with pytest.raises(ArchTypeError) as ei:
        archdsl.loads(_space(node), file="m.arch")
    err = ei.value
    assert (err.span.line, err.span.column) == (4, col), err.format()
    assert err.hint == (f"give it its own node (`n = {token}`) and choose among the nodes; "
                        "every option among nodes is computed, whichever is chosen")


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
