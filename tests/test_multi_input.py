"""Several inputs and multi-input operations (issue 16, item 2): `index(N)` inputs (integers
from 0 to N - 1), user operations of k tensors (`register_op(..., inputs=k)`), the built-in
`cross_attention` and `tokens`, and an input the network never reads; each bad input one
FILE:LINE:COL error, exit 1 from the command line, no traceback."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import _graph_ops  # noqa: F401 - registers graph_conv (2 inputs)
import pytest
import torch
from archdsl.backends import pytorch as pt

import archdsl
from archdsl.cli import main
from archdsl.errors import ShapeError

GNN = """input nodes: [12, 6]
input edges: [2, 30] index(12)
network {
    h1 = graph_conv(nodes, edges, choice(8, 16)) -> relu
    h2 = graph_conv(h1, edges, 8)
    return h2 -> global_avg_pool -> linear(3)
}
"""

HYBRID = """input image: [3, 8, 8]
input query: [5, 16]
network {
    mem = image -> conv2d(8) -> tokens
    q = cross_attention(query, mem, heads = choice(2, 4))
    return q -> layernorm -> global_avg_pool -> linear(10)
}
"""


def _arch(text: str, config: dict | None = None, file: str = "m.arch") -> archdsl.Architecture:
    space = archdsl.loads(text, file=file)
    return space.materialize(space.default() if config is None else config)


def _same_outputs(arch: archdsl.Architecture, tmp_path: Path) -> None:
    """The built module and the generated .py (same seed) give the same outputs."""
    model = pt.build(arch, seed=0).eval()
    path = pt.export(arch, tmp_path / f"gen_{len(list(tmp_path.iterdir()))}.py")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    generated = mod.Net().eval()
    xs = pt.example_inputs(arch, batch=3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = model(*xs), generated(*xs)
    assert a.shape == b.shape
    assert torch.equal(a, b)


@pytest.fixture
def scratch_ops() -> Iterator[None]:
    """Operations a test registers are gone after it (no did-you-mean hints elsewhere)."""
    from archdsl.backends.ops import OPS

    from archdsl.layers import LAYERS

    layers, ops = dict(LAYERS), dict(OPS)
    yield
    LAYERS.clear()
    LAYERS.update(layers)
    OPS.clear()
    OPS.update(ops)


def _cli_error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture,
               *extra: str) -> str:
    f = tmp_path / "bad.arch"
    f.write_text(text)
    assert main(["check", str(f), *extra]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------- index inputs
def test_index_input_parses_prints_and_reaches_the_graph() -> None:
    space = archdsl.loads(GNN, file="g.arch")
    assert [i.name for i in space.ir.inputs] == ["nodes", "edges"]
    arch = space.materialize(space.default())
    args = {d["args"]["name"]: d["args"] for _, d in arch.graph.nodes(data=True)
            if d["op"] == "input"}
    assert args["edges"] == {"name": "edges", "shape": [2, 30], "index": 12}
    assert "index" not in args["nodes"]
    fixed = space.fix(space.default())
    assert "input edges: [2, 30] index(12)" in fixed
    assert archdsl.loads(fixed).count() == 1


def test_index_input_type_and_example_inputs() -> None:
    arch = _arch(GNN)
    p = pt.plan(arch)
    edges = p.steps[p.inputs[1]].out
    assert (edges.dtype, edges.bound, edges.shape) == ("long", 12, (2, 30))
    nodes, e = pt.example_inputs(p, batch=4)
    assert nodes.dtype == torch.float32 and nodes.shape == (4, 12, 6)
    assert e.dtype == torch.long and e.shape == (4, 2, 30)
    assert 0 <= int(e.min()) and int(e.max()) < 12
    big = pt.example_inputs(p, batch=64)[1]
    assert int(big.max()) == 11  # the whole range is drawn


def test_index_bound_allows_constant_arithmetic_and_feeds_embedding() -> None:
    arch = _arch("input ids: [7] index(5 * 4)\n"
                 "network { ids -> embedding(20, 4) -> global_avg_pool -> linear(2) }")
    (ids,) = pt.example_inputs(arch, batch=50)
    assert int(ids.max()) < 20 and ids.dtype == torch.long
    assert pt.build(arch)(ids).shape == (50, 2)


def test_embedding_without_index_keeps_token_ids() -> None:
    arch = _arch("input ids: [7]\nnetwork { ids -> embedding(9, 4) -> flatten -> linear(2) }")
    (ids,) = pt.example_inputs(arch, batch=50)
    assert ids.dtype == torch.long and int(ids.max()) < 9


def test_index_inputs_hash_apart_from_float_inputs() -> None:
    ids = "network { ids -> embedding(20, 4) -> flatten -> linear(2) }"
    h1 = _arch(f"input ids: [7] index(20)\n{ids}").hash
    h2 = _arch(f"input ids: [7] index(10)\n{ids}").hash
    h3 = _arch(f"input ids: [7]\n{ids}").hash
    assert len({h1, h2, h3}) == 3


@pytest.mark.parametrize(("text", "message"), [
    ("input x: [4] indx(3)\nnetwork { x -> linear(2) }", "1:14: error: unknown input kind 'indx'"),
    ("input x: [4] index(0)\nnetwork { x -> embedding(3, 2) -> flatten -> linear(2) }",
     "1:20: error: an index input's bound is a positive integer"),
    ("input x: [4] index(choice(3, 4))\nnetwork { x -> embedding(3, 2) -> flatten }",
     "1:20: error: an input's index bound is fixed"),
    ("input x: [4] index(30)\nnetwork { x -> embedding(20, 2) -> flatten }",
     "2:16: error: embedding: its input holds indices up to 29, but it has 20 rows (num)"),
    ("input x: [4] index(3)\nnetwork { x -> linear(2) }",
     "2:16: error: linear: its input holds integers"),
])
def test_bad_index_inputs(tmp_path: Path, capsys: pytest.CaptureFixture, text: str,
                          message: str) -> None:
    assert f"bad.arch:{message}" in _cli_error(tmp_path, text, capsys)


# ---------------------------------------------------------------- inputs never read
@pytest.mark.parametrize(("text", "where"), [
    ("input a: [8]\ninput b: [8]\nnetwork { a -> linear(4) }", "2:1"),
    ("input a: [8]\ninput b: [8]\nnetwork {\n    h = a -> linear(4)\n    return h\n}", "2:1"),
    ("input a: [8]\nnetwork {\n    h = linear(a, 4)\n    return h\n}", None),
    ("input a: [8] index(3)\ninput b: [8]\nnetwork { b -> linear(4) }", "1:1"),
])
def test_an_input_never_read_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture,
                                         text: str, where: str | None) -> None:
    if where is None:
        archdsl.loads(text)  # read as a call's tensor: fine
        return
    err = _cli_error(tmp_path, text, capsys)
    assert f"bad.arch:{where}: error: input '" in err and "is never read by the network" in err
    assert "hint: " in err


def test_one_input_flows_into_a_pipeline_implicitly() -> None:
    assert archdsl.loads("input a: [8]\nnetwork { linear(4) }").count() == 1


def test_an_input_read_in_some_configurations_only_is_fine() -> None:
    space = archdsl.loads("input a: [8]\ninput b: [8]\n"
                          "network {\n    h = choice(a, b) -> linear(4)\n    return h\n}")
    assert space.count() == 2


# ---------------------------------------------------------------- user operations of k inputs
def test_two_input_user_operation_builds_and_exports(tmp_path: Path) -> None:
    arch = _arch(GNN, {"network/h1/graph_conv/out": 16})
    p = pt.plan(arch)
    convs = [s for s in p.layers() if s.op == "graph_conv"]
    assert [s.out.shape for s in convs] == [(12, 16), (12, 8)]
    assert [s.params for s in convs] == [2 * 6 * 16 + 16, 2 * 16 * 8 + 8]
    assert convs[0].flops == 12 * 2 * 6 * 16
    model = pt.build(arch, seed=0)
    assert sum(t.numel() for t in model.parameters()) == p.params
    assert model(*pt.example_inputs(arch)).shape == (2, 3)
    text = pt.source(arch)
    assert "def forward(self, nodes: torch.Tensor, edges: torch.Tensor)" in text
    assert "_graph_conv(in_shapes=[[12, 6], [2, 30]], out=16)" in text
    assert "(nodes, edges)" in text
    _same_outputs(arch, tmp_path)


def test_k_input_shape_rule_and_default_params_see_every_shape(scratch_ops: None) -> None:
    from _graph_ops import GraphConv

    seen: list = []

    def rule(in_shapes: list, out: int) -> list[int]:
        seen.append(in_shapes)
        if in_shapes[0][0] != in_shapes[2][0]:
            raise ValueError("the first and third inputs need as many rows")
        return [in_shapes[0][0], out]

    pt.register_op("tri_conv", GraphConv, rule, args=[archdsl.ArgSpec("out", "int")], inputs=3)
    text = ("input a: [4, 3]\ninput e: [2, 5] index(4)\ninput c: [{n}, 3]\n"
            "network {{\n    return tri_conv(a, e, c, 2) -> flatten\n}}")
    p = pt.plan(_arch(text.format(n=4)))
    assert seen[-1] == [[4, 3], [2, 5], [4, 3]]
    assert p.params == 2 * 3 * 2 + 2  # built once and counted (no params function)
    with pytest.raises(ShapeError, match="tri_conv: the first and third inputs") as info:
        pt.plan(_arch(text.format(n=5)))
    assert info.value.span.line == 5


def test_one_input_user_operation_keeps_its_signature(scratch_ops: None) -> None:
    got: list = []

    def rule(in_shape: list, by: int = 1) -> list[int]:
        got.append(in_shape)
        return in_shape

    from _graph_ops import GraphConv

    pt.register_op("one_in", GraphConv, rule, args=[archdsl.ArgSpec("by", "int", 1)],
                   params=lambda in_shape, by=1: 0)
    arch = _arch("input x: [4, 3]\nnetwork { x -> one_in -> flatten }")
    assert pt.plan(arch).params == 0 and got == [[4, 3]]
    assert "one_in(in_shape=[4, 3], by=1)" in pt.source(arch)


@pytest.mark.parametrize("k", [0, -1, True, 1.5])
def test_register_op_refuses_a_bad_input_count(k: object) -> None:
    from _graph_ops import GraphConv

    with pytest.raises(ValueError, match="inputs must be a whole number"):
        pt.register_op("bad_k", GraphConv, lambda s: s, inputs=k)  # type: ignore[arg-type]


@pytest.mark.parametrize(("network", "message"), [
    ("h = graph_conv(nodes, 8)\n    return h",
     "6:9: error: layer 'graph_conv' takes 2 tensor inputs, got 1"),
    ("h = graph_conv(nodes, edges, nodes, 8)\n    return h",
     "6:9: error: layer 'graph_conv' takes 2 tensor inputs, got 3"),
    ("h = nodes -> graph_conv(8)\n    return concat(h, edges)",
     "6:18: error: 'graph_conv(8)' takes 2 tensor inputs, so it cannot be a stage"),
    ("h = cross_attention(nodes, 2)\n    return concat(h, edges)",
     "6:9: error: layer 'cross_attention' takes 2 tensor inputs, got 1"),
    ("h = pick(nodes)\n    return concat(h, edges)", "6:9: error: 'pick' takes 2 tensor inputs, got 1"),
    ("h = mixed(nodes, edges)\n    return h",
     "4:37: error: layer 'linear' takes 1 tensor input, got 2"),
])
def test_wrong_number_of_tensors(tmp_path: Path, capsys: pytest.CaptureFixture, network: str,
                                 message: str) -> None:
    text = ("input nodes: [12, 6]\ninput edges: [2, 30] index(12)\n"
            "param pick = choice(graph_conv(8), graph_conv(16))\n"
            "param mixed = choice(graph_conv(8), linear(4), default = linear(4))\n"
            f"network {{\n    {network}\n}}\n")
    err = _cli_error(tmp_path, text, capsys, "--ops", "_graph_ops")
    assert f"bad.arch:{message}" in err


def test_a_shape_rule_rejection_of_a_two_input_op(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    text = ("input nodes: [12, 6]\ninput edges: [3, 30] index(12)\n"
            "network {\n    return graph_conv(nodes, edges, 4) -> flatten\n}\n")
    err = _cli_error(tmp_path, text, capsys, "--ops", "_graph_ops")
    assert "bad.arch:4:12: error: graph_conv: takes node features [N, F] and edges [2, E]" in err


# ---------------------------------------------------------------- cross_attention and tokens
def test_cross_attention_and_tokens() -> None:
    arch = _arch(HYBRID, {"network/q/cross_attention/heads": 4})
    p = pt.plan(arch)
    by_op = {s.op: s for s in p.layers()}
    assert by_op["tokens"].out.shape == (64, 8) and by_op["tokens"].out.layout == "seq"
    ca = by_op["cross_attention"]
    assert ca.out.shape == (5, 16)
    model = pt.build(arch, seed=0)
    mha = getattr(model, ca.name)
    assert isinstance(mha, torch.nn.MultiheadAttention) and mha.num_heads == 4
    assert ca.params == sum(t.numel() for t in mha.parameters()) == 2 * 256 + 2 * 128 + 64
    assert ca.flops == 2 * 5 * 16 * 16 + 2 * 64 * 8 * 16 + 2 * 5 * 64 * 16
    assert model(*pt.example_inputs(arch)).shape == (2, 10)


def test_cross_attention_of_equal_widths_is_plain_attention_sized() -> None:
    arch = _arch("input a: [5, 16]\ninput m: [7, 16]\n"
                 "network {\n    return cross_attention(a, m, 2, dropout = 0.1) -> flatten\n}")
    p = pt.plan(arch)
    (ca,) = [s for s in p.layers() if s.op == "cross_attention"]
    assert ca.params == 4 * 16 * 16 + 4 * 16
    assert "nn.MultiheadAttention(16, 2, dropout=0.1, batch_first=True)" in pt.source(arch)


def test_generated_py_matches_the_built_module(tmp_path: Path) -> None:
    for config in ({"network/q/cross_attention/heads": 2}, {"network/q/cross_attention/heads": 4}):
        _same_outputs(_arch(HYBRID, config), tmp_path)
    _same_outputs(_arch("input s: [4, 2, 5]\nnetwork { s -> tokens -> linear(3) -> flatten }"),
                  tmp_path)


def test_tokens_value_is_the_pixels_in_order() -> None:
    arch = _arch("input image: [2, 3, 4]\nnetwork { image -> tokens }")
    x = torch.arange(24.0).reshape(1, 2, 3, 4)
    out = pt.build(arch)(x)
    assert out.shape == (1, 12, 2)
    assert torch.equal(out[0, 5], x[0, :, 1, 1])


@pytest.mark.parametrize(("text", "message"), [
    ("input a: [5, 16]\ninput m: [3, 8, 8]\nnetwork {\n    return cross_attention(a, m, 2)\n}",
     "4:12: error: cross_attention expects [length, features], got [3, 8, 8]"),
    ("input a: [5, 16]\ninput m: [7, 16]\nnetwork {\n    return cross_attention(a, m, 3)\n}",
     "4:12: error: cross_attention: 3 heads do not divide the 16 features"),
    ("input a: [16]\nnetwork { a -> tokens }", "2:16: error: tokens expects"),
])
def test_bad_cross_attention_and_tokens(tmp_path: Path, capsys: pytest.CaptureFixture,
                                        text: str, message: str) -> None:
    assert f"bad.arch:{message}" in _cli_error(tmp_path, text, capsys)


def test_latency_feeds_every_input() -> None:
    from archdsl.latency import measure

    assert measure(_arch(GNN), repeats=2) > 0
    assert measure(_arch(HYBRID), repeats=2) > 0


def test_diagrams_show_an_index_input() -> None:
    from archdsl.backends.diagram import architecture_dot
    from archdsl.backends.diagram_space import space_dot

    space = archdsl.loads(GNN)
    assert "index(12)" in architecture_dot(space.materialize(space.default()))
    assert "[2, 30] index(12)" in space_dot(space)
