"""A study's multi-objective views on hand-made studies: the front's members (only ok trials,
duplicates kept, dominated ones out), the reference point and hypervolume, the table, the JSON,
pareto.png's panels (front in colour and joined, dominated trials faded, the hypervolume
against trials), the files written (a full disk is one clear error), and export --pareto's
.arch and .py files."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

import archdsl
from archdsl.errors import ArchDSLError, StudyError
from archdsl.pareto_view import (
    export_pareto,
    front_trials,
    pareto_figure,
    pareto_json,
    pareto_table,
    reference_point,
    study_objectives,
    write_pareto,
)
from archdsl.study import Study

META = {"space_file": "/x/s.arch", "space_hash": "h", "searcher": "evolution",
        "evaluator": "e", "seed": 0}
SPACE = "input x: [4]\nparam w = choice(8, 16, 32, 64, 128, 256)\n" \
        "network { x -> linear(w) -> relu -> linear(2) }\n"
# trial: (status, accuracy, params)
TRIALS = {1: ("ok", 0.90, 5000), 2: ("ok", 0.80, 1000), 3: ("ok", 0.70, 3000),
          4: ("ok", 0.95, 9000), 5: ("failed", None, None), 6: ("ok", 0.80, 1000),
          7: ("stopped", 0.99, 100)}
WIDTHS = {1: 8, 2: 16, 3: 32, 4: 64, 5: 128, 6: 128, 7: 256}


def _study(tmp_path: Path, objectives: list[str] | None = None,
           trials: dict = TRIALS) -> Study:
    st = Study.create(tmp_path / "s", META)
    if objectives is not None:
        st.set_meta(objectives=objectives)
    for i, (status, acc, params) in trials.items():
        tid = st.start({"w": WIDTHS[i]}, f"hash{i}", "h", "evolution")
        metrics = {} if acc is None else {"accuracy": acc, "params": params,
                                          "flops": 2 * params}
        st.finish(tid, acc, metrics, "boom" if status == "failed" else None, 1.0,
                  status="stopped" if status == "stopped" else None)
    return st


TWO = ["maximize:accuracy", "minimize:params"]


def _rows(out: str) -> list[list[str]]:
    return [[c.strip() for c in ln.strip()[1:-1].replace("┃", "│").split("│")]
            for ln in out.splitlines() if ln.startswith(("│", "┃"))]


def test_the_front_is_the_ok_trials_no_other_beats(tmp_path: Path) -> None:
    with _study(tmp_path, TWO) as st:
        # 3 is beaten by 2 (and 6); 6 equals 2, so both stay; 5 failed, 7 stopped early
        assert [t.id for t in front_trials(st)] == [4, 1, 2, 6]
        assert [str(o) for o in study_objectives(st)] == TWO


def test_one_objective_by_default(tmp_path: Path) -> None:
    with _study(tmp_path) as st:  # no objectives stored: maximize the objective
        assert [t.id for t in front_trials(st)] == [4]
        assert pareto_json(st)["objectives"] == ["maximize:objective"]


def test_the_reference_point_is_past_the_worst_by_a_tenth_of_the_range() -> None:
    assert reference_point([(0.9, -5000.0), (0.7, -9000.0)]) == pytest.approx((0.68, -9400.0))
    assert reference_point([(2.0, 0.0)]) == pytest.approx((1.8, -0.1))  # equal: by size, or 1
    with pytest.raises(ValueError):
        reference_point([])


def test_pareto_json(tmp_path: Path) -> None:
    with _study(tmp_path, TWO) as st:
        doc = json.loads(json.dumps(pareto_json(st)))
    assert doc["objectives"] == TWO and doc["trials"] == 5
    # worst accuracy 0.70 - 0.1 * 0.25; worst params 9000 + 0.1 * 8000
    assert doc["reference"] == pytest.approx({"accuracy": 0.675, "params": 9800.0})
    # from the reference: 0.275 * 800 + 0.225 * 4000 + 0.125 * 4000
    assert doc["hypervolume"] == pytest.approx(1620.0)
    assert [m["trial"] for m in doc["front"]] == [4, 1, 2, 6]
    assert doc["front"][0] == {"trial": 4, "values": {"accuracy": 0.95, "params": 9000.0},
                               "config": {"w": 64}, "arch_hash": "hash4"}
    assert [h["trial"] for h in doc["history"]] == [1, 2, 3, 4, 6]
    assert [h["hypervolume"] for h in doc["history"]] == pytest.approx(
        [1080.0, 1580.0, 1580.0, 1620.0, 1620.0])


def test_pareto_json_without_an_ok_trial(tmp_path: Path) -> None:
    with _study(tmp_path, TWO, {5: ("failed", None, None)}) as st:
        doc = pareto_json(st)
        assert front_trials(st) == [] and pareto_figure(st) is None
        assert write_pareto(st, st.folder) == [st.folder / "pareto.json"]
    assert doc == {"objectives": TWO, "trials": 0, "reference": None, "hypervolume": 0.0,
                   "front": [], "history": []}


def test_pareto_table(tmp_path: Path, capsys) -> None:
    with _study(tmp_path, TWO) as st:
        pareto_table(st, 10)
        out = capsys.readouterr().out
        pareto_table(st, 2)
        short = capsys.readouterr().out
    assert out.splitlines()[0] == ("s.arch: the Pareto front: 4 of 5 ok trials; "
                                   "hypervolume 1620")
    head, *rows = _rows(out)
    assert head == ["trial", "accuracy (max)", "params (min)", "architecture"]
    assert rows == [["4", "0.9500", "9,000", "hash4"], ["1", "0.9000", "5,000", "hash1"],
                    ["2", "0.8000", "1,000", "hash2"], ["6", "0.8000", "1,000", "hash6"]]
    assert "4 of 5 ok trials (the first 2 shown)" in short
    assert [r[0] for r in _rows(short)[1:]] == ["4", "1"]


def test_pareto_table_without_an_ok_trial(tmp_path: Path, capsys) -> None:
    with _study(tmp_path, TWO, {5: ("failed", None, None)}) as st:
        pareto_table(st, 10)
    assert capsys.readouterr().out == "s.arch: no successful trial yet: no Pareto front\n"


def _offsets(ax) -> dict[str, list[list[float]]]:
    """Each labelled scatter of a panel: its points."""
    return {c.get_label(): c.get_offsets().tolist() for c in ax.collections
            if isinstance(c, PathCollection)}


def test_pareto_png_draws_the_front_and_fades_the_rest(tmp_path: Path) -> None:
    with _study(tmp_path, TWO) as st:
        fig = pareto_figure(st)
    try:
        pair, hv = fig.axes
        assert pair.get_xlabel() == "accuracy (maximize)"
        assert pair.get_ylabel() == "params (minimize)"
        drawn = _offsets(pair)
        assert drawn["dominated"] == [[0.7, 3000.0]]  # trial 3 only: not 5 (failed) nor 7
        assert sorted(map(tuple, drawn["Pareto front"])) == [
            (0.8, 1000.0), (0.8, 1000.0), (0.9, 5000.0), (0.95, 9000.0)]
        faded = [c for c in pair.collections if c.get_label() == "dominated"][0]
        assert faded.get_alpha() < 0.5
        # the front joined by its staircase (as given: params up as accuracy goes up)
        line = pair.get_lines()[0]
        assert list(line.get_xdata()) == pytest.approx([0.8, 0.8, 0.9, 0.9, 0.95])
        assert list(line.get_ydata()) == pytest.approx([1000.0, 5000.0, 5000.0, 9000.0, 9000.0])
        assert hv.get_xlabel() == "trial" and hv.get_ylabel() == "hypervolume"
        curve = hv.get_lines()[0]
        assert list(curve.get_xdata()) == [1, 2, 3, 4, 6]
        assert list(curve.get_ydata()) == pytest.approx([1080.0, 1580.0, 1580.0, 1620.0,
                                                         1620.0])
        assert fig.get_suptitle() == ("s.arch: evolution search, 5 ok trials, 4 on the "
                                      "Pareto front")
    finally:
        plt.close(fig)


def test_three_objectives_draw_every_pair(tmp_path: Path) -> None:
    three = ["maximize:accuracy", "minimize:params", "maximize:flops"]
    with _study(tmp_path, three) as st:
        # maximizing flops (2 * params) against minimizing params: every ok trial is on it
        assert [t.id for t in front_trials(st)] == [4, 1, 2, 6, 3]
        fig = pareto_figure(st)
    try:
        shown = [ax for ax in fig.axes if ax.get_visible()]
        assert len(shown) == 4  # 3 pairs and the hypervolume
        assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in shown[:3]] == [
            ("accuracy (maximize)", "params (minimize)"),
            ("accuracy (maximize)", "flops (maximize)"),
            ("params (minimize)", "flops (maximize)")]
        assert all("dominated" not in _offsets(ax) for ax in shown[:3])
    finally:
        plt.close(fig)


def test_write_pareto_writes_json_and_png(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with _study(tmp_path, TWO) as st:
        paths = write_pareto(st, out)
        expected = pareto_json(st)
    assert paths == [out / "pareto.json", out / "pareto.png"]
    assert json.loads((out / "pareto.json").read_text()) == json.loads(json.dumps(expected))
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("what", ["json", "png"])
def test_a_full_disk_is_one_clear_error(tmp_path: Path, monkeypatch, what: str) -> None:
    def full(*args: object, **kw: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path if what == "json" else Figure,
                        "write_text" if what == "json" else "savefig", full)
    with _study(tmp_path, TWO) as st, pytest.raises(StudyError, match="the disk is full") as e:
        write_pareto(st, st.folder)
    assert f"pareto.{what}" in e.value.message and "corrupt" not in e.value.format()
    assert plt.get_fignums() == []  # the figure is closed all the same


def test_a_stored_fault_is_named(tmp_path: Path) -> None:
    with _study(tmp_path, ["maximize:accuracy", "minimize:latency"]) as st:
        with pytest.raises(StudyError, match="trial 1 .* no value .*latency"):
            front_trials(st)
        st.set_meta(objectives="maximize:accuracy")
        with pytest.raises(StudyError, match="'objectives' is corrupt"):
            pareto_json(st)
        st.set_meta(objectives=["upwards:accuracy"])
        with pytest.raises(StudyError, match="'objectives' is corrupt: .*upwards"):
            pareto_json(st)


def test_export_pareto_writes_each_front_member(tmp_path: Path) -> None:
    space = archdsl.loads(SPACE)
    with _study(tmp_path, TWO) as st:
        paths = export_pareto(st, space, tmp_path / "front" / "new")
    names = [p.name for p in paths]
    assert names == ["trial-4.arch", "trial-4.py", "trial-1.arch", "trial-1.py",
                     "trial-2.arch", "trial-2.py", "trial-6.arch", "trial-6.py"]
    arch = (tmp_path / "front" / "new" / "trial-4.arch").read_text()
    assert "linear(x, out = 64" in arch
    assert archdsl.loads(arch).count() == 1  # every decision fixed
    assert "class" in (tmp_path / "front" / "new" / "trial-4.py").read_text()


def test_export_pareto_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with _study(tmp_path, TWO, {5: ("failed", None, None)}) as st:
        with pytest.raises(ArchDSLError, match="no successful trial yet"):
            export_pareto(st, archdsl.loads(SPACE), tmp_path / "out")
    other = archdsl.loads("input x: [4]\nparam w = choice(8, 16)\n"
                          "network { x -> linear(w) }\n")
    with _study(tmp_path / "b", TWO) as st, pytest.raises(StudyError):
        export_pareto(st, other, tmp_path / "out")  # trial 4's w = 64 does not fit
    assert not (tmp_path / "out").exists()  # nothing written
