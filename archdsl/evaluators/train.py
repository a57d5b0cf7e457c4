"""The training evaluator: train the compiled model of an architecture on the user's data.

`TrainEvaluator(data, device, threads)` trains with the space's `train` recipe (recipe.py) on the
data `load_data(data)` gives (data.py), and scores validation accuracy (classification:
cross-entropy) or minus the validation mean squared error (regression). Given a reporter
(archdsl/reporting.py) it validates after every epoch, reports, keeps a checkpoint through it and
stops when told to; a trial restored from its checkpoint ends exactly as one trained straight
through. `prepare(space)` loads the data once and checks it against the space before any trial.

A network of several inputs takes the data's x by input name (data.py's named form): every
input's shape and kind (floats; integers for an embedding's or an `index(N)` input, the latter
within 0..N-1) is checked, and batches hold one tensor per input in the network's order.

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

from ..errors import EvaluationError, did_you_mean
from ..graph import Architecture
from . import Evaluator
from .data import NAMED_HELP, Data, Split, XInfo, load_data, pair, x_label
from .recipe import optimizer, recipe, schedule

__all__ = ["TrainEvaluator", "VALID_BATCH", "forward"]

VALID_BATCH = 1024  # validation examples per forward pass (in memory)


@dataclass
class _In:
    """One input of the network and the data's x that feeds it."""

    name: str
    key: str | None  # the data's name for its x (None: the data's one x)
    shape: list[int]  # the declared shape: x is reshaped to it
    long: bool  # takes integers (token ids, or indices below `bound`)
    bound: int | None  # index(N): N
    span: Any


@dataclass
class _Fit:
    """How the data meets one architecture."""

    plan: Any
    recipe: dict[str, Any]
    task: str  # classification or regression
    ins: list[_In]  # the network's inputs, in the order its forward takes them
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
        ins = _inputs(data, arch, p)
        task, out = r["task"] or data.task, p.output_shape
        if task == "classification":
            return _Fit(p, r, task, ins, self._classes(data, out), out[0])
        n = math.prod(data.y_shape)
        if n != math.prod(out):
            raise EvaluationError(f"data '{data.spec}' has targets of shape {list(data.y_shape)} "
                                  f"({_values(n)}) per example, but the network's output is {out}",
                                  hint="for regression the output and the targets hold as "
                                       "many values")
        return _Fit(p, r, task, ins, out, 0)

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
            loss = _loss(forward(model, x), y, fit)
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
                out = forward(model, x)
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
        """(x, y) batches on the device: shuffled with `gen` when given (training). x is a
        tensor for a network of one input, a tuple of them (in its order) for several."""
        import torch

        batch = fit.recipe["batch"]
        if split.in_memory:
            xs, y = self._on_device(split, side, fit, device)
            if gen is None:
                for i in range(0, len(y), VALID_BATCH):
                    yield _one(tuple(x[i:i + VALID_BATCH] for x in xs)), y[i:i + VALID_BATCH]
                return
            order = torch.randperm(len(y), generator=gen)
            if device.type != "cpu":
                order = order.to(device)  # once an epoch, so each batch is indexed there
            for i in range(0, len(y), batch):
                idx = order[i:i + batch]
                yield _one(tuple(x[idx] for x in xs)), y[idx]
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

    def _on_device(self, split: Split, side: str, fit: _Fit, device: Any
                   ) -> tuple[tuple[Any, ...], Any]:
        """A side held in memory, as the network takes it, on the device (moved once): the
        x of each input in the network's order, and y."""
        key = (side, str(device), tuple((i.key, i.long) for i in fit.ins), fit.task)
        if key not in self._tensors:
            self._tensors = {k: v for k, v in self._tensors.items() if k[1] == str(device)}
            xs = tuple(_x_of(split.x, i) for i in fit.ins)
            y = split.y.long() if fit.classify else split.y.float()
            self._tensors[key] = (tuple(x.to(device) for x in xs), y.to(device))
        xs, y = self._tensors[key]
        return (tuple(x.reshape(len(x), *i.shape) for x, i in zip(xs, fit.ins, strict=True)),
                y.reshape(len(y), *fit.y_shape))

    def _shaped(self, x: Any, y: Any, fit: _Fit, device: Any) -> tuple[Any, Any]:
        """A streamed batch as the network takes it, on the device."""
        xs = []
        for i in fit.ins:
            if i.key is not None and (not isinstance(x, dict) or i.key not in x):
                raise EvaluationError(f"data '{self.data}': a batch has no x for the input "
                                      f"'{i.name}'", i.span)
            t = x if i.key is None else x[i.key]
            if len(t) != len(y):
                raise EvaluationError(f"data '{self.data}': a batch has {len(t)} x but "
                                      f"{len(y)} y")
            if i.long and t.is_floating_point():
                raise EvaluationError(f"data '{self.data}' gave a batch of floats for the "
                                      f"input '{i.name}', which takes integers", i.span)
            if i.bound is not None and len(t):
                _check_indices(self.data, i, int(t.min()), int(t.max()))
            t = _x_of(x, i)
            try:
                xs.append(t.reshape(len(t), *i.shape).to(device, non_blocking=True))
            except RuntimeError:
                raise EvaluationError(f"data '{self.data}': a batch of shape {list(t.shape)} "
                                      f"does not fit the input '{i.name}' {i.shape}",
                                      i.span) from None
        if fit.classify:
            if y.is_floating_point():
                raise EvaluationError(f"classification needs integer labels; data "
                                      f"'{self.data}' gave a batch of float labels")
            if len(y):
                _check_labels(self.data, int(y.min()), int(y.max()), fit.plan.output_shape)
        else:
            y = y.float()
        try:
            y = y.reshape(len(y), *fit.y_shape)
        except RuntimeError:
            raise EvaluationError(f"data '{self.data}': a batch of labels of shape "
                                  f"{list(y.shape)} does not fit the labels {fit.y_shape}") from None
        return _one(tuple(xs)), y.to(device, non_blocking=True)


def forward(model: Any, x: Any) -> Any:
    """The model's output for a batch's x (a tuple: one tensor per input)."""
    return model(*x) if isinstance(x, tuple) else model(x)


def _one(xs: tuple[Any, ...]) -> Any:
    """A batch's x: the tensor of a network of one input, else the tuple."""
    return xs[0] if len(xs) == 1 else xs


def _x_of(x: Any, i: _In) -> Any:
    """The tensor that feeds input `i` (from one x or a dict by name), as it takes it."""
    t = x if i.key is None else x[i.key]
    return t.long() if i.long else t.float()


def _inputs(data: Data, arch: Architecture, p: Any) -> list[_In]:
    """The network's inputs (in its order) matched to the data's x, each checked."""
    ins = []
    for n in p.inputs:
        node = arch.graph.nodes[n]
        t = p.steps[n].out
        ins.append(_In(node["args"]["name"], None, list(node["args"]["shape"]),
                       t.dtype == "long", node["args"].get("index"), node.get("span")))
    xs = data.xs()
    if None in xs:
        if len(ins) != 1:
            names = ", ".join(f"'{i.name}'" for i in ins)
            raise EvaluationError(f"data '{data.spec}' has one x, but the network has "
                                  f"{len(ins)} inputs ({names}): give one x per input, by its "
                                  "name", ins[1].span, hint=NAMED_HELP)
        _check_input(data, ins[0], xs[None])
        return ins
    for i in ins:
        if i.name not in xs:
            raise EvaluationError(f"data '{data.spec}' has no x for the input '{i.name}' "
                                  f"(x_train_{i.name}, x_valid_{i.name}); it has x for: "
                                  f"{', '.join(xs)}", i.span,
                                  hint=did_you_mean(i.name, [str(k) for k in xs]) or NAMED_HELP)
        i.key = i.name
        _check_input(data, i, xs[i.name])
    extra = [str(k) for k in xs if k not in {i.name for i in ins}]
    if extra:
        raise EvaluationError(f"data '{data.spec}' has x for '{extra[0]}', which is no input "
                              f"of the network (its inputs: {', '.join(i.name for i in ins)})",
                              hint="x_train_NAME and x_valid_NAME name an input of the .arch file")
    return ins


def _check_input(data: Data, i: _In, info: XInfo) -> None:
    """The data's x fits input `i`: its shape (or as many values, for floats), integers for an
    input that takes them, an index input's values below its bound."""
    what = f"x ({x_label('train', i.key)})" if i.key is not None else "x"
    shape, n = list(info.shape), math.prod(i.shape)
    if shape != i.shape and (i.bound is not None or math.prod(shape) != n):
        kind = f" index({i.bound})" if i.bound is not None else ""
        got = data.describe_x() if i.key is None else info.describe()
        rule = ("an index input's x must have its shape" if i.bound is not None else
                "the shapes must be equal or hold as many values (x is then reshaped)")
        raise EvaluationError(
            f"data '{data.spec}' has examples of shape {got}"
            f"{f' for the input {i.name!r}' if i.key is not None else ''}, but the input "
            f"'{i.name}' is declared as {i.shape}{kind} ({_values(n)})", i.span, hint=rule)
    if i.long and not info.integer:
        takes = (f"is declared index({i.bound}): it takes integers from 0 to {i.bound - 1}"
                 if i.bound is not None else "feeds an embedding, which takes token ids "
                 "(integers)")
        raise EvaluationError(f"the input '{i.name}' {takes}; data '{data.spec}' has floats in "
                              f"{what}", i.span)
    if i.bound is not None and info.range is not None:
        _check_indices(data.spec, i, *info.range)


def _check_indices(spec: str, i: _In, low: int, high: int) -> None:
    """An index(N) input's values are 0 to N - 1."""
    if low < 0 or high >= (i.bound or 0):
        bad = low if low < 0 else high
        raise EvaluationError(f"data '{spec}' has the value {bad} for the input '{i.name}', "
                              f"declared index({i.bound}): its values are 0 to {i.bound - 1}",
                              i.span)


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
