"""Diagrams: deterministic DOT (golden files), every example drawn, SVG that parses.

Regenerate the golden files with `ARCHDSL_REGEN_GOLDEN=1 python -m pytest tests/test_backend_diagram.py`.
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from archdsl.backends.diagram import architecture_dot, render, to_svg
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
