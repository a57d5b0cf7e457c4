"""The data a training evaluator learns from: `load_data(spec) -> Data`.

`spec` is one of
- `digits`: scikit-learn's 1,797 grey 8x8 digit images (shipped with it), a fixed stratified
  split keeping VALID_FRACTION of them (360) for validation;
- a path to a `.npz` file holding the arrays x_train, y_train, x_valid, y_valid (read with
  `allow_pickle=False`: a file is data, never code);
- `module:function` (imported from the working folder or the Python path): the function, called
  with no arguments, returns `(train, valid)` or a dict with the four keys above, where train
  and valid are each an `(x, y)` pair of tensors or numpy arrays, a torch Dataset of `(x, y)`
  examples, or a DataLoader of `(x, y)` batches.

Arrays and tensors are held in memory as torch tensors (floats as float32, integers as int64) and
checked once here; Datasets and DataLoaders are only looked at (their first example or batch) and
stream their examples during training. Every fault is an EvaluationError naming the data. Imports
numpy and torch (lazily), archdsl.errors and the evaluators package only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ArchDSLError, EvaluationError

__all__ = ["Data", "Split", "load_data", "VALID_FRACTION", "KEYS", "DATA_HELP"]

VALID_FRACTION = 0.2
KEYS = ("x_train", "y_train", "x_valid", "y_valid")
DATA_HELP = ("digits (built in), FILE.npz (x_train, y_train, x_valid, y_valid), or "
             "module:function returning (train, valid)")


@dataclass
class Split:
    """One side of the data (train or valid): tensors in memory (`x`, `y`), a Dataset the
    evaluator batches (`dataset`), or the user's DataLoader iterated as it is (`loader`)."""

    x: Any = None
    y: Any = None
    dataset: Any = None
    loader: Any = None

    @property
    def in_memory(self) -> bool:
        return self.x is not None

    def size(self) -> int | None:
        """The number of examples, when known."""
        if self.in_memory:
            return len(self.x)
        try:
            return len(self.dataset if self.dataset is not None else self.loader.dataset)
        except TypeError:
            return None


@dataclass
class Data:
    """Loaded data: both splits, and what one example looks like."""

    spec: str
    train: Split
    valid: Split
    x_shape: tuple[int, ...]  # one example's, without the batch axis
    y_shape: tuple[int, ...]
    x_integer: bool  # x holds integers (token ids)
    y_integer: bool  # the labels are integers (classification, unless told otherwise)
    labels: tuple[int, int] | None = None  # (lowest, highest) integer label held in memory
    what: str = ""  # a few words on the examples, for messages ("8x8 images")

    @property
    def task(self) -> str:
        """The task the labels imply: integers are classes, floats are targets."""
        return "classification" if self.y_integer else "regression"

    def describe_x(self) -> str:
        n = math.prod(self.x_shape)
        note = f"; {self.what}" if self.what else ""
        return f"{list(self.x_shape)} ({n} value{'s' if n != 1 else ''}{note})"


def load_data(spec: str) -> Data:
    """The data `spec` names (see the module doc); EvaluationError when it cannot be used."""
    if spec == "digits":
        return _digits()
    if spec.endswith(".npz") or Path(spec).suffix == ".npz":
        return _npz(spec)
    module, sep, func = spec.partition(":")
    if sep and module and func and not Path(spec).exists():
        return _function(spec)
    if Path(spec).is_file():
        raise EvaluationError(f"data '{spec}' is not a .npz file", hint="data: " + DATA_HELP)
    raise ArchDSLError(f"unknown data '{spec}'", hint="data: " + DATA_HELP)


@lru_cache(maxsize=1)
def _digits() -> Data:
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype("float32")
    xt, xv, yt, yv = train_test_split(x, d.target, test_size=VALID_FRACTION, random_state=0,
                                      stratify=d.target)
    data = _in_memory("digits", (torch.from_numpy(xt), torch.from_numpy(yt)),
                      (torch.from_numpy(xv), torch.from_numpy(yv)))
    data.what = "8x8 images"
    return data


def _npz(spec: str) -> Data:
    import numpy as np

    path = Path(spec)
    if not path.is_file():
        raise EvaluationError(f"data file '{spec}' was not found", hint="data: " + DATA_HELP)
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise EvaluationError(f"data '{spec}' has no {', '.join(missing)}; it holds: "
                                      f"{', '.join(f.files) or 'nothing'}",
                                      hint="a .npz file for training holds " + ", ".join(KEYS))
            arrays = {k: f[k] for k in KEYS}
    except EvaluationError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged file, object arrays...: one clear error
        raise EvaluationError(f"data '{spec}' cannot be read: {type(e).__name__}: {e}") from None
    return _in_memory(spec, (arrays["x_train"], arrays["y_train"]),
                      (arrays["x_valid"], arrays["y_valid"]))


def _function(spec: str) -> Data:
    from . import import_function

    fn = import_function(spec, "data")
    try:
        out = fn()
    except Exception as e:  # noqa: BLE001 - the user's code: its fault is shown, not a traceback
        raise EvaluationError(f"data '{spec}' raised {type(e).__name__}: {e}") from None
    if isinstance(out, dict):
        missing = [k for k in KEYS if k not in out]
        if missing:
            raise EvaluationError(f"data '{spec}' returned a dict without "
                                  f"{', '.join(missing)}",
                                  hint="return (train, valid), or a dict of " + ", ".join(KEYS))
        out = ((out["x_train"], out["y_train"]), (out["x_valid"], out["y_valid"]))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise EvaluationError(f"data '{spec}' returned {type(out).__name__}, not (train, valid)",
                              hint="return (train, valid), or a dict of " + ", ".join(KEYS))
    train, valid = out
    if _is_pair(train) and _is_pair(valid):
        return _in_memory(spec, tuple(train), tuple(valid))
    return _streamed(spec, _split(spec, "train", train), _split(spec, "valid", valid))


def _is_pair(obj: Any) -> bool:
    """An (x, y) pair of arrays or tensors."""
    return (isinstance(obj, (tuple, list)) and len(obj) == 2
            and all(hasattr(a, "shape") for a in obj))


def _split(spec: str, side: str, obj: Any) -> Split:
    """One side given as a pair, a TensorDataset, a Dataset or a DataLoader."""
    from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

    if _is_pair(obj):
        x, y = (_tensor(spec, f"the {side} set's {n}", a) for n, a in zip("xy", obj, strict=True))
        return Split(x=x, y=y)
    if isinstance(obj, TensorDataset) and len(obj.tensors) == 2:
        return Split(x=_tensor(spec, f"the {side} set's x", obj.tensors[0]),
                     y=_tensor(spec, f"the {side} set's y", obj.tensors[1]))
    if isinstance(obj, DataLoader):
        return Split(loader=obj)
    if isinstance(obj, (Dataset, IterableDataset)):
        return Split(dataset=obj)
    raise EvaluationError(f"data '{spec}': the {side} set is {type(obj).__name__}; give an "
                          "(x, y) pair of arrays or tensors, a torch Dataset or a DataLoader")


def _tensor(spec: str, what: str, a: Any) -> Any:
    """An array or tensor as a torch tensor: floats as float32, integers (and true/false) as
    int64; anything else is an error."""
    import numpy as np
    import torch

    try:
        t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    except (TypeError, ValueError, RuntimeError) as e:
        raise EvaluationError(f"data '{spec}': {what} is not an array of numbers: {e}") from None
    if t.is_complex():
        raise EvaluationError(f"data '{spec}': {what} holds complex numbers")
    if t.is_floating_point():
        return t.float()
    return t.long()


def _in_memory(spec: str, train: tuple[Any, Any], valid: tuple[Any, Any]) -> Data:
    """Data held as tensors: checked for matching lengths, shapes and kinds of value."""
    sides = {}
    for side, (x, y) in (("train", train), ("valid", valid)):
        x, y = _tensor(spec, f"x_{side}", x), _tensor(spec, f"y_{side}", y)
        if x.dim() == 0 or y.dim() == 0:
            raise EvaluationError(f"data '{spec}': x_{side} and y_{side} need an axis of "
                                  "examples; one is a single number")
        if len(x) != len(y):
            raise EvaluationError(f"data '{spec}': x_{side} has {len(x)} examples but y_{side} "
                                  f"has {len(y)}")
        if len(x) == 0:
            raise EvaluationError(f"data '{spec}': the {side} set is empty")
        if x.is_floating_point() and not bool(x.isfinite().all()):
            raise EvaluationError(f"data '{spec}': x_{side} holds NaN or infinite values")
        if y.is_floating_point() and not bool(y.isfinite().all()):
            raise EvaluationError(f"data '{spec}': y_{side} holds NaN or infinite values")
        sides[side] = Split(x=x.contiguous(), y=y.contiguous())
    t, v = sides["train"], sides["valid"]
    _same(spec, "x", t.x, v.x)
    _same(spec, "y", t.y, v.y)
    labels = None
    if not t.y.is_floating_point():
        labels = (min(int(t.y.min()), int(v.y.min())), max(int(t.y.max()), int(v.y.max())))
    return Data(spec, t, v, tuple(t.x.shape[1:]), tuple(t.y.shape[1:]),
                not t.x.is_floating_point(), not t.y.is_floating_point(), labels)


def _same(spec: str, name: str, a: Any, b: Any) -> None:
    """The train and validation sets' examples agree in shape and kind."""
    if a.shape[1:] != b.shape[1:]:
        raise EvaluationError(f"data '{spec}': each example of {name}_train has shape "
                              f"{list(a.shape[1:])}, of {name}_valid {list(b.shape[1:])}")
    if a.is_floating_point() != b.is_floating_point():
        kinds = ["floats" if t.is_floating_point() else "integers" for t in (a, b)]
        raise EvaluationError(f"data '{spec}': {name}_train holds {kinds[0]}, {name}_valid "
                              f"{kinds[1]}")


def _streamed(spec: str, train: Split, valid: Split) -> Data:
    """Data with a Dataset or DataLoader side: its shapes are read from one example."""
    first = {side: _first(spec, side, s) for side, s in (("train", train), ("valid", valid))}
    (xt, yt), (xv, yv) = first["train"], first["valid"]
    _same(spec, "x", xt, xv)
    _same(spec, "y", yt, yv)
    return Data(spec, train, valid, tuple(xt.shape[1:]), tuple(yt.shape[1:]),
                not xt.is_floating_point(), not yt.is_floating_point())


def _first(spec: str, side: str, s: Split) -> tuple[Any, Any]:
    """The first example (as a batch of one) or batch of a side, as tensors."""
    if s.in_memory:
        return s.x[:1], s.y[:1]
    try:
        if s.loader is not None:
            item, batched = next(iter(s.loader)), True
        elif hasattr(s.dataset, "__getitem__") and hasattr(s.dataset, "__len__"):
            if len(s.dataset) == 0:
                raise EvaluationError(f"data '{spec}': the {side} set is empty")
            item, batched = s.dataset[0], False
        else:
            item, batched = next(iter(s.dataset)), False
    except EvaluationError:
        raise
    except StopIteration:
        raise EvaluationError(f"data '{spec}': the {side} set is empty") from None
    except Exception as e:  # noqa: BLE001 - the user's Dataset: its fault is shown
        raise EvaluationError(f"data '{spec}': reading the {side} set raised "
                              f"{type(e).__name__}: {e}") from None
    x, y = pair(spec, side, item)
    return (x, y) if batched else (x.unsqueeze(0), y.unsqueeze(0))


def pair(spec: str, side: str, item: Any) -> tuple[Any, Any]:
    """An example or batch `(x, y)` from a Dataset or DataLoader, as tensors."""
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise EvaluationError(f"data '{spec}': the {side} set gives {type(item).__name__}, "
                              "not an (x, y) pair")
    return (_tensor(spec, f"an x of the {side} set", item[0]),
            _tensor(spec, f"a y of the {side} set", item[1]))
