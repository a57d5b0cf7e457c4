"""Loose-end merges (issue 16, item 3): `return concat(loose_ends)` in a graph body merges the
nodes that no other node and nothing else in the return reads, under the chosen configuration,
in the order they are defined. Not a decision: counts stay those of the space without it; the
built graph, its hash, the PyTorch model, the generated .py and the diagrams follow it. Bad
placements are file:line:col errors."""

from __future__ import annotations

import importlib.util
import itertools
import re
from collections import Counter
from pathlib import Path

import pytest
import torch
from archdsl.backends import diagram_space
from archdsl.backends import pytorch as pt

import archdsl
from archdsl import ArchNameError, ArchTypeError
from archdsl.cli import main

# an ENAS-style cell: each node picks its input among the nodes before it; the output
# concatenates the nodes nothing reads
ENAS = """\
input image: [3, 8, 8]
cell enas(w) {
    input n0
    n1 = n0 -> conv2d(w, kernel = choice(3, 5)) -> relu
    n2 = choice(n0, n1) -> conv2d(w, kernel = choice(3, 5)) -> relu
    n3 = choice(n0, n1, n2) -> conv2d(w, kernel = 1) -> relu
    n4 = add(choice(n1, n2, n3), choice(n0, n1))
    return RETURN
}
network { image -> conv2d(8) -> enas(8) -> global_avg_pool -> linear(10) }
"""
CELL = "network/enas/"
N1 = "n1 = n0 -> linear(16)"


def _cell(*lines: str, inputs: str = "n0", after: str = "") -> str:
    """A space whose cell `c` has these lines after `input n0` (line 4 on), applied as
    `x -> c` then `after`."""
    body = "".join(f"    {line}\n" for line in lines)
    return (f"input x: [16]\ncell c {{\n    input {inputs}\n{body}}}\n"
            f"network {{ x -> c{after} }}\n")


def _load(text: str) -> archdsl.Space:
    return archdsl.loads(text)


def _enas(ret: str = "concat(loose_ends)") -> archdsl.Space:
    return _load(ENAS.replace("RETURN", ret))


def _reads(cfg: dict) -> set[str]:
    """The nodes the ENAS cell's nodes read under `cfg` (the test's own account)."""
    return {cfg[CELL + "n2/choice"], cfg[CELL + "n3/choice"], cfg[CELL + "n4/choice"],
            cfg[CELL + "n4/choice#2"]}


def _merge_inputs(arch: archdsl.Architecture, op: str = "concat") -> list[str]:
    """The paths of the inputs of the architecture's one `op` node, by port."""
    g = arch.graph
    [m] = [n for n, d in g.nodes(data=True) if d["op"] == op]
    ins = sorted(g.in_edges(m, keys=True), key=lambda e: e[2])
    return [g.nodes[u]["path"] for u, _, _ in ins]


NODE_PATH = {"n1": CELL + "n1/relu", "n2": CELL + "n2/relu", "n3": CELL + "n3/relu",
             "n4": CELL + "n4"}


# ---------------------------------------------------------------- the set, per configuration
def test_every_configuration_merges_exactly_the_nodes_nothing_reads() -> None:
    space = _enas()
    configs = list(space.enumerate())
    assert len(configs) == space.count() == 144
    for cfg in configs:
        arch = space.materialize(cfg)
        loose = [n for n in ("n1", "n2", "n3", "n4") if n not in _reads(cfg)]
        assert _merge_inputs(arch) == [NODE_PATH[n] for n in loose], cfg


def test_it_builds_the_architecture_of_the_return_written_out() -> None:
    loose, explicit = _enas(), None
    for cfg in itertools.islice(loose.enumerate(), 0, 144, 7):
        names = [n for n in ("n1", "n2", "n3", "n4") if n not in _reads(cfg)]
        explicit = _enas(f"concat({', '.join(names)})" if len(names) > 1 else names[0])
        assert loose.materialize(cfg).hash == explicit.materialize(cfg).hash


def test_counting_sampling_and_enumeration_are_those_of_the_space_without_it() -> None:
    loose, summed = _enas(), _enas("add(n1, n2, n3, n4)")
    assert loose.count() == summed.count() == 144
    assert list(loose.enumerate()) == list(summed.enumerate())
    assert [loose.sample(s) for s in range(20)] == [summed.sample(s) for s in range(20)]
    assert [loose.sample(s, uniform=False) for s in range(5)] == \
        [summed.sample(s, uniform=False) for s in range(5)]


def test_the_same_wiring_hashes_the_same() -> None:
    space = _load("""\
input x: [16]
cell c {
    input n0
    n1 = n0 -> linear(16) -> relu
    n2 = n0 -> linear(16) -> relu
    n3 = choice(n1, n2) -> linear(16)
    return add(loose_ends)
}
network { x -> c -> linear(4) }
""")
    a = space.materialize({"network/c/n3/choice": "n1"})
    b = space.materialize({"network/c/n3/choice": "n2"})
    assert _merge_inputs(a, "add") == ["network/c/n2/relu", "network/c/n3/linear"]
    assert _merge_inputs(b, "add") == ["network/c/n1/relu", "network/c/n3/linear"]
    assert a.hash == b.hash


def test_one_loose_end_is_the_node_itself() -> None:
    text = """\
input x: [16]
cell c {
    input n0
    n1 = n0 -> linear(16)
    n2 = n1 -> relu
    return RETURN
}
network { x -> c -> linear(4) }
"""
    one = _load(text.replace("RETURN", "concat(loose_ends)")).materialize({})
    assert _merge_inputs(one) == ["network/c/n2/relu"]
    assert one.hash == _load(text.replace("RETURN", "n2")).materialize({}).hash


# ---------------------------------------------------------------- what counts as a read
def test_the_rest_of_the_return_reads_under_the_configuration() -> None:
    space = _load(_cell(N1, "n2 = n0 -> linear(16)", "return add(loose_ends) + choice(n0, n1)",
                        after=" -> linear(4)"))
    assert space.count() == 2
    got = space.materialize({"network/c/return/choice": "n1"})
    g = got.graph
    [loose] = [n for n, d in g.nodes(data=True) if d["op"] == "add" and g.in_degree(n) == 1]
    assert [g.nodes[u]["path"] for u, _ in g.in_edges(loose)] == ["network/c/n2/linear"]
    got = space.materialize({"network/c/return/choice": "n0"})
    ins = [[g.nodes[u]["path"] for u, _, _ in sorted(g.in_edges(n, keys=True),
                                                      key=lambda e: e[2])]
           for g in [got.graph] for n, d in g.nodes(data=True) if d["op"] == "add"]
    assert ["network/c/n1/linear", "network/c/n2/linear"] in ins


def test_some_and_an_alias_node_read_only_what_they_choose() -> None:
    space = _load(_cell(N1, "n2 = n0 -> linear(16)", "n3 = some(n1, n2) -> relu",
                        "n4 = choice(n0, n3)", "return concat(loose_ends)", after=" -> linear(4)"))
    got = space.materialize({"network/c/n3/some": ["n2"], "network/c/n4/choice": "n0"})
    # n3 reads n2 only; n4 is the input itself (it reads n0, never loose)
    assert _merge_inputs(got) == ["network/c/n1/linear", "network/c/n3/relu", "x"]
    got = space.materialize({"network/c/n3/some": ["n1", "n2"], "network/c/n4/choice": "n3"})
    assert _merge_inputs(got, "concat") == ["network/c/n3/relu"]


def test_edges_do_not_count_the_loose_end_merge() -> None:
    text = """\
input x: [16]
cell c {
    input n0
    n1 = some(n0) -> linear(16)
    n2 = some(n0, n1) -> linear(16)
    n3 = some(n0, n1, n2) -> linear(16)
    require edges <= 4
    return RETURN
}
network { x -> c }
"""
    loose = _load(text.replace("RETURN", "add(loose_ends)"))
    assert loose.count() == _load(text.replace("RETURN", "n3")).count() == 15
    for cfg in loose.enumerate():
        loose.materialize(cfg)


# ---------------------------------------------------------------- in more places
def test_a_network_graph_a_reused_cell_and_a_shared_cell() -> None:
    space = _load("""\
input x: [16]
cell c(w) {
    input a, b
    n1 = a -> linear(w)
    n2 = choice(a, b) -> linear(w)
    n3 = choice(b, n1) -> linear(w)
    return add(loose_ends)
}
shared s = c(16)
network {
    h = x -> linear(16)
    m1 = c(h, h, 16)
    m2 = c(h, m1, 16)
    m3 = s(m1, m2)
    m4 = s(m2, m3)
    return concat(loose_ends) -> linear(4)
}
""")
    assert space.count() == 4 ** 3
    for cfg in itertools.islice(space.enumerate(), 0, None, 5):
        arch = space.materialize(cfg)
        g = arch.graph
        merges = 0
        for n, d in g.nodes(data=True):
            ins = [g.nodes[u]["path"] for u, _, _ in sorted(g.in_edges(n, keys=True),
                                                             key=lambda e: e[2])]
            if d["path"] == "network/return":  # m1..m3 are read by later nodes
                assert ins == ["s/return"]
            elif d["op"] == "add":  # n1 is loose unless n3 reads it
                cell = d["path"].removesuffix("return")
                want = ["n2", "n3"] if cfg[cell + "n3/choice"] == "n1" else ["n1", "n2", "n3"]
                assert ins == [f"{cell}{n}/linear" for n in want], cfg
                merges += 1
        assert merges == 4  # m1, m2, and the shared cell applied twice
        model = pt.build(arch, seed=0)
        assert model(torch.randn(2, 16)).shape == (2, 4)


def test_the_model_the_generated_source_and_the_diagrams(tmp_path: Path) -> None:
    space = _enas()
    for seed in range(3):
        arch = space.materialize(space.sample(seed))
        model = pt.build(arch, seed=0)
        x = pt.example_inputs(arch, batch=2, generator=torch.Generator().manual_seed(0))
        y = model(*x)
        assert y.shape == (2, 10)
        path = pt.export(arch, tmp_path / f"m{seed}.py")
        spec = importlib.util.spec_from_file_location(f"m{seed}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        generated = mod.Net()
        generated.load_state_dict(model.state_dict())
        assert torch.allclose(generated.eval()(*x), model.eval()(*x))
        assert "torch.cat(" in path.read_text()
    dot = diagram_space.space_dot(space)
    assert "loose_ends" not in dot  # drawn as wires from every node, not as a name
    dashed = Counter(m[2] for m in re.finditer(r"(\w+) -> (\w+) \[[^]]*dashed", dot))
    # the selectors of n2, n3 and n4 take 2, 3, 3 and 2 options; the merge all four nodes
    assert sorted(dashed.values()) == [2, 2, 3, 3, 4]


def test_fix_writes_it_back_and_the_file_reads_the_same() -> None:
    space = _enas()
    cfg = space.sample(3)
    text = space.fix(cfg)  # the built graph, written out node by node
    assert "loose_ends" not in text and "concat(" in text
    again = archdsl.loads(text)
    assert again.materialize({}).hash == space.materialize(cfg).hash


# ---------------------------------------------------------------- bad input
MISPLACED = "can only be merged in the `return`"
BAD = [
    ("in a pipeline body", "input x: [16]\nblock b { add(loose_ends) }\nnetwork { x -> b }\n",
     ArchTypeError, 2, 15, MISPLACED),
    ("in a node", _cell(N1, "n2 = add(loose_ends, n1)", "return n2"),
     ArchTypeError, 5, 14, MISPLACED),
    ("alone", _cell(N1, "return loose_ends"), ArchTypeError, 5, 12, MISPLACED),
    ("a later stage", _cell(N1, "return n1 -> add(loose_ends)"), ArchTypeError, 5, 22, MISPLACED),
    ("with another tensor", _cell(N1, "return add(loose_ends, n0)"),
     ArchTypeError, 5, 28, "merged alone"),
    ("with project", _cell(N1, "return add(loose_ends, project = true)"),
     ArchTypeError, 5, 28, "takes no option 'project'"),
    ("as a node name", _cell("loose_ends = n0 -> linear(4)", "return loose_ends"),
     ArchNameError, 4, 5, "reserved"),
    ("as an input name", _cell("n1 = loose_ends -> linear(4)", "return n1", inputs="loose_ends"),
     ArchNameError, 3, 5, "reserved"),
    ("outside any graph", "input x: [16]\nnetwork { x -> linear(concat(loose_ends)) }\n",
     ArchTypeError, 2, 30, MISPLACED),
    ("no node", _cell("return add(loose_ends)"), ArchTypeError, 4, 16, "has none"),
    ("the last node read by the return",
     _cell(N1, "n2 = n1 -> linear(16)", "return add(loose_ends) + choice(n0, n2)"),
     ArchTypeError, 6, 41, "could be empty"),
]


@pytest.mark.parametrize(("what", "text", "cls", "line", "col", "words"), BAD,
                         ids=[b[0] for b in BAD])
def test_bad_placements_are_errors_at_the_name(what: str, text: str, cls: type, line: int,
                                               col: int, words: str) -> None:
    with pytest.raises(cls) as got:
        archdsl.loads(text)
    err = got.value
    assert (err.span.line, err.span.column) == (line, col), err.format()
    assert words in str(err)
    assert err.hint


def test_the_command_line_says_where_and_exits_1(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.arch"
    bad.write_text(BAD[0][1])
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:15: error: 'loose_ends' can only be merged" in err
    assert "hint:" in err and "Traceback" not in err
