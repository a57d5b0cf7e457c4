"""`archdsl search --data/--device/--scheduler` from the command line: a run on the user's
data, and every bad input one clear error (exit 1, no traceback, nothing written)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from archdsl.cli import main
from archdsl.study import Study

ROOT = Path(__file__).resolve().parent.parent
NB201 = ROOT / "examples" / "nb201.arch"
SPACE = """input x: [6]
network { x -> linear(choice(8, 16, 24, 32)) -> relu -> linear(3) }
train { epochs = 3
        batch = 16 }
"""


def _data(tmp_path: Path, x_shape: tuple[int, ...] = (6,), classes: int = 3) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, *x_shape)).astype("float32")
    y = (x.reshape(80, -1)[:, 0] > 0).astype("int64") * (classes - 1)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x[:60], y_train=y[:60], x_valid=x[60:], y_valid=y[60:])
    return path


def _run(tmp_path: Path, capsys, *args: str) -> tuple[int, str, str]:
    (tmp_path / "s.arch").write_text(SPACE)
    rc = main(["search", str(tmp_path / "s.arch"), "--study", str(tmp_path / "st"), "--quiet",
               *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_search_on_your_own_npz_data(tmp_path: Path, capsys) -> None:
    rc, out, err = _run(tmp_path, capsys, "--data", str(_data(tmp_path)), "--budget", "3",
                        "--device", "cpu", "--scheduler", "asha", "--searcher", "random")
    assert rc == 0, err
    assert "wrote" in out
    with Study.open(tmp_path / "st") as st:
        meta = st.meta()
        assert (meta["evaluator"], meta["scheduler"], meta["device"]) == ("train", "asha", "cpu")
        assert st.reports()  # a report per epoch
        assert all(t.metrics.get("device") == "cpu" for t in st.trials())
    assert main(["status", "--study", str(tmp_path / "st"), "--curves"]) == 0
    assert "the reports of" in capsys.readouterr().out
    assert main(["status", "--study", str(tmp_path / "st"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert all(t["reports"] for t in shown["best"])


@pytest.mark.parametrize("make, args, message", [
    (lambda p: _data(p, x_shape=(7,)), [], "[7]"),  # examples of 7 values, the space's 6
    (lambda p: _data(p, classes=5), [], "label"),  # label 4 with 3 outputs
    (lambda p: p / "missing.npz", [], "missing.npz"),
    (lambda p: _data(p), ["--device", "cuda"], "cuda"),
    (lambda p: _data(p), ["--device", "tpu"], "tpu"),
    (lambda p: _data(p), ["--scheduler", "asha", "--searcher", "grid"], "grid"),
    (lambda p: _data(p), ["--scheduler", "fast"], "unknown scheduler"),
    (lambda p: _data(p), ["--evaluator", "nb201"], "--data is for the train evaluator"),
])
def test_bad_input_is_one_clear_error(tmp_path: Path, capsys, make, args: list[str],
                                      message: str) -> None:
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc, out, err = _run(tmp_path, capsys, "--data", str(make(tmp_path)), "--budget", "2", *args)
    assert rc == 1
    assert "error: " in err and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "st").exists()


def test_a_data_function_that_raises(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "mydata.py").write_text("def load():\n    raise ValueError('no such table')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    rc, out, err = _run(tmp_path, capsys, "--data", "mydata:load", "--budget", "2")
    assert rc == 1 and "ValueError: no such table" in err and "Traceback" not in err
    assert not (tmp_path / "st").exists()


def test_a_full_disk_while_writing_a_checkpoint_fails_that_trial_only(
        tmp_path: Path, capsys, monkeypatch) -> None:
    import torch

    real = torch.save

    def full(obj, f, *a, **kw):  # the disk fills up at the 4th checkpoint
        full.n += 1
        if full.n == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **kw)
    full.n = 0
    monkeypatch.setattr(torch, "save", full)
    from archdsl.evaluators.train import TrainEvaluator
    from archdsl.runner import search

    (tmp_path / "s.arch").write_text(SPACE)
    r = search(tmp_path / "s.arch", budget=4, study_dir=tmp_path / "st", scheduler="median",
               evaluator_object=TrainEvaluator(data=str(_data(tmp_path)), device="cpu"))
    with r.study as st:
        failed = st.trials("failed")
        assert len(failed) == 1 and "No space left on device" in failed[0].error
        assert "cannot write the checkpoint" in failed[0].error
        assert len(st.trials()) == 4 and st.reports()


def test_resuming_a_study_on_your_data_needs_it_named_again(tmp_path: Path, capsys) -> None:
    data = str(_data(tmp_path))
    rc, out, err = _run(tmp_path, capsys, "--data", data, "--budget", "1", "--device", "cpu")
    assert rc == 0, err
    rc = main(["search", "--study", str(tmp_path / "st"), "--resume", "--budget", "2",
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "name the data yourself" in err and f"--data {data}" in err
    with Study.open(tmp_path / "st") as st:
        assert len(st.trials()) == 1  # nothing ran
    rc = main(["search", "--study", str(tmp_path / "st"), "--resume", "--budget", "2",
               "--data", data, "--quiet"])
    assert rc == 0, capsys.readouterr().err
    with Study.open(tmp_path / "st") as st:
        assert len(st.trials()) == 2
