"""The search loop (archdsl/runner.py): what it asks and tells, what it writes and when."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl.cli import main
from archdsl.errors import ArchDSLError, EvaluationError
from archdsl.runner import SearchResult, search
from archdsl.study import Study

ROOT = Path(__file__).resolve().parents[1]
TESTS = str(ROOT / "tests")
NB201 = ROOT / "examples" / "nb201.arch"

# 625 architectures, no training decisions: cheap to evaluate in this process
FLAT = """input x: [4]
network {
    x -> linear(choice(4, 8, 12, 16, 20)) -> linear(choice(4, 8, 12, 16, 20))
    -> linear(choice(4, 8, 12, 16, 20)) -> linear(choice(4, 8, 12, 16, 20)) -> linear(2)
}
"""
CONTINUOUS = "input x: [4]\nnetwork { x -> dropout(float(0 .. 0.5)) -> linear(2) }\n"


def _widths(arch) -> list[int]:
    return [v for _, v in sorted(arch.config.items())]


def _run(**kw) -> SearchResult:
    r = search(**kw)
    r.study.close()
    return r


def _configs(folder: Path) -> list[str]:
    with Study.open(folder) as st:
        return [json.dumps(t.config, sort_keys=True) for t in st.trials()]


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    f = tmp_path / "flat.arch"
    f.write_text(FLAT)
    return f


@pytest.mark.parametrize("searcher", ["smbo", "evolution"])
def test_a_model_based_searcher_hears_each_result_before_it_asks(tmp_path: Path, flat: Path,
                                                                 searcher: str) -> None:
    # two objectives with opposite best architectures: once the first results are told, the
    # proposals must differ (asking the whole budget first made them identical)
    budget = 16 if searcher == "smbo" else 26  # past the initial design / first population
    runs = {}
    for name, sign in (("wide", 1), ("narrow", -1)):
        _run(file=flat, searcher=searcher, budget=budget, study_dir=tmp_path / name,
             evaluator_object=lambda arch, sign=sign: sign * sum(_widths(arch)))
        runs[name] = _configs(tmp_path / name)
    assert len(runs["wide"]) == len(runs["narrow"]) == budget
    assert runs["wide"] != runs["narrow"]
    # the same objective gives the same trials: the difference comes from the results
    _run(file=flat, searcher=searcher, budget=budget, study_dir=tmp_path / "again",
         evaluator_object=lambda arch: sum(_widths(arch)))
    assert _configs(tmp_path / "again") == runs["wide"]


class _Scorer:
    def evaluate(self, arch) -> dict:
        return {"objective": 1.0, "width": _widths(arch)[0]}


def test_evaluator_object_may_be_a_function_or_an_object(tmp_path: Path, flat: Path) -> None:
    _run(file=flat, searcher="random", budget=3, study_dir=tmp_path / "f",
         evaluator_object=lambda arch: {"objective": 0.5, "first": _widths(arch)[0]})
    _run(file=flat, searcher="random", budget=3, study_dir=tmp_path / "o",
         evaluator_object=_Scorer())
    for name, objective, key in (("f", 0.5, "first"), ("o", 1.0, "width")):
        with Study.open(tmp_path / name) as st:
            trials = st.trials()
            assert [t.status for t in trials] == ["ok"] * 3
            assert all(t.objective == objective and key in t.metrics for t in trials)


@pytest.mark.parametrize("bad", [42, "score", object()])
def test_anything_else_as_evaluator_object_is_refused_up_front(tmp_path: Path, flat: Path,
                                                               bad: object) -> None:
    with pytest.raises(ArchDSLError, match="evaluator_object must be a function"):
        search(file=flat, budget=2, study_dir=tmp_path / "s", evaluator_object=bad)
    assert not (tmp_path / "s").exists()


def test_a_refused_searcher_writes_nothing(tmp_path: Path) -> None:
    f = tmp_path / "c.arch"
    f.write_text(CONTINUOUS)
    for folder in (tmp_path / "new", tmp_path / "deeper" / "new"):
        with pytest.raises(ArchDSLError, match="continuous"):
            search(file=f, searcher="grid", study_dir=folder, evaluator_object=lambda a: 1.0)
        assert not folder.exists() and not (tmp_path / "deeper").exists()
        # and the next run is not told that the folder "already holds a study"
        _run(file=f, searcher="random", budget=2, study_dir=folder,
             evaluator_object=lambda a: 1.0)


def test_workers_that_cannot_start_write_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    with pytest.raises(ArchDSLError, match="a worker could not start: .*ImportError: this "
                                           "evaluator cannot be loaded in a worker"):
        search(file=NB201, evaluator="_worker_broken:score", budget=2, study_dir=folder)
    assert not folder.exists()
    folder.mkdir()  # a folder that was there before is left as it was
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ArchDSLError, match="a worker could not start"):
        search(file=NB201, evaluator="_worker_broken:score", budget=2, study_dir=folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    _run(file=NB201, evaluator="_search_evaluators:score", budget=2, study_dir=folder)


def test_an_evaluator_in_the_scripts_main_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ArchDSLError, match="cannot find a function in its __main__") as info:
        search(file=NB201, evaluator="__main__:score", budget=2, study_dir=tmp_path / "s")
    assert "evaluator_object=" in (info.value.hint or "")
    assert not (tmp_path / "s").exists()


def test_every_trial_failed_is_an_error_naming_the_first(tmp_path: Path, flat: Path) -> None:
    def fails(arch) -> float:
        raise ValueError(f"no good: {_widths(arch)[0]}")

    with pytest.raises(EvaluationError, match=r"every trial failed \(3 of 3\); the first, "
                                              r"trial 1: ValueError: no good: \d+") as info:
        search(file=flat, budget=3, study_dir=tmp_path / "s", evaluator_object=fails)
    assert str(tmp_path / "s") in (info.value.hint or "")
    with Study.open(tmp_path / "s") as st:  # kept, and not locked
        assert st.counts() == {"failed": 3}
    # one success among failures is a search like any other
    _run(file=flat, budget=3, study_dir=tmp_path / "t",
         evaluator_object=lambda arch: 1.0 if _widths(arch)[0] == 4 else 1 / 0)


def test_cli_exits_1_and_draws_no_plot_when_every_trial_failed(tmp_path: Path, monkeypatch,
                                                                capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(TESTS)
    rc = main(["search", str(NB201), "--evaluator", "_search_evaluators:nan", "--budget", "2",
               "--study", "s", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "every trial failed (2 of 2); the first, trial 1: the objective is nan" in err
    assert not (tmp_path / "s" / "progress.png").exists()
    assert not (tmp_path / "s" / "best.json").exists()


@pytest.mark.parametrize("evaluator, error", [
    ("bad_key", "the evaluator's result has a key that is not text: (1, 2)"),
    ("text_objective", "the objective must be a number, got '0.875'"),
    ("bool_objective", "the objective must be a number, got True"),
])
def test_a_bad_result_fails_its_trial_not_the_search(tmp_path: Path, evaluator: str,
                                                     error: str) -> None:
    with pytest.raises(EvaluationError, match="every trial failed"):
        search(file=NB201, evaluator=f"_search_evaluators:{evaluator}", budget=2,
               study_dir=tmp_path / "s")
    with Study.open(tmp_path / "s") as st:
        assert [(t.status, t.error) for t in st.trials()] == [("failed", error)] * 2


def test_a_metric_that_is_not_json_fails_its_trial_and_resume_goes_on(tmp_path: Path) -> None:
    _run(file=NB201, evaluator="_search_evaluators:odd_metric", searcher="random", budget=6,
         study_dir=tmp_path / "s")
    _run(study_dir=tmp_path / "s", resume=True, budget=10,
         evaluator="_search_evaluators:odd_metric")
    with Study.open(tmp_path / "s") as st:
        trials = st.trials()
        assert len(trials) == 10 and {t.status for t in trials} == {"ok", "failed"}
        for t in trials:
            if t.config["cell/n1/edge"] != "avg_pool_3x3":
                assert t.status == "ok"
            else:
                assert t.error.startswith("metric 'model' is not a number, text, list or "
                                          "dict: <object object at ")
                assert t.error.endswith(" (object)")


def test_the_trial_timeout_is_kept_for_resume(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ARCHDSL_TEST_SLEEP", "60")
    folder = tmp_path / "s"
    with pytest.raises(EvaluationError, match="time limit of 0.5 s"):
        search(file=NB201, evaluator="_search_evaluators:slow", budget=1, trial_timeout=0.5,
               study_dir=folder)
    with Study.open(folder) as st:
        assert st.meta()["trial_timeout"] == 0.5
    with pytest.raises(EvaluationError):  # without --trial-timeout: the stored one, no hang
        search(study_dir=folder, resume=True, budget=2, evaluator="_search_evaluators:slow")
    with pytest.raises(EvaluationError):  # a new one replaces it
        search(study_dir=folder, resume=True, budget=3, trial_timeout=0.75,
               evaluator="_search_evaluators:slow")
    with Study.open(folder) as st:
        assert [t.error for t in st.trials()] == [
            "ran past the time limit of 0.5 s", "ran past the time limit of 0.5 s",
            "ran past the time limit of 0.75 s"]
        assert st.meta()["trial_timeout"] == 0.75


# ---- the README's "Searching, from Python", run the ways a newcomer runs it ---------------
SCRIPT = f"""
import sys
sys.path.insert(0, {TESTS!r})
from archdsl.runner import search

r = search({str(NB201)!r}, searcher="evolution", evaluator="_search_evaluators:score",
           budget=6, study_dir="studies/nb201", workers=2)
print(len(r.study.best(10)), r.study.counts())
"""


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_a_script_without_a_main_guard_just_works(tmp_path: Path, how: str) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(SCRIPT)
    argv, stdin = ([sys.executable, str(script)], None) if how == "file" else \
        ([sys.executable, "-"], SCRIPT)
    p = subprocess.run(argv, input=stdin, cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": TESTS})
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and "Error" not in p.stderr
    assert p.stdout.strip() == "6 {'ok': 6}"


def test_import_paths_reach_the_workers(tmp_path: Path) -> None:
    lib, work = tmp_path / "lib", tmp_path / "work"
    lib.mkdir()
    work.mkdir()
    (lib / "blocks.arch").write_text("block wide(w) { linear(w) -> relu }\n")
    main_file = work / "main.arch"
    main_file.write_text('from "blocks.arch" import wide\ninput x: [4]\n'
                         "network { x -> wide(choice(4, 8, 16)) -> linear(2) }\n")
    with pytest.raises(ArchDSLError):  # outside the file's folder: not without import_paths
        search(file=main_file, budget=2, study_dir=tmp_path / "s0",
               evaluator="_search_evaluators:nan")
    assert not (tmp_path / "s0").exists()
    r = _run(file=main_file, searcher="grid", budget=3, study_dir=tmp_path / "s", workers=2,
             evaluator="_search_evaluators:params", import_paths=[lib])
    assert r.new_trials == 3
    with Study.open(tmp_path / "s") as st:
        assert sorted(t.objective for t in st.trials()) == [
            4 * w + w + w * 2 + 2 for w in (4, 8, 16)]


@pytest.mark.parametrize("where", ["after start", "before finish"])
def test_ctrl_c_at_any_moment_leaves_no_trial_running(tmp_path: Path, flat: Path, monkeypatch,
                                                      where: str) -> None:
    # Ctrl-C caught between a trial's row and the search's note of it, or between a result
    # and its row: the trial is still marked interrupted, so --resume evaluates it again
    calls = []
    name = "start" if where == "after start" else "finish"
    real = getattr(Study, name)

    def interrupted(self, *args, **kw):
        calls.append(1)
        if len(calls) == 3:
            if name == "start":
                real(self, *args, **kw)
            raise KeyboardInterrupt
        return real(self, *args, **kw)

    monkeypatch.setattr(Study, name, interrupted)
    folder = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        search(file=flat, budget=6, study_dir=folder, evaluator_object=lambda a: 1.0)
    monkeypatch.setattr(Study, name, real)
    with Study.open(folder) as st:
        counts = st.counts()
    assert "running" not in counts and counts.get("interrupted", 0) >= 1
