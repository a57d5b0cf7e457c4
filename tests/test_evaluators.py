"""Evaluators (archdsl/evaluators/): what counts as a result, and the shipped NB201 table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import archdsl
from archdsl.errors import ArchDSLError, EvaluationError
from archdsl.evaluators import FunctionEvaluator, as_evaluator, get_evaluator, nb201, result_of

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "tests" / "data" / "nb201_rows.csv"

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text()
                     | st.floats(allow_nan=False),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(), inner, max_size=3), max_leaves=8)


@given(objective=st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False),
       metrics=st.dictionaries(st.text().filter(lambda k: k != "objective"), _json, max_size=4))
def test_a_number_and_json_metrics_are_a_result(objective: float, metrics: dict) -> None:
    r = result_of({"objective": objective, **metrics})
    assert r["objective"] == float(objective) and type(r["objective"]) is float
    assert json.loads(json.dumps(r)) == r  # storable as it is


@given(objective=st.text() | st.booleans() | st.none() | st.lists(st.integers(), max_size=2)
       | st.sampled_from([math.nan, math.inf, -math.inf]))
def test_anything_else_as_objective_is_refused(objective: object) -> None:
    with pytest.raises(EvaluationError, match="objective"):
        result_of({"objective": objective})
    with pytest.raises(EvaluationError, match="objective"):
        result_of(objective)


def test_an_integer_objective_too_large_for_a_float_is_refused() -> None:
    with pytest.raises(EvaluationError, match="too large for a float"):
        result_of(10**400)


@given(key=st.integers() | st.tuples(st.integers(), st.integers()) | st.none() | st.floats())
def test_a_key_that_is_not_text_is_refused_at_any_depth(key: object) -> None:
    with pytest.raises(EvaluationError, match="key that is not text"):
        result_of({"objective": 1.0, key: "x"})
    with pytest.raises(EvaluationError, match="metric 'm' has a key that is not text"):
        result_of({"objective": 1.0, "m": {key: "x"}})


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", archdsl])
def test_a_metric_that_is_not_json_data_is_refused(value: object) -> None:
    with pytest.raises(EvaluationError, match="metric 'm' is not a number, text, list or dict"):
        result_of({"objective": 1.0, "m": value})


def test_numpy_and_torch_scalars_become_numbers() -> None:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    r = result_of({"objective": np.float32(0.5), "a": np.int64(3), "b": torch.tensor(0.25),
                   "c": [np.float64(1.5)]})
    assert r == {"objective": 0.5, "a": 3, "b": 0.25, "c": [1.5]}
    assert json.dumps(r)
    with pytest.raises(EvaluationError, match="objective must be a number"):
        result_of(np.array([1.0, 2.0]))


class _Ev:
    def evaluate(self, arch: object) -> float:
        return 1.0


def test_as_evaluator() -> None:
    ev = _Ev()
    assert as_evaluator(ev) is ev
    f = as_evaluator(lambda arch: 2.0)
    assert isinstance(f, FunctionEvaluator) and f.evaluate(None) == 2.0
    for bad in (3, "digits", None):
        with pytest.raises(ArchDSLError, match="evaluator_object must be a function"):
            as_evaluator(bad)


def test_the_nb201_table_ships_with_the_package(monkeypatch) -> None:
    monkeypatch.delenv(nb201.ENV, raising=False)
    nb201.table.cache_clear()
    try:
        assert nb201.find_csv() == nb201.SHIPPED and nb201.SHIPPED.is_file()
        t = nb201.table()
        assert len(t) == 15_625
        row = t.rows["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                     "nor_conv_3x3~1|nor_conv_1x1~2|"]
        assert row["params_m"] == pytest.approx(1.073466)
        space = archdsl.load(ROOT / "examples" / "nb201.arch")
        out = get_evaluator("nb201").evaluate(space.materialize(space.sample(0)))
        assert set(out) >= {"objective", "cost", "c10_test_200"}
        notes = (nb201.SHIPPED.parent / "NB201-README.md").read_text()
        assert "MIT" in notes and "Dong" in notes
    finally:
        nb201.table.cache_clear()


def test_archdsl_nb201_names_another_table(monkeypatch, tmp_path: Path) -> None:
    nb201.table.cache_clear()
    try:
        monkeypatch.setenv(nb201.ENV, str(ROWS))
        assert len(nb201.table()) == 200
        nb201.table.cache_clear()
        monkeypatch.setenv(nb201.ENV, str(tmp_path / "missing.csv"))
        with pytest.raises(ArchDSLError, match="missing.csv was not found") as info:
            nb201.table()
        assert nb201.ENV in (info.value.hint or "")
    finally:
        nb201.table.cache_clear()
