"""One-shot training (archdsl.one_shot) and the supernet evaluator: real SPOS training on a few
batches of digits, scores with inherited weights, the export with inherited weights, and bad
input as one clear ArchDSLError."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.errors import ArchDSLError, EvaluationError
from archdsl.evaluators import get_evaluator
from archdsl.evaluators.supernet import SupernetEvaluator
from archdsl.one_shot import (
    _data_source,
    calibration_inputs,
    export_inherited,
    inherited_model,
    supernet_recipe,
    train_supernet,
)

# a small space on digits (64 pixels): widths share one weight tensor, depth is a prefix
SPACE = """input image: [64]
network {
    image
    -> repeat(choice(1, 2)) { linear(choice(16, 32)) -> batchnorm -> relu }
    -> linear(10)
}
train { optimizer = adam(lr = 0.01)  batch = 64  epochs = 1 }
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[archdsl.Space, Path, object]:
    """A supernet trained for 40 steps (with the sandwich rule), saved."""
    folder = tmp_path_factory.mktemp("one_shot")
    (folder / "s.arch").write_text(SPACE)
    space = archdsl.load(folder / "s.arch")
    run = train_supernet(space, epochs=2, sandwich=True, max_steps=40, device="cpu", threads=1)
    run.supernet.save(folder / "ck.pt")
    return space, folder / "ck.pt", run


def test_spos_training_learns_and_records_how(trained) -> None:
    space, _, run = trained
    m = run.meta
    assert (m["strategy"], m["sandwich"], m["data"], m["steps"]) == ("spos", True, "digits", 40)
    assert m["recipe"]["lr"] == 0.01 and m["recipe"]["batch"] == 64
    assert m["train_loss"] < 1.5  # chance is ln(10) = 2.3
    assert run.supernet.meta == m  # saved with the checkpoint


def test_inherited_weights_score_far_above_chance(trained) -> None:
    space, ckpt, _ = trained
    ev = get_evaluator(f"supernet:{ckpt}", device="cpu")
    assert isinstance(ev, SupernetEvaluator)
    ev.prepare(space)
    for cfg in space.samples(3, seed=1):
        r = ev.evaluate(space.materialize(cfg))
        assert r["accuracy"] > 0.5, cfg
        assert r["objective"] == -r["valid_loss"] > -1.5, cfg  # the loss ranks; chance is 2.3
        assert r["params"] > 0 and r["eval_seconds"] >= 0
    # the same calibration batches every time: the same score
    arch = space.materialize(space.default())
    assert ev.evaluate(arch)["accuracy"] == ev.evaluate(arch)["accuracy"]


def test_the_score_is_the_exported_models_score(trained) -> None:
    """The evaluator runs a configuration in the supernet itself; the stand-alone model with
    the inherited weights (`compile --weights-from`), recalibrated on the same batches, scores
    the same, for configurations scored one after another (their BatchNorm statistics are
    reset each time)."""
    space, ckpt, _ = trained
    ev = SupernetEvaluator(str(ckpt), device="cpu", calibrate=3)
    ev.prepare(space)
    data, fit = _data_source(space, "digits", "cpu", supernet_recipe(space))
    net = archdsl.one_shot.load_checkpoint(ckpt, space)
    xs = calibration_inputs(data, fit, torch.device("cpu"), 3)
    for cfg in [*space.samples(4, seed=3), space.default()]:
        got = ev.evaluate(space.materialize(cfg))
        want = data._validate(inherited_model(net, cfg, xs), fit, torch.device("cpu"))
        assert got["accuracy"] == pytest.approx(want.accuracy, abs=1e-9), cfg
        assert got["valid_loss"] == pytest.approx(want.loss, rel=1e-5), cfg


def test_recalibration_sets_batchnorm_statistics_from_data(trained) -> None:
    space, _, run = trained
    ev, fit = _data_source(space, "digits", "cpu", supernet_recipe(space))
    xs = calibration_inputs(ev, fit, torch.device("cpu"), 3)
    assert len(xs) == 3
    cfg = space.default()
    model = inherited_model(run.supernet, cfg, xs)
    assert not model.training
    first = model(xs[0][:1] * 0)  # in eval mode, a batch of one works
    assert first.shape == (1, 10)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms and all(int(m.num_batches_tracked) == 3 for m in norms)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_export_with_inherited_weights_runs_the_inherited_model(trained, tmp_path: Path) -> None:
    space, ckpt, _ = trained
    cfg = space.default()
    out = export_inherited(space, cfg, ckpt, tmp_path / "m.pt", device="cpu", calibrate=2)
    loaded = torch.jit.load(str(out))
    ev, fit = _data_source(space, "digits", "cpu", supernet_recipe(space))
    net = archdsl.one_shot.load_checkpoint(ckpt, space)
    xs = calibration_inputs(ev, fit, torch.device("cpu"), 2)
    model = inherited_model(net, cfg, xs)
    x = xs[0][:5]
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)
    with pytest.raises(ArchDSLError, match=r"\.pt or \.onnx"):
        export_inherited(space, cfg, ckpt, tmp_path / "m.py")


def test_a_checkpoint_of_another_space_is_refused(trained, tmp_path: Path) -> None:
    _, ckpt, _ = trained
    (tmp_path / "other.arch").write_text(SPACE.replace("choice(16, 32)", "choice(16, 48)"))
    other = archdsl.load(tmp_path / "other.arch")
    with pytest.raises(ArchDSLError, match="another space"):
        get_evaluator(f"supernet:{ckpt}").prepare(other)


@pytest.mark.parametrize("spec, message", [
    ("supernet:", "needs the checkpoint's path"),
    ("supernet:/no/such/file.pt", "was not found"),
])
def test_bad_supernet_evaluators(trained, spec: str, message: str) -> None:
    space = trained[0]
    with pytest.raises(ArchDSLError, match=message):
        get_evaluator(spec).prepare(space)


def test_bad_training_settings(trained) -> None:
    space = trained[0]
    with pytest.raises(ArchDSLError, match="unknown strategy 'enas'"):
        train_supernet(space, strategy="enas")
    with pytest.raises(ArchDSLError, match="--lr must be a positive number"):
        train_supernet(space, lr=-1.0)
    with pytest.raises(ArchDSLError, match="--batch must be at least 1"):
        train_supernet(space, batch=0)
    with pytest.raises(ArchDSLError, match="unknown data"):
        train_supernet(space, data="nonsense", max_steps=1)


def test_the_optimizer_goes_on_over_a_grown_bank() -> None:
    from archdsl.one_shot import _regroup

    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([a, b], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    (a.sum() + b.sum()).backward()
    opt.step()
    sched.step()
    grown = torch.nn.Parameter(torch.ones(4))  # b, grown
    _regroup(opt, [a, grown])
    assert a in opt.state and b not in opt.state
    (a.sum() + grown.sum()).backward()
    opt.step()
    sched.step()
    assert grown in opt.state and float(grown.detach()[0]) < 1.0  # trained, at the schedule's lr
    assert opt.param_groups[0]["lr"] < 0.1


DARTS_SPACE = """input image: [64]
network {
    image
    -> linear(32) -> one_of { relu | tanh | sigmoid }
    -> optional { linear(32) -> relu }
    -> linear(10)
}
train { optimizer = adam(lr = 0.01)  batch = 64  epochs = 1 }
"""


def test_darts_learns_architecture_weights_and_derives_a_configuration(tmp_path: Path) -> None:
    (tmp_path / "d.arch").write_text(DARTS_SPACE)
    space = archdsl.load(tmp_path / "d.arch")
    run = train_supernet(space, strategy="darts", epochs=2, max_steps=10, device="cpu",
                         threads=1)
    m = run.meta
    assert m["strategy"] == "darts" and m["steps"] == 10
    space.validate(m["derived"])  # a configuration of the space
    weights = m["arch_weights"]
    assert set(weights) == {"network/one_of", "network/optional"}
    for w in weights.values():
        assert sum(w.values()) == pytest.approx(1.0, abs=1e-5)
        assert max(w.values()) > 1 / len(w) + 1e-4  # moved from uniform
    run.supernet.save(tmp_path / "d.pt")  # a DARTS checkpoint still scores single paths
    ev = get_evaluator(f"supernet:{tmp_path / 'd.pt'}", device="cpu")
    ev.prepare(space)
    assert 0 <= ev.evaluate(space.materialize(m["derived"]))["accuracy"] <= 1


def test_darts_refuses_options_of_different_shapes(trained) -> None:
    space = trained[0]  # its widths choice(16, 32) give tensors of different shapes
    with pytest.raises(ArchDSLError, match="different shapes") as e:
        train_supernet(space, strategy="darts", max_steps=1)
    assert e.value.span is not None and e.value.span.line == 4
    with pytest.raises(ArchDSLError, match="--sandwich is a rule of --strategy spos"):
        train_supernet(space, strategy="darts", sandwich=True)


def test_a_configuration_of_another_output_shape_is_an_error(tmp_path: Path) -> None:
    """Every sampled path's output is checked against the default configuration's: a space
    whose last width is a decision cannot train one loss (with 8 outputs the labels 8 and 9
    would crash the loss; with 12 it would train against the wrong classes)."""
    for other in (8, 12):
        (tmp_path / "s.arch").write_text(SPACE.replace("-> linear(10)",
                                                       f"-> linear(choice(10, {other}))"))
        space = archdsl.load(tmp_path / "s.arch")
        with pytest.raises(EvaluationError, match=rf"outputs \[{other}\], the default "
                                                  r"configuration \[10\]"):
            train_supernet(space, epochs=1, max_steps=30, device="cpu", threads=1)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_the_export_calibrates_on_the_batches_the_supernet_was_trained_with(
        tmp_path: Path) -> None:
    """A supernet trained with another batch than the space's: its export recalibrates
    BatchNorm on batches of that size, as the supernet evaluator scores with."""
    (tmp_path / "s.arch").write_text(SPACE)
    space = archdsl.load(tmp_path / "s.arch")
    run = train_supernet(space, epochs=1, batch=16, max_steps=5, device="cpu", threads=1)
    ckpt = run.supernet.save(tmp_path / "ck.pt")
    cfg = space.default()
    out = export_inherited(space, cfg, ckpt, tmp_path / "m.pt", device="cpu", calibrate=2)
    x = torch.linspace(-1, 1, 5 * 64).reshape(5, 64)
    with torch.no_grad():
        got = torch.jit.load(str(out))(x)

    def calibrated(batch: int) -> torch.Tensor:
        net = archdsl.one_shot.load_checkpoint(ckpt, space)
        ev, fit = _data_source(space, "digits", "cpu", supernet_recipe(space, batch=batch))
        with torch.no_grad():
            return inherited_model(net, cfg, calibration_inputs(ev, fit, torch.device("cpu"),
                                                                2))(x)

    assert torch.allclose(got, calibrated(16), atol=1e-5)
    assert not torch.allclose(got, calibrated(64), atol=1e-5)  # the space's own batch differs
