"""The example spaces of docs/examples.md (examples/enas_macro.arch, ofa.arch, hybrid.arch,
gnn.arch with its operations in examples/gnn_ops.py): each counts exactly (by hand here,
cross-checked by enumeration on it or a reduced variant), samples, validates, round-trips
through `fix`, builds the structure its configuration says, and compiles to a PyTorch model
that runs a forward pass on example inputs for several sampled configurations. The graph
operations agree with a dense-adjacency computation. Also: docs/examples.md's pictures are
what the commands beside them draw."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from _example_ops import example_ops
from archdsl.backends import pytorch as pt
from test_examples import assert_enumerates, space, variant  # the examples' shared helpers

import archdsl
from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SPACES = ["enas_macro", "ofa", "hybrid", "gnn"]
OPS = ["--ops", "examples.gnn_ops"]  # gnn.arch's operations, imported from the root folder


@pytest.fixture(scope="module", autouse=True)
def gnn_ops() -> Iterator[ModuleType]:
    """examples/gnn_ops.py's operations, registered while these tests run."""
    with example_ops() as module:
        yield module


# ---- exact counts, derived by hand ---------------------------------------------------------
# enas_macro: width 2; 6 operations per layer; layer i (1..4) reads a non-empty subset of its
#   i predecessors (the stem and the layers before it): 2^i - 1.
ENAS = 2 * 6**4 * (1 * 3 * 7 * 15)
# ofa: per stage kernel 3 x expansion 3 x depth 3 = 27; three stages; the last stage's
#   activation 2.
OFA = 2 * 27**3
# hybrid: width 2; `switch` conv stages (2 kernels each) then 4 - switch attention stages
#   (2 head counts x 2 ratios each), switch in 1..3.
HYBRID = 2 * sum(2**s * 4 ** (4 - s) for s in (1, 2, 3))
# gnn: width 2; 4 operations per step; step i (1..4) reads one of its i predecessors (the
#   embedded input and the steps before it). The loose ends are no decision.
GNN = 2 * 4**4 * (1 * 2 * 3 * 4)
COUNTS = {"enas_macro": ENAS, "ofa": OFA, "hybrid": HYBRID, "gnn": GNN}

def nodes(arch: archdsl.Architecture, op: str) -> list[dict]:
    return [d for _, d in arch.graph.nodes(data=True) if d["op"] == op]


# ---- counting ------------------------------------------------------------------------------
def test_counts_by_hand() -> None:
    assert (ENAS, OFA, HYBRID, GNN) == (816_480, 39_366, 448, 12_288)


@pytest.mark.parametrize("name", SPACES)
def test_count(name: str, capsys: pytest.CaptureFixture[str],
               monkeypatch: pytest.MonkeyPatch) -> None:
    assert space(name).count() == COUNTS[name]
    monkeypatch.chdir(ROOT)
    assert main(["count", f"examples/{name}.arch", *(OPS if name == "gnn" else [])]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(COUNTS[name])
    # the count the file's own comment states
    assert f"# {COUNTS[name]:,} architectures" in (EXAMPLES / f"{name}.arch").read_text()


def test_enas_reduced_enumeration() -> None:
    # two operations and three layers: 2 * 2^3 * (1 * 3 * 7) = 336
    ops = re.search(r"op enas_op\(c\) = one_of \{.*?\n\}",
                    (EXAMPLES / "enas_macro.arch").read_text(), re.S)
    assert ops
    small = variant("enas_macro",
                    (ops.group(0), "op enas_op(c) = one_of { conv_3x3: conv(c, 3) "
                                   "| max_pool_3x3: max_pool(3, stride = 1, padding = 1) }"),
                    ("    l4 = enas_op(some(stem, l1, l2, l3), width)\n", ""),
                    ("return l4 ->", "return l3 ->"))
    configs = assert_enumerates(small, 2 * 2**3 * (1 * 3 * 7))
    subsets = Counter(tuple(c["network/l3/enas_op/in"]) for c in configs)
    assert len(subsets) == 7 and len(set(subsets.values())) == 1  # each subset equally often


def test_ofa_reduced_enumeration() -> None:
    # two kernels and two depths per stage: 2 * (2 * 3 * 2)^3 = 3,456
    small = variant("ofa", ("choice(3, 5, 7)", "choice(3, 5)"), ("choice(2, 3, 4)", "choice(2, 3)"))
    configs = assert_enumerates(small, 2 * 12**3)
    assert Counter(c["network/stage#2/depth"] for c in configs) == {2: 1728, 3: 1728}


def test_hybrid_enumeration() -> None:
    configs = assert_enumerates(space("hybrid"), HYBRID)
    # where the network switches decides how many stages of each kind carry decisions
    for c in configs:
        s = c["switch"]
        assert sum(k.endswith("/k") for k in c) == s
        assert sum(k.endswith("/heads") for k in c) == 4 - s
    assert Counter(c["switch"] for c in configs) == {1: 256, 2: 128, 3: 64}


def test_gnn_reduced_enumeration() -> None:
    # two operations and three steps: 2 * 2^3 * (1 * 2 * 3) = 96
    small = variant("gnn", ("sage: sage(c), gin: gin(c), gat: gat(c)", "gin: gin(c)"),
                    ("    n4 = step(choice(h0, n1, n2, n3), edges, hidden)\n", ""))
    configs = assert_enumerates(small, 2 * 2**3 * (1 * 2 * 3))
    assert Counter(c["network/n3/step/in"] for c in configs) == {"h0": 32, "n1": 32, "n2": 32}


# ---- sampling, validation, fix -------------------------------------------------------------
@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "per_decision"])
def test_samples_validate_materialize_and_fix(name: str, uniform: bool) -> None:
    sp = space(name)
    hashes = set()
    for seed in range(8):
        cfg = sp.sample(seed, uniform=uniform)
        assert sp.validate(cfg) == cfg
        arch = sp.materialize(cfg)
        hashes.add(arch.hash)
        fixed = archdsl.loads(sp.fix(cfg))
        assert fixed.count() == 1
        assert fixed.materialize(fixed.default()).hash == arch.hash
    assert len(hashes) >= 6  # the samples are different architectures


# ---- each space builds what its configuration says ------------------------------------------
def test_enas_layers_read_their_chosen_subsets() -> None:
    sp = space("enas_macro")
    sizes = set()
    for seed in range(12):
        cfg = sp.sample(seed)
        arch = sp.materialize(cfg)
        for layer in ("l2", "l3", "l4"):
            chosen = cfg[f"network/{layer}/enas_op/in"]
            sizes.add(len(chosen))
            adds = [n for n, d in arch.graph.nodes(data=True)
                    if d["op"] == "add" and d["path"] == f"network/{layer}/enas_op"]
            if len(chosen) == 1:
                assert adds == []
            else:  # the subset's sum
                assert len(adds) == 1 and len(arch.predecessors(adds[0])) == len(chosen)
        pools = Counter(cfg[f"network/l{i}/enas_op"] for i in range(1, 5))
        assert len(nodes(arch, "max_pool")) == pools["max_pool_3x3"]
    assert {1, 2, 3} <= sizes


def test_ofa_stages_have_their_kernel_expansion_and_depth() -> None:
    sp = space("ofa")
    for seed in range(6):
        cfg = sp.sample(seed)
        arch = sp.materialize(cfg)
        depthwise = [d for d in nodes(arch, "conv2d") if d["args"]["groups"] > 1]
        want = []
        for stage, c in (("stage", 16), ("stage#2", 24), ("stage#3", 40)):
            k, e = cfg[f"network/{stage}/kernel"], cfg[f"network/{stage}/expand"]
            want += [(k, c * e)] * cfg[f"network/{stage}/depth"]
        assert [(d["args"]["kernel"], d["args"]["groups"]) for d in depthwise] == want
        # every block after a stage's first is residual
        residuals = sum(cfg[f"network/{s}/depth"] - 1 for s in ("stage", "stage#2", "stage#3"))
        assert len(nodes(arch, "add")) == residuals


def test_hybrid_switches_from_convolutions_to_attention() -> None:
    sp = space("hybrid")
    for switch in (1, 2, 3):
        cfg = next(c for c in sp.samples(60, seed=1) if c["switch"] == switch)
        arch = sp.materialize(cfg)
        assert len(nodes(arch, "max_pool")) == switch
        assert len(nodes(arch, "attention")) == 4 - switch
        assert len(nodes(arch, "tokens")) == 1
        side = 16 // 2**switch
        shapes = {s["path"]: s["shape"] for s in pt.summary(arch)}
        assert shapes["network/tokens"] == [side * side, cfg["width"]]


def loose_ends(cfg: dict) -> list[str]:
    """The steps of a gnn.arch configuration that no other step reads, in order."""
    read = {"h0"} | {cfg[f"network/n{i}/step/in"] for i in (2, 3, 4)}  # n1 reads h0
    return [n for n in ("h0", "n1", "n2", "n3", "n4") if n not in read]


def test_gnn_returns_its_loose_ends() -> None:
    sp = space("gnn")
    seen = set()
    for seed in range(12):
        cfg = sp.sample(seed)
        arch = sp.materialize(cfg)
        loose = loose_ends(cfg)
        seen.add(tuple(loose))
        ops = [cfg[f"network/n{i}/step/op"] for i in (1, 2, 3, 4)]
        graph_ops = [d["op"] for d in sorted(
            (d for _, d in arch.graph.nodes(data=True) if d["op"] in ("gcn", "sage", "gin", "gat")),
            key=lambda d: d["path"])]
        assert graph_ops == ops
        rows = pt.summary(arch)
        concat = [r["shape"] for r in rows if r["op"] == "concat"]
        assert concat == [[12, cfg["hidden"] * len(loose)]]
        pooled = [r["shape"] for r in rows if r["op"] == "global_avg_pool"]
        assert pooled == [[cfg["hidden"] * len(loose)]]
    assert len(seen) >= 4
    # a chain h0 -> n1 -> n2 -> n3 -> n4 has one loose end
    cfg = {**sp.default(), **{f"network/n{i}/step/in": f"n{i - 1}" for i in (2, 3, 4)}}
    assert loose_ends(cfg) == ["n4"]
    rows = pt.summary(sp.materialize(sp.validate(cfg)))
    assert [r["shape"] for r in rows if r["op"] == "concat"] == [[12, cfg["hidden"]]]


def dense(edges: torch.Tensor, n: int) -> torch.Tensor:
    """The adjacency matrices [B, n, n] of an edge list [B, 2, E]: a[b, i, j] = the number of
    edges j -> i."""
    a = torch.zeros(edges.shape[0], n, n)
    for b in range(edges.shape[0]):
        for j, i in edges[b].T.tolist():
            a[b, i, j] += 1
    return a


def test_graph_operations_match_dense_adjacency(gnn_ops: ModuleType) -> None:
    gen = torch.Generator().manual_seed(0)
    n, f, e, out = 6, 5, 9, 4
    h = torch.randn(3, n, f, generator=gen)
    edges = torch.randint(0, n, (3, 2, e), generator=gen)
    edges[0, 1] = 0  # graph 0: every edge ends at node 0, the other nodes have none
    a = dense(edges, n)
    deg = a.sum(-1, keepdim=True)
    shapes = [[n, f], [2, e]]
    torch.manual_seed(0)
    gcn, sage, gin, gat = (gnn_ops.GCN(shapes, out), gnn_ops.SAGE(shapes, out),
                           gnn_ops.GIN(shapes, out), gnn_ops.GAT(shapes, out))
    with torch.no_grad():
        gin.eps.fill_(0.25)
        want = {
            gcn: gcn.lin((h + a @ h) / (deg + 1)),
            sage: sage.own(h) + sage.neighbours((a @ h) / deg.clamp(min=1)),
            gin: gin.mlp(1.25 * h + a @ h),
        }
        z = gat.lin(h)
        loops = a + torch.eye(n)
        score = torch.nn.functional.leaky_relu(
            (z @ gat.att_target).unsqueeze(-1) + (z @ gat.att_source).unsqueeze(-2), 0.2)
        weight = torch.exp(score) * loops  # each edge j -> i (and i -> i) as often as it occurs
        want[gat] = (weight / weight.sum(-1, keepdim=True)) @ z
        for op, expected in want.items():
            got = op(h, edges)
            assert got.shape == (3, n, out)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"takes node features \[N, F\] and edges \[2, E\]"):
        gnn_ops.graph_shape([[n, f], [3, e]], out)


def test_gnn_compiles_to_python_that_imports_its_operations(tmp_path: Path) -> None:
    sp = space("gnn")
    arch = sp.materialize(sp.sample(2))
    source = pt.source(arch)
    assert "from examples.gnn_ops import GAT as _gat" in source
    model = pt.build(arch, seed=0).eval()
    xs = pt.example_inputs(arch, batch=3, generator=torch.Generator().manual_seed(1))
    assert xs[1].dtype == torch.long and 0 <= int(xs[1].min()) and int(xs[1].max()) < 12
    with torch.no_grad():
        assert model(*xs).shape == (3, 2)


# ---- compiled to PyTorch: a forward pass on example inputs -----------------------------------
@pytest.mark.parametrize("name", SPACES)
def test_forward_pass_of_sampled_architectures(name: str) -> None:
    sp = space(name)
    gen = torch.Generator().manual_seed(0)
    for seed in range(4):
        arch = sp.materialize(sp.sample(seed))
        model = pt.build(arch, seed=0).eval()
        xs = pt.example_inputs(arch, batch=2, generator=gen)
        with torch.no_grad():
            y = model(*xs)
        classes = 2 if name == "gnn" else 10
        assert tuple(y.shape) == (2, *pt.metrics(arch)["output_shape"]) == (2, classes)
        assert torch.isfinite(y).all()
        assert sum(p.numel() for p in model.parameters()) == pt.metrics(arch)["params"]


# ---- docs/examples.md ----------------------------------------------------------------------
def _images_script():
    spec = importlib.util.spec_from_file_location(
        "render_readme_images", ROOT / "scripts" / "render_readme_images.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_examples_page_shows_each_space_and_a_sample() -> None:
    script = _images_script()
    page = ROOT / "docs" / "examples.md"
    shown = script.pairs(page.read_text("utf-8"), page.name)
    for name in SPACES:
        argvs = [argv for argv in shown.values() if argv[2] == f"examples/{name}.arch"]
        assert sorted("--space" in argv for argv in argvs) == [False, True], name
    assert all((page.parent / image).is_file() for image in shown)
    assert "docs/examples.md" in (ROOT / "README.md").read_text("utf-8")


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's `dot` is not installed")
def test_examples_page_pictures_are_what_their_commands_draw() -> None:
    script = _images_script()
    assert script.differing(ROOT / "docs" / "examples.md") == [], \
        "run: python scripts/render_readme_images.py"
