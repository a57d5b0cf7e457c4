"""The study: SQLite storage, the search loop, resume, failures, the executor."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

import archdsl
from archdsl.errors import ArchDSLError, StudyError
from archdsl.evaluators import get_evaluator, result_of
from archdsl.evaluators.nb201 import NB201Evaluator, from_arch_string
from archdsl.runner import SearchResult, search
from archdsl.study import Study

ROOT = Path(__file__).resolve().parents[1]
NB201 = ROOT / "examples" / "nb201.arch"


def _run(tmp_path: Path, **kw) -> SearchResult:
    kw.setdefault("study_dir", tmp_path / "study")
    if kw.get("resume"):  # a module:function study resumes only when the caller names it
        kw.setdefault("evaluator", "_search_evaluators:score")
    r = search(**kw)
    r.study.close()
    return r


def test_trials_are_kept_and_distinct(tmp_path: Path) -> None:
    r = _run(tmp_path, file=NB201, evaluator="_search_evaluators:score", budget=12, workers=2)
    assert r.new_trials == 12 and r.stopped == "budget"
    with Study.open(tmp_path / "study") as st:
        trials = st.trials()
        assert [t.status for t in trials] == ["ok"] * 12
        assert len({t.arch_hash for t in trials}) == 12
        space = archdsl.load(NB201)
        for t in trials:
            assert space.validate(t.config) == t.config
            assert t.objective == pytest.approx(
                __import__("_search_evaluators").score(space.materialize(t.config)))
            assert t.metrics["params"] > 0 and t.metrics["flops"] > 0
            assert t.duration is not None and t.duration >= 0
        assert st.meta()["evaluator"] == "_search_evaluators:score"


def test_resume_continues_without_repeating(tmp_path: Path) -> None:
    _run(tmp_path, file=NB201, evaluator="_search_evaluators:score", budget=6)
    with Study.open(tmp_path / "study") as st:
        first = [(t.id, t.config, t.objective) for t in st.trials()]
    r = _run(tmp_path, resume=True, budget=10)
    assert r.new_trials == 4
    with Study.open(tmp_path / "study") as st:
        trials = st.trials()
        assert [(t.id, t.config, t.objective) for t in trials[:6]] == first
        assert len(trials) == 10 and len({t.arch_hash for t in trials}) == 10
    again = _run(tmp_path, resume=True)  # the stored budget is reached: nothing new
    assert again.new_trials == 0


def test_same_seed_same_study(tmp_path: Path) -> None:
    a = _run(tmp_path, file=NB201, evaluator="_search_evaluators:score", budget=5,
             study_dir=tmp_path / "a")
    b = _run(tmp_path, file=NB201, evaluator="_search_evaluators:score", budget=5,
             study_dir=tmp_path / "b")
    del a, b
    with Study.open(tmp_path / "a") as x, Study.open(tmp_path / "b") as y:
        assert [t.config for t in x.trials()] == [t.config for t in y.trials()]


def test_changed_space_is_refused_unless_allowed(tmp_path: Path) -> None:
    f = tmp_path / "nb201.arch"
    shutil.copy(NB201, f)
    _run(tmp_path, file=f, evaluator="_search_evaluators:score", budget=3)
    f.write_text(f.read_text() + "\n# changed\n")
    with pytest.raises(StudyError, match="has changed"):
        _run(tmp_path, resume=True, budget=5)
    r = _run(tmp_path, resume=True, budget=5, allow_changed=True)
    assert r.new_trials == 2


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    _run(tmp_path, file=NB201, evaluator="_search_evaluators:crash", budget=25, seed=3)
    with Study.open(tmp_path / "study") as st:
        failed, ok = st.trials("failed"), st.trials("ok")
        assert failed and ok and len(failed) + len(ok) == 25
        assert all("RuntimeError: this evaluator does not like 'none'" in t.error
                   for t in failed)
        assert all(t.objective is None for t in failed)


def test_nan_fails_the_trial(tmp_path: Path) -> None:
    with pytest.raises(ArchDSLError, match="every trial failed"):
        _run(tmp_path, file=NB201, evaluator="_search_evaluators:nan", budget=2)
    with Study.open(tmp_path / "study") as st:
        assert [t.error for t in st.trials()] == ["the objective is nan"] * 2


def test_time_limit_and_dead_worker_fail_the_trial(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ARCHDSL_TEST_SLEEP", "30")
    with pytest.raises(ArchDSLError, match="every trial failed"):
        _run(tmp_path, file=NB201, evaluator="_search_evaluators:slow", budget=2,
             trial_timeout=0.5, study_dir=tmp_path / "slow")
    with Study.open(tmp_path / "slow") as st:
        assert [t.error for t in st.trials()] == ["ran past the time limit of 0.5 s"] * 2
    with pytest.raises(ArchDSLError, match="every trial failed"):
        _run(tmp_path, file=NB201, evaluator="_search_evaluators:die", budget=2,
             study_dir=tmp_path / "die")
    with Study.open(tmp_path / "die") as st:
        assert [t.error for t in st.trials()] == ["the worker process died (exit code 3)"] * 2


def test_bad_names_fail_before_a_study_is_made(tmp_path: Path) -> None:
    with pytest.raises(ArchDSLError, match="unknown searcher 'randon'"):
        _run(tmp_path, file=NB201, searcher="randon")
    with pytest.raises(ArchDSLError, match="unknown evaluator 'digit'"):
        _run(tmp_path, file=NB201, evaluator="digit")
    with pytest.raises(ArchDSLError, match="has no function 'nope'"):
        _run(tmp_path, file=NB201, evaluator="_search_evaluators:nope")
    with pytest.raises(ArchDSLError, match="cannot import module 'no_such_module'"):
        _run(tmp_path, file=NB201, evaluator="no_such_module:f")
    assert not (tmp_path / "study").exists()


def test_a_bad_name_on_resume_changes_nothing(tmp_path: Path) -> None:
    _run(tmp_path, file=NB201, evaluator="_search_evaluators:score", budget=2)
    with pytest.raises(ArchDSLError, match="unknown searcher 'nope'"):
        _run(tmp_path, resume=True, searcher="nope", budget=4)
    with Study.open(tmp_path / "study") as st:
        assert st.meta()["searcher"] == "smbo" and st.meta()["budget"] == 2
    assert _run(tmp_path, resume=True, budget=4).new_trials == 2  # not left locked either


def test_existing_study_is_not_overwritten(tmp_path: Path) -> None:
    _run(tmp_path, file=NB201, evaluator="_search_evaluators:score", budget=2)
    with pytest.raises(StudyError, match="already holds a study"):
        _run(tmp_path, file=NB201, evaluator="_search_evaluators:score", budget=2)


def test_corrupt_and_locked_studies(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "study.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StudyError, match="corrupt or not a study database"):
        search(study_dir=bad, resume=True)
    _run(tmp_path, file=NB201, evaluator="_search_evaluators:score", budget=2)
    holder = Study.open(tmp_path / "study")
    holder.lock()
    try:
        with pytest.raises(StudyError, match="in use by another search"):
            _run(tmp_path, resume=True, budget=4)
    finally:
        holder.close()
    assert _run(tmp_path, resume=True, budget=4).new_trials == 2


def test_interrupted_trials_are_evaluated_again(tmp_path: Path) -> None:
    _run(tmp_path, file=NB201, evaluator="_search_evaluators:score", budget=3)
    db = sqlite3.connect(tmp_path / "study" / "study.db")  # as a kill -9 mid-trial leaves it
    with db:
        db.execute("INSERT INTO trials (config, arch_hash, space_hash, status, started) "
                   "SELECT config, 'x', space_hash, 'running', started FROM trials WHERE id = 1")
        db.execute("DELETE FROM trials WHERE id = 1")
    db.close()
    r = _run(tmp_path, resume=True, budget=3)
    assert r.new_trials == 1
    with Study.open(tmp_path / "study") as st:
        statuses = [t.status for t in st.trials()]
        assert statuses == ["ok", "ok", "interrupted", "ok"]
        assert st.trials()[3].config == st.trials()[2].config


def test_result_of() -> None:
    assert result_of(2) == {"objective": 2.0}
    assert result_of({"objective": 1, "x": 3}) == {"objective": 1.0, "x": 3}
    for bad, msg in [({"x": 1}, "without 'objective'"), ("high", "must be a number"),
                     (float("inf"), "the objective is inf")]:
        with pytest.raises(ArchDSLError, match=msg):
            result_of(bad)


def test_nb201_evaluator_reads_the_table() -> None:
    ev = NB201Evaluator()  # the table shipped with the package
    space = archdsl.load(NB201)
    row = next(iter(ev.table.rows.values()))
    out = ev.evaluate(space.materialize(from_arch_string(row["arch"])))
    assert out["objective"] == row["c10_valid_12"] and out["cost"] == row["c10_train_time_12"]
    assert out["c10_test_200"] == row["c10_test_200"]


def test_digits_evaluator_trains_a_real_model() -> None:
    space = archdsl.loads("input x: [64]\nnetwork { x -> linear(32) -> relu -> linear(10) }\n"
                          "train { optimizer = adam(lr = 0.01)\n epochs = 3 }\n")
    out = get_evaluator("digits").evaluate(space.materialize(space.default()))
    assert 0.85 < out["objective"] <= 1.0
    assert out["params"] == 64 * 32 + 32 + 32 * 10 + 10 and out["epochs"] == 3


def test_digits_evaluator_refuses_the_wrong_shapes() -> None:
    space = archdsl.loads("input x: [10]\nnetwork { x -> linear(10) }\n")
    with pytest.raises(ArchDSLError, match="8x8 images"):
        get_evaluator("digits").evaluate(space.materialize(space.default()))
    space = archdsl.loads("input x: [64]\nnetwork { x -> linear(3) }\n")
    with pytest.raises(ArchDSLError, match="10 outputs"):
        get_evaluator("digits").evaluate(space.materialize(space.default()))
