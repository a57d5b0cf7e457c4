"""The PyTorch backend: static shapes match real forward passes, the generated module behaves as
an ordinary nn.Module, exports round-trip, shape errors point at the .arch line, and parameter
counts match NAS-Bench-201 exactly."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from archdsl.backends import layercopy
from archdsl.backends import pytorch as pt

import archdsl
from archdsl import ShapeError
from archdsl.evaluators import nb201

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NAMES = ["digits", "nb201", "resnet", "transformer", "darts", "nb101", "hierarchical"]


@pytest.fixture(scope="module")
def spaces() -> dict[str, archdsl.Space]:
    return {n: archdsl.load(EXAMPLES / f"{n}.arch") for n in NAMES}


def arch_of(text: str, config: dict | None = None) -> archdsl.Architecture:
    space = archdsl.loads(text)
    return space.materialize(config if config is not None else space.default())


# ---------------------------------------------------------------- static shapes = real shapes
@pytest.mark.parametrize("name", NAMES)
def test_static_shapes_equal_forward_shapes(spaces: dict, name: str) -> None:
    """100 sampled architectures per example: every layer's inferred shape is the shape a
    forward pass produces, and the optimised forward equals the layer-by-layer interpretation.
    Every 5th runs on real tensors; the others on PyTorch's meta device (PyTorch's own shape
    functions, no arithmetic), which keeps the big examples (nb101, resnet) fast."""
    space = spaces[name]
    torch.manual_seed(0)
    for i, config in enumerate(space.samples(100, seed=11)):
        p = pt.plan(space.materialize(config))
        real = i % 5 == 0
        with torch.device("cpu" if real else "meta"):
            model = pt.build(p).eval()
            xs = pt.example_inputs(p, batch=1 if real else 2)
        with torch.no_grad():
            values = pt.interpret(model, p, *xs)
            y = model(*xs)
        for node, v in values.items():
            assert tuple(v.shape[1:]) == p.steps[node].out.shape, (name, p.steps[node].path)
        assert y.shape == values[p.output].shape
        if real:
            torch.testing.assert_close(y, values[p.output], rtol=1e-4, atol=1e-5)
        assert sum(t.numel() for t in model.parameters()) == p.params


def test_summary_and_metrics(spaces: dict) -> None:
    arch = spaces["digits"].materialize(spaces["digits"].default())
    rows = pt.summary(arch)
    assert rows[0]["op"] == "input" and rows[0]["shape"] == [1, 8, 8]
    assert rows[-1]["shape"] == [10]
    m = pt.metrics(arch)
    assert m["params"] == sum(r["params"] for r in rows)
    assert m["flops"] == sum(r["flops"] for r in rows) > 0
    assert m["output_shape"] == [10]


# ---------------------------------------------------------------- parameters and FLOPs by hand
def test_params_and_macs_by_hand() -> None:
    arch = arch_of("input x: [3, 8, 8]\nnetwork { x -> conv2d(4, kernel = 3, padding = same)"
                   " -> batchnorm -> relu -> max_pool(2) -> flatten -> linear(5) }")
    p = pt.plan(arch)
    conv = 4 * 3 * 9 + 4
    assert p.params == conv + 2 * 4 + (4 * 4 * 4 * 5 + 5)
    assert p.flops == 4 * 3 * 9 * 8 * 8 + 64 * 5
    assert p.output_shape == [5]


def test_attention_and_embedding_counts() -> None:
    arch = arch_of("input t: [12]\nnetwork { t -> embedding(100, 16) -> attention(4) "
                   "-> layernorm -> global_avg_pool -> linear(3) }")
    p = pt.plan(arch)
    assert p.params == 100 * 16 + (4 * 16 * 16 + 4 * 16) + 2 * 16 + (16 * 3 + 3)
    assert p.flops == (4 * 12 * 16 * 16 + 2 * 12 * 12 * 16) + 16 * 3
    model = pt.build(p)
    assert sum(t.numel() for t in model.parameters()) == p.params
    (x,) = pt.example_inputs(p)
    assert x.dtype == torch.long and model(x).shape == (2, 3)


def test_depthwise_and_grouped_convolution() -> None:
    arch = arch_of("input x: [8, 16, 16]\nnetwork { x -> conv2d(16, groups = depthwise)"
                   " -> conv2d(8, kernel = 1, groups = 4, bias = false) }")
    p = pt.plan(arch)
    assert p.params == (16 * 1 * 9 + 16) + 8 * 4
    model = pt.build(p)
    assert sum(t.numel() for t in model.parameters()) == p.params


def test_conv1d_signal_layout() -> None:
    arch = arch_of("input s: [2, 64]\nnetwork { s -> conv1d(8, kernel = 5, stride = 2) "
                   "-> batchnorm -> avg_pool(2) -> global_max_pool -> linear(3) }")
    p = pt.plan(arch)
    shapes = [s.out.shape for s in p.layers()]
    assert shapes == [(8, 32), (8, 32), (8, 16), (8,), (3,)]
    assert pt.build(p)(*pt.example_inputs(p)).shape == (2, 3)


# ---------------------------------------------------------------- the residual projection rule
@pytest.mark.parametrize("body,shape,proj", [
    ("conv2d(8)", (8, 8, 8), "nn.Conv2d(4, 8, 1, bias=False)"),
    ("conv2d(4, stride = 2)", (4, 4, 4), "nn.Conv2d(4, 4, 1, stride=2, bias=False)"),
    ("conv2d(16, stride = 2)", (16, 4, 4), "nn.Conv2d(4, 16, 1, stride=2, bias=False)"),
    ("conv2d(4)", (4, 8, 8), None),
])
def test_residual_projection_rule(body: str, shape: tuple, proj: str | None) -> None:
    """A residual whose body changes the shape gets a 1x1 convolution (stride = the downsampling
    factor) and a batchnorm on its shortcut; one that keeps the shape is a plain sum."""
    p = pt.plan(arch_of(f"input x: [4, 8, 8]\nnetwork {{ x -> residual {{ {body} }} }}"))
    add = p.steps[p.output]
    assert add.out.shape == shape
    text = pt.source(p)
    if proj is None:
        assert "_proj" not in text and add.params == 0
    else:
        assert proj in text and "BatchNorm2d" in text
        assert add.params == 4 * shape[0] + 2 * shape[0]
    model = pt.build(p)
    assert sum(t.numel() for t in model.parameters()) == p.params
    assert model(*pt.example_inputs(p)).shape[1:] == shape


def test_residual_projection_of_vectors_is_linear() -> None:
    p = pt.plan(arch_of("input v: [6]\nnetwork { v -> residual { linear(10) } }"))
    assert "nn.Linear(6, 10, bias=False)" in pt.source(p)
    assert p.params == (6 * 10 + 10) + 6 * 10


# ---------------------------------------------------------------- shape errors at the .arch line
SHAPE_ERRORS = {
    "add of different channels": (
        "input x: [3, 8, 8]\nnetwork {\n  x -> parallel(add) {\n    conv2d(16)\n  | conv2d(32)\n"
        "  }\n}\n", 3, "add: input shapes differ: [16, 8, 8], [32, 8, 8]"),
    "linear on an image": (
        "input x: [3, 8, 8]\nnetwork {\n  x -> conv2d(8)\n    -> linear(10)\n}\n", 4,
        "linear expects [features] or [length, features], got [8, 8, 8]"),
    "concat of different spatial sizes": (
        "input x: [3, 8, 8]\nnetwork {\n  x -> parallel(concat) {\n    conv2d(4, stride = 2)\n"
        "  | conv2d(4)\n  }\n}\n", 3, "concat: inputs [4, 4, 4], [4, 8, 8] differ"),
    "conv2d on a vector": (
        "input x: [3, 8, 8]\nnetwork {\n  x -> flatten\n  -> conv2d(4)\n}\n", 4,
        "conv2d expects [channels, height, width], got [192]"),
    "pooling too far": (
        "input x: [3, 4, 4]\nnetwork {\n  x -> max_pool(2) -> max_pool(2)\n  -> max_pool(2)\n}\n",
        4, "max_pool: a window of 2 does not fit an input of size 1"),
    "heads that do not divide the width": (
        "input t: [10, 30]\nnetwork {\n  t\n  -> attention(4)\n}\n", 4,
        "attention: 4 heads do not divide the 30 features"),
    "groups that do not divide the channels": (
        "input x: [3, 8, 8]\nnetwork {\n  x -> conv2d(8, groups = 2)\n}\n", 3,
        "conv2d: groups = 2 must divide the input channels (3)"),
    "residual not a whole downsampling": (
        "input x: [3, 9, 9]\nnetwork {\n  x\n  -> residual { conv2d(3, kernel = 2, padding = 0) }\n}\n",
        4, "residual: the body's output [3, 8, 8] is not its input [3, 9, 9] downsampled"),
    "batchnorm on a sequence": (
        "input t: [10, 32]\nnetwork {\n  t -> batchnorm\n}\n", 3, "batchnorm expects"),
    "embedding after a layer": (
        "input t: [10, 32]\nnetwork {\n  t -> linear(4)\n  -> embedding(10, 4)\n}\n", 4,
        "embedding takes a declared input of token ids"),
    "softmax over a missing axis": (
        "input v: [10]\nnetwork {\n  v -> softmax(dim = 1)\n}\n", 3, "softmax: dim 1 is outside"),
}


@pytest.mark.parametrize("kind", sorted(SHAPE_ERRORS))
def test_shape_error_points_at_the_line(kind: str) -> None:
    text, line, message = SHAPE_ERRORS[kind]
    space = archdsl.loads(text, file="bad.arch")
    with pytest.raises(ShapeError) as info:
        pt.plan(space.materialize(space.default()))
    err = info.value
    assert err.span is not None and err.span.line == line, err.format()
    assert message in err.message
    report = err.format()
    assert report.startswith(f"bad.arch:{line}:") and "^" in report


# ---------------------------------------------------------------- an ordinary nn.Module
def test_module_behaves_like_a_hand_written_one(spaces: dict) -> None:
    space = spaces["digits"]
    p = pt.plan(space.materialize(space.sample(3)))
    model = pt.build(p)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(int(b.num_batches_tracked) == 0 for b in bns)  # no forward at build
    assert all(torch.equal(b.running_mean, torch.zeros_like(b.running_mean)) for b in bns)
    seen: list[str] = []
    for name, m in model.named_children():
        m.register_forward_hook(lambda mod, i, o, name=name: seen.append(name))
    model.train()
    y = model(*pt.example_inputs(p, batch=4))
    assert seen and seen[0] == next(iter(dict(model.named_children())))
    y.sum().backward()
    assert all(t.grad is not None for t in model.parameters())
    assert int(bns[0].num_batches_tracked) == 1
    model.eval()
    assert not any(m.training for m in model.modules())
    xs = pt.example_inputs(p, batch=3)
    torch.testing.assert_close(model(*xs), model(*xs))


def test_state_dict_keys_are_stable_across_processes(spaces: dict) -> None:
    code = ("import archdsl, json; from archdsl.backends import pytorch as pt; "
            "s = archdsl.load('examples/nb201.arch'); "
            "print(json.dumps(list(pt.build(s.materialize(s.sample(5))).state_dict())))")
    outs = set()
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                                capture_output=True, text=True).stdout)
    assert len(outs) == 1
    keys = list(pt.build(spaces["nb201"].materialize(spaces["nb201"].sample(5))).state_dict())
    assert outs.pop().strip() == str(keys).replace("'", '"')
    assert keys[0] == "conv2d.weight" and any(k.startswith("reduction_") for k in keys)


def test_unused_values_are_released() -> None:
    """Each variable of the forward pass is reused as soon as its tensor is dead, so a long
    pipeline keeps one live name."""
    arch = arch_of("input img: [4, 8, 8]\nnetwork { img -> repeat(6) { conv2d(4) -> relu } }")
    text = pt.source(arch)
    forward = text.split("def forward")[1]
    assert "x1" not in forward and forward.count("x = ") == 12


def test_zero_branches_are_dropped_but_their_parameters_kept() -> None:
    arch = arch_of("input x: [4, 8, 8]\nnetwork { x -> parallel(add) { zero | conv2d(4) } }")
    text = pt.source(arch)
    assert "zeros_like" not in text
    arch = arch_of("input x: [4, 8, 8]\nnetwork { x -> parallel(add) { zero | zero } "
                   "-> conv2d(4) }")
    assert "torch.zeros_like(x)" in pt.source(arch)


# ---------------------------------------------------------------- exports
@pytest.mark.parametrize("name", ["digits", "nb201", "transformer", "darts"])
def test_exported_source_reimports_with_identical_outputs(spaces: dict, name: str,
                                                          tmp_path: Path) -> None:
    space = spaces[name]
    arch = space.materialize(space.sample(7))
    model = pt.build(arch).eval()
    path = pt.export(arch, tmp_path / f"{name}_model.py")
    text = path.read_text()
    assert "archdsl" not in text.replace("Generated by archdsl", "")
    spec = importlib.util.spec_from_file_location(f"{name}_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    other = mod.Net()
    other.load_state_dict(model.state_dict())
    other.eval()
    xs = pt.example_inputs(arch, batch=3)
    with torch.no_grad():
        torch.testing.assert_close(other(*xs), model(*xs), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["digits", "nb201", "transformer"])
def test_torchscript_export(spaces: dict, name: str, tmp_path: Path) -> None:
    space = spaces[name]
    arch = space.materialize(space.sample(2))
    model = pt.build(arch).eval()
    path = pt.export(arch, tmp_path / "m.pt", model)
    loaded = torch.jit.load(str(path))
    xs = pt.example_inputs(arch, batch=2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(*xs), model(*xs))


@pytest.mark.parametrize("name", ["digits", "nb201", "transformer"])
def test_onnx_export_passes_the_checker(spaces: dict, name: str, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    space = spaces[name]
    arch = space.materialize(space.sample(4))
    path = pt.export(arch, tmp_path / "m.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input][:1] == [pt.plan(arch).steps[0].name]


def test_torch_compile_captures_the_whole_graph(spaces: dict) -> None:
    space = spaces["nb201"]
    arch = space.materialize(space.sample(9))
    model = pt.build(arch).eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    xs = pt.example_inputs(arch, batch=2)
    with torch.no_grad():
        torch.testing.assert_close(compiled(*xs), model(*xs))


@pytest.mark.parametrize("name", ["digits", "nb201", "transformer", "darts"])
def test_the_same_seed_gives_the_weights_of_the_exported_file(spaces: dict, name: str,
                                                             tmp_path: Path) -> None:
    """`build` makes layers it has made before without running their constructors again; the
    weights, buffers and random state afterwards are still those of the exported file's own
    constructors, build after build."""
    space = spaces[name]
    arch = space.materialize(space.sample(11))
    path = pt.export(arch, tmp_path / f"{name}_seeded.py")
    spec = importlib.util.spec_from_file_location(f"{name}_seeded", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for seed in (0, 1, 1):
        torch.manual_seed(seed)
        ours = pt.build(arch)
        ours_rng = torch.get_rng_state()
        torch.manual_seed(seed)
        theirs = mod.Net()
        assert torch.equal(ours_rng, torch.get_rng_state())
        a, b = ours.state_dict(), theirs.state_dict()
        assert list(a) == list(b)
        assert all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
        assert repr(ours).split("\n", 1)[1] == repr(theirs).split("\n", 1)[1]
        pairs = zip(list(ours.modules())[1:], list(theirs.modules())[1:], strict=True)
        for m, n in pairs:  # the layers (the two networks' own classes differ)
            assert type(m) is type(n) and m.training and sorted(vars(m)) == sorted(vars(n))
    assert any(layercopy._RECIPES.values())  # later builds did copy layers


def test_layers_are_constructed_for_real_where_a_copy_could_differ(spaces: dict) -> None:
    """Under a device context, or with global registration hooks, every layer is made by its
    constructor, as the exported file would make it."""
    arch = spaces["digits"].materialize(spaces["digits"].default())
    pt.build(arch)
    pt.build(arch)  # every layer of it has been made before
    with torch.device("meta"):
        assert all(t.is_meta for t in pt.build(arch).state_dict().values())
    seen: list[str] = []
    handle = torch.nn.modules.module.register_module_parameter_registration_hook(
        lambda module, name, param: seen.append(name))
    try:
        model = pt.build(arch)
    finally:
        handle.remove()
    assert len(seen) == len(list(model.parameters())) > 0


def test_export_to_an_unknown_format_is_an_error(spaces: dict, tmp_path: Path) -> None:
    arch = spaces["digits"].materialize(spaces["digits"].default())
    with pytest.raises(archdsl.ArchDSLError, match="cannot export"):
        pt.export(arch, tmp_path / "m.h5")


# ---------------------------------------------------------------- user operations
def test_user_registered_operation(tmp_path: Path) -> None:
    from _custom_ops import ChannelScale, channel_scale_shape

    pt.register_op("channel_scale", ChannelScale, channel_scale_shape,
                   args=[archdsl.ArgSpec("times", "int", 1)])
    arch = arch_of("input x: [3, 8, 8]\nnetwork { x -> channel_scale(times = choice(1, 2)) "
                   "-> conv2d(4) }", {"network/channel_scale/times": 2})
    p = pt.plan(arch)
    assert p.steps[1].out.shape == (6, 8, 8)
    assert p.params == 3 + (4 * 6 * 9 + 4)
    model = pt.build(p)
    assert model(*pt.example_inputs(p)).shape == (2, 4, 8, 8)
    path = pt.export(arch, tmp_path / "with_user_op.py")
    assert "from _custom_ops import ChannelScale" in path.read_text()
    bad = archdsl.loads("input v: [5]\nnetwork { v -> channel_scale }", file="u.arch")
    with pytest.raises(ShapeError, match=r"channel_scale: expects \[channels, \.\.\.\]") as info:
        pt.plan(bad.materialize({}))
    assert info.value.span.line == 2


# ---------------------------------------------------------------- NAS-Bench-201 fidelity
NB201_ROWS = ROOT / "tests" / "data" / "nb201_rows.csv"


def test_nb201_parameter_counts_match_the_benchmark(spaces: dict) -> None:
    """200 random rows of NAS-Bench-201 (kept in tests/data): the compiled network has exactly
    params_m million parameters, statically and when built."""
    space = spaces["nb201"]
    rows = list(csv.DictReader(NB201_ROWS.open()))
    assert len(rows) == 200
    for i, row in enumerate(rows):
        config = nb201.from_arch_string(row["arch"])
        assert nb201.to_arch_string(config) == row["arch"]
        arch = space.materialize(config)
        expected = round(float(row["params_m"]) * 1e6)
        assert pt.plan(arch).params == expected, row["index"]
        if i % 40 == 0:
            assert sum(t.numel() for t in pt.build(arch).parameters()) == expected


def test_nb201_known_rows(spaces: dict) -> None:
    space = spaces["nb201"]
    for arch_string, params in [
        ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
         "skip_connect~2|", 129_306),
        ("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
         None),
    ]:
        p = pt.plan(space.materialize(nb201.from_arch_string(arch_string)))
        if params:
            assert p.params == params
        assert p.output_shape == [10]


@pytest.mark.parametrize("bad", ["", "|conv~0|+|a~0|b~1|+|c~0|d~1|e~2|", "|none~0|+|none~0|",
                                 "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_nb201_bad_arch_strings(bad: str) -> None:
    with pytest.raises(archdsl.ConfigError):
        nb201.from_arch_string(bad)


# ---------------------------------------------------------------- constraints on params / flops
METRIC_SPACE = """\
input x: [4]
param w = choice(8, 16, 32)
network { x -> linear(w) -> linear(2) }
require params <= 150
"""  # w = 8: 58 params, 16: 114, 32: 226


def test_params_constraint_is_honoured_by_sampling_and_enumeration() -> None:
    space = archdsl.loads(METRIC_SPACE)
    assert space.count() == 3 and space.count(metrics=True) == 2
    assert [c["w"] for c in space.enumerate()] == [8, 16]
    for uniform in (True, False):
        seen = {c["w"] for c in space.samples(200, seed=1, uniform=uniform)}
        assert seen == {8, 16}
    with pytest.raises(archdsl.ConstraintError, match=r"params = 226"):
        space.materialize({"w": 32})
    with pytest.raises(archdsl.ConstraintError):
        space.validate({"w": 32})
    assert space.validate({"w": 16}) == {"w": 16}


def test_flops_constraint_and_the_default() -> None:
    space = archdsl.loads(METRIC_SPACE.replace("require params <= 150",
                                               "param limit = 100\nrequire flops <= limit")
                          .replace("choice(8, 16, 32)", "choice(32, 16, 8)"))
    assert space.default() == {"w": 16}  # the default (32) breaks it: first valid one


def test_impossible_params_constraint_is_a_clear_error() -> None:
    space = archdsl.loads(METRIC_SPACE.replace("150", "10"), file="imp.arch")
    with pytest.raises(archdsl.EmptySpaceError, match="no configuration satisfie") as info:
        space.default()
    assert info.value.span.file == "imp.arch"


def test_digits_samples_respect_its_params_limit(spaces: dict) -> None:
    space = spaces["digits"]
    for config in space.samples(30, seed=3):
        assert pt.metrics(space.materialize(config))["params"] <= 200_000
