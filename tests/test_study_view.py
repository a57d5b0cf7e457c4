"""What a study with learning curves looks like: the leaderboard's steps and curve columns,
the title's stopped and paused counts, the table of reports, the JSON, and progress.png's
third panel; a study without reports looks as it always has."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from archdsl.errors import StudyError
from archdsl.study import Study
from archdsl.study_view import (
    curves_table,
    leaderboard,
    progress_figure,
    sparkline,
    study_json,
)

META = {"space_file": "/x/s.arch", "space_hash": "h", "searcher": "random",
        "evaluator": "train", "seed": 0}
# trial: (status, reported values at steps 1, 2, ...)
CURVES = {1: ("ok", [0.3, 0.5, 0.6, 0.7, 0.8]), 2: ("stopped", [0.2]),
          3: ("ok", [0.4, 0.5, 0.6, 0.8, 0.9]), 4: ("paused", [0.35, 0.45, 0.5]),
          5: ("failed", [])}


def _curved(tmp_path: Path) -> Study:
    st = Study.create(tmp_path / "s", META)
    for i, (status, values) in CURVES.items():
        tid = st.start({"i": i}, f"hash{i}", "h", "random")
        for step, v in enumerate(values, 1):
            st.report(tid, step, v, {"valid_loss": 1 - v, "train_loss": 1.5 - v, "note": "x"})
        st.finish(tid, values[-1] if values else None, {"epochs": len(values)},
                  "boom" if status == "failed" else None, 1.0,
                  status=status if status in ("stopped", "paused") else None)
    return st


def _plain(tmp_path: Path) -> Study:
    st = Study.create(tmp_path / "p", META)
    for i, v in enumerate([0.5, 0.7]):
        tid = st.start({"i": i}, f"h{i}", "h", "random")
        st.finish(tid, v, {"valid_loss": 1 - v}, None, 0.5)
    return st


def _rows(out: str) -> list[list[str]]:
    """The cells of a rich table's lines (its head first), stripped."""
    return [[c.strip() for c in ln.strip()[1:-1].replace("┃", "│").split("│")]
            for ln in out.splitlines() if ln.startswith(("│", "┃"))]


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([0.0, 0.5, 1.0]) == "▁▅█"
    assert sparkline([0.2, 0.2]) == "▅▅"
    assert sparkline([0.5, 1.0], (0.0, 1.0)) == "▅█"  # on a scale shared by the rows
    long = sparkline([float(i) for i in range(100)])
    assert len(long) == 20 and long[0] == "▁" and long[-1] == "█"
    assert list(long) == sorted(long)


def test_leaderboard_shows_steps_and_curves_and_counts_stopped(tmp_path: Path,
                                                               capsys) -> None:
    with _curved(tmp_path) as st:
        leaderboard(st, 10)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("s.arch: 5 trials (2 ok, 1 failed, 1 stopped, 1 paused); searcher "
                        "random, evaluator train")
    head, *rows = _rows(out)
    assert head[:5] == ["rank", "trial", "objective", "steps", "curve"]
    # one scale for every row (0.3 to 0.9): trial 1's 0.3 is the lowest bar, trial 3's 0.9
    # the highest
    assert rows[0][:5] == ["1", "3", "0.9000", "5", "▂▃▄▇█"]
    assert rows[1][:5] == ["2", "1", "0.8000", "5", "▁▃▄▆▇"]
    assert "last failure (trial 5): boom" in out


def test_a_study_without_reports_looks_as_before(tmp_path: Path, capsys) -> None:
    with _plain(tmp_path) as st:
        leaderboard(st, 10)
        doc = study_json(st, 10)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("s.arch: 2 trials (2 ok, 0 failed); searcher random, "
                                   "evaluator train")
    assert "steps" not in out and "curve" not in out
    assert [t["reports"] for t in doc["best"]] == [[], []]


def test_curves_table_prints_each_chosen_trials_reports(tmp_path: Path, capsys) -> None:
    with _curved(tmp_path) as st:
        curves_table(st, [2, 4, 5], 10)
        out = capsys.readouterr().out
        curves_table(st, None, 1)  # the leaderboard's best trial
        best = capsys.readouterr().out
        with pytest.raises(StudyError, match="no trial 42"):
            curves_table(st, [42], 10)
    assert out.splitlines()[0] == "s.arch: the reports of 3 trials"
    head, *rows = _rows(out)
    assert head == ["trial", "status", "step", "value", "valid_loss", "train_loss"]  # no "note"
    assert rows == [["2", "stopped", "1", "0.2000", "0.8000", "1.30"],
                    ["4", "paused", "1", "0.3500", "0.6500", "1.15"],
                    ["", "", "2", "0.4500", "0.5500", "1.05"],
                    ["", "", "3", "0.5000", "0.5000", "1.00"],
                    ["5", "failed", "", "no reports", "", ""]]
    assert "s.arch: the reports of 1 trial\n" in best and "0.9000" in best


def test_study_json_gives_each_listed_trials_reports(tmp_path: Path) -> None:
    with _curved(tmp_path) as st:
        doc = json.loads(json.dumps(study_json(st, 2)))
    assert doc["counts"] == {"ok": 2, "stopped": 1, "paused": 1, "failed": 1}
    assert [t["id"] for t in doc["best"]] == [3, 1]
    assert [r["value"] for r in doc["best"][0]["reports"]] == CURVES[3][1]
    assert [r["step"] for r in doc["best"][0]["reports"]] == [1, 2, 3, 4, 5]
    assert doc["best"][0]["reports"][0]["metrics"]["valid_loss"] == pytest.approx(0.6)
    assert doc["meta"]["evaluator"] == "train" and doc["study"].endswith("s")


def test_progress_png_draws_learning_curves(tmp_path: Path) -> None:
    with _curved(tmp_path) as st:
        fig = progress_figure(st)
    try:
        by_trial, by_time, curves = fig.axes
        assert curves.get_xlabel() == "epoch"
        assert curves.get_ylim() == by_trial.get_ylim()
        low, high = curves.get_ylim()
        assert low < 0.2 and high > 0.9
        labels = [t.get_text() for t in curves.get_legend().get_texts()]
        assert labels == ["trial", "stopped", "best (trial 3)"]
        best = [ln for ln in curves.get_lines() if ln.get_color() == "C0"]
        assert len(best) == 1 and list(best[0].get_ydata()) == CURVES[3][1]
        from matplotlib.collections import PathCollection

        stopped = [c for c in curves.collections if isinstance(c, PathCollection)
                   and c.get_offsets().shape[0] == 1]  # the x where a stopped trial ended
        assert [list(c.get_offsets()[0]) for c in stopped] == [[1.0, 0.2]]  # trial 2's end
        # trials 2 and 4 ended early: drawn as x, not counted in the best so far
        assert "stopped or paused early" in [t.get_text() for t in
                                             by_trial.get_legend().get_texts()]
        best_line = [ln for ln in by_trial.get_lines() if ln.get_color() == "C0"][0]
        assert max(v for v in best_line.get_ydata() if v == v) == 0.9
    finally:
        plt.close(fig)


def test_progress_png_without_reports_has_two_panels(tmp_path: Path) -> None:
    with _plain(tmp_path) as st:
        fig = progress_figure(st)
    try:
        assert len(fig.axes) == 2
    finally:
        plt.close(fig)


def test_with_no_complete_trial_the_best_partial_one_is_named(tmp_path: Path, capsys) -> None:
    st = Study.create(tmp_path / "s", META)
    for values in ([0.2, 0.4, 0.6], [0.7], [0.3]):
        tid = st.start({"n": len(values)}, "h", "h", "random")
        for step, v in enumerate(values, 1):
            st.report(tid, step, v, {})
        st.finish(tid, values[-1], {}, None, 1.0, status="stopped" if tid > 1 else "paused")
    with st:
        leaderboard(st, 10)
        fig = progress_figure(st)
    out = capsys.readouterr().out
    assert "no trial ran to its last step; the best that ended early: trial 2, 0.7000 at " \
           "epoch 1 (stopped)" in out
    try:
        assert "time since the study began" in fig.axes[1].get_xlabel()  # no cost: wall clock
    finally:
        plt.close(fig)
