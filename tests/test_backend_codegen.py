"""Code generation (backends/codegen.py) with untrusted text: file names, identifiers and layer
paths from a .arch file never break out of the generated source, names that are Python keywords,
builtins or the generator's own names give working code, and zero branches in every combinator
compile, run and export."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import keyword
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from archdsl.backends import plan as planning
from archdsl.backends import pytorch as pt
from archdsl.backends.ops import OPS
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import archdsl
from archdsl import ArchDSLError
from archdsl.layers import LAYERS
from archdsl.quoting import escape_text, py_identifier, py_literal

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
EVIL = 'm""";__import__("os").system("id>pwned.txt");""".arch'


def _arch(text: str, file: str = "<string>") -> archdsl.Architecture:
    space = archdsl.loads(text, file=file)
    return space.materialize(space.default())


def _check_structure(src: str, modules: tuple[str, ...] = ("torch",)) -> None:
    """The file is a docstring, imports of torch, and one class whose body assigns
    `input_shapes` and defines `__init__` and `forward`: nothing else runs on import."""
    tree = ast.parse(src)
    doc, *rest = tree.body
    assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
    *imports, cls = rest
    for imp in imports:
        assert isinstance(imp, ast.Import | ast.ImportFrom)
        mods = [a.name for a in imp.names] if isinstance(imp, ast.Import) else [imp.module]
        assert all(m.split(".")[0] in modules for m in mods)
    assert isinstance(cls, ast.ClassDef) and cls.decorator_list == []
    assert [type(s) for s in cls.body] == [ast.Assign, ast.FunctionDef, ast.FunctionDef]
    assert ast.literal_eval(cls.body[0].value) is not None  # input_shapes: a plain literal
    assert [f.name for f in cls.body[1:]] == ["__init__", "forward"]
    assert all(f.decorator_list == [] for f in cls.body[1:])


def _load(src: str, tmp_path: Path, name: str) -> object:
    path = tmp_path / f"{name}.py"
    path.write_text(src, "utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _exec(src: str) -> dict:
    ns: dict = {"__name__": "generated"}
    exec(compile(src, "generated", "exec"), ns)  # noqa: S102 - the code under test
    return ns


@contextlib.contextmanager
def _registered(name: str, *args: object, **kwargs: object) -> Iterator[None]:
    """A user operation, registered for the duration only."""
    pt.register_op(name, *args, **kwargs)
    try:
        yield
    finally:
        del OPS[name], LAYERS[name]


class Tagged(nn.Module):
    """A user operation that keeps its arguments (importable: this module)."""

    def __init__(self, in_shape: list[int], tag: object = "", scale: float = 1.0) -> None:
        super().__init__()
        self.tag, self.scale = tag, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _same_model(arch: archdsl.Architecture | planning.Plan, mod: object) -> None:
    """The file's Net and build() have the same weights from the same seed and compute the same
    outputs."""
    torch.manual_seed(3)
    theirs = mod.Net()
    ours = pt.build(arch, seed=3)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in ours.state_dict().items():
        assert torch.equal(v, theirs.state_dict()[k])
    xs = pt.example_inputs(arch, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(*xs), theirs.eval()(*xs))
    assert ours.input_shapes == theirs.input_shapes


# ---------------------------------------------------------------- the reported file name
def test_a_file_name_cannot_inject_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / EVIL
    bad.write_text("input x: [4]\nnetwork { x -> linear(2) }\n")
    from archdsl.cli import main

    assert main(["compile", str(bad), "-o", str(tmp_path / "model.py")]) == 0
    src = (tmp_path / "model.py").read_text()
    _check_structure(src)
    mod = _load(src, tmp_path, "model")
    assert not (tmp_path / "pwned.txt").exists()
    assert EVIL in mod.__doc__


@SETTINGS
@given(st.text(min_size=1, max_size=40))
def test_any_file_name_stays_inside_the_docstring(name: str) -> None:
    arch = _arch("input x: [4]\nnetwork { x -> linear(2) }\n", file=name)
    src = pt.source(arch)
    compile(src, "generated", "exec")
    _check_structure(src)
    doc = ast.get_docstring(ast.parse(src), clean=False)
    assert doc.startswith(f"Generated by archdsl from {Path(name).name or 'a search space'}:")


# ---------------------------------------------------------------- identifiers
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
PYTHON_NAMES = st.sampled_from(sorted({*keyword.kwlist, *keyword.softkwlist, "torch", "nn", "F",
                                       "self", "x", "x1", "x2", "forward", "input_shapes",
                                       "training", "input", "print", "id", "Net", "super",
                                       "__init__", "__class__", "_", "eval", "cuda", "to"}))
IDENT = st.one_of(PYTHON_NAMES, NAME)


@SETTINGS
@given(a=IDENT, b=IDENT, block=IDENT, node=IDENT)
def test_any_identifiers_give_working_code(a: str, b: str, block: str, node: str) -> None:
    """Inputs, blocks and graph nodes named like Python keywords, builtins, or the generator's
    own names: the source compiles, defines only the class, and equals build()."""
    assume(len({a, b}) == 2)
    text = (f"input {a}: [4]\ninput {b}: [4]\n"
            f"block {block}(c) {{ linear(c) -> relu }}\n"
            f"network {{\n    {node} = add({a} -> {block}(4), {b} -> linear(4))\n"
            f"    return {node} -> linear(3)\n}}\n")
    try:
        arch = _arch(text)
    except ArchDSLError:
        assume(False)  # a name the language itself reserves
    src = pt.source(arch)
    compile(src, "generated", "exec")
    _check_structure(src)
    mod = types.SimpleNamespace(**_exec(src))
    _same_model(arch, mod)


def test_keyword_and_module_inputs(tmp_path: Path) -> None:
    arch = _arch("input class: [16]\ninput torch: [16]\ninput self: [16]\n"
                 "network { add(class -> linear(4), torch -> linear(4), self -> linear(4)) }\n")
    src = pt.source(arch)
    assert "def forward(self, class_: torch.Tensor, torch_: torch.Tensor, self_: torch.Tensor)" \
        in src
    mod = _load(src, tmp_path, "keywords")
    assert mod.Net.input_shapes == {"class": [16], "torch": [16], "self": [16]}
    _same_model(arch, mod)


def test_layer_names_never_shadow_module_attributes() -> None:
    """Every public attribute of nn.Module is reserved: a layer never replaces one."""
    public = {n for n in [*dir(nn.Module), *vars(nn.Module())] if not n.startswith("_")}
    assert public <= planning._RESERVED
    assert planning._module_name("network/__init__/_x") == "init_x"  # never private


def test_a_layer_name_never_equals_another_layers_projection(tmp_path: Path) -> None:
    """A residual add named `residual_add` keeps its shortcut in `residual_add_proj`; a layer
    that is itself called `residual_add_proj` must not take that attribute."""
    from _custom_ops import ChannelScale, channel_scale_shape

    with _registered("residual_add_proj", ChannelScale, channel_scale_shape):
        arch = _arch("input x: [4, 8, 8]\n"
                     "network { x -> residual_add_proj -> residual { conv2d(8, stride = 2) } }\n")
        p = pt.plan(arch)
        model = pt.build(p)
        assert sum(t.numel() for t in model.parameters()) == p.params
        names = [n for n, _ in model.named_children()]
        assert len(names) == len(set(names)) == 3


def test_class_name_is_checked() -> None:
    arch = _arch("input x: [4]\nnetwork { x -> linear(2) }\n")
    for bad in ["class", "A B", "Net(nn.Module):\n    pass\nclass X", ""]:
        with pytest.raises(ArchDSLError, match="not a Python identifier"):
            pt.source(arch, class_name=bad)
        with pytest.raises(ArchDSLError, match="not a Python identifier"):
            pt.build(arch, class_name=bad)


def test_user_operation_arguments_are_literals(tmp_path: Path) -> None:
    """A user operation's string, symbol and float arguments are written as Python literals."""
    from archdsl import ArgSpec

    with _registered("tagged", Tagged, lambda in_shape, **a: in_shape,
                     args=[ArgSpec("tag", "any", ""), ArgSpec("scale", "float", 1.0)]):
        arch = _arch('input x: [4]\nnetwork { x -> tagged(tag = "a\\"\\n)", scale = 2.5) '
                     "-> tagged(tag = same) }\n")
        src = pt.source(arch)
        _check_structure(src, ("torch", __name__))
        mod = _load(src, tmp_path, "tagged_model")
        net = mod.Net()
        assert [m.tag for m in net.children()] == ['a"\n)', "same"]
    for bad in ["bad name", "class", "a.b", "é"]:
        with pytest.raises(ValueError, match="name"):
            pt.register_op(bad, Tagged, lambda in_shape: in_shape)
        assert bad not in OPS and bad not in LAYERS
    with pytest.raises(ValueError, match="argument name 'for'"):
        pt.register_op("tagged2", Tagged, lambda in_shape: in_shape, args=[ArgSpec("for", "int")])
    assert "tagged2" not in OPS and "tagged2" not in LAYERS


# ---------------------------------------------------------------- zero branches, every format
LEAF = st.sampled_from(["zero", "identity", "linear(4)", "relu", "linear(6)"])


def _stage(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    alts = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        st.builds(lambda m, a: f"parallel({m}) {{ {' | '.join(a)} }}",
                  st.sampled_from(["add", "multiply", "concat"]), alts),
        st.builds(lambda b: f"residual {{ {b} }}", children),
        st.builds(lambda b, s: f"residual {{ {b} }} skip {{ {s} }}", children, children),
        st.builds(lambda a: f"one_of {{ {' | '.join(a)} }}", alts),
        st.builds(lambda b: f"optional {{ {b} }}", children),
        st.builds(lambda b: f"repeat(2) {{ {b} }}", children),
    )


PIPES = st.recursive(LEAF, lambda inner: st.lists(st.one_of(inner, _stage(inner)), min_size=1,
                                                  max_size=3).map(" -> ".join), max_leaves=8)


@SETTINGS
@given(PIPES, st.booleans())
def test_zero_branches_compile_run_and_script(pipe: str, bigger: bool) -> None:
    """Every combinator with zero branches: the source compiles and computes what the
    layer-by-layer interpretation computes, and TorchScript accepts it."""
    try:
        space = archdsl.loads(f"input x: [4]\nnetwork {{ x -> {pipe} }}\n")
        arch = space.materialize(space.sample(int(bigger)))
        p = pt.plan(arch)
    except ArchDSLError:
        assume(False)  # shapes that do not fit: not this test's business
    ns = _exec(pt.source(p))
    model = pt.build(p, seed=0).eval()
    xs = pt.example_inputs(p, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = pt.interpret(model, p, *xs)[p.output]
        torch.testing.assert_close(model(*xs), want)
        torch.manual_seed(0)
        torch.testing.assert_close(ns["Net"]().eval()(*xs), want)
        torch.testing.assert_close(torch.jit.script(model)(*xs), want)


@pytest.mark.parametrize("suffix", [".py", ".pt", ".onnx"])
@pytest.mark.parametrize("net", [
    "x -> parallel(add) { zero | linear(4) | relu }",  # was an IndexError in .py
    "x -> parallel(add) { zero | zero }",
    "x -> parallel(concat) { zero | linear(3) } -> parallel(multiply) { zero | identity }",
    "x -> residual { zero } skip { zero }",
    "x -> residual { linear(8) -> zero }",
    "x -> zero",
])
def test_zero_branches_export_to_every_format(tmp_path: Path, net: str, suffix: str) -> None:
    if suffix == ".onnx":
        pytest.importorskip("onnx", reason="onnx is not installed")
    from archdsl.cli import main

    f = tmp_path / "z.arch"
    f.write_text(f"input x: [4]\nnetwork {{ {net} }}\n")
    out = tmp_path / f"model{suffix}"
    assert main(["compile", str(f), "-o", str(out)]) == 0
    arch = _arch(f.read_text())
    xs = pt.example_inputs(arch, generator=torch.Generator().manual_seed(0))
    want = pt.build(arch, seed=0).eval()(*xs)
    if suffix == ".py":
        net_class = _load(out.read_text(), tmp_path, "zmodel").Net
        torch.manual_seed(0)  # the weights build(seed=0) and `compile --seed 0` draw
        got = net_class().eval()(*xs)
    elif suffix == ".pt":
        got = torch.jit.load(str(out))(*xs)
    else:
        import onnx

        onnx.checker.check_model(onnx.load(str(out)))
        return
    torch.testing.assert_close(got.detach(), want.detach())


# ---------------------------------------------------------------- the quoting functions
QUICK = settings(max_examples=200, deadline=None, derandomize=True)


@QUICK
@given(st.text())
def test_escape_text_is_one_inert_line(text: str) -> None:
    e = escape_text(text)
    assert e.isprintable() and "\n" not in e
    for quote in ('"', "'", '"""'):
        assert ast.literal_eval(f"{quote}{e}{quote}") == text


@QUICK
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c, max_size=3),
                    max_leaves=10))
def test_py_literal_evaluates_to_the_value(v: object) -> None:
    got = eval(py_literal(v), {})  # noqa: S307 - the code under test
    assert repr(got) == repr(v)


@QUICK
@given(st.text(max_size=12), st.sets(NAME, max_size=5))
def test_py_identifier_is_usable(name: str, taken: set[str]) -> None:
    out = py_identifier(name, taken)
    assert out.isidentifier() and out.isascii() and not keyword.iskeyword(out)
    assert out not in taken and not out.startswith("__")
    ns: dict = {}
    exec(f"def f({out}): return {out}", ns)  # noqa: S102 - checks it is a parameter name
    assert ns["f"](1) == 1


def test_a_user_operation_defined_in_a_function(tmp_path: Path) -> None:
    """build() uses the registered class itself; a file that could not import it is refused
    with a located error instead of being written."""
    class Local(nn.Module):
        def __init__(self, in_shape: list[int]) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(in_shape))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.w

    with _registered("local_scale", Local, lambda in_shape: in_shape):
        arch = _arch("input x: [4]\nnetwork {\n    x -> local_scale\n}\n", file="local.arch")
        model = pt.build(arch, seed=0)
        assert isinstance(model.local_scale, Local)
        with pytest.raises(ArchDSLError) as e:
            pt.export(arch, tmp_path / "m.py")
        assert e.value.format().startswith("local.arch:3:10: error: local_scale: its class is "
                                           "defined in a function")
        assert not (tmp_path / "m.py").exists()
