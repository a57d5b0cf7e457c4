"""The default evaluator: train the compiled model on scikit-learn's digits data.

1,797 grey 8x8 images of the digits 0-9 ship inside scikit-learn (nothing is downloaded). A
fixed stratified split keeps 360 of them for validation; the objective is validation accuracy.
The training recipe is the space's `train` section (its decisions are searched too):
optimizer (adam, adamw, sgd, rmsprop), lr, batch, epochs, weight_decay, momentum, schedule
(constant, cosine, step), label_smoothing and seed.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any

from ..errors import EvaluationError
from ..graph import Architecture
from ..values import Record, Sym
from . import Evaluator

__all__ = ["DigitsEvaluator", "recipe", "VALID_FRACTION"]

VALID_FRACTION = 0.2
_DEFAULTS = {"optimizer": "adam", "lr": 1e-3, "batch": 64, "epochs": 8, "weight_decay": 0.0,
             "momentum": 0.9, "schedule": "constant", "label_smoothing": 0.0, "seed": 0}


@lru_cache(maxsize=1)
def _data() -> tuple[Any, Any, Any, Any]:
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype("float32")
    xt, xv, yt, yv = train_test_split(x, d.target, test_size=VALID_FRACTION, random_state=0,
                                      stratify=d.target)
    return (torch.from_numpy(xt), torch.from_numpy(yt).long(),
            torch.from_numpy(xv), torch.from_numpy(yv).long())


def recipe(train: dict[str, Any]) -> dict[str, Any]:
    """The training settings: the `train` section over the defaults; `adam(lr = x)` sets lr."""
    r = dict(_DEFAULTS)
    for k, v in train.items():
        if k == "optimizer" and isinstance(v, Record):
            r["optimizer"] = v.name
            for name, x in v.args:
                if name is None:
                    raise EvaluationError(f"optimizer {v.name}: give its arguments by name "
                                          "(lr = ..., momentum = ...)")
                r[name] = x
        else:
            r[k] = v.name if isinstance(v, Sym) else v
    if r["optimizer"] not in ("adam", "adamw", "sgd", "rmsprop"):
        raise EvaluationError(f"unknown optimizer '{r['optimizer']}' (adam, adamw, sgd, rmsprop)")
    if r["schedule"] not in ("constant", "cosine", "step"):
        raise EvaluationError(f"unknown schedule '{r['schedule']}' (constant, cosine, step)")
    for k in ("batch", "epochs"):
        if isinstance(r[k], bool) or not isinstance(r[k], int) or r[k] < 1:
            raise EvaluationError(f"train {k} must be a positive integer, got {r[k]!r}")
    return r


class DigitsEvaluator(Evaluator):
    """Trains on 1,437 digits, scores validation accuracy on 360 (see the module doc)."""

    name = "digits"

    def __init__(self, threads: int | None = None):
        self.threads = threads  # torch threads; None: as set (OMP_NUM_THREADS, or all cores)

    def evaluate(self, arch: Architecture) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        from ..backends.plan import plan
        from ..backends.pytorch import build

        if self.threads:
            torch.set_num_threads(self.threads)
        p = plan(arch)
        shape = _input_shape(arch)
        if p.output_shape != [10]:
            raise EvaluationError(f"the digits evaluator needs 10 outputs (one per class); "
                                  f"the network gives {p.output_shape}")
        r = recipe(arch.train)
        torch.manual_seed(int(r["seed"]))
        model = build(p)
        xt, yt, xv, yv = _data()
        xt, xv = xt.reshape(-1, *shape), xv.reshape(-1, *shape)
        opt = _optimizer(model, r)
        steps = r["epochs"] * math.ceil(len(xt) / r["batch"])
        sched = _schedule(opt, r, steps)
        gen = torch.Generator().manual_seed(int(r["seed"]))
        t0 = time.perf_counter()
        loss = torch.tensor(0.0)
        model.train()
        for epoch in range(r["epochs"]):
            order = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(xt), r["batch"]):
                idx = order[i:i + r["batch"]]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(xt[idx]), yt[idx],
                                       label_smoothing=float(r["label_smoothing"]))
                if not torch.isfinite(loss):
                    raise EvaluationError(f"training diverged: the loss is {loss.item()} "
                                          f"in epoch {epoch + 1}")
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
        train_s = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            logits = model(xv)
            valid_loss = F.cross_entropy(logits, yv).item()
            acc = (logits.argmax(1) == yv).float().mean().item()
        return {"objective": acc, "params": p.params, "flops": p.flops,
                "train_loss": loss.item(), "valid_loss": valid_loss,
                "train_seconds": round(train_s, 3), "epochs": r["epochs"]}


def _input_shape(arch: Architecture) -> list[int]:
    ins = arch.inputs()
    if len(ins) != 1:
        raise EvaluationError(f"the digits evaluator feeds one input; the network has {len(ins)}")
    shape = list(arch.graph.nodes[ins[0]]["args"]["shape"])
    if math.prod(shape) != 64:
        raise EvaluationError(f"the digits evaluator feeds 8x8 images (64 values); the input "
                              f"is declared as {shape}", arch.graph.nodes[ins[0]].get("span"))
    return shape


def _optimizer(model: Any, r: dict[str, Any]) -> Any:
    import torch

    params, lr, wd = model.parameters(), float(r["lr"]), float(r["weight_decay"])
    if r["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if r["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if r["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(r["momentum"]), weight_decay=wd)
    return torch.optim.RMSprop(params, lr=lr, momentum=float(r["momentum"]), weight_decay=wd)


def _schedule(opt: Any, r: dict[str, Any], steps: int) -> Any:
    import torch

    if r["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    if r["schedule"] == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, steps // 3), gamma=0.1)
    return None
