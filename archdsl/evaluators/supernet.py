"""The supernet evaluator (`--evaluator supernet:CHECKPOINT`): score architectures with the
weights they inherit from a trained supernet instead of training them.

`prepare(space)` loads the checkpoint (`archdsl supernet ... -o CHECKPOINT`; a checkpoint of
another space is an error) and the data it was trained on (its meta names it: digits, a .npz
file, or module:function, which is imported). `evaluate(arch)` runs the architecture's
configuration in the supernet itself (its slices of the weight bank, no stand-alone copy: one
evaluator per process, as the supernet's BatchNorm statistics are reset for each architecture),
recalibrates its BatchNorm statistics on CALIBRATION_BATCHES training batches (the same ones
for every architecture), and returns minus its validation loss
(cross-entropy for classification, mean squared error for regression) as the objective, with
its validation accuracy as a metric. The loss, not the accuracy, is the objective because it
ranks better: inherited weights give low, coarse accuracies (a few hundred validation images
at 50% accuracy have a standard error of 2.6 points), and on the one-shot benchmark
(benchmarks/one_shot.py) the loss's Kendall tau with the stand-alone accuracies is higher for
every supernet seed. `--objective maximize:accuracy` ranks by the accuracy instead.

Imports torch lazily, archdsl.one_shot, archdsl.devices, archdsl.errors and this package.
"""

from __future__ import annotations

from typing import Any

from ..errors import ArchDSLError
from ..graph import Architecture
from . import Evaluator

__all__ = ["SupernetEvaluator", "PREFIX"]

PREFIX = "supernet:"


class SupernetEvaluator(Evaluator):
    """Inherited-weight accuracy from the supernet in `checkpoint` (see the module doc)."""

    name = "supernet"
    metrics = ("objective", "accuracy", "valid_loss", "params", "flops", "eval_seconds")

    def __init__(self, checkpoint: str, device: str = "auto", threads: int | None = None,
                 calibrate: int | None = None):
        from ..devices import check_device
        from ..one_shot import CALIBRATION_BATCHES

        if not checkpoint:
            raise ArchDSLError("--evaluator supernet:CHECKPOINT needs the checkpoint's path",
                               hint="train one with `archdsl supernet FILE -o CHECKPOINT`")
        check_device(device)
        self.checkpoint, self.device, self.threads = checkpoint, device, threads
        self.calibrate = CALIBRATION_BATCHES if calibrate is None else calibrate
        self._space: Any = None
        self._supernet: Any = None
        self._data: Any = None  # (the training evaluator that batches the data, its _Fit)
        self._xs: dict[str, list[Any]] = {}  # calibration inputs, per device

    def prepare(self, space: Any) -> None:
        """Load the checkpoint for `space` and the data it was trained on."""
        from ..one_shot import checkpoint_data, load_checkpoint

        if self._space is space:
            return
        supernet = load_checkpoint(self.checkpoint, space)  # a missing file: its error
        meta = getattr(supernet, "meta", None) or {}
        self._data = checkpoint_data(supernet, space, meta.get("data") or "digits", self.device)
        self._supernet, self._space, self._xs = supernet, space, {}

    def evaluate(self, arch: Architecture, reporter: Any = None) -> dict[str, Any]:
        """The inherited-weight score of `arch` (prepared for its space first)."""
        import time

        import torch

        from ..backends.plan import plan
        from ..devices import resolve_device
        from ..one_shot import calibration_inputs

        if self._supernet is None:
            raise ArchDSLError("the supernet evaluator was not prepared with the space")
        if self.threads:
            torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        device = torch.device(reporter.device if reporter is not None
                              else resolve_device(self.device))
        ev, fit = self._data
        key = str(device)
        if key not in self._xs:
            self._supernet.to(device)
            self._xs = {key: calibration_inputs(ev, fit, device, self.calibrate)}
        net = self._supernet
        net.recalibrate(arch.config, self._xs[key])
        valid = ev._validate(_Path(net, arch.config), fit, device)
        p = plan(arch)
        named = {"accuracy": valid.accuracy} if valid.accuracy is not None else {}
        out = {"objective": -valid.loss, **named, "valid_loss": valid.loss,
               "params": p.params, "flops": p.flops,
               "eval_seconds": round(time.perf_counter() - t0, 3), "device": key}
        if reporter is not None:
            reporter.report(1, -valid.loss, last=True)
        return out


class _Path:
    """One configuration's network run in the supernet itself, without a stand-alone copy:
    what the training evaluator's validation needs of a model (eval, train, call)."""

    def __init__(self, supernet: Any, config: dict[str, Any]):
        self.supernet, self.config = supernet, config

    def eval(self) -> _Path:
        self.supernet.eval()
        return self

    def train(self, mode: bool = True) -> _Path:
        self.supernet.train(mode)
        return self

    def __call__(self, *inputs: Any) -> Any:
        return self.supernet(*inputs, config=self.config)
