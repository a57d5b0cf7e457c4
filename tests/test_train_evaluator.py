"""The training evaluator (archdsl/evaluators/train.py): the data checked against the space,
classification and regression, a report per epoch, and a paused trial that resumes exactly."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import archdsl
from archdsl.errors import EvaluationError
from archdsl.evaluators import get_evaluator
from archdsl.evaluators.digits import VALID_FRACTION, DigitsEvaluator, recipe
from archdsl.evaluators.train import TrainEvaluator
from archdsl.reporting import CONTINUE, PAUSE, STOP, Reporter, takes_reporter

# batchnorm, dropout, momentum and a cosine schedule: every piece of state a resume must restore
CNN = """input x: [1, 8, 8]
network { x -> conv2d(4) -> batchnorm -> relu -> dropout(0.3) -> flatten -> linear(10) }
train { optimizer = sgd(lr = 0.05, momentum = 0.9)
        schedule = cosine
        batch = 128
        epochs = 3 }
"""


def arch(text: str) -> archdsl.Architecture:
    space = archdsl.loads(text)
    return space.materialize(space.default())


def space(text: str) -> archdsl.Space:
    return archdsl.loads(text)


def npz(tmp_path: Path, x: np.ndarray, y: np.ndarray, name: str = "d.npz") -> str:
    """x, y: the first 3/4 for training, the rest for validation."""
    k = len(x) * 3 // 4
    path = tmp_path / name
    np.savez(path, x_train=x[:k], y_train=y[:k], x_valid=x[k:], y_valid=y[k:])
    return str(path)


class Log:
    """A deliver function: keeps the reports, answers CONTINUE except as told."""

    def __init__(self, answers: dict[int, str] | None = None):
        self.reports: list[tuple[int, float, dict[str, Any], bool]] = []
        self.answers = answers or {}

    def __call__(self, step: int, value: float, metrics: dict[str, Any], last: bool) -> str:
        self.reports.append((step, value, metrics, last))
        return self.answers.pop(step, CONTINUE)


# ---------------------------------------------------------------- digits as it was
def test_digits_is_the_train_evaluator_on_digits() -> None:
    ev = get_evaluator("digits")
    assert isinstance(ev, DigitsEvaluator) and isinstance(ev, TrainEvaluator)
    assert ev.name == "digits" and ev.data == "digits" and VALID_FRACTION == 0.2
    assert get_evaluator("train").name == "train" and takes_reporter(ev)
    assert recipe({})["epochs"] == 8 and recipe({})["task"] is None


def test_digits_trains_as_before() -> None:
    """The same split, seed, batches and steps as the loop digits ran before issue 13 (written
    out here): the same accuracy and validation loss, to the last bit."""
    import torch.nn.functional as F
    from archdsl.backends.pytorch import build

    from archdsl.evaluators.data import load_data

    a = arch(CNN)
    out = get_evaluator("digits").evaluate(a)
    d = load_data("digits")
    torch.manual_seed(0)
    model = build(a)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3 * math.ceil(1437 / 128))
    gen = torch.Generator().manual_seed(0)
    xt, xv = d.train.x.reshape(-1, 1, 8, 8), d.valid.x.reshape(-1, 1, 8, 8)
    for _ in range(3):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 128):
            idx = order[i:i + 128]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xt[idx]), d.train.y[idx]).backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        logits = model(xv)
    assert out["objective"] == (logits.argmax(1) == d.valid.y).float().mean().item()
    assert out["valid_loss"] == F.cross_entropy(logits, d.valid.y).item()
    assert out["epochs"] == 3 and out["device"] == "cpu" and out["params"] > 0


# ---------------------------------------------------------------- reports and resuming
def test_a_report_per_epoch_changes_nothing() -> None:
    ev, a = get_evaluator("digits"), arch(CNN)
    plain = ev.evaluate(a)
    log = Log()
    reported = ev.evaluate(a, Reporter(1, log))
    assert [(s, last) for s, _, _, last in log.reports] == [(1, False), (2, False), (3, True)]
    assert log.reports[-1][1] == reported["objective"] == plain["objective"]
    assert log.reports[-1][2] == {"valid_loss": plain["valid_loss"],
                                  "train_loss": plain["train_loss"]}
    for k in ("valid_loss", "train_loss", "epochs"):
        assert reported[k] == plain[k]


def test_a_paused_trial_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    """Paused after epoch 1, restored from its checkpoint: the same weights, reports and result
    as a trial trained straight through."""
    weights: list[dict[str, torch.Tensor]] = []
    validate = TrainEvaluator._validate

    def keep(self, model, fit, device):  # the weights at every validation
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
        return validate(self, model, fit, device)

    monkeypatch.setattr(TrainEvaluator, "_validate", keep)
    ev, a = get_evaluator("digits"), arch(CNN)
    straight = Log()
    whole = ev.evaluate(a, Reporter(1, straight, checkpoint=tmp_path / "a.pt", keep_state=True))
    end = weights[-1]
    weights.clear()
    ckpt = tmp_path / "b.pt"
    first = Log({1: PAUSE})
    part = ev.evaluate(a, Reporter(2, first, checkpoint=ckpt, keep_state=True))
    assert part["epochs"] == 1 and part["objective"] == first.reports[0][1] and ckpt.is_file()
    torch.manual_seed(123)  # another trial ran in between in this worker
    rest = Log()
    r = Reporter(2, rest, checkpoint=ckpt, keep_state=True)
    resumed = ev.evaluate(a, r)
    # the checkpoint's own report is delivered again first (last=True: nothing to decide),
    # in case a kill came between the checkpoint and its report; the study stores it once
    assert [s for s, *_ in rest.reports] == [1, 2, 3]
    assert rest.reports[0][:3] == first.reports[0][:3] and rest.reports[0][3] is True
    assert first.reports + rest.reports[1:] == straight.reports
    for k in ("objective", "valid_loss", "train_loss", "epochs"):
        assert resumed[k] == whole[k], k
    assert end.keys() == weights[-1].keys()
    assert all(torch.equal(end[k], weights[-1][k]) for k in end)
    assert resumed["train_seconds"] >= part["train_seconds"]


def test_a_stopped_trial_returns_its_result_at_that_step() -> None:
    log = Log({2: STOP})
    out = get_evaluator("digits").evaluate(arch(CNN), Reporter(1, log))
    assert out["epochs"] == 2 and out["objective"] == log.reports[-1][1]
    assert len(log.reports) == 2


def test_a_checkpoint_of_another_network_is_refused(tmp_path: Path) -> None:
    ev, ckpt = get_evaluator("digits"), tmp_path / "c.pt"
    ev.evaluate(arch(CNN), Reporter(1, Log({1: PAUSE}), checkpoint=ckpt, keep_state=True))
    other = arch(CNN.replace("conv2d(4)", "conv2d(6)"))
    with pytest.raises(EvaluationError, match="the checkpoint does not fit this trial"):
        ev.evaluate(other, Reporter(1, Log(), checkpoint=ckpt, keep_state=True))


def test_steps_and_the_device(tmp_path: Path) -> None:
    ev = TrainEvaluator()
    assert ev.steps(arch(CNN)) == 3 and ev.steps(arch("input x: [64]\nnetwork { linear(10) }")) == 8
    out = ev.evaluate(arch(CNN.replace("epochs = 3", "epochs = 1")), Reporter(1, Log(), "cpu"))
    assert out["device"] == "cpu"


# ---------------------------------------------------------------- the data against the space
def test_shapes_that_do_not_fit_name_both(tmp_path: Path) -> None:
    x, y = np.zeros((40, 5), np.float32), np.arange(40) % 3
    ev = get_evaluator("train", data=npz(tmp_path, x, y))
    with pytest.raises(EvaluationError) as info:
        ev.prepare(space("input image: [2, 3]\nnetwork { flatten -> linear(3) }"))
    e = info.value
    assert "has examples of shape [5] (5 values)" in e.message
    assert "the input 'image' is declared as [2, 3] (6 values)" in e.message
    assert e.span is not None and e.span.line == 1 and "reshaped" in (e.hint or "")
    ev.prepare(space("input v: [5, 1]\nnetwork { flatten -> linear(3) }"))  # as many values


def test_labels_outside_the_output_size(tmp_path: Path) -> None:
    x = np.zeros((40, 4), np.float32)
    ev = get_evaluator("train", data=npz(tmp_path, x, np.arange(40) % 5))
    with pytest.raises(EvaluationError, match=r"has labels up to 4, which need 5 outputs \(one "
                                              r"per class\); the network's output is \[3\]"):
        ev.prepare(space("input v: [4]\nnetwork { linear(3) }"))
    ev = get_evaluator("train", data=npz(tmp_path, x, np.arange(40) % 3 - 1, "neg.npz"))
    with pytest.raises(EvaluationError, match="has a label -1; classes are numbered from 0"):
        ev.prepare(space("input v: [4]\nnetwork { linear(3) }"))
    with pytest.raises(EvaluationError, match="10 outputs"):  # as digits always said
        get_evaluator("digits").evaluate(arch("input x: [64]\nnetwork { linear(3) }"))


def test_the_task_is_told_by_the_labels_or_the_train_section(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3  # float targets: regression
    ev = get_evaluator("train", data=npz(tmp_path, x, y))
    net = "input v: [3]\nnetwork { linear(1) }\ntrain { optimizer = adam(lr = 0.05)\n epochs = E }"
    short = ev.evaluate(arch(net.replace("E", "1")))
    long = ev.evaluate(arch(net.replace("E", "15")))
    assert short["objective"] == -short["valid_loss"] < long["objective"] == -long["valid_loss"]
    assert long["valid_loss"] < 0.05 and long["epochs"] == 15
    with pytest.raises(EvaluationError, match="classification needs integer labels") as info:
        ev.prepare(space(net.replace("epochs = E", "task = classification")))
    assert "task = regression" in (info.value.hint or "")
    with pytest.raises(EvaluationError, match=r"targets of shape \[\] \(1 value\) per example, "
                                              r"but the network's output is \[2\]"):
        ev.prepare(space("input v: [3]\nnetwork { linear(2) }"))
    ints = get_evaluator("train", data=npz(tmp_path, x, np.rint(y).astype(int), "i.npz"))
    out = ints.evaluate(arch(net.replace("epochs = E", "task = regression\nepochs = 2")))
    assert out["objective"] == -out["valid_loss"]  # integer targets, told it is regression
    with pytest.raises(EvaluationError, match="unknown task 'ranking'"):
        ints.evaluate(arch(net.replace("epochs = E", "task = ranking")))


def test_token_ids_feed_an_embedding(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, size=(80, 6))
    y = (x[:, 0] >= 10).astype(int)
    net = "input t: [6]\nnetwork { embedding(20, 4) -> flatten -> linear(2) }\ntrain { epochs = 2 }"
    out = get_evaluator("train", data=npz(tmp_path, x, y)).evaluate(arch(net))
    assert 0 <= out["objective"] <= 1
    floats = get_evaluator("train", data=npz(tmp_path, x * 1.0, y, "f.npz"))
    with pytest.raises(EvaluationError, match="feeds an embedding, which takes token ids"):
        floats.prepare(space(net))


def test_divergence_fails_the_trial(tmp_path: Path) -> None:
    x = np.ones((40, 2), np.float32)
    ev = get_evaluator("train", data=npz(tmp_path, x, np.full(40, 1e30, np.float32)))
    with pytest.raises(EvaluationError, match="training diverged: the loss is inf in epoch 1"):
        ev.evaluate(arch("input v: [2]\nnetwork { linear(1) }"))


def test_in_memory_data_is_moved_to_the_device_once(monkeypatch) -> None:
    moved: list[int] = []  # the lengths of the tensors moved that hold examples
    to = torch.Tensor.to

    def counting(self, *args, **kwargs):
        if self.dim() and len(self) in (1437, 360, 128, 1437 % 128):
            moved.append(len(self))
        return to(self, *args, **kwargs)

    ev, a = get_evaluator("digits"), arch(CNN.replace("epochs = 3", "epochs = 2"))
    monkeypatch.setattr(torch.Tensor, "to", counting)
    ev.evaluate(a)
    assert moved == [1437, 1437, 360, 360]  # x and y of each side, once; no batch
    ev.evaluate(a)
    assert len(moved) == 4  # kept there for the next trial


def test_datasets_and_loaders_stream(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "_streamed_data.py").write_text("""
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

class Digits(Dataset):
    def __init__(self, side, bad=False):
        from archdsl.evaluators.data import load_data
        s = getattr(load_data("digits"), side)
        self.x, self.y = s.x.reshape(-1, 8, 8), s.y.clone()
        if bad:
            self.y[-1] = 10  # not the first: seen in training
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return self.x[i], int(self.y[i])

def data():
    return Digits("train"), DataLoader(Digits("valid"), batch_size=100)

def big_labels():
    return Digits("train", bad=True), Digits("valid")

class Stream(IterableDataset):
    def __iter__(self):
        d = Digits("train")
        return iter([d[i] for i in range(300)])

def stream():
    return Stream(), Digits("valid")
""")
    monkeypatch.syspath_prepend(str(tmp_path))
    net = ("input x: [1, 8, 8]\nnetwork { flatten -> linear(10) }\n"
           "train { optimizer = adam(lr = 0.01)\n epochs = 2\n schedule = step }")
    out = get_evaluator("train", data="_streamed_data:data").evaluate(arch(net))
    assert out["objective"] > 0.5 and out["epochs"] == 2
    ev = get_evaluator("train", data="_streamed_data:big_labels")
    ev.prepare(space(net))  # the first example's label fits: the rest are checked as they come
    with pytest.raises(EvaluationError, match="has labels up to 10, which need 11 outputs"):
        ev.evaluate(arch(net))
    ev = get_evaluator("train", data="_streamed_data:stream")  # no len(): 300 examples a pass
    out = ev.evaluate(arch(net.replace("schedule = step", "schedule = constant")))
    assert 0 < out["objective"] <= 1
    with pytest.raises(EvaluationError, match="schedule step needs the number of batches per "
                                              "epoch"):
        ev.evaluate(arch(net))


def test_a_function_that_takes_a_reporter_gets_it() -> None:
    from archdsl.evaluators import FunctionEvaluator

    def score(arch, reporter):
        reporter.report(1, 0.5, last=True)
        return 0.5

    ev = FunctionEvaluator(score, "score")
    log = Log()
    assert takes_reporter(ev) and ev.evaluate(None, Reporter(1, log)) == 0.5
    assert log.reports == [(1, 0.5, {}, True)]
    plain = FunctionEvaluator(lambda arch: 1.0, "plain")
    assert not takes_reporter(plain) and plain.evaluate(None) == 1.0
