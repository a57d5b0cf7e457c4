"""The data a training evaluator learns from: `load_data(spec) -> Data`.

`spec` is one of
- `digits`: scikit-learn's 1,797 grey 8x8 digit images (shipped with it), a fixed stratified
  split keeping VALID_FRACTION of them (360) for validation;
- a path to a `.npz` file holding the arrays x_train, y_train, x_valid, y_valid (read with
  `allow_pickle=False`: a file is data, never code); for a network of several inputs, one x per
  input by its name instead: x_train_NAME and x_valid_NAME for each input NAME;
- `module:function` (imported from the working folder or the Python path): the function, called
  with no arguments, returns `(train, valid)` or a dict with the keys above, where train
  and valid are each an `(x, y)` pair of tensors or numpy arrays, a torch Dataset of `(x, y)`
  examples, or a DataLoader of `(x, y)` batches; for several inputs x is a dict
  {input name: array or tensor} (a Dataset's example too: the default collate batches it).

Arrays and tensors are held in memory as torch tensors (floats as float32, integers as int64) and
checked once here (integers' lowest and highest value kept, for index inputs); Datasets and DataLoaders are only looked at (their first example or batch) and
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

__all__ = ["Data", "Split", "XInfo", "load_data", "VALID_FRACTION", "KEYS", "DATA_HELP",
           "NAMED_HELP", "x_label", "y_or_x"]

VALID_FRACTION = 0.2
KEYS = ("x_train", "y_train", "x_valid", "y_valid")
DATA_HELP = ("digits (built in), FILE.npz (x_train, y_train, x_valid, y_valid), or "
             "module:function returning (train, valid)")
NAMED_HELP = ("for several inputs, one x per input by its name: x_train_NAME and x_valid_NAME "
              "with y_train and y_valid (a dict {NAME: array} as x from a function)")


@dataclass
class Split:
    """One side of the data (train or valid): tensors in memory (`x`, `y`), a Dataset the
    evaluator batches (`dataset`), or the user's DataLoader iterated as it is (`loader`)."""

    x: Any = None  # a tensor, or {input name: tensor} for several inputs
    y: Any = None
    dataset: Any = None
    loader: Any = None

    @property
    def in_memory(self) -> bool:
        return self.x is not None

    def size(self) -> int | None:
        """The number of examples, when known."""
        if self.in_memory:
            return len(y_or_x(self.x, self.y))
        try:
            return len(self.dataset if self.dataset is not None else self.loader.dataset)
        except TypeError:
            return None


def y_or_x(x: Any, y: Any) -> Any:
    """What counts the examples of a side in memory: its y (as long as every x)."""
    return y if y is not None else next(iter(x.values())) if isinstance(x, dict) else x


def x_label(side: str, name: str | None) -> str:
    """How messages name an x: x_train, or x_train_NAME for an input's own."""
    return f"x_{side}" if name is None else f"x_{side}_{name}"


@dataclass
class XInfo:
    """What one x looks like: an example's shape, integers or floats, and (held in memory,
    integers) the lowest and highest value."""

    shape: tuple[int, ...]
    integer: bool
    range: tuple[int, int] | None = None

    def describe(self) -> str:
        n = math.prod(self.shape)
        return f"{list(self.shape)} ({n} value{'s' if n != 1 else ''})"


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
    x_range: tuple[int, int] | None = None  # (lowest, highest) value of an integer x in memory
    named: dict[str, XInfo] | None = None  # several inputs' x by name (then x_shape is ())

    def xs(self) -> dict[str | None, XInfo]:
        """Each x: by input name, or {None: ...} for data with one x."""
        if self.named is not None:
            return dict(self.named)
        return {None: XInfo(self.x_shape, self.x_integer, self.x_range)}

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
            if _named_keys(f.files):
                arrays = {k: f[k] for k in f.files}
                return _named(spec, arrays, "a .npz file for training holds ")
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
    if isinstance(out, dict) and _named_keys(list(out)):
        return _named(spec, out, "return (train, valid), or a dict of ")
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


def _named_keys(keys: list[str]) -> bool:
    """Keys of the named form (x_train_NAME, ...) and not of the one-x form (x_train, ...)."""
    return ("x_train" not in keys and "x_valid" not in keys
            and any(isinstance(k, str) and k.startswith(("x_train_", "x_valid_"))
                    for k in keys))


def _named(spec: str, arrays: dict[str, Any], form: str) -> Data:
    """The named form: x_train_NAME / x_valid_NAME for each input NAME, y_train, y_valid."""
    hint = form + "x_train_NAME and x_valid_NAME for each input NAME, y_train and y_valid"
    missing = [k for k in ("y_train", "y_valid") if k not in arrays]
    if missing:
        raise EvaluationError(f"data '{spec}' has no {', '.join(missing)}; it holds: "
                              f"{', '.join(arrays)}", hint=hint)
    xs: dict[str, dict[str, Any]] = {"train": {}, "valid": {}}
    for k, a in arrays.items():
        for side in xs:
            if k.startswith(f"x_{side}_"):
                xs[side][k[len(f"x_{side}_"):]] = a
    for side, other in (("train", "valid"), ("valid", "train")):
        alone = [n for n in xs[side] if n not in xs[other]]
        if alone:
            raise EvaluationError(f"data '{spec}' has x_{side}_{alone[0]} but no "
                                  f"x_{other}_{alone[0]}", hint=hint)
    return _in_memory(spec, (xs["train"], arrays["y_train"]), (xs["valid"], arrays["y_valid"]))


def _is_x(a: Any) -> bool:
    """An array or tensor, or a dict {input name: array or tensor}."""
    if isinstance(a, dict):
        return bool(a) and all(hasattr(v, "shape") for v in a.values())
    return hasattr(a, "shape")


def _is_pair(obj: Any) -> bool:
    """An (x, y) pair of arrays or tensors (x: or a dict of them by input name)."""
    return (isinstance(obj, (tuple, list)) and len(obj) == 2
            and _is_x(obj[0]) and hasattr(obj[1], "shape"))


def _split(spec: str, side: str, obj: Any) -> Split:
    """One side given as a pair, a TensorDataset, a Dataset or a DataLoader."""
    from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

    if _is_pair(obj):
        return Split(x=_x(spec, f"the {side} set's x", obj[0]),
                     y=_tensor(spec, f"the {side} set's y", obj[1]))
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


def _x(spec: str, what: str, a: Any) -> Any:
    """An x as a tensor, or a dict of them by input name (each checked as _tensor does)."""
    if not isinstance(a, dict):
        return _tensor(spec, what, a)
    if not a:
        raise EvaluationError(f"data '{spec}': {what} is an empty dict; give one array per "
                              "input, by its name")
    for k in a:
        if not isinstance(k, str) or not k.isidentifier():
            raise EvaluationError(f"data '{spec}': {what} has a key {k!r}; the keys are the "
                                  "names of the network's inputs")
    return {k: _tensor(spec, f"{what} of '{k}'", v) for k, v in a.items()}


def _each(x: Any) -> dict[str | None, Any]:
    """The tensors of an x by input name ({None: x} for one x)."""
    return dict(x) if isinstance(x, dict) else {None: x}


def _in_memory(spec: str, train: tuple[Any, Any], valid: tuple[Any, Any]) -> Data:
    """Data held as tensors: checked for matching lengths, shapes and kinds of value."""
    sides = {}
    for side, (x, y) in (("train", train), ("valid", valid)):
        xs = _each(_x(spec, f"x_{side}", x))
        y = _tensor(spec, f"y_{side}", y)
        if y.dim() == 0 or any(t.dim() == 0 for t in xs.values()):
            raise EvaluationError(f"data '{spec}': x_{side} and y_{side} need an axis of "
                                  "examples; one is a single number")
        for name, t in xs.items():
            if len(t) != len(y):
                raise EvaluationError(f"data '{spec}': {x_label(side, name)} has {len(t)} "
                                      f"examples but y_{side} has {len(y)}")
        if len(y) == 0:
            raise EvaluationError(f"data '{spec}': the {side} set is empty")
        for name, t in xs.items():
            if t.is_floating_point() and not bool(t.isfinite().all()):
                raise EvaluationError(f"data '{spec}': {x_label(side, name)} holds NaN or "
                                      "infinite values")
        if y.is_floating_point() and not bool(y.isfinite().all()):
            raise EvaluationError(f"data '{spec}': y_{side} holds NaN or infinite values")
        xs = {k: t.contiguous() for k, t in xs.items()}
        sides[side] = Split(x=xs if isinstance(x, dict) else xs[None], y=y.contiguous())
    t, v = sides["train"], sides["valid"]
    infos = _same_x(spec, _each(t.x), _each(v.x))
    _same(spec, "y", t.y, v.y)
    for name, info in infos.items():
        if info.integer:
            a, b = _each(t.x)[name], _each(v.x)[name]
            info.range = (min(int(a.min()), int(b.min())), max(int(a.max()), int(b.max())))
    labels = None
    if not t.y.is_floating_point():
        labels = (min(int(t.y.min()), int(v.y.min())), max(int(t.y.max()), int(v.y.max())))
    return _data(spec, t, v, infos, t.y, labels)


def _data(spec: str, t: Split, v: Split, infos: dict[str | None, XInfo], y: Any,
          labels: tuple[int, int] | None) -> Data:
    """Data from each x's XInfo and a y (a batch of one or more)."""
    if None in infos:
        one = infos[None]
        return Data(spec, t, v, one.shape, tuple(y.shape[1:]), one.integer,
                    not y.is_floating_point(), labels, x_range=one.range)
    return Data(spec, t, v, (), tuple(y.shape[1:]), False, not y.is_floating_point(), labels,
                named={str(k): i for k, i in infos.items()})


def _same_x(spec: str, t: dict[str | None, Any], v: dict[str | None, Any]
            ) -> dict[str | None, XInfo]:
    """Both sides give the same inputs' x, each agreeing in shape and kind; their XInfo."""
    for a, b, side, other in ((t, v, "train", "valid"), (v, t, "valid", "train")):
        if (None in a) != (None in b):
            raise EvaluationError(f"data '{spec}': the {side} set has "
                                  f"{'one x' if None in a else 'x by input name'}, the {other} "
                                  f"set {'one x' if None in b else 'x by input name'}")
        alone = [k for k in a if k not in b]
        if alone:
            raise EvaluationError(f"data '{spec}': the {side} set has x for the input "
                                  f"'{alone[0]}', the {other} set none")
    for k in t:
        _same(spec, "x" if k is None else f"x_{{}}_{k}", t[k], v[k])
    return {k: XInfo(tuple(a.shape[1:]), not a.is_floating_point()) for k, a in t.items()}


def _same(spec: str, name: str, a: Any, b: Any) -> None:
    """The train and validation sets' examples agree in shape and kind (`name`: x, y, or
    x_{}_NAME, `{}` standing for the side)."""
    if "{}" not in name:
        name += "_{}"
    train, valid = name.format("train"), name.format("valid")
    if a.shape[1:] != b.shape[1:]:
        raise EvaluationError(f"data '{spec}': each example of {train} has shape "
                              f"{list(a.shape[1:])}, of {valid} {list(b.shape[1:])}")
    if a.is_floating_point() != b.is_floating_point():
        kinds = ["floats" if t.is_floating_point() else "integers" for t in (a, b)]
        raise EvaluationError(f"data '{spec}': {train} holds {kinds[0]}, {valid} "
                              f"{kinds[1]}")


def _streamed(spec: str, train: Split, valid: Split) -> Data:
    """Data with a Dataset or DataLoader side: its shapes are read from one example."""
    first = {side: _first(spec, side, s) for side, s in (("train", train), ("valid", valid))}
    (xt, yt), (xv, yv) = first["train"], first["valid"]
    infos = _same_x(spec, _each(xt), _each(xv))
    _same(spec, "y", yt, yv)
    return _data(spec, train, valid, infos, yt, None)


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
    if batched:
        return x, y
    if isinstance(x, dict):
        return {k: t.unsqueeze(0) for k, t in x.items()}, y.unsqueeze(0)
    return x.unsqueeze(0), y.unsqueeze(0)


def pair(spec: str, side: str, item: Any) -> tuple[Any, Any]:
    """An example or batch `(x, y)` from a Dataset or DataLoader, as tensors (x: or a dict of
    them by input name)."""
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise EvaluationError(f"data '{spec}': the {side} set gives {type(item).__name__}, "
                              "not an (x, y) pair")
    return (_x(spec, f"an x of the {side} set", item[0]),
            _tensor(spec, f"a y of the {side} set", item[1]))
