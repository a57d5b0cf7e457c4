"""The training evaluator on networks of several inputs (archdsl/evaluators/data.py's named
form, train.py): one x per input by its name, from a .npz file, a function, a Dataset or a
DataLoader; a graph task searched with examples/gnn.arch; and every input that does not fit its
declaration one clear error at its .arch line (exit 1, no traceback, no study)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import archdsl
from archdsl.cli import main
from archdsl.errors import EvaluationError
from archdsl.evaluators.data import load_data
from archdsl.evaluators.train import TrainEvaluator
from archdsl.study import Study

ROOT = Path(__file__).resolve().parent.parent

# two vectors; the label needs both (a . wa + b . wb > 0)
TWO = """input a: [3]
input b: [2]
network {
    h = a -> linear(8)
    return add(h, b -> linear(8)) -> relu -> linear(2)
}
train { optimizer = adam(lr = 0.05)
        epochs = 6
        batch = 32 }
"""
# a vector and 4 indices below 10 (an embedding reads them)
INDEXED = """input v: [3]
input words: [4] index(10)
network {
    t = words -> embedding(10, 4) -> flatten -> linear(8)
    return add(v -> linear(8), t) -> relu -> linear(2)
}
train { epochs = 2 }
"""
ONE_INDEX = """input words: [4] index(10)
network { words -> embedding(16, 4) -> flatten -> linear(2) }
"""

GRAPHS = '''
import numpy as np

def graphs(n=320, seed=0):
    """Graphs of 12 nodes (8 features each) and 40 directed edges; the label: is the sum of
    feature 0 over the edges' source nodes positive? (It reads the edges, not the nodes alone.)"""
    rng = np.random.default_rng(seed)
    nodes = rng.normal(size=(n, 12, 8)).astype("float32")
    edges = rng.integers(0, 12, size=(n, 2, 40))
    src = np.take_along_axis(nodes[:, :, 0], edges[:, 0], axis=1)
    y = (src.sum(1) > 0).astype("int64")
    k = n * 3 // 4
    return {"x_train_nodes": nodes[:k], "x_train_edges": edges[:k], "y_train": y[:k],
            "x_valid_nodes": nodes[k:], "x_valid_edges": edges[k:], "y_valid": y[k:]}
'''


def two(n: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """TWO's data, by name: x_train_a, x_train_b, y_train and the same for valid."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    y = (a @ np.array([1.0, -1.0, 0.5]) + b @ np.array([-1.5, 1.0]) > 0).astype("int64")
    k = n * 3 // 4
    return {"x_train_a": a[:k], "x_train_b": b[:k], "y_train": y[:k],
            "x_valid_a": a[k:], "x_valid_b": b[k:], "y_valid": y[k:]}


def indexed(n: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    v, w = rng.normal(size=(n, 3)), rng.integers(0, 10, size=(n, 4))
    y = ((w == 3).any(1) ^ (v[:, 0] > 0)).astype("int64")
    k = n * 3 // 4
    return {"x_train_v": v[:k], "x_train_words": w[:k], "y_train": y[:k],
            "x_valid_v": v[k:], "x_valid_words": w[k:], "y_valid": y[k:]}


def npz(tmp_path: Path, arrays: dict[str, Any], name: str = "d.npz") -> str:
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def default(text: str) -> archdsl.Architecture:
    space = archdsl.loads(text)
    return space.materialize(space.default())


# ---------------------------------------------------------------- training
def test_two_inputs_from_a_npz_file_train_by_name(tmp_path: Path) -> None:
    d = load_data(npz(tmp_path, two()))
    assert d.named is not None and {k: v.shape for k, v in d.named.items()} == {"a": (3,),
                                                                              "b": (2,)}
    out = TrainEvaluator(data=npz(tmp_path, two()), device="cpu").evaluate(default(TWO))
    assert out["objective"] > 0.85 and out["epochs"] == 6  # it needs both inputs: it gets them
    swapped = {k: two()[k] for k in ("x_valid_b", "y_valid", "x_train_b", "x_valid_a",
                                     "y_train", "x_train_a")}  # the file's order: no matter
    again = TrainEvaluator(data=npz(tmp_path, swapped, "s.npz"), device="cpu")
    assert again.evaluate(default(TWO))["objective"] == out["objective"]


def test_the_same_data_from_a_function_dataset_and_loader(tmp_path: Path, monkeypatch) -> None:
    np.savez(tmp_path / "two.npz", **two())
    (tmp_path / "_two_inputs.py").write_text('''
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

d = dict(np.load("two.npz"))

def pairs():
    return [({"a": d[f"x_{s}_a"], "b": d[f"x_{s}_b"]}, d[f"y_{s}"]) for s in ("train", "valid")]

def keys():
    return d

class Examples(Dataset):
    def __init__(self, side):
        self.side = side
    def __len__(self):
        return len(d[f"y_{self.side}"])
    def __getitem__(self, i):
        s = self.side
        return {"a": torch.tensor(d[f"x_{s}_a"][i]), "b": torch.tensor(d[f"x_{s}_b"][i])}, \\
            int(d[f"y_{s}"][i])

def streamed():
    return Examples("train"), DataLoader(Examples("valid"), batch_size=25)
''')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    arch = default(TWO)
    scores = {spec: TrainEvaluator(data=spec, device="cpu").evaluate(arch)["objective"]
              for spec in ("two.npz", "_two_inputs:pairs", "_two_inputs:keys")}
    assert len(set(scores.values())) == 1 and scores["two.npz"] > 0.85, scores
    out = TrainEvaluator(data="_two_inputs:streamed", device="cpu").evaluate(arch)
    assert out["objective"] > 0.85


def test_an_index_input_and_a_one_input_network_by_name(tmp_path: Path) -> None:
    ev = TrainEvaluator(data=npz(tmp_path, indexed()), device="cpu")
    ev.prepare(archdsl.loads(INDEXED))
    out = ev.evaluate(default(INDEXED))
    assert 0 <= out["objective"] <= 1 and out["epochs"] == 2
    a = two()
    one = {"x_train_a": a["x_train_a"], "y_train": a["y_train"], "x_valid_a": a["x_valid_a"],
           "y_valid": a["y_valid"]}
    space = "input a: [3]\nnetwork { linear(2) }\ntrain { epochs = 1 }\n"
    out = TrainEvaluator(data=npz(tmp_path, one, "one.npz"), device="cpu").evaluate(
        default(space))
    assert 0 <= out["objective"] <= 1


def test_a_graph_network_searched_on_a_graph_task(tmp_path: Path) -> None:
    """examples/gnn.arch (node features [12, 8] and edges [2, 40] index(12)) searched from the
    command line on a synthetic graph task, as a user runs it."""
    (tmp_path / "graphs.py").write_text(GRAPHS)
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from archdsl.cli import main; sys.exit(main())",
         "search", "examples/gnn.arch", "--ops", "examples.gnn_ops", "--data", "graphs:graphs",
         "--budget", "2", "--device", "cpu", "--study", str(tmp_path / "st"), "--quiet"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    best = json.loads((tmp_path / "st" / "best.json").read_text())
    with Study.open(tmp_path / "st") as st:
        trials = st.trials()
        assert [t.status for t in trials] == ["ok", "ok"]
        assert all(t.metrics["epochs"] == 8 for t in trials)  # gnn.arch's default recipe
        assert max(t.objective for t in trials) > 0.6  # chance is about 0.5
    assert best


# ---------------------------------------------------------------- bad input
def _search(tmp_path: Path, capsys, space: str, data: str) -> tuple[int, str]:
    (tmp_path / "s.arch").write_text(space)
    rc = main(["search", str(tmp_path / "s.arch"), "--data", data, "--budget", "1",
               "--device", "cpu", "--study", str(tmp_path / "st"), "--quiet"])
    _out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert not (tmp_path / "st").exists()
    return rc, err


def _drop(arrays: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in arrays.items() if k not in keys}


def _with(arrays: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**arrays, **changes}


@pytest.mark.parametrize("space, make, message", [
    (TWO, lambda: {"x_train": two()["x_train_a"], "y_train": two()["y_train"],
                   "x_valid": two()["x_valid_a"], "y_valid": two()["y_valid"]},
     r"s.arch:2:1: error: data '.*' has one x, but the network has 2 inputs \('a', 'b'\)"),
    (TWO, lambda: _drop(two(), "x_train_b", "x_valid_b"),
     "s.arch:2:1: error: data '.*' has no x for the input 'b' .*; it has x for: a"),
    (TWO, lambda: _with(two(), x_train_c=two()["x_train_a"], x_valid_c=two()["x_valid_a"]),
     "has x for 'c', which is no input of the network"),
    (TWO, lambda: _with(two(), x_train_b=np.zeros((300, 4)), x_valid_b=np.zeros((100, 4))),
     r"s.arch:2:1: error: data '.*' has examples of shape \[4\] \(4 values\) for the input 'b', "
     r"but the input 'b' is declared as \[2\]"),
    (TWO, lambda: _drop(two(), "x_valid_b"), "has x_train_b but no x_valid_b"),
    (TWO, lambda: _with(two(), x_train_b=two()["x_train_b"][:10]),
     "x_train_b has 10 examples but y_train has 300"),
    (INDEXED, lambda: _with(indexed(), x_train_words=indexed()["x_train_words"] * 1.0,
                            x_valid_words=indexed()["x_valid_words"] * 1.0),
     r"s.arch:2:1: error: the input 'words' is declared index\(10\): it takes integers from 0 "
     r"to 9; data '.*' has floats in x \(x_train_words\)"),
    (INDEXED, lambda: _with(indexed(), x_valid_words=indexed()["x_valid_words"] + 1),
     r"s.arch:2:1: error: data '.*' has the value 10 for the input 'words', declared "
     r"index\(10\): its values are 0 to 9"),
    (INDEXED, lambda: _with(indexed(), x_train_words=indexed()["x_train_words"] - 1),
     "has the value -1 for the input 'words'"),
    (INDEXED, lambda: _with(indexed(), x_train_words=indexed()["x_train_words"].reshape(150, 2, 2),
                            x_valid_words=indexed()["x_valid_words"].reshape(50, 2, 2)),
     r"s.arch:2:1: error: data '.*' has examples of shape \[2, 2\] \(4 values\) for the input "
     r"'words', but the input 'words' is declared as \[4\] index\(10\)"),
    (ONE_INDEX, lambda: {"x_train": indexed()["x_train_words"], "y_train": indexed()["y_train"],
                         "x_valid": indexed()["x_valid_words"] + 5, "y_valid": indexed()["y_valid"]},
     r"s.arch:1:1: error: data '.*' has the value 14 for the input 'words', declared "
     r"index\(10\)"),  # one input, one x: its index bound is checked too
])
def test_data_that_does_not_fit_an_input(tmp_path: Path, capsys, space: str, make,
                                         message: str) -> None:
    rc, err = _search(tmp_path, capsys, space, npz(tmp_path, make()))
    assert rc == 1 and "error: " in err
    assert re.search(message, err), err


def test_a_streamed_batch_out_of_range_fails_its_trial(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "_bad_batches.py").write_text('''
import torch

def data():
    g = torch.Generator().manual_seed(0)
    def side(n, top):
        x = {"v": torch.randn(n, 3, generator=g), "words": torch.randint(0, 10, (n, 4),
                                                                           generator=g)}
        x["words"][-1, 0] = top  # not in the first batch: seen as it comes
        y = torch.randint(0, 2, (n,), generator=g)
        examples = [({k: t[i] for k, t in x.items()}, y[i]) for i in range(n)]
        return torch.utils.data.DataLoader(examples, batch_size=16)
    return side(64, 12), side(32, 9)
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    ev = TrainEvaluator(data="_bad_batches:data", device="cpu")
    ev.prepare(archdsl.loads(INDEXED))  # the first batch fits
    with pytest.raises(EvaluationError, match="has the value 12 for the input 'words'") as info:
        ev.evaluate(default(INDEXED))
    assert info.value.span is not None and info.value.span.line == 2
