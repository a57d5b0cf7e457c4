"""One-shot training of a network of several inputs: the supernet takes one tensor per input
(a batch's x is a tuple, in the network's input order), under SPOS and DARTS, and the inherited
model scores on the validation data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_train_multi_input import two  # the same two-vector task and data

from archdsl.evaluators.supernet import SupernetEvaluator
from archdsl.one_shot import train_supernet
from archdsl.space import loads

# two vectors; the label needs both. The width and the activation are decisions (SPOS); the
# activation alone has options of one shape (DARTS)
TWO = """input a: [3]
input b: [2]
param act = choice(relu, tanh)
network {
    h = a -> linear(choice(8, 16))
    return add(h -> linear(8), b -> linear(8)) -> act -> linear(2)
}
train { optimizer = adam(lr = 0.05)
        batch = 32 }
"""
SAME_SHAPES = TWO.replace("choice(8, 16)", "8")


@pytest.fixture
def data(tmp_path: Path) -> str:
    path = tmp_path / "two.npz"
    np.savez(path, **two())
    return str(path)


def test_spos_trains_a_two_input_network_and_its_inherited_models_score(
        data: str, tmp_path: Path) -> None:
    space = loads(TWO)
    run = train_supernet(space, data=data, epochs=6, device="cpu", seed=0, threads=1)
    ckpt = tmp_path / "two.pt"
    run.supernet.save(str(ckpt))
    ev = SupernetEvaluator(str(ckpt), device="cpu")
    ev.prepare(space)
    scores = [ev.evaluate(space.materialize(c))["accuracy"] for c in space.enumerate()]
    assert len(scores) == 4 and max(scores) > 0.8  # chance is about 0.5


def test_darts_trains_a_two_input_network(data: str) -> None:
    space = loads(SAME_SHAPES)
    run = train_supernet(space, data=data, strategy="darts", epochs=2, device="cpu", seed=0,
                         threads=1)
    assert run.supernet.derive()["act"] in ("relu", "tanh")
