"""Data for the training evaluator (archdsl/evaluators/data.py): .npz files, module:function,
digits; and every way they can be wrong, each a clear EvaluationError / ArchDSLError."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from archdsl.errors import ArchDSLError, EvaluationError
from archdsl.evaluators.data import KEYS, VALID_FRACTION, load_data

_names = itertools.count()


def npz(tmp_path: Path, **arrays: np.ndarray) -> str:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return str(path)


def arrays(n: int = 20, x_shape: tuple[int, ...] = (4,), y_dtype: str = "int64"
           ) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for side, m in (("train", n), ("valid", n // 2)):
        out[f"x_{side}"] = rng.normal(size=(m, *x_shape))  # float64: held as float32
        out[f"y_{side}"] = rng.integers(0, 3, size=m).astype(y_dtype)
    return out


def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    """A module in tmp_path with `def data(): <body>`; the spec naming it."""
    name = f"_data_mod_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(
        "import numpy as np\nimport torch\nfrom torch.utils.data import DataLoader, Dataset, "
        "TensorDataset\n\n" + textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}:data"


def test_digits() -> None:
    d = load_data("digits")
    assert (len(d.train.x), len(d.valid.x)) == (1437, 360)  # scikit-learn rounds the 20% up
    assert VALID_FRACTION == 0.2
    assert d.x_shape == (64,) and d.y_shape == () and d.labels == (0, 9)
    assert d.task == "classification" and d.train.x.dtype == torch.float32
    assert "8x8 images" in d.describe_x()


def test_an_npz_file(tmp_path: Path) -> None:
    d = load_data(npz(tmp_path, **arrays(x_shape=(2, 3), y_dtype="int32")))
    assert d.x_shape == (2, 3) and d.train.x.dtype == torch.float32
    assert d.train.y.dtype == torch.int64 and d.task == "classification"
    assert d.labels is not None and 0 <= d.labels[0] <= d.labels[1] < 3
    assert d.train.size() == 20 and d.valid.size() == 10
    a = arrays()
    a["y_train"], a["y_valid"] = a["y_train"] * 0.5, a["y_valid"] * 0.5
    d = load_data(npz(tmp_path, **a))
    assert d.task == "regression" and d.labels is None and d.train.y.dtype == torch.float32


def test_a_missing_key_names_the_keys_there(tmp_path: Path) -> None:
    a = arrays()
    a["x_val"] = a.pop("x_valid")
    with pytest.raises(EvaluationError, match=r"has no x_valid; it holds: x_train, y_train, "
                                              r"y_valid, x_val") as info:
        load_data(npz(tmp_path, **a))
    assert all(k in (info.value.hint or "") for k in KEYS)


def test_bad_npz_files(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="data file '.*nothing.npz' was not found"):
        load_data(str(tmp_path / "nothing.npz"))
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    with pytest.raises(EvaluationError, match="broken.npz' cannot be read"):
        load_data(str(tmp_path / "broken.npz"))
    a = arrays()
    a["y_train"] = np.array([object()] * 20)  # pickled: refused, never unpickled
    with pytest.raises(EvaluationError, match="cannot be read: ValueError"):
        load_data(npz(tmp_path, **a))
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(EvaluationError, match="is not a .npz file"):
        load_data(str(tmp_path / "d.csv"))
    with pytest.raises(ArchDSLError, match="unknown data 'digitz'") as info:
        load_data("digitz")
    assert "module:function" in (info.value.hint or "")


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(y_train=a["y_train"][:5]), "x_train has 20 examples but y_train has 5"),
    (lambda a: a.update(x_valid=a["x_valid"][:0], y_valid=a["y_valid"][:0]),
     "the valid set is empty"),
    (lambda a: a["x_train"].__setitem__((3, 1), np.nan), "x_train holds NaN or infinite"),
    (lambda a: a.update(x_valid=np.zeros((10, 5))),
     r"each example of x_train has shape \[4\], of x_valid \[5\]"),
    (lambda a: a.update(y_valid=a["y_valid"] * 1.0), "y_train holds integers, y_valid floats"),
    (lambda a: a.update(x_train=np.float64(1.0)), "need an axis of examples"),
    (lambda a: a.update(x_train=np.array(["a"] * 20)), "x_train is not an array of numbers"),
])
def test_inconsistent_arrays(tmp_path: Path, change, message: str) -> None:
    a = arrays()
    change(a)
    with pytest.raises(EvaluationError, match=message):
        load_data(npz(tmp_path, **a))


def test_a_function_returning_arrays_or_a_dict(tmp_path: Path, monkeypatch) -> None:
    spec = module(tmp_path, monkeypatch, """
        def data():
            x = np.arange(30.0).reshape(10, 3)
            return (x, np.arange(10) % 2), (torch.tensor(x[:4]), torch.arange(4) % 2)
    """)
    d = load_data(spec)
    assert d.x_shape == (3,) and d.task == "classification" and d.labels == (0, 1)
    spec = module(tmp_path, monkeypatch, """
        def data():
            x = np.ones((6, 2), dtype=np.float32)
            return {"x_train": x, "y_train": x.sum(1), "x_valid": x, "y_valid": x.sum(1)}
    """)
    d = load_data(spec)
    assert d.task == "regression" and d.train.in_memory and d.y_shape == ()


def test_a_function_returning_datasets_and_loaders(tmp_path: Path, monkeypatch) -> None:
    spec = module(tmp_path, monkeypatch, """
        class Squares(Dataset):
            def __len__(self):
                return 12
            def __getitem__(self, i):
                return torch.full((2, 2), float(i)), i % 4

        def data():
            valid = DataLoader(Squares(), batch_size=5)
            return Squares(), valid
    """)
    d = load_data(spec)
    assert d.x_shape == (2, 2) and d.y_shape == () and d.task == "classification"
    assert d.train.dataset is not None and d.valid.loader is not None
    assert d.labels is None  # streamed: checked batch by batch
    assert d.train.size() == 12 and d.valid.size() == 12
    spec = module(tmp_path, monkeypatch, """
        def data():
            t = TensorDataset(torch.zeros(8, 3), torch.zeros(8))
            return t, t
    """)
    d = load_data(spec)
    assert d.train.in_memory and d.task == "regression"


def test_a_function_that_raises_is_shown_without_a_traceback(tmp_path: Path,
                                                             monkeypatch) -> None:
    spec = module(tmp_path, monkeypatch, """
        def data():
            raise ValueError("the bucket is empty")
    """)
    with pytest.raises(EvaluationError) as info:
        load_data(spec)
    assert info.value.message == f"data '{spec}' raised ValueError: the bucket is empty"
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("body, message", [
    ("return 3", "returned int, not \\(train, valid\\)"),
    ("return {'x_train': 1}", "returned a dict without y_train, x_valid, y_valid"),
    ("return 'abc', 'def'", "the train set is str; give an \\(x, y\\) pair"),
    ("return [(np.zeros((2, 1)), np.zeros(2))] * 2 + [None]", "returned list, not"),
    ("return Bad(), Bad()", "reading the train set raised IndexError: nope"),
    ("return Empty(), Empty()", "the train set is empty"),
    ("return Triples(), Triples()", "the train set gives tuple, not an \\(x, y\\) pair"),
])
def test_a_function_returning_something_else(tmp_path: Path, monkeypatch, body: str,
                                             message: str) -> None:
    spec = module(tmp_path, monkeypatch, f"""
        class Bad(Dataset):
            def __len__(self):
                return 3
            def __getitem__(self, i):
                raise IndexError("nope")

        class Empty(Bad):
            def __len__(self):
                return 0

        class Triples(Bad):
            def __getitem__(self, i):
                return 1.0, 2, 3

        def data():
            {body}
    """)
    with pytest.raises(EvaluationError, match=message):
        load_data(spec)


def test_a_function_that_cannot_be_found(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ArchDSLError, match="data 'no_such_module_x:f': cannot import module"):
        load_data("no_such_module_x:f")
    spec = module(tmp_path, monkeypatch, "def data(): pass\n")
    with pytest.raises(ArchDSLError, match="has no function 'dta'") as info:
        load_data(spec.replace(":data", ":dta"))
    assert "data" in (info.value.hint or "")


def test_a_dict_of_other_keys_is_a_clear_error(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A function returning a dict whose keys are not names (here integers) is told what the
    dict must hold, not a Python error about its keys."""
    spec = module(tmp_path, monkeypatch, "def data():\n    return {0: 1, 1: 2}\n")
    with pytest.raises(EvaluationError):
        load_data(spec)
