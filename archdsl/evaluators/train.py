"""The training evaluator: train the compiled model of an architecture on the user's data.

`TrainEvaluator(data, device, threads)` trains with the space's `train` recipe (recipe.py) on the
data `load_data(data)` gives (data.py), and scores validation accuracy (classification:
cross-entropy) or minus the validation mean squared error (regression). Given a reporter
(archdsl/reporting.py) it validates after every epoch, reports, keeps a checkpoint through it and
stops when told to; a trial restored from its checkpoint ends exactly as one trained straight
through. `prepare(space)` loads the data once and checks it against the space before any trial.

Data held in memory is moved to the device once and indexed there; Datasets and DataLoaders
stream their batches, each moved as it comes. Imports torch lazily, archdsl.backends,
archdsl.devices, archdsl.errors and this package's data and recipe modules.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

from ..errors import EvaluationError
from ..graph import Architecture
from . import Evaluator
from .data import Data, Split, load_data, pair
from .recipe import optimizer, recipe, schedule

__all__ = ["TrainEvaluator", "VALID_BATCH"]

VALID_BATCH = 1024  # validation examples per forward pass (in memory)


@dataclass
class _Fit:
    """How the data meets one architecture."""

    plan: Any
    recipe: dict[str, Any]
    task: str  # classification or regression
    x_shape: list[int]  # the declared input shape: x is reshaped to it
    x_long: bool  # the input takes token ids
    y_shape: list[int]  # one example's labels (classification) or targets (regression)
    classes: int  # classification: the output's first axis

    @property
    def classify(self) -> bool:
        return self.task == "classification"


@dataclass
class _Valid:
    """A validation pass's figures."""

    loss: float
    accuracy: float | None

    @property
    def objective(self) -> float:
        return self.accuracy if self.accuracy is not None else -self.loss


class TrainEvaluator(Evaluator):
    """Train on `data` (see the module doc); `device`: auto, cpu, cuda, cuda:N or mps (used
    when no reporter names one); `threads`: torch threads (None: as set)."""

    name = "train"
    metrics = ("objective", "accuracy", "train_loss", "valid_loss", "train_seconds", "epochs",
               "params", "flops")

    def __init__(self, data: str = "digits", device: str = "auto", threads: int | None = None):
        from ..devices import check_device

        check_device(device)
        self.data, self.device, self.threads = data, device, threads
        self._loaded: Data | None = None
        self._prepared: Any = None
        self._tensors: dict[tuple[Any, ...], tuple[Any, Any]] = {}  # kept on their device

    # ------------------------------------------------------------------ data and checks
    def load(self) -> Data:
        """The data (loaded once)."""
        if self._loaded is None:
            self._loaded = load_data(self.data)
        return self._loaded

    def prepare(self, space: Any) -> None:
        """Load the data and check it against the space's default architecture."""
        if self._prepared is not space:
            self.fit(space.materialize(space.default()))
            self._prepared = space

    def steps(self, arch: Architecture) -> int:
        """The epochs the recipe trains `arch` for."""
        return int(recipe(arch.train)["epochs"])

    def fit(self, arch: Architecture) -> _Fit:
        """How the data meets `arch`: EvaluationError naming both shapes when it does not."""
        from ..backends.plan import plan

        data = self.load()
        p, r = plan(arch), recipe(arch.train)
        ins = arch.inputs()
        if len(ins) != 1:
            raise EvaluationError(f"the {self.name} evaluator feeds one input; the network has "
                                  f"{len(ins)}")
        node = arch.graph.nodes[ins[0]]
        shape, name = list(node["args"]["shape"]), node["args"]["name"]
        if list(data.x_shape) != shape and math.prod(data.x_shape) != math.prod(shape):
            raise EvaluationError(
                f"data '{data.spec}' has examples of shape {data.describe_x()}, but the input "
                f"'{name}' is declared as {shape} ({_values(math.prod(shape))})", node.get("span"),
                hint="the shapes must be equal or hold as many values (x is then reshaped)")
        x_long = p.steps[p.inputs[0]].out.dtype == "long"
        if x_long and not data.x_integer:
            raise EvaluationError(f"the input '{name}' feeds an embedding, which takes token ids "
                                  f"(integers); data '{data.spec}' has floats in x",
                                  node.get("span"))
        task, out = r["task"] or data.task, p.output_shape
        if task == "classification":
            return _Fit(p, r, task, shape, x_long, self._classes(data, out), out[0])
        n = math.prod(data.y_shape)
        if n != math.prod(out):
            raise EvaluationError(f"data '{data.spec}' has targets of shape {list(data.y_shape)} "
                                  f"({_values(n)}) per example, but the network's output is {out}",
                                  hint="for regression the output and the targets hold as "
                                       "many values")
        return _Fit(p, r, task, shape, x_long, out, 0)

    def _classes(self, data: Data, out: list[int]) -> list[int]:
        """Classification: the labels' shape per example (the output's after its class axis),
        checked with the labels held in memory against the number of classes."""
        if not data.y_integer:
            raise EvaluationError(f"classification needs integer labels; data '{data.spec}' has "
                                  "floats in y",
                                  hint="write `task = regression` in the train section, or store "
                                       "the labels as integers")
        rest = out[1:]
        if math.prod(data.y_shape) != math.prod(rest):
            raise EvaluationError(f"data '{data.spec}' has labels of shape {list(data.y_shape)} "
                                  f"per example, but the network's output {out} (classes "
                                  f"first) takes labels of shape {rest}")
        if data.labels is not None:
            _check_labels(data.spec, *data.labels, out)
        return rest

    # ------------------------------------------------------------------ training
    def evaluate(self, arch: Architecture, reporter: Any = None) -> dict[str, Any]:
        """Train `arch` and score it (see the module doc); with a reporter, one report per
        epoch, and a restored trial goes on from its checkpoint."""
        import torch

        from ..backends.pytorch import build
        from ..devices import resolve_device

        if self.threads:
            torch.set_num_threads(self.threads)
        fit = self.fit(arch)
        r, data = fit.recipe, self.load()
        device = torch.device(reporter.device if reporter is not None
                              else resolve_device(self.device))
        torch.manual_seed(int(r["seed"]))
        model = build(fit.plan).to(device)
        opt = optimizer(model, r)
        sched = schedule(opt, r, r["epochs"] * self._batches_per_epoch(data.train, r))
        gen = torch.Generator().manual_seed(int(r["seed"]))
        epoch, spent, train_loss = 0, 0.0, math.nan
        state = reporter.restore() if reporter is not None else None
        if state is not None:
            epoch, spent, train_loss = _resume(state, model, opt, sched, gen, device)
        t0 = time.perf_counter()
        valid: _Valid | None = None
        while epoch < r["epochs"]:
            epoch += 1
            train_loss = self._train_epoch(model, opt, sched, fit, gen, device, epoch)
            valid = None
            if reporter is None:
                continue
            valid = self._validate(model, fit, device)
            save = functools.partial(_state, epoch, model, opt, sched, gen, device,
                                     spent + time.perf_counter() - t0, train_loss)
            if not reporter.report(epoch, valid.objective, state=save,
                                   last=epoch == r["epochs"], valid_loss=valid.loss,
                                   train_loss=train_loss):
                break
        if valid is None:
            valid = self._validate(model, fit, device)
        named = {"accuracy": valid.accuracy} if valid.accuracy is not None else {}
        return {"objective": valid.objective, **named, "params": fit.plan.params,
                "flops": fit.plan.flops, "train_loss": train_loss, "valid_loss": valid.loss,
                "train_seconds": round(spent + time.perf_counter() - t0, 3), "epochs": epoch,
                "device": str(device)}

    def _batches_per_epoch(self, split: Split, r: dict[str, Any]) -> int:
        """Optimizer steps per epoch (what a schedule spans)."""
        n = split.size() if split.loader is None else _len(split.loader)
        if n is None:
            if r["schedule"] == "constant":
                return 1  # not used
            raise EvaluationError(f"schedule {r['schedule']} needs the number of batches per "
                                  f"epoch, but data '{self.data}' has a train set without len()",
                                  hint="give a Dataset or DataLoader with a length, or use "
                                       "schedule = constant")
        return n if split.loader is not None else math.ceil(n / r["batch"])

    def _train_epoch(self, model: Any, opt: Any, sched: Any, fit: _Fit, gen: Any,
                     device: Any, epoch: int) -> float:
        """One epoch; the mean training loss. A loss that is not finite fails the trial (on the
        CPU at once; on a GPU at the epoch's end, so no batch waits for a transfer back)."""
        import torch

        each = device.type == "cpu"
        total, count = torch.zeros((), device=device), 0
        model.train()
        for x, y in self._batches(self.load().train, "train", fit, device, gen):
            opt.zero_grad(set_to_none=True)
            loss = _loss(model(x), y, fit)
            if each and not torch.isfinite(loss):
                raise _diverged(loss.item(), epoch)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += loss.detach() * len(y)
            count += len(y)
        if count == 0:
            raise EvaluationError(f"data '{self.data}': the train set gave no batches")
        mean = (total / count).item()
        if not math.isfinite(mean):
            raise _diverged(mean, epoch)
        return mean

    def _validate(self, model: Any, fit: _Fit, device: Any) -> _Valid:
        """The validation loss (and accuracy) of the model as it is."""
        import torch
        import torch.nn.functional as F

        loss, correct, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
        model.eval()
        with torch.no_grad():
            for x, y in self._batches(self.load().valid, "valid", fit, device, None):
                out = model(x)
                if fit.classify:
                    loss += F.cross_entropy(out, y, reduction="sum")
                    correct += (out.argmax(1) == y).sum()
                else:
                    loss += F.mse_loss(out, y, reduction="sum")
                count += y.numel()
        model.train()
        if count == 0:
            raise EvaluationError(f"data '{self.data}': the validation set gave no batches")
        mean = (loss / count).item()
        if not math.isfinite(mean):
            raise EvaluationError(f"the validation loss is {mean}")
        return _Valid(mean, (correct.float() / count).item() if fit.classify else None)

    def _batches(self, split: Split, side: str, fit: _Fit, device: Any, gen: Any) -> Any:
        """(x, y) batches on the device: shuffled with `gen` when given (training)."""
        import torch

        batch = fit.recipe["batch"]
        if split.in_memory:
            x, y = self._on_device(split, side, fit, device)
            if gen is None:
                for i in range(0, len(x), VALID_BATCH):
                    yield x[i:i + VALID_BATCH], y[i:i + VALID_BATCH]
                return
            order = torch.randperm(len(x), generator=gen)
            if device.type != "cpu":
                order = order.to(device)  # once an epoch, so each batch is indexed there
            for i in range(0, len(x), batch):
                idx = order[i:i + batch]
                yield x[idx], y[idx]
            return
        for item in self._stream(split, batch, gen):
            x, y = pair(self.data, side, item)
            yield self._shaped(x, y, fit, device)

    def _stream(self, split: Split, batch: int, gen: Any) -> Any:
        """The batches of a DataLoader, or of a Dataset batched here (shuffled by `gen`)."""
        from torch.utils.data import DataLoader, IterableDataset

        if split.loader is not None:
            return split.loader
        mapped = not isinstance(split.dataset, IterableDataset)
        return DataLoader(split.dataset, batch_size=batch if gen is not None else VALID_BATCH,
                          shuffle=gen is not None and mapped,
                          generator=gen if mapped and gen is not None else None)

    def _on_device(self, split: Split, side: str, fit: _Fit, device: Any) -> tuple[Any, Any]:
        """A side held in memory, as the network takes it, on the device (moved once)."""
        key = (side, str(device), fit.x_long, fit.task)
        if key not in self._tensors:
            self._tensors = {k: v for k, v in self._tensors.items() if k[1] == str(device)}
            x = split.x if fit.x_long else split.x.float()
            y = split.y.long() if fit.classify else split.y.float()
            self._tensors[key] = (x.to(device), y.to(device))
        x, y = self._tensors[key]
        return x.reshape(len(x), *fit.x_shape), y.reshape(len(y), *fit.y_shape)

    def _shaped(self, x: Any, y: Any, fit: _Fit, device: Any) -> tuple[Any, Any]:
        """A streamed batch as the network takes it, on the device."""
        if len(x) != len(y):
            raise EvaluationError(f"data '{self.data}': a batch has {len(x)} x but {len(y)} y")
        if fit.classify:
            if y.is_floating_point():
                raise EvaluationError(f"classification needs integer labels; data "
                                      f"'{self.data}' gave a batch of float labels")
            if len(y):
                _check_labels(self.data, int(y.min()), int(y.max()), fit.plan.output_shape)
        else:
            y = y.float()
        if not fit.x_long:
            x = x.float()
        try:
            x, y = x.reshape(len(x), *fit.x_shape), y.reshape(len(y), *fit.y_shape)
        except RuntimeError:
            raise EvaluationError(f"data '{self.data}': a batch of shape {list(x.shape)}, "
                                  f"{list(y.shape)} does not fit the input {fit.x_shape} and "
                                  f"the labels {fit.y_shape}") from None
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _check_labels(spec: str, low: int, high: int, out: list[int]) -> None:
    """Classification labels are classes 0 to out[0] - 1."""
    if low < 0:
        raise EvaluationError(f"data '{spec}' has a label {low}; classes are numbered from 0")
    if high >= out[0]:
        raise EvaluationError(f"data '{spec}' has labels up to {high}, which need {high + 1} "
                              f"outputs (one per class); the network's output is {out}")


def _values(n: int) -> str:
    return f"{n} value{'s' if n != 1 else ''}"


def _len(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def _loss(out: Any, y: Any, fit: _Fit) -> Any:
    import torch.nn.functional as F

    if fit.classify:
        return F.cross_entropy(out, y, label_smoothing=float(fit.recipe["label_smoothing"]))
    return F.mse_loss(out, y)


def _diverged(loss: float, epoch: int) -> EvaluationError:
    return EvaluationError(f"training diverged: the loss is {loss} in epoch {epoch}")


def _state(epoch: int, model: Any, opt: Any, sched: Any, gen: Any, device: Any, seconds: float,
           train_loss: float) -> dict[str, Any]:
    """What resuming after `epoch` needs (the reporter saves it)."""
    import torch

    state = {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "generator": gen.get_state(), "rng": torch.get_rng_state(),
             "train_seconds": seconds, "train_loss": train_loss}
    if sched is not None:
        state["schedule"] = sched.state_dict()
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def _resume(state: dict[str, Any], model: Any, opt: Any, sched: Any, gen: Any,
            device: Any) -> tuple[int, float, float]:
    """Put the saved state back; (epoch, seconds spent, training loss) as of the checkpoint."""
    import torch

    try:
        epoch = state["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"its epoch is {epoch!r}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["schedule"])
        gen.set_state(state["generator"].cpu())
        torch.set_rng_state(state["rng"].cpu())
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
        return epoch, float(state.get("train_seconds", 0.0)), float(state.get("train_loss",
                                                                              math.nan))
    except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as e:
        raise EvaluationError(f"the checkpoint does not fit this trial: {type(e).__name__}: "
                              f"{e}") from None
