"""Evaluators for the search tests: `module:function` evaluators the way a user writes them."""

from __future__ import annotations

import os
import time

from archdsl import Architecture

_SCORE = {"none": 0.0, "skip_connect": 1.0, "avg_pool_3x3": 0.5, "nor_conv_1x1": 2.0,
          "nor_conv_3x3": 3.0}


def score(arch: Architecture) -> float:
    """A made-up objective over examples/nb201.arch: convolutions score best."""
    return sum(_SCORE.get(v, 0.0) * (i + 1) for i, (_, v) in
               enumerate(sorted(arch.config.items())))


def detailed(arch: Architecture) -> dict:
    return {"objective": score(arch), "note": "from a dict"}


def crash(arch: Architecture) -> float:
    if arch.config.get("cell/n1/edge") == "none":
        raise RuntimeError("this evaluator does not like 'none'")
    return score(arch)


def nan(arch: Architecture) -> float:
    return float("nan")


def slow(arch: Architecture) -> float:
    time.sleep(float(os.environ.get("ARCHDSL_TEST_SLEEP", "30")))
    return score(arch)


def die(arch: Architecture) -> float:
    os._exit(3)


def bad_key(arch: Architecture) -> dict:
    """A result whose metrics cannot be stored: a key that is not text."""
    return {"objective": 0.5, (1, 2): "x"}


def text_objective(arch: Architecture) -> str:
    return "0.875"


def bool_objective(arch: Architecture) -> bool:
    return True


def odd_metric(arch: Architecture) -> dict:
    """An object that is not JSON data as a metric where the first edge is a pooling."""
    if arch.config.get("cell/n1/edge") != "avg_pool_3x3":
        return {"objective": score(arch)}
    return {"objective": score(arch), "model": object()}


def params(arch: Architecture) -> float:
    """The parameter count from static shapes: any space, no training."""
    from archdsl.backends.plan import plan

    return float(plan(arch).params)


def curve(arch: Architecture, reporter) -> dict:
    """A made-up learning curve over examples/nb201.arch, reported step by step (9 steps):
    the value climbs towards score(arch) / 30. Checkpoints hold the step; every step trained
    is logged to $ARCHDSL_TEST_STEPS (trial and step, one line each) when that is set, and
    each step sleeps $ARCHDSL_TEST_STEP_SLEEP seconds (default none)."""
    steps = int(os.environ.get("ARCHDSL_TEST_CURVE_STEPS", "9"))
    state = reporter.restore()
    start = state["step"] if state else 0
    top = score(arch) / 30
    value = 0.0
    for step in range(start + 1, steps + 1):
        time.sleep(float(os.environ.get("ARCHDSL_TEST_STEP_SLEEP", "0")))
        value = top * (1 - 0.5 ** step)
        go = reporter.report(step, value, state=lambda s=step: {"step": s}, last=step == steps,
                             half=value / 2)
        log = os.environ.get("ARCHDSL_TEST_STEPS")
        if log:
            with open(log, "a") as f:
                f.write(f"{reporter.trial_id} {step}\n")
        if not go:
            break
    return {"objective": value, "trained_to": reporter.step}
