"""The one-shot supernet (archdsl.backends.supernet): for sampled configurations of every
example space, the supernet's output has the stand-alone model's shape and equals the exported
model's (`model_for`); one backward under SPOS reaches only the chosen slices; the bank grows
keeping its values; checkpoints round-trip and refuse another space or a damaged file; BatchNorm
recalibration is an exact mean; bad configurations and a float that sets a shape are errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from _example_ops import example_ops
from archdsl.backends import ops as backend_ops
from archdsl.backends import pytorch as pt
from archdsl.backends.supernet import Supernet, space_hash
from torch import nn

import archdsl
from archdsl.errors import ArchDSLError, ConfigError, ShapeError
from archdsl.layers import LAYERS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.arch"))


@pytest.fixture(scope="module", autouse=True)
def registries() -> Iterator[None]:
    """The examples' operation modules imported (as `--ops examples.gnn_ops` does from the
    root folder); the registries, sys.path and sys.modules put back afterwards."""
    with example_ops():
        yield


def test_every_example_is_listed() -> None:
    known = {"digits", "nb201", "resnet", "transformer", "darts", "nb101", "hierarchical",
             "enas_macro", "ofa", "hybrid", "gnn"}
    assert known <= set(EXAMPLES)  # the glob finds them all (and any added later)


def _agree(name: str, n: int) -> None:
    """For n sampled configurations: after a training-mode pass (BatchNorm statistics move; for
    the first three), the eval-mode output has the planned shape and equals the exported model's."""
    space = archdsl.load(ROOT / "examples" / f"{name}.arch")
    net = Supernet(space, seed=1, scan=4)
    gen = torch.Generator().manual_seed(0)
    for i, config in enumerate(space.samples(n, seed=7)):
        p = pt.plan(space.materialize(config))
        xs = pt.example_inputs(p, batch=2, generator=gen)
        if i < 3:
            net.train()
            with torch.no_grad():
                net(*xs, config=config)
        net.eval()
        with torch.no_grad():
            y = net(*xs, config=config)
            alone = net.model_for(config).eval()(*xs)
        assert list(y.shape) == [2, *p.output_shape], (name, config)
        torch.testing.assert_close(y, alone, rtol=1e-5, atol=1e-5, msg=f"{name}: {config}")


@pytest.mark.parametrize("name", EXAMPLES)
def test_outputs_equal_the_exported_model(name: str) -> None:
    _agree(name, 20)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_outputs_equal_the_exported_model_100(name: str) -> None:
    _agree(name, 100)


def _digits() -> archdsl.Space:
    return archdsl.load(ROOT / "examples" / "digits.arch")


def test_configurations_share_their_layers_and_still_agree() -> None:
    """Entries are assembled from layers made once per (position, constructor): configurations
    with the same layer at a position hold the same (meta) module, and each still computes what
    its exported model does, after other configurations ran in between and after its entry was
    dropped from the cache and made again."""
    space = _digits()
    net = Supernet(space, seed=2, scan=4).eval()
    configs = list(space.samples(80, seed=5))
    mods = [m for c in configs for m in net._entry(c).model.children()]
    assert len({id(m) for m in mods}) < len(mods) / 4
    assert all(t.is_meta for m in mods for t in [*m.parameters(), *m.buffers()])
    xs = pt.example_inputs(pt.plan(space.materialize(configs[0])), batch=3,
                           generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for c in [*configs[:3], *configs[-3:]]:
            torch.testing.assert_close(net(*xs, config=c), net.model_for(c).eval()(*xs),
                                       rtol=1e-5, atol=1e-5)


def test_spos_backward_reaches_only_the_chosen_slices() -> None:
    space = _digits()
    net = Supernet(space, scan=16)
    config = space.sample(seed=3)
    e = net._entry(config)
    used = {key: shape for _, key, shape in e.params}
    xs = pt.example_inputs(e.plan, batch=4, generator=torch.Generator().manual_seed(0))
    net(*xs, config=config).square().sum().backward()
    slots = {slot: key for key, slot in net._slots.items()}
    reached = 0
    for slot, param in net.bank.items():
        key = slots[slot]
        if key not in used:
            assert param.grad is None, key
            continue
        mask = torch.ones_like(param, dtype=torch.bool)
        mask[net_index(param.shape, used[key], key)] = False
        assert param.grad is not None and not param.grad[mask].any(), key
        reached += bool(param.grad[~mask].any())
    assert reached >= len(used) // 2  # the chosen slices do get gradients
    assert len(used) < len(net.bank)  # and some of the bank is not on this path


def net_index(full: torch.Size, need: tuple[int, ...], key: tuple[str, str]) -> tuple:
    from archdsl.backends.supernet import _index

    return _index(full, need, key)


GROW = """input x: [3, 8, 8]
network { x -> conv2d(choice(4, 8), kernel = choice(3, 5), padding = same) -> batchnorm
            -> global_avg_pool -> linear(2) }"""


def test_growth_keeps_old_values_in_the_prefix_and_centre(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    space = archdsl.loads(GROW)
    net = Supernet(space, scan=0).eval()
    grown: list[tuple[nn.Parameter | None, nn.Parameter]] = []
    net.on_grow = lambda old, new: grown.append((old, new))
    small = {"network/conv2d/out": 4, "network/conv2d/kernel": 3}
    big = {"network/conv2d/out": 8, "network/conv2d/kernel": 5}
    assert space.validate(small) == small and space.validate(big) == big
    x = torch.randn(2, 3, 8, 8)
    before = net(x, config=small)
    assert len(grown) == 6 and all(old is None for old, _ in grown)  # conv w, b; bn w, b; fc
    weight = net.bank[net._slots[("conv2d.weight", "Conv2d")]].detach().clone()
    assert list(weight.shape) == [4, 3, 3, 3]
    grown.clear()
    with caplog.at_level("INFO", logger="archdsl.backends.supernet"):
        net(x, config=big)
    new = net.bank[net._slots[("conv2d.weight", "Conv2d")]]
    assert list(new.shape) == [8, 3, 5, 5]
    assert torch.equal(new.detach()[:4, :, 1:4, 1:4], weight)  # the old kernel is the centre
    assert {tuple(old.shape) for old, _ in grown if old is not None} >= {(4, 3, 3, 3), (4,)}
    assert "conv2d.weight grows from [4, 3, 3, 3] to [8, 3, 5, 5]" in caplog.text
    torch.testing.assert_close(net(x, config=small), before)  # the small net is unchanged


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    space = _digits()
    net = Supernet(space, scan=8)
    configs = list(space.samples(3, seed=5))
    opt = torch.optim.SGD(net.bank_parameters(), lr=0.1)
    xs = pt.example_inputs(pt.plan(space.materialize(configs[0])), batch=4)
    for c in configs:  # weights and BatchNorm statistics move away from their initial values
        opt.zero_grad()
        net(*xs, config=c).square().mean().backward()
        opt.step()
    net.meta["epochs"] = 1
    path = net.save(tmp_path / "sn.pt")
    back = Supernet.load(path, space)
    assert back.meta == {"epochs": 1} and back.space_hash == space_hash(space)
    net.eval(), back.eval()
    for c in configs:
        torch.testing.assert_close(back(*xs, config=c), net(*xs, config=c), rtol=0, atol=0)
    other = archdsl.load(ROOT / "examples" / "resnet.arch")
    with pytest.raises(ArchDSLError, match="trained on another space"):
        Supernet.load(path, other)


def test_bad_checkpoints(tmp_path: Path) -> None:
    space = archdsl.loads(GROW)
    with pytest.raises(ArchDSLError, match="cannot read the checkpoint"):
        Supernet.load(tmp_path / "missing.pt", space)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ArchDSLError, match="not a supernet checkpoint"):
        Supernet.load(junk, space)
    evil = tmp_path / "evil.pt"
    torch.save(Evil(tmp_path / "ran"), evil)  # runs code when unpickled without weights_only
    with pytest.raises(ArchDSLError, match="not a supernet checkpoint"):
        Supernet.load(evil, space)
    assert not (tmp_path / "ran").exists()
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(ArchDSLError, match="not a supernet checkpoint"):
        Supernet.load(plain, space)
    net = Supernet(space, scan=4)
    path = net.save(tmp_path / "ok.pt")
    for damage in (lambda c: c["params"][0].__setitem__(2, "p999"),
                   lambda c: c["state"].__setitem__("other", torch.zeros(1)),
                   lambda c: c["meta"].__setitem__("data", 3)):
        ckpt = torch.load(path, weights_only=True)
        damage(ckpt)
        torch.save(ckpt, tmp_path / "damaged.pt")
        with pytest.raises(ArchDSLError, match="damaged"):
            Supernet.load(tmp_path / "damaged.pt", space)


class Evil:
    """Unpickled without weights_only, it creates the file `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_bad_configurations() -> None:
    space = _digits()
    net = Supernet(space, scan=0)
    x = torch.randn(1, 1, 8, 8)
    with pytest.raises(ConfigError, match="unknown decision 'nonsense'"):
        net(x, config={**space.default(), "nonsense": 1})
    nb201 = archdsl.load(ROOT / "examples" / "nb201.arch")
    with pytest.raises(ConfigError):
        net(x, config=nb201.default())
    with pytest.raises(ConfigError, match="JSON object"):
        net(x, config=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="JSON values"):
        net(x, config={"width": {1, 2}})


def test_recalibration_is_the_exact_mean_over_the_batches() -> None:
    space = _digits()
    net = Supernet(space, scan=4)
    config = space.sample(seed=11)
    p = pt.plan(space.materialize(config))
    batches = [(torch.randn(5, 1, 8, 8) * 3 + 1, torch.zeros(5)) for _ in range(3)]
    ref = net.model_for(config)
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    torch.manual_seed(0)
    with torch.no_grad():
        for x, _ in batches:
            ref(x)
    torch.manual_seed(0)
    assert net.recalibrate(config, batches) == 3
    got = net.model_for(config)
    assert len(p.inputs) == 1 and any(isinstance(m, nn.BatchNorm2d) for m in got.modules())
    for (n, a), (_, b) in zip(ref.named_buffers(), got.named_buffers(), strict=True):
        torch.testing.assert_close(b, a, msg=n)
    # the momentum recalibration set aside is put back on the layers the supernet runs
    norms = [m for m in net._entry(config).model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.1 for m in norms)


class Widen(nn.Module):
    """A user operation whose output width is its float argument times the input's."""

    def __init__(self, in_shape: list[int], ratio: float):
        super().__init__()
        self.fc = nn.Linear(in_shape[0], int(in_shape[0] * ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@pytest.fixture
def widen() -> Iterator[None]:
    layers, ops = dict(LAYERS), dict(backend_ops.OPS)
    pt.register_op("widen", Widen, shape=lambda in_shape, ratio: [int(in_shape[0] * ratio)],
                   args=[archdsl.ArgSpec("ratio", "float", required=True)])
    try:
        yield
    finally:
        for registry, before in ((LAYERS, layers), (backend_ops.OPS, ops)):
            registry.clear()
            registry.update(before)


def test_a_float_that_sets_a_shape_is_an_error_at_its_line(widen: None) -> None:
    space = archdsl.loads("input x: [8]\nnetwork {\n  x -> widen(float(1.0 .. 2.0)) -> linear(2)\n}",
                          "wide.arch")
    with pytest.raises(ShapeError, match="continuous decision that changes") as e:
        Supernet(space, scan=2)
    assert e.value.span is not None and (e.value.span.file, e.value.span.line) == ("wide.arch", 3)
    fine = archdsl.loads("input x: [8]\nnetwork { x -> widen(choice(1.0, 2.0)) -> "
                         "dropout(float(0.0 .. 0.5)) -> linear(2) }")
    net = Supernet(fine, scan=4).eval()
    for c in fine.samples(4, seed=0):
        x = torch.randn(3, 8)
        torch.testing.assert_close(net(x, config=c), net.model_for(c).eval()(x))
    assert any(k[1].startswith("=") for k in net._slots)  # your operation: exact shapes only


# ---- DARTS: the mixed network ------------------------------------------------------------
SMALL = """input x: [8]
network {
    x -> linear(8)
      -> one_of { a: linear(8) -> relu | b: linear(8) -> tanh | c: identity }
      -> optional { linear(8) -> relu }
      -> linear(choice(4, 8), bias = false) -> relu
      -> linear(2)
}"""


def _one_hot(net: Supernet, config: dict) -> None:
    """Architecture weights that pick `config`'s options (softmax 1 - 1e-25)."""
    r = net.relax()
    labels = {d.name: d for d in net.space.decisions(r.base)}
    with torch.no_grad():
        for name, slot in net._alpha_slot.items():
            a = net.alphas[slot]
            a.zero_()
            a[r.options[name].index(labels[name].index_of_json(config[name]))] = 60.0


def test_darts_one_hot_weights_give_that_single_path() -> None:
    """With each alpha at one option, the mixed network computes exactly that architecture
    (same bank weights, same statistics), and derive() names it."""
    for space in (archdsl.loads(SMALL.replace("choice(4, 8)", "8")),
                  archdsl.load(ROOT / "examples" / "nb201.arch")):
        net = Supernet(space, scan=0).eval()
        r = net.relax()
        assert len(net.arch_parameters()) == len(r.options) >= 2 and r.fixed() == []
        xs = pt.example_inputs(pt.plan(space.materialize(r.base)), batch=2,
                               generator=torch.Generator().manual_seed(0))
        for config in space.samples(4, seed=2):
            _one_hot(net, config)
            assert net.derive() == config
            with torch.no_grad():
                torch.testing.assert_close(net.mixed(*xs), net(*xs, config=config),
                                           rtol=1e-5, atol=1e-5)


def test_darts_step_trains_both_sides_and_round_trips(tmp_path: Path) -> None:
    space = archdsl.loads(SMALL.replace("choice(4, 8)", "8"))
    net = Supernet(space, scan=8)
    alphas = net.arch_parameters()
    w_opt = torch.optim.SGD(net.bank_parameters(), lr=0.1)
    a_opt = torch.optim.Adam(alphas, lr=0.05)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 8, generator=gen), torch.randint(0, 2, (16,), generator=gen)
    before = [p.detach().clone() for p in net.bank_parameters()]
    losses = [net.darts_step((x, y), (x, y), nn.functional.cross_entropy, w_opt, a_opt)
              for _ in range(20)]
    assert losses[-1] < losses[0]
    assert all(a.abs().sum() > 0 for a in alphas)  # every decision's weights moved
    moved = sum(not torch.equal(b, p) for b, p in zip(before, net.bank_parameters(), strict=True))
    assert moved == len(before)  # every candidate runs (and learns) in the mixed network
    weights = net.arch_weights()
    assert set(weights["network/one_of"]) == {"a", "b", "c"}
    assert abs(sum(weights["network/one_of"].values()) - 1) < 1e-5
    back = Supernet.load(net.save(tmp_path / "darts.pt"), space)
    assert back.derive() == net.derive() and back.arch_weights() == weights
    net.eval(), back.eval()
    torch.testing.assert_close(back.mixed(x), net.mixed(x), rtol=0, atol=0)


def test_darts_refuses_options_of_different_shapes_at_their_line() -> None:
    space = archdsl.loads(SMALL, "small.arch")
    net = Supernet(space, scan=0)
    with pytest.raises(ShapeError, match="options of 'network/linear#2/out' give tensors of "
                                         "different shapes") as e:
        net.relax()
    assert e.value.span is not None and (e.value.span.file, e.value.span.line) == ("small.arch", 6)
    with pytest.raises(ShapeError, match="'width'"):
        Supernet(_digits(), scan=0).relax()
