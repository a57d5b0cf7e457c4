"""Diagrams: deterministic DOT (golden files), every example drawn, SVG that parses.

Regenerate the golden files with `ARCHDSL_REGEN_GOLDEN=1 python -m pytest tests/test_backend_diagram.py`.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _example_ops import example_ops
from archdsl.backends.diagram import DPI, FIT_WIDTH, architecture_dot, render, to_svg
from archdsl.backends.diagram_space import space_dot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.arch"))
REGEN = os.environ.get("ARCHDSL_REGEN_GOLDEN") == "1"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="graphviz's `dot` is not installed")

_SPACES: dict[str, archdsl.Space] = {}


@pytest.fixture(scope="module", autouse=True)
def _example_ops():
    """examples/gnn.arch's operations (examples/gnn_ops.py), registered while these tests run."""
    with example_ops():
        yield


def space(name: str) -> archdsl.Space:
    if name not in _SPACES:
        _SPACES[name] = archdsl.load(ROOT / "examples" / f"{name}.arch")
    return _SPACES[name]


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN or not path.exists():
        if not REGEN:
            pytest.fail(f"no golden file {path}; run with ARCHDSL_REGEN_GOLDEN=1 to write it")
        path.write_text(text, "utf-8")
    assert text == path.read_text("utf-8"), f"{name} differs from its golden file"


@pytest.mark.parametrize("name", EXAMPLES)
def test_golden_default_architecture(name: str) -> None:
    s = space(name)
    _check_golden(f"{name}.arch.dot", architecture_dot(s.materialize(s.default())))


@pytest.mark.parametrize("name", EXAMPLES)
def test_golden_space(name: str) -> None:
    _check_golden(f"{name}.space.dot", space_dot(space(name)))


def test_same_input_same_text_in_a_fresh_space() -> None:
    """Nothing from memory addresses or hashes: a freshly loaded space draws the same bytes."""
    a, b = archdsl.load(ROOT / "examples/darts.arch"), archdsl.load(ROOT / "examples/darts.arch")
    cfg = a.sample(5)
    assert architecture_dot(a.materialize(cfg)) == architecture_dot(b.materialize(cfg))
    assert space_dot(a, cfg) == space_dot(b, cfg)


def _parse_svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag.endswith("svg")
    return root


@needs_dot
@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_renders_as_space_and_three_samples(name: str) -> None:
    s = space(name)
    _parse_svg(to_svg(space_dot(s)))
    for seed in (0, 1, 2):
        cfg = s.sample(seed)
        arch = s.materialize(cfg)
        _parse_svg(to_svg(architecture_dot(arch)))
        _parse_svg(to_svg(space_dot(s, cfg)))


def test_repeats_are_drawn_once_unless_expanded() -> None:
    s = space("nb201")
    arch = s.materialize(s.default())
    short, full = architecture_dot(arch), architecture_dot(arch, expand=True)
    assert "cell \u00d7 5" in short and "\u00d7 5" not in full
    assert full.count("relu_conv_bn") + full.count("ReLU") > short.count("ReLU")
    assert short.count("\n") < full.count("\n") / 3


def test_glyphs_and_shapes_on_wires() -> None:
    s = space("digits")
    cfg = {**s.default(), "network/one_of": "mlp", "network/one_of[1]/linear/out": 32}
    text = architecture_dot(s.materialize(cfg))
    assert "<B>L</B><SUB>+</SUB>" in text  # a linear layer with a bias
    assert "&#10033;3" in text  # a 3x3 convolution
    assert 'shape="circle"' in text and "label=<BN>" in text  # normalisation
    assert "&#9656;ReLU&#9656;" in text  # an activation between arrowheads
    assert 'label="[1, 8, 8]"' in text and 'label="[10]"' in text  # shapes on the wires
    assert 'fillcolor="#e3ecf9"' in text  # the residual's tile
    assert 'dir="none"' in text and "arrowhead" not in text


def test_depth_boxes_and_params() -> None:
    s = space("resnet")
    arch = s.materialize(s.default())
    boxed = architecture_dot(arch, depth=0, params=True)
    assert boxed.count('shape="box3d"') >= 4 and "stage" in boxed and " params" in boxed
    assert boxed.count("&#10033;") < architecture_dot(arch, expand=True).count("&#10033;")


def test_top_to_bottom_layout() -> None:
    s = space("transformer")
    text = architecture_dot(s.materialize(s.default()), layout="TB")
    assert "rankdir=\"TB\"" in text and "Attention" in text
    with pytest.raises(archdsl.ArchDSLError):
        architecture_dot(s.materialize(s.default()), layout="RL")


def test_space_symbols_lanes_and_bypasses() -> None:
    text = space_dot(space("digits"))
    assert "width \u2208 {16, 32}" in text  # a value decision as a symbol
    assert "\u00d7 {1, 2, 3}" in text  # a repeat decision
    assert 'label="optional"' in text and 'style="dashed"' in text  # the dashed bypass
    assert 'label="gap"' in text and 'label="mlp"' in text  # one_of lanes


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), name=st.sampled_from(["digits", "nb201", "resnet",
                                                          "transformer", "nb101"]))
def test_chosen_lanes_are_bold_and_the_rest_faded(seed: int, name: str) -> None:
    s = space(name)
    cfg = s.sample(seed)
    text = space_dot(s, cfg)
    assert text == space_dot(s, cfg)
    lanes = [d for d in s.decisions(cfg) if d.kind in ("one_of", "optional")]
    assert ('penwidth="2.2"' in text) == bool(lanes)  # what is chosen is bold
    assert ("#c0c0c0" in text) == bool(lanes)  # and the rest faded


def test_chosen_lane_follows_the_configuration() -> None:
    s = space("digits")
    base = s.default()
    for head in ("gap", "mlp"):
        cfg = {k: v for k, v in base.items() if not k.startswith("network/one_of")}
        cfg["network/one_of"] = head
        if head == "mlp":
            cfg["network/one_of[1]/linear/out"] = 32
        lines = space_dot(s, cfg).splitlines()
        lane = next(i for i, ln in enumerate(lines) if f'label="{head}"' in ln)
        other = next(i for i, ln in enumerate(lines)
                     if f'label="{"mlp" if head == "gap" else "gap"}"' in ln)
        assert "#c0c0c0" not in lines[lane] and "#c0c0c0" in lines[other]


def test_a_configuration_that_does_not_fit_is_an_error() -> None:
    s = space("nb201")
    with pytest.raises(archdsl.ConfigError):
        space_dot(s, {"cell/n1/edge": "bogus"})


def test_render_writes_dot_without_graphviz(tmp_path: Path, monkeypatch) -> None:
    s = space("digits")
    text = architecture_dot(s.materialize(s.default()))
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert render(text, tmp_path / "d.dot").read_text("utf-8") == text
    with pytest.raises(archdsl.ArchDSLError, match="graphviz"):
        render(text, tmp_path / "d.svg")
    with pytest.raises(archdsl.ArchDSLError, match="unknown format"):
        render(text, tmp_path / "d.jpeg")


# ------------------------------------------------------------------------------ structure
_NODE = re.compile(r"^\s*(\w+) \[", re.M)
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)", re.M)


def declared(text: str) -> set[str]:
    return set(_NODE.findall(text)) - {"graph", "node", "edge"}


def undeclared_ends(text: str) -> set[str]:
    """Ends of wires that no node line declares: graphviz draws each as a stray box."""
    return {e for edge in _EDGE.findall(text) for e in edge} - declared(text)


def panel_of_each_node(text: str) -> dict[str, int]:
    """The panel (a top-level cluster drawn once for a block's uses) each node is declared
    in; 0 for the network."""
    where: dict[str, int] = {}
    panel = 0
    for line in text.splitlines():
        if line.startswith("  subgraph "):
            panel = -1  # a top-level cluster: a panel once its label says so
        elif line.startswith("    graph [") and panel == -1:
            panel = len(set(where.values()) | {0}) if "drawn once" in line else 0
        elif line == "  }":
            panel = 0
        else:
            m = _NODE.match(line)
            if m and m.group(1) not in ("graph", "node", "edge"):
                where[m.group(1)] = panel
    return where


def drawings(s: archdsl.Space, cfg: dict) -> list[str]:
    arch = s.materialize(cfg)
    return [architecture_dot(arch), architecture_dot(arch, expand=True),
            architecture_dot(arch, params=True), architecture_dot(arch, fit=None),
            *(architecture_dot(arch, depth=d) for d in range(4)),
            architecture_dot(arch, layout="TB"), space_dot(s, cfg)]


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_wire_ends_at_a_declared_node_over_40_seeds(name: str) -> None:
    """nb201 seed 1 drew a stray box "p2": an identity inside a panel passed its wire on to a
    node outside the panel (and a box holding only an identity was never declared)."""
    s = space(name)
    for seed in range(40):
        for text in drawings(s, s.sample(seed)) if seed < 4 else [
                architecture_dot(s.materialize(s.sample(seed)))]:
            assert not undeclared_ends(text), (name, seed)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(EXAMPLES), seed=st.integers(0, 10**6),
       depth=st.sampled_from([None, 0, 1, 2, 3]), expand=st.booleans(), params=st.booleans())
def test_wires_end_at_declared_nodes_and_stay_in_their_panel(
        name: str, seed: int, depth: int | None, expand: bool, params: bool) -> None:
    s = space(name)
    text = architecture_dot(s.materialize(s.sample(seed)), depth=depth, expand=expand,
                            params=params)
    assert not undeclared_ends(text)
    where = panel_of_each_node(text)
    for u, v in _EDGE.findall(text):
        assert where[u] == where[v], f"wire {u} -> {v} crosses from one panel to another"


def _glyph_labels(text: str) -> set[str]:
    return {m for m in re.findall(r"label=(<[^\n]*?>), ", text) if "&#10033;" in m}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(EXAMPLES), seed=st.integers(0, 10**6))
def test_every_convolution_is_drawn_as_it_is(name: str, seed: int) -> None:
    """A block drawn once for several uses stands only for uses drawn alike: a 5x5 copy of
    conv_bn was shown by the panel of its 3x3 uses."""
    s = space(name)
    arch = s.materialize(s.sample(seed))
    assert _glyph_labels(architecture_dot(arch, expand=True)) == \
        _glyph_labels(architecture_dot(arch, fit=None))


def test_a_use_with_other_arguments_is_drawn_apart_and_uses_are_counted() -> None:
    s = space("digits")
    cfg = s.sample(27)  # conv_bn: the stem, two alike copies of the repeat, a 5x5 third copy
    assert cfg["network/repeat[2]/conv_bn/k"] == 5 and cfg["network/repeat"] == 3
    text = architecture_dot(s.materialize(cfg), fit=None)
    assert "&#10033;5" in text
    assert "conv_bn: drawn once, used 4 times" in text  # stem, x 2, residual's


def test_uses_count_every_copy_and_each_use_shows_its_shapes() -> None:
    s = space("nb201")
    text = architecture_dot(s.materialize(s.sample(1)), fit=None)
    assert "cell: drawn once, used 15 times" in text and "reduction: drawn once, used 2 " \
        "times" in text
    assert 'label="[16, 32, 32]\\n[32, 16, 16]\\n[64, 8, 8]"' in text  # the cell's input
    nb101 = space("nb101")
    text = architecture_dot(nb101.materialize(nb101.sample(3)), fit=None)
    assert "nb101_op: drawn once, used 18 times" in text  # 2 in each of 9 cells
    assert text.count('label="[64, 32, 32]\\n[64, 16, 16]\\n[64, 8, 8]"') >= 3


def test_parameter_counts_stay_outside_small_glyphs() -> None:
    s = space("nb201")
    text = architecture_dot(s.materialize(s.sample(1)), params=True, fit=None)
    lines = [ln for ln in text.splitlines() if 'fixedsize="true"' in ln]
    assert any("xlabel=" in ln and "params" in ln for ln in lines)
    for ln in lines:
        assert "params" not in re.search(r" label=(<[^\n]*?>|\"[^\"]*\")", ln).group(1)
    assert "2,336 / 9,280 / 36,992 params" in text  # a cell edge's size in each stage


def test_a_wide_architecture_is_cut_to_fit_and_says_how_to_expand() -> None:
    s = space("darts")
    arch = s.materialize(s.sample(0))
    text = architecture_dot(arch)
    assert "drawn as boxes to fit (--depth N or --expand draws more)" in text
    for full in (architecture_dot(arch, expand=True), architecture_dot(arch, depth=3),
                 architecture_dot(arch, fit=None)):
        assert "to fit" not in full and full.count("\n") > text.count("\n")
    small = space("digits")
    assert "to fit" not in architecture_dot(small.materialize(small.sample(2)))


@needs_dot
@pytest.mark.parametrize("name", EXAMPLES)
def test_default_drawings_fit_a_screen(name: str) -> None:
    """darts.arch was 10,315 pixels wide; a drawing cut to fit is at most about 2,000."""
    s = space(name)
    for seed in (0, 1):
        text = architecture_dot(s.materialize(s.sample(seed)))
        plain = subprocess.run(["dot", "-Tplain"], input=text.encode(), capture_output=True,
                               check=True).stdout.split()
        pixels = float(plain[2]) * DPI
        if "to fit" in text or name == "darts":
            assert pixels <= FIT_WIDTH * 1.25, (seed, pixels)


def _convolutions_drawn(text: str) -> int:
    """How many convolutions a drawing stands for: each convolution glyph times the copies
    (`x N`) and uses (`used N times`) of the clusters around it."""
    total, stack, opening = 0, [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("subgraph cluster_"):
            stack.append(1)
            opening = True
        elif opening and stripped.startswith("graph ["):
            label = re.search(r' label="([^"]*)"', stripped)
            times = re.search(r"(?:\u00d7 (\d+)|used (\d+) times)", label.group(1) if label else "")
            stack[-1] = int(times.group(1) or times.group(2)) if times else 1
            opening = False
        elif stripped == "}" and stack:
            stack.pop()
        elif "&#10033;" in stripped and "projection" not in stripped and " -> " not in stripped:
            total += math.prod(stack)
    return total


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(EXAMPLES), seed=st.integers(0, 10**6))
def test_copies_and_uses_count_every_convolution_once(name: str, seed: int) -> None:
    """"used 2 times" was printed for three copies: counted over the drawing, every
    convolution of the network is stood for exactly once."""
    s = space(name)
    arch = s.materialize(s.sample(seed))
    convs = sum(1 for _, op in arch.graph.nodes(data="op") if op in ("conv2d", "relu_conv_bn"))
    assert _convolutions_drawn(architecture_dot(arch, fit=None)) == convs
    assert _convolutions_drawn(architecture_dot(arch, expand=True)) == convs
