"""Every registered layer used without an argument it needs: a located error, never a crash.

The cases are drawn from the registry (archdsl.layers.LAYERS), so a layer added later is covered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from archdsl.backends import pytorch as pt
from archdsl.backends.ops import OPS

import archdsl
from archdsl.cli import main
from archdsl.errors import ArchDSLError
from archdsl.layers import LAYERS, ArgSpec, LayerSig

VALUE = {"int": "2", "int?": "2", "float": "0.1", "bool": "true", "pad": "same", "groups": "1",
         "any": "2"}
USED = 3  # the line the layer is on in `source`


def value_of(spec: ArgSpec) -> str:
    return spec.type[4:].split("|")[0] if spec.type.startswith("sym:") else VALUE[spec.type]


def source(use: str) -> str:
    return f"input x: [4, 8, 8]\nnetwork {{\n  x -> {use}\n}}\n"


def uses(sig: LayerSig) -> Iterator[tuple[str, list[str]]]:
    """(how the layer is written, the arguments it lacks): bare, with empty parentheses, and with
    every argument but one needed one given (by name), or that one given as none."""
    needed = [a.name for a in sig.args if a.needed]
    yield sig.name, needed
    yield f"{sig.name}()", needed
    for gone in needed:
        given = [f"{a.name} = {value_of(a)}" for a in sig.args if a.name != gone]
        yield f"{sig.name}({', '.join(given)})", [gone]
        yield f"{sig.name}({', '.join([*given, f'{gone} = none'])})", []


def build(text: str) -> None:
    space = archdsl.loads(text, file="case.arch")
    pt.plan(space.materialize(space.default()))


def check_uses(sig: LayerSig) -> None:
    for use, missing in uses(sig):
        try:
            build(source(use))
        except ArchDSLError as e:
            assert e.span is not None and e.span.line == USED and e.span.file == "case.arch", use
            for name in missing:
                assert f"'{name}'" in e.message, (use, e.message)
        else:
            assert not missing, f"{use}: built without {missing}"


@pytest.mark.parametrize("name", sorted(n for n, s in LAYERS.items() if s.inputs == 1))
def test_a_layer_without_its_arguments_is_a_located_error(name: str) -> None:
    check_uses(LAYERS[name])


def test_the_cases_cover_layers_that_need_arguments() -> None:
    assert {"linear", "conv1d", "conv2d", "embedding", "attention", "relu_conv_bn"} <= {
        n for n, s in LAYERS.items() if any(a.needed for a in s.args)}


class Scale:  # the module is never built: the missing argument is found before
    def __init__(self, in_shape: list[int], times: int, by: int) -> None:
        raise AssertionError("built")


def scale_shape(in_shape: list[int], times: int, by: int) -> list[int]:
    return [in_shape[0] * times * by, *in_shape[1:]]


def test_a_user_operation_without_its_arguments_is_a_located_error() -> None:
    """`times` is required, `by` has no default and `none` is no int: both are needed."""
    pt.register_op("scale_twice", Scale, scale_shape,
                   args=[ArgSpec("times", "int", required=True), ArgSpec("by", "int")])
    try:
        assert [a.required for a in LAYERS["scale_twice"].args] == [True, True]
        check_uses(LAYERS["scale_twice"])
    finally:
        del LAYERS["scale_twice"], OPS["scale_twice"]


def test_the_message_names_the_argument_and_shows_the_signature() -> None:
    with pytest.raises(ArchDSLError) as info:
        build(source("embedding"))
    assert info.value.message == "layer 'embedding' needs its arguments 'num', 'dim'"
    assert info.value.hint == "call it as `embedding(num, dim)`"
    assert (info.value.span.line, info.value.span.column) == (USED, 8)


@pytest.mark.parametrize("layer", ["linear", "conv2d", "conv1d", "embedding", "attention",
                                   "relu_conv_bn"])
@pytest.mark.parametrize("command", ["check", "count", "compile"])
def test_cli_reports_the_missing_argument(capsys, tmp_path: Path, layer: str,
                                          command: str) -> None:
    """Issue 11 item 5's reproducer: `x -> linear` was a TypeError traceback."""
    path = tmp_path / "a.arch"
    path.write_text(source(layer))
    rc = main([command, str(path)])
    out, err = capsys.readouterr()
    if command == "count":  # counting builds nothing: the file is a valid space of one
        assert rc == 0 and out.strip() == "1", (out, err)
        return
    assert rc == 1 and "Traceback" not in err, err
    first = err.splitlines()[0]
    assert first.startswith(f"{path}:{USED}:8: error: layer '{layer}' needs its argument"), err
    assert f"hint: call it as `{LAYERS[layer].signature()}`" in err
