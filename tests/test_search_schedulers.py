"""Searches with early-stopping schedulers: reports, pauses, promotions, checkpoints, resume."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import _search_evaluators as evs
import pytest

from archdsl.errors import ArchDSLError, StudyError
from archdsl.runner import search
from archdsl.study import Study

ROOT = Path(__file__).resolve().parent.parent
NB201 = ROOT / "examples" / "nb201.arch"
CURVE = "_search_evaluators:curve"


@pytest.fixture
def steps_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "steps.log"
    monkeypatch.setenv("ARCHDSL_TEST_STEPS", str(log))
    monkeypatch.chdir(ROOT)
    return log


def _trained(log: Path) -> list[tuple[int, int]]:
    if not log.exists():
        return []
    return [(int(a), int(b)) for a, b in (line.split() for line in log.read_text().splitlines())]


def _check_consistent(study: Study, log: Path, killed: bool = False) -> None:
    """No step trained twice; every report stored; checkpoints only of paused trials. (After
    kill -9 a step may be stored but not logged: the kill came before the log line.)"""
    trained = _trained(log)
    assert not [k for k, n in Counter(trained).items() if n > 1], "a step was trained twice"
    reports = study.reports()
    stored = sorted((t, r.step) for t, rs in reports.items() for r in rs)
    if killed:
        assert set(trained) <= set(stored)
    else:
        assert stored == sorted(trained)
    paused = {t.id for t in study.trials("paused")}
    folder = study.folder / "checkpoints"
    kept = {int(p.stem.split("-")[1]) for p in folder.glob("trial-*.pt")} if folder.exists() \
        else set()
    assert kept <= paused
    for t in study.trials():
        steps = [r.step for r in reports.get(t.id, [])]
        assert steps == list(range(1, len(steps) + 1))  # counted up from 1, none skipped
        if t.status in ("ok", "stopped", "paused"):
            assert t.objective == pytest.approx(reports[t.id][-1].value)


@pytest.mark.parametrize("scheduler", ["asha", "sha", "hyperband", "median", "none"])
def test_every_scheduler_runs_in_process(scheduler: str, tmp_path: Path, steps_log: Path) -> None:
    r = search(NB201, searcher="random", budget=12, study_dir=tmp_path / "s",
               evaluator_object=evs.curve, scheduler=scheduler, max_epochs=9, device="cpu")
    with r.study as st:
        counts = st.counts()
        assert set(counts) <= {"ok", "stopped", "failed"}
        assert sum(counts.values()) == 12 and counts.get("ok")
        _check_consistent(st, steps_log)
        assert all(t.metrics["device"] == "cpu" for t in st.trials())
        if scheduler in ("asha", "sha", "hyperband"):
            assert counts.get("stopped")  # some were not promoted
            assert len(_trained(steps_log)) < 12 * 9
        if scheduler == "none":
            assert len(_trained(steps_log)) == 12 * 9
        assert not list((st.folder / "checkpoints").glob("*")) \
            if (st.folder / "checkpoints").exists() else True


def test_asha_with_workers_promotes_from_checkpoints(tmp_path: Path, steps_log: Path) -> None:
    r = search(NB201, searcher="evolution", budget=15, workers=2, evaluator=CURVE,
               study_dir=tmp_path / "s", scheduler="asha", min_epochs=1, reduction_factor=3,
               max_epochs=9)
    with r.study as st:
        _check_consistent(st, steps_log)
        reports = st.reports()
        reached = sorted(len(reports[t.id]) for t in st.trials())
        assert reached[0] == 1 and reached[-1] == 9  # stopped at rung 0 ... trained to the end
        # a promoted trial continued: its steps after the rung were trained once, not again
        assert any(n > 1 for n in reached)
        assert st.meta()["scheduler"] == "asha"


def test_ctrl_c_then_resume_repeats_no_step(tmp_path: Path, steps_log: Path) -> None:
    calls = {"n": 0}

    def flaky(arch, reporter):  # Ctrl-C in the middle of the 4th trial's training
        calls["n"] += 1
        if calls["n"] == 4:
            real = reporter.report

            def report(step, value, **kw):
                if step == 4:
                    raise KeyboardInterrupt
                return real(step, value, **kw)
            reporter.report = report
        return evs.curve(arch, reporter)

    folder = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        search(NB201, searcher="random", budget=8, study_dir=folder, evaluator_object=flaky,
               scheduler="median", max_epochs=9)
    with Study.open(folder) as st:
        (hit,) = st.trials("interrupted")
        assert st.checkpoint_path(hit.id).is_file()
        assert [r.step for r in st.reports()[hit.id]] == [1, 2, 3]
    r = search(study_dir=folder, resume=True, evaluator_object=evs.curve)
    with r.study as st:
        assert st.trial(hit.id).status in ("ok", "stopped")  # the same trial continued
        assert sum(st.counts().values()) == 8
        _check_consistent(st, steps_log)


def test_kill_9_then_resume_repeats_no_step(tmp_path: Path, steps_log: Path) -> None:
    folder = tmp_path / "s"
    env = {**os.environ, "ARCHDSL_TEST_STEP_SLEEP": "0.15", "PYTHONPATH": str(ROOT / "tests")}
    cmd = [sys.executable, "-m", "archdsl.cli", "search", str(NB201), "--evaluator", CURVE,
           "--study", str(folder), "--budget", "10", "--scheduler", "asha", "--max-epochs",
           "9", "--searcher", "random", "--quiet"]
    p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_trained(steps_log)) < 8:
        time.sleep(0.1)
    p.kill()
    p.wait()
    before = _trained(steps_log)
    assert len(before) >= 8
    r = search(study_dir=folder, resume=True, evaluator=CURVE)
    with r.study as st:
        _check_consistent(st, steps_log, killed=True)
        assert sum(st.counts().values()) == 10
        assert set(st.counts()) <= {"ok", "stopped", "failed"}


def test_time_up_leaves_paused_trials_for_resume(tmp_path: Path, steps_log: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHDSL_TEST_STEP_SLEEP", "0.05")
    folder = tmp_path / "s"
    r = search(NB201, searcher="random", seconds=0.6, study_dir=folder,
               evaluator_object=evs.curve, scheduler="asha", max_epochs=9)
    with r.study as st:
        assert r.stopped == "time"
        paused = st.trials("paused")
        assert paused and all(st.checkpoint_path(t.id).is_file() for t in paused)
    monkeypatch.setenv("ARCHDSL_TEST_STEP_SLEEP", "0")
    r = search(study_dir=folder, resume=True, evaluator_object=evs.curve, budget=12)
    with r.study as st:
        assert not st.trials("paused")
        _check_consistent(st, steps_log)


def test_epoch_budget_stops_starting_trials(tmp_path: Path, steps_log: Path) -> None:
    r = search(NB201, searcher="random", epoch_budget=30, study_dir=tmp_path / "s",
               evaluator_object=evs.curve, scheduler="asha", max_epochs=9)
    with r.study as st:
        n = sum(len(v) for v in st.reports().values())
        assert 30 <= n < 30 + 9
        assert st.meta()["epoch_budget"] == 30


# ---- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"searcher": "grid", "scheduler": "asha", "evaluator_object": evs.curve},
     "--searcher grid cannot be used with --scheduler asha"),
    ({"scheduler": "asha", "evaluator_object": evs.score},
     "needs an evaluator that reports as it trains"),
    ({"scheduler": "asha", "evaluator": "nb201"}, "the evaluator 'nb201' does not"),
    ({"scheduler": "hyperband", "evaluator_object": evs.curve}, "needs --max-epochs"),
    ({"scheduler": "fastest", "evaluator_object": evs.curve}, "unknown scheduler"),
    ({"scheduler": "asha", "reduction_factor": 1, "evaluator_object": evs.curve},
     "--reduction-factor"),
    ({"evaluator": "nb201", "data": "x.npz"}, "--data is for the train evaluator"),
    ({"evaluator": "train"}, "--evaluator train needs --data"),
    ({"device": "cuda:x", "evaluator_object": evs.score}, "cuda:x"),
    ({"epoch_budget": 0, "evaluator_object": evs.score}, "--epoch-budget must be at least 1"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path: Path, kwargs: dict,
                                                             message: str) -> None:
    folder = tmp_path / "s"
    with pytest.raises(ArchDSLError) as e:
        search(NB201, study_dir=folder, budget=3, **kwargs)
    assert message in str(e.value.message) + str(e.value.hint or "")
    assert not folder.exists()


def test_cuda_on_a_machine_without_it_is_one_clear_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    folder = tmp_path / "s"
    with pytest.raises(ArchDSLError) as e:
        search(NB201, study_dir=folder, budget=3, evaluator_object=evs.score, device="cuda")
    assert "cuda" in e.value.message.lower()
    assert not folder.exists()


def test_resume_keeps_the_scheduler(tmp_path: Path, steps_log: Path) -> None:
    folder = tmp_path / "s"
    search(NB201, budget=3, study_dir=folder, evaluator_object=evs.curve, scheduler="asha",
           max_epochs=9).study.close()
    with pytest.raises(StudyError, match="was run with --scheduler asha, not median"):
        search(study_dir=folder, resume=True, evaluator_object=evs.curve, scheduler="median")


@pytest.mark.parametrize("searcher", ["random", "evolution", "smbo", "mcts"])
@pytest.mark.parametrize("scheduler", ["asha", "hyperband"])
def test_every_searcher_learns_under_a_scheduler(searcher: str, scheduler: str, tmp_path: Path,
                                                 steps_log: Path) -> None:
    r = search(NB201, searcher=searcher, budget=14, study_dir=tmp_path / "s",
               evaluator_object=evs.curve, scheduler=scheduler, max_epochs=9)
    with r.study as st:
        assert sum(st.counts().values()) == 14 and st.counts().get("ok")
        assert len({t.arch_hash for t in st.trials()}) == 14  # told, so never proposed again
        _check_consistent(st, steps_log)
