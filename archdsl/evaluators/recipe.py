"""The training recipe: a space's `train` section over the defaults, and the optimizer and
learning-rate schedule it names.

Keys (docs/language.md section 13): optimizer (adam, adamw, sgd, rmsprop; `adam(lr = x)` sets
lr), lr, batch, epochs, weight_decay, momentum, schedule (constant, cosine, step),
label_smoothing, seed, and task (classification, regression; none: told by the labels). Imports
torch lazily, and archdsl.errors / archdsl.values only.
"""

from __future__ import annotations

from typing import Any

from ..errors import EvaluationError
from ..values import Record, Sym

__all__ = ["recipe", "optimizer", "schedule", "DEFAULTS", "TASKS"]

DEFAULTS: dict[str, Any] = {"optimizer": "adam", "lr": 1e-3, "batch": 64, "epochs": 8,
                            "weight_decay": 0.0, "momentum": 0.9, "schedule": "constant",
                            "label_smoothing": 0.0, "seed": 0, "task": None}
TASKS = ("classification", "regression")


def recipe(train: dict[str, Any]) -> dict[str, Any]:
    """The training settings: the `train` section over the defaults; `adam(lr = x)` sets lr."""
    r = dict(DEFAULTS)
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
    if r["task"] is not None and r["task"] not in TASKS:
        raise EvaluationError(f"unknown task '{r['task']}' (classification, regression)")
    for k in ("batch", "epochs"):
        if isinstance(r[k], bool) or not isinstance(r[k], int) or r[k] < 1:
            raise EvaluationError(f"train {k} must be a positive integer, got {r[k]!r}")
    return r


def optimizer(model: Any, r: dict[str, Any]) -> Any:
    """The recipe's torch optimizer over the model's parameters."""
    import torch

    params, lr, wd = model.parameters(), float(r["lr"]), float(r["weight_decay"])
    if r["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if r["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if r["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(r["momentum"]), weight_decay=wd)
    return torch.optim.RMSprop(params, lr=lr, momentum=float(r["momentum"]), weight_decay=wd)


def schedule(opt: Any, r: dict[str, Any], steps: int) -> Any:
    """The recipe's learning-rate schedule over `steps` optimizer steps (None: constant)."""
    import torch

    if r["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    if r["schedule"] == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, steps // 3), gamma=0.1)
    return None
