"""One-shot training: train a weight-sharing supernet (archdsl.backends.supernet) once, then
score, recalibrate and export the architectures it holds with their inherited weights.

`train_supernet(space, data=..., epochs=...)` trains with single-path one-shot (SPOS): every
optimizer step samples one configuration uniformly (`space.sample`) and trains only the weights
on its path; with `sandwich=True` every step sums the gradients of the largest configuration,
the smallest (by parameters: `Supernet.extremes()`) and a uniformly sampled one. With
`strategy="darts"` it trains the supernet's relaxation (first-order DARTS: an architecture
step on one training batch, a weights step on the next) and records the derived configuration
in the meta (`derived`, with the softmax weights in `arch_weights`). The data, its checks against the space, the batches and the loss are the training
evaluator's (archdsl/evaluators/train.py: `--data` digits, FILE.npz or module:function); the
optimizer, learning rate, batch and label smoothing are the space's `train` recipe of its
default configuration unless overridden. `inherited_model(supernet, config, ...)` is the
stand-alone model of a configuration holding the supernet's weights, its BatchNorm statistics
recalibrated on a few training batches: the export (`archdsl compile --weights-from`) and the
supernet evaluator (archdsl/evaluators/supernet.py) use it.

Imports torch lazily, archdsl.backends (plan, pytorch, supernet), archdsl.devices,
archdsl.errors and archdsl.evaluators (train, recipe).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, EvaluationError
from .space import Config, Space

__all__ = ["STRATEGIES", "CALIBRATION_BATCHES", "OneShotRun", "train_supernet",
           "supernet_recipe", "load_checkpoint", "inherited_model", "batches", "checkpoint_data",
           "export_inherited"]

STRATEGIES = ("spos", "darts")
# DARTS's architecture optimizer (Liu et al. 2019): Adam, lr 3e-4, betas (0.5, 0.999), wd 1e-3
ARCH_LR, ARCH_BETAS, ARCH_WEIGHT_DECAY = 3e-4, (0.5, 0.999), 1e-3
CALIBRATION_BATCHES = 20  # training batches a BatchNorm recalibration runs

# progress(step, total_steps, mean training loss so far in this epoch, epoch)
Progress = Callable[[int, int, float, int], None]


@dataclass
class OneShotRun:
    """A trained supernet and how it was trained (also kept in its checkpoint's meta)."""

    supernet: Any
    meta: dict[str, Any] = field(default_factory=dict)


def supernet_recipe(space: Space, lr: float | None = None, batch: int | None = None,
                    epochs: int | None = None) -> dict[str, Any]:
    """The recipe the supernet trains with: the default configuration's `train` section (see
    archdsl/evaluators/recipe.py), with `lr`, `batch` and `epochs` replaced where given."""
    from .evaluators.recipe import recipe

    r = recipe(space.materialize(space.default()).train)
    for key, value in (("lr", lr), ("batch", batch), ("epochs", epochs)):
        if value is None:
            continue
        if key == "lr":
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ArchDSLError(f"--lr must be a positive number, got {value!r}")
            r[key] = float(value)
        else:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArchDSLError(f"--{key} must be at least 1, got {value!r}")
            r[key] = value
    return r


def _data_source(space: Space, data: str, device: str, r: dict[str, Any]) -> tuple[Any, Any]:
    """The training evaluator that loads and batches `data` (checked against the space's default
    architecture), and how the data meets the network (its `_Fit`, with the supernet's recipe)."""
    from .evaluators.train import TrainEvaluator

    ev = TrainEvaluator(data, device)
    ev.prepare(space)
    fit = ev.fit(space.materialize(space.default()))
    fit.recipe = dict(r)
    return ev, fit


def checkpoint_data(supernet: Any, space: Space, data: str, device: str) -> tuple[Any, Any]:
    """`_data_source` for a trained supernet: `data` batched as it was trained (the batch in
    its checkpoint's recipe), so that its scores and its exports calibrate on the same
    batches."""
    recipe = (getattr(supernet, "meta", None) or {}).get("recipe") or {}
    return _data_source(space, data, device, supernet_recipe(space, batch=recipe.get("batch")))


def batches(ev: Any, fit: Any, device: Any, side: str = "train", seed: int = 0) -> Any:
    """(x, y) batches of one side of the data on `device`: the training side shuffled with
    `seed`, the validation side in order."""
    import torch

    split = ev.load().train if side == "train" else ev.load().valid
    gen = torch.Generator().manual_seed(seed) if side == "train" else None
    return ev._batches(split, side, fit, device, gen)


def _output_check(out: Any, want: list[int], config: Config) -> None:
    """A configuration whose output shape differs from the default configuration's (the one the
    data was checked against) is an error naming it: one loss trains them all."""
    if list(out.shape[1:]) != want:
        raise EvaluationError(f"the configuration {config} outputs {list(out.shape[1:])}, the "
                              f"default configuration {want}: a supernet trains one loss for "
                              "all", hint="every architecture of the space must have the same "
                                          "output shape")


def train_supernet(space: Space, *, data: str = "digits", strategy: str = "spos",
                   epochs: int | None = None, sandwich: bool = False, device: str = "auto",
                   seed: int = 0, lr: float | None = None, batch: int | None = None,
                   max_steps: int | None = None, threads: int | None = None,
                   progress: Progress | None = None,
                   log: Callable[[str], None] | None = None) -> OneShotRun:
    """Train a supernet of `space` on `data` (see the module doc); `max_steps` stops after that
    many optimizer steps in all (None: every batch of every epoch); `threads`: torch's CPU
    threads (None: as set)."""
    import torch

    from .backends.supernet import Supernet
    from .backends.supernet_darts import _inputs
    from .devices import resolve_device
    from .evaluators.recipe import optimizer, schedule

    if strategy not in STRATEGIES:
        raise ArchDSLError(f"unknown strategy '{strategy}'",
                           hint="strategies: spos (single-path one-shot; --sandwich for the "
                                "sandwich rule), darts (softmax relaxation, first-order)")
    if strategy == "darts" and sandwich:
        raise ArchDSLError("--sandwich is a rule of --strategy spos",
                           hint="darts trains every option at once")
    if max_steps is not None and max_steps < 1:
        raise ArchDSLError(f"--max-steps must be at least 1, got {max_steps}")
    if threads is not None:
        if threads < 1:
            raise ArchDSLError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    say = log or (lambda _msg: None)
    r = supernet_recipe(space, lr, batch, epochs)
    dev = torch.device(resolve_device(device))
    ev, fit = _data_source(space, data, device, r)
    torch.manual_seed(seed)
    supernet = Supernet(space, seed=seed)
    supernet.to(dev)
    if strategy == "darts":
        return _train_darts(supernet, space, ev, fit, r, dev, seed, data, max_steps, progress,
                            say)
    ends = list(supernet.extremes()) if sandwich else []
    want = list(fit.plan.output_shape)
    rng = random.Random(seed)
    per_epoch = ev._batches_per_epoch(ev.load().train, r)
    total = r["epochs"] * per_epoch if max_steps is None else min(max_steps,
                                                                  r["epochs"] * per_epoch)
    params: list[Any] = []
    opt: Any = None  # made at the first step, over the bank as it then is
    sched: Any = None
    step, loss_sum, seen, t0 = 0, 0.0, 0, time.perf_counter()
    for epoch in range(1, r["epochs"] + 1):
        loss_sum, seen = 0.0, 0
        for x, y in batches(ev, fit, dev, "train", seed * 1_000_003 + epoch):
            if step >= total:
                break
            supernet.train()
            supernet.zero_grad(set_to_none=True)
            paths = [*ends, space.sample(rng)]
            loss_value = 0.0
            for config in paths:
                out = supernet(*_inputs(x), config=config)
                _output_check(out, want, config)
                loss = _loss(out, y, fit)
                if not torch.isfinite(loss):
                    raise EvaluationError(f"supernet training diverged: the loss is "
                                          f"{loss.item()} in epoch {epoch}",
                                          hint="try a smaller --lr")
                loss.backward()
                loss_value += loss.item() / len(paths)
            now = list(supernet.bank_parameters())
            if opt is None:
                opt, params = optimizer(_Params(now), r), now
                sched = schedule(opt, r, total)
            elif [id(p) for p in now] != [id(p) for p in params]:
                _regroup(opt, now)
                params = now
                say(f"the supernet's weights grew (step {step + 1}); the optimizer now holds "
                    f"{sum(p.numel() for p in params):,} weights")
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            loss_sum, seen = loss_sum + loss_value * len(y), seen + len(y)
            if progress is not None:
                progress(step, total, loss_sum / seen, epoch)
        if step >= total:
            break
    seconds = time.perf_counter() - t0
    meta = {"strategy": strategy, "sandwich": sandwich, "data": data, "epochs": epoch,
            "steps": step, "seed": seed, "seconds": round(seconds, 3),
            "train_loss": loss_sum / seen if seen else math.nan,
            "recipe": {k: v for k, v in r.items() if k != "task"}, "space": space.file}
    supernet.meta = meta  # saved with the checkpoint
    return OneShotRun(supernet, meta)


def _train_darts(supernet: Any, space: Space, ev: Any, fit: Any, r: dict[str, Any], dev: Any,
                 seed: int, data: str, max_steps: int | None, progress: Progress | None,
                 say: Callable[[str], None]) -> OneShotRun:
    """First-order DARTS: the space relaxed around its default configuration (one softmax
    weight per decision whose options change the graph), then, over pairs of training batches,
    an architecture step on the first and a weights step on the second."""
    import torch

    from .evaluators.recipe import optimizer, schedule

    fixed = supernet.relax().fixed()  # ShapeError at a decision whose options' shapes differ
    if fixed:
        say(f"darts: {len(fixed)} decision(s) keep the default configuration's value (their "
            f"options change nothing it computes): {', '.join(fixed[:5])}"
            + (" ..." if len(fixed) > 5 else ""))
    arch_opt = torch.optim.Adam(supernet.arch_parameters(), lr=ARCH_LR, betas=ARCH_BETAS,
                                weight_decay=ARCH_WEIGHT_DECAY)
    weights_opt = optimizer(_Params(supernet.bank_parameters()), r)
    per_epoch = ev._batches_per_epoch(ev.load().train, r) // 2
    total = r["epochs"] * max(1, per_epoch)
    total = total if max_steps is None else min(max_steps, total)
    sched = schedule(weights_opt, r, total)

    def loss(out: Any, y: Any) -> Any:
        value = _loss(out, y, fit)
        if not torch.isfinite(value):
            raise EvaluationError(f"supernet training diverged: the loss is {value.item()}",
                                  hint="try a smaller --lr")
        return value

    step, loss_sum, seen, t0 = 0, 0.0, 0, time.perf_counter()
    supernet.train()
    for epoch in range(1, r["epochs"] + 1):
        loss_sum, seen = 0.0, 0
        stream = iter(batches(ev, fit, dev, "train", seed * 1_000_003 + epoch))
        for valid in stream:
            train = next(stream, None)
            if train is None or step >= total:
                break
            value = supernet.darts_step(train, valid, loss, weights_opt, arch_opt)
            if sched is not None:
                sched.step()
            step += 1
            loss_sum, seen = loss_sum + value * len(train[1]), seen + len(train[1])
            if progress is not None:
                progress(step, total, loss_sum / seen, epoch)
        if step >= total:
            break
    seconds = time.perf_counter() - t0
    derived = supernet.derive()
    meta = {"strategy": "darts", "sandwich": False, "data": data, "epochs": epoch,
            "steps": step, "seed": seed, "seconds": round(seconds, 3),
            "train_loss": loss_sum / seen if seen else math.nan,
            "recipe": {k: v for k, v in r.items() if k != "task"}, "space": space.file,
            "derived": derived, "arch_weights": supernet.arch_weights()}
    supernet.meta = meta
    return OneShotRun(supernet, meta)


class _Params:
    """What recipe.optimizer needs of a model: its parameters."""

    def __init__(self, params: list[Any]):
        self.params = params

    def parameters(self) -> list[Any]:
        return self.params


def _regroup(opt: Any, now: list[Any]) -> None:
    """The optimizer (and so its schedule) goes on over the grown bank: a replaced tensor's
    state is dropped (the new one starts fresh), the others' is kept."""
    group = opt.param_groups[0]
    keep = {id(p) for p in now}
    for p in group["params"]:
        if id(p) not in keep:
            opt.state.pop(p, None)
    group["params"] = list(now)


def _loss(out: Any, y: Any, fit: Any) -> Any:
    from .evaluators.train import _loss as train_loss

    return train_loss(out, y, fit)


def load_checkpoint(path: str | Path, space: Space) -> Any:
    """The supernet saved in `path` for `space` (its errors: archdsl.backends.supernet's)."""
    from .backends.supernet import Supernet

    if not Path(path).is_file():
        raise ArchDSLError(f"supernet checkpoint '{path}' was not found",
                           hint="train one with `archdsl supernet FILE -o CHECKPOINT`")
    return Supernet.load(path, space)


def inherited_model(supernet: Any, config: Config, xs: list[Any] | None = None) -> Any:
    """The stand-alone model of `config` with the supernet's weights (`model_for`), its
    BatchNorm statistics recalibrated in the supernet first on the input batches `xs` when
    given (`Supernet.recalibrate`); in eval mode."""
    if xs:
        supernet.recalibrate(config, xs)
    return supernet.model_for(config).eval()


def calibration_inputs(ev: Any, fit: Any, device: Any, n: int = CALIBRATION_BATCHES,
                       seed: int = 0) -> list[Any]:
    """The inputs of the first `n` shuffled training batches (the same ones every time)."""
    xs = []
    for x, _y in batches(ev, fit, device, "train", seed):
        xs.append(x)
        if len(xs) >= n:
            break
    return xs


def export_inherited(space: Space, config: Config, checkpoint: str | Path, output: str | Path,
                     device: str = "cpu", calibrate: int = CALIBRATION_BATCHES) -> Path:
    """Write `config`'s architecture with the weights it inherits from the supernet in
    `checkpoint` (BatchNorm recalibrated on `calibrate` batches of the data it was trained on)
    as TorchScript (.pt) or ONNX (.onnx)."""
    import torch

    from .backends import pytorch
    from .devices import resolve_device

    suffix = Path(output).suffix.lower()
    if suffix not in (".pt", ".onnx"):
        raise ArchDSLError(f"inherited weights are written to .pt or .onnx, not '{output}'",
                           hint="the .py source holds no weights: compile to model.pt")
    arch = space.materialize(config)
    supernet = load_checkpoint(checkpoint, space)
    dev = torch.device(resolve_device(device))
    supernet.to(dev)
    xs: list[Any] = []
    data = (getattr(supernet, "meta", None) or {}).get("data")
    if calibrate and data:
        ev, fit = checkpoint_data(supernet, space, data, device)
        xs = calibration_inputs(ev, fit, dev, calibrate)
    model = inherited_model(supernet, config, xs).to("cpu")
    return pytorch.export(arch, output, model=model)
