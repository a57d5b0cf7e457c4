"""Objectives (archdsl/objectives.py) and how a search takes them: names checked before
anything runs, values told signed, a study that keeps them, latency measured when named."""

from __future__ import annotations

from pathlib import Path

import _search_evaluators as evs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from archdsl.cli import main
from archdsl.errors import ArchDSLError, EvaluationError
from archdsl.objectives import DEFAULT, Objective, parse_objectives, raw_values, values
from archdsl.runner import search
from archdsl.study import Study

ROOT = Path(__file__).resolve().parent.parent
NB201 = ROOT / "examples" / "nb201.arch"


def test_parse_and_sign() -> None:
    objs = parse_objectives(["maximize:accuracy", "minimize:params"])
    assert objs == (Objective("maximize", "accuracy"), Objective("minimize", "params"))
    assert values(objs, {"accuracy": 0.9, "params": 10, "objective": 1}) == (0.9, -10.0)
    assert raw_values(objs, {"accuracy": 0.9, "params": 10}) == (0.9, 10.0)
    assert parse_objectives(None) == parse_objectives([]) == DEFAULT


@pytest.mark.parametrize("specs, message", [
    (["maximise:accuracy"], "did you mean 'maximize'"),
    (["accuracy"], "is not DIRECTION:NAME"),
    (["maximize:"], "is not DIRECTION:NAME"),
    (["maximize:acc", "minimize:acc"], "names 'acc' twice"),
    (["minimize:a b"], "is not a metric's name"),
])
def test_bad_objectives(specs: list[str], message: str) -> None:
    with pytest.raises(ArchDSLError) as e:
        parse_objectives(specs)
    assert message in e.value.message + str(e.value.hint or "")


@given(st.lists(st.sampled_from(["maximize", "minimize"]), min_size=1, max_size=4),
       st.lists(st.floats(-1e6, 1e6), min_size=4, max_size=4))
def test_values_are_higher_is_better(directions: list[str], xs: list[float]) -> None:
    objs = parse_objectives([f"{d}:m{i}" for i, d in enumerate(directions)])
    result = {f"m{i}": x for i, x in enumerate(xs)}
    for o, v, x in zip(objs, values(objs, result), xs, strict=False):
        assert v == (x if o.direction == "maximize" else -x)


def test_a_missing_or_bad_value_names_what_is_there() -> None:
    objs = parse_objectives(["maximize:acc"])
    with pytest.raises(EvaluationError, match="does not return the objective 'acc'") as e:
        raw_values(objs, {"accuracy": 1.0})
    assert "accuracy" in str(e.value.hint)
    with pytest.raises(EvaluationError, match="returns 'x' for the objective 'acc'"):
        raw_values(objs, {"acc": "x"})


def test_a_study_keeps_its_objectives_and_resume_refuses_others(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "s"
    args = ["search", str(NB201), "--evaluator", "nb201", "--study", str(folder), "--quiet",
            "--searcher", "random", "--objective", "maximize:c10_valid_12",
            "--objective", "minimize:params"]
    assert main([*args, "--budget", "4"]) == 0
    with Study.open(folder) as s:
        assert s.meta()["objectives"] == ["maximize:c10_valid_12", "minimize:params"]
        assert all("c10_valid_12" in t.metrics and "params" in t.metrics for t in s.trials())
    capsys.readouterr()
    assert main(["search", "--study", str(folder), "--resume", "--budget", "5",
                 "--objective", "maximize:c10_valid_12", "--quiet"]) == 1
    assert "was run with the objectives maximize:c10_valid_12 minimize:params" in \
        capsys.readouterr().err
    assert main(["search", "--study", str(folder), "--resume", "--budget", "5", "--quiet"]) == 0
    with Study.open(folder) as s:
        assert len(s.trials()) == 5


def test_an_objective_the_evaluator_does_not_return(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "s"
    rc = main(["search", str(NB201), "--evaluator", "nb201", "--study", str(folder), "--quiet",
               "--objective", "maximize:accuracy", "--budget", "2"])
    err = capsys.readouterr().err
    assert rc == 1 and "the evaluator 'nb201' does not return 'accuracy'" in err
    assert not folder.exists()  # checked before anything was written


def test_a_function_that_does_not_return_it_ends_the_search(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="trial 1: the evaluator does not return the "
                                              "objective 'size'"):
        search(NB201, budget=3, study_dir=tmp_path / "s", evaluator_object=evs.score,
               objectives=["maximize:objective", "minimize:size"])
    with Study.open(tmp_path / "s") as s:
        assert [t.status for t in s.trials()] == ["failed"]


def test_latency_is_measured_when_an_objective_names_it(tmp_path: Path) -> None:
    r = search(NB201, budget=2, study_dir=tmp_path / "s", evaluator_object=evs.score,
               objectives=["maximize:objective", "minimize:latency"], searcher="random")
    with r.study as s:
        assert all(t.metrics["latency"] > 0 for t in s.trials())


def test_status_export_and_files_of_a_multi_objective_study(tmp_path: Path, capsys) -> None:
    import json

    folder = tmp_path / "s"
    assert main(["search", str(NB201), "--evaluator", "nb201", "--study", str(folder),
                 "--quiet", "--searcher", "evolution", "--budget", "12",
                 "--objective", "maximize:c10_valid_12", "--objective", "minimize:params"]) == 0
    out = capsys.readouterr().out
    assert "the Pareto front" in out and "wrote " + str(folder / "pareto.png") in out
    assert (folder / "pareto.json").is_file()
    assert main(["status", "--study", str(folder)]) == 0
    assert "c10_valid_12 (max)" in capsys.readouterr().out
    assert main(["status", "--study", str(folder), "--json"]) == 0
    front = json.loads(capsys.readouterr().out)["pareto"]["front"]
    assert front
    assert main(["export", "--study", str(folder), "--pareto", "-o", str(tmp_path / "f")]) == 0
    written = sorted(p.name for p in (tmp_path / "f").iterdir())
    assert len(written) == 2 * len(front) and all(n.startswith("trial-") for n in written)


def test_export_pareto_of_one_objective_is_refused(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "s"
    assert main(["search", str(NB201), "--evaluator", "nb201", "--study", str(folder),
                 "--quiet", "--budget", "2"]) == 0
    capsys.readouterr()
    assert main(["export", "--study", str(folder), "--pareto", "-o", str(tmp_path / "f")]) == 1
    assert "has one objective" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()
