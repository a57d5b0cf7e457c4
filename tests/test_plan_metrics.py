"""`backends.plan.metrics` (the shape rules without module names) gives what `plan` gives: the
same params, FLOPs and output shape on every example, and the same ShapeError (message, hint,
span) on every bad network."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from archdsl.backends.plan import metrics, plan
from test_backend_pytorch import NAMES, SHAPE_ERRORS

import archdsl
from archdsl import ShapeError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("name", NAMES)
def test_metrics_are_the_plans_figures(name: str) -> None:
    space = archdsl.load(EXAMPLES / f"{name}.arch")
    rng = random.Random(5)
    for config in [space.default()] + [space.sample(rng) for _ in range(6)]:
        alone = metrics(space.materialize(config))  # no plan made before
        arch = space.materialize(config)
        p = plan(arch)
        assert alone == {"params": p.params, "flops": p.flops, "output_shape": p.output_shape}
        assert metrics(arch) == alone  # from the plan the architecture keeps
        again = space.materialize(config)
        metrics(again)
        assert plan(again).steps.keys() == p.steps.keys()  # a plan after metrics is whole
        assert [s.name for s in plan(again).steps.values()] == [s.name for s in p.steps.values()]


def test_metrics_are_kept_and_copied() -> None:
    space = archdsl.load(EXAMPLES / "digits.arch")
    arch = space.materialize(space.default())
    first = metrics(arch)
    first["output_shape"].append(99)
    first["params"] = -1
    assert metrics(arch) == metrics(space.materialize(space.default()))
    assert "plan" not in arch.cache  # metrics alone names no modules


@pytest.mark.parametrize("kind", sorted(SHAPE_ERRORS))
def test_metrics_raise_the_plans_shape_error(kind: str) -> None:
    text = SHAPE_ERRORS[kind][0]
    space = archdsl.loads(text, file="bad.arch")
    errors = []
    for run in (metrics, plan):
        with pytest.raises(ShapeError) as info:
            run(space.materialize(space.default()))
        errors.append(info.value)
    a, b = errors
    assert (a.message, a.hint, a.span) == (b.message, b.hint, b.span)
