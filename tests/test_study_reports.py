"""The study's reports table, the paused and stopped statuses, and checkpoint paths: stored,
read back in step order, kept through kill -9, checked on open, and never leading out of the
study folder."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from archdsl.errors import StudyError
from archdsl.study import Report, Study

META = {"space_file": "/x/s.arch", "space_hash": "h", "searcher": "random",
        "evaluator": "train", "seed": 0}


def _study(tmp_path: Path, trials: int = 2) -> Study:
    st = Study.create(tmp_path / "s", META)
    for i in range(trials):
        st.start({"i": i}, f"a{i}", "h", "random")
    return st


def _sql(folder: Path, *statements: str) -> None:
    db = sqlite3.connect(folder / "study.db")
    try:
        for s in statements:
            db.executescript(s)
    finally:
        db.close()


def test_reports_are_stored_and_read_in_step_order(tmp_path: Path) -> None:
    with _study(tmp_path) as st:
        assert st.reports() == {} and not st.has_reports()
        st.report(2, 3, 0.7, {"valid_loss": 0.5})
        st.report(1, 2, 0.6, {})
        st.report(1, 1, 0.4, {"valid_loss": 1.5, "note": "x"})
        st.report(1, 2, 0.65, {"valid_loss": 0.9})  # the same step again replaces it
        assert st.has_reports()
    with Study.open(tmp_path / "s") as st:
        got = st.reports()
        assert list(got) == [1, 2]
        assert [(r.step, r.value, r.metrics) for r in got[1]] == [
            (1, 0.4, {"valid_loss": 1.5, "note": "x"}), (2, 0.65, {"valid_loss": 0.9})]
        assert [r.step for r in got[2]] == [3]
        assert all(isinstance(r, Report) and r.time > 0 for rs in got.values() for r in rs)
        assert st.reports(2) == {2: got[2]} and st.reports(7) == {}
        assert got[2][0].to_json() == {"step": 3, "value": 0.7, "metrics": {"valid_loss": 0.5},
                                       "time": got[2][0].time}


def test_a_report_is_refused_for_a_missing_trial_or_a_bad_value(tmp_path: Path) -> None:
    with _study(tmp_path) as st:
        with pytest.raises(StudyError, match="no trial 9"):
            st.report(9, 1, 0.5, {})
        for step, value in [(-1, 0.5), (1.5, 0.5), (True, 0.5), (1, float("nan")),
                            (1, float("inf")), (1, "0.5")]:
            with pytest.raises(ValueError):
                st.report(1, step, value, {})  # type: ignore[arg-type]
        assert st.reports() == {}


def test_a_study_made_before_reports_reads_as_none_and_gains_the_table(tmp_path: Path) -> None:
    with _study(tmp_path) as st:
        pass
    _sql(tmp_path / "s", "DROP TABLE reports")
    with Study.open(tmp_path / "s") as st:
        assert st.reports() == {} and st.reports(1) == {} and not st.has_reports()
        st.report(1, 1, 0.5, {})
    with Study.open(tmp_path / "s") as st:
        assert [r.value for r in st.reports()[1]] == [0.5]


def test_statuses_paused_and_stopped(tmp_path: Path) -> None:
    with _study(tmp_path, trials=3) as st:
        st.finish(1, 0.6, {"epochs": 1}, None, 1.0, status="paused")
        st.finish(2, 0.3, {"epochs": 1}, None, 1.0, status="stopped")
        st.finish(3, None, {}, "boom", 1.0)
        with pytest.raises(ValueError, match="not 'resting'"):
            st.finish(3, 0.1, {}, None, 1.0, status="resting")
        st.start({"i": 9}, "a9", "h", "random")
        assert st.mark_interrupted() == 1  # running trials only: paused ones stay paused
    with Study.open(tmp_path / "s") as st:
        assert [t.status for t in st.trials()] == ["paused", "stopped", "failed", "interrupted"]
        assert st.trial(2).objective == 0.3
        assert st.best(5) == []  # complete trials only
        st.set_status(1, "running")  # promoted
        st.finish(1, 0.9, {"epochs": 3}, None, 2.0)
        assert [t.id for t in st.best(5)] == [1]
        assert st.counts() == {"ok": 1, "stopped": 1, "failed": 1, "interrupted": 1}
        with pytest.raises(ValueError):
            st.set_status(1, "done")
        with pytest.raises(StudyError, match="no trial 99"):
            st.set_status(99, "paused")


def test_checkpoint_paths_lie_in_the_study_folder(tmp_path: Path) -> None:
    with _study(tmp_path) as st:
        folder = tmp_path / "s" / "checkpoints"
        assert not folder.exists()
        st.remove_checkpoint(1)  # nothing to remove: fine
        path = st.checkpoint_path(1)
        assert path == folder / "trial-1.pt" and folder.is_dir() and not path.exists()
        path.write_bytes(b"state")
        (folder / "trial-1.pt.123.tmp").write_bytes(b"half")  # left by a killed write
        (folder / "trial-2.pt").write_bytes(b"other")
        assert st.checkpoint_path(1) == path
        st.remove_checkpoint(1)
        assert sorted(p.name for p in folder.iterdir()) == ["trial-2.pt"]
        st.remove_checkpoint(1)
        for bad in ("1", 1.0, True, "../x"):
            with pytest.raises(ValueError):
                st.checkpoint_path(bad)  # type: ignore[arg-type]


def test_a_checkpoints_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "trial-1.pt").write_bytes(b"precious")
    with _study(tmp_path) as st:
        (tmp_path / "s" / "checkpoints").symlink_to(outside)
        for act in (st.checkpoint_path, st.remove_checkpoint):
            with pytest.raises(StudyError, match="leads out of the study folder"):
                act(1)
        assert (outside / "trial-1.pt").read_bytes() == b"precious"
        (tmp_path / "s" / "checkpoints").unlink()
        (tmp_path / "s" / "checkpoints").write_text("a file")
        with pytest.raises(StudyError, match="is not a folder"):
            st.checkpoint_path(1)


def test_a_checkpoint_file_linked_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    with _study(tmp_path) as st:
        folder = st.checkpoint_path(1).parent
        (folder / "trial-1.pt").symlink_to(secret)
        with pytest.raises(StudyError, match="trial-1.pt leads out of the study folder"):
            st.checkpoint_path(1)
        (folder / "trial-2.pt").symlink_to(folder / "gone.pt")
        with pytest.raises(StudyError, match="a link to nothing"):
            st.checkpoint_path(2)
        (folder / "trial-3.pt").mkdir()
        with pytest.raises(StudyError, match="is not a regular file"):
            st.checkpoint_path(3)
        st.remove_checkpoint(1)  # the link goes, never what it points to
        assert secret.read_bytes() == b"secret" and not (folder / "trial-1.pt").is_symlink()


def test_reports_survive_kill_9(tmp_path: Path) -> None:
    """Each report is committed as it is made: a process killed right after loses none."""
    with _study(tmp_path, trials=1):
        pass
    script = textwrap.dedent(f"""
        import os, sys
        from archdsl.study import Study
        st = Study.open({str(tmp_path / 's')!r})
        for step in range(1, 51):
            st.report(1, step, step / 100, {{"loss": 1 / step}})
        print("done", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "done"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Study.open(tmp_path / "s") as st:
        assert [r.step for r in st.reports()[1]] == list(range(1, 51))
        assert st.reports()[1][-1].metrics == {"loss": 1 / 50}


REPORT_FAULTS = [
    ("UPDATE reports SET value = 'high' WHERE step = 2",
     "the report of trial 1 at step 2 is corrupt: its value is the text 'high', not a number",
     "DELETE FROM reports WHERE trial = 1 AND step = 2"),
    ("UPDATE reports SET value = 9e999 WHERE step = 2", "its value is the number inf", ""),
    ("UPDATE reports SET metrics = '{' WHERE step = 1",
     "the report of trial 1 at step 1 is corrupt: its metrics is not valid JSON", ""),
    ("UPDATE reports SET metrics = '[1]' WHERE step = 1", "its metrics is a JSON list, not", ""),
    ("UPDATE reports SET metrics = x'00ff' WHERE step = 1", "its metrics is binary data", ""),
    ("UPDATE reports SET metrics = CAST(x'7bff7d' AS TEXT) WHERE step = 1", "not UTF-8", ""),
    ("UPDATE reports SET time = 'now' WHERE step = 1", "its time is the text 'now'", ""),
    ("UPDATE reports SET step = 'two' WHERE step = 2",
     "a report of trial 1 is corrupt: its step is the text 'two', not a whole number",
     "DELETE FROM reports WHERE rowid = "),
    ("UPDATE reports SET step = -3 WHERE step = 2", "its step is the number -3", ""),
    ("UPDATE reports SET trial = 'x' WHERE step = 2", "a report's trial is the text 'x'", ""),
    ("UPDATE reports SET trial = 7 WHERE step = 2",
     "the report of trial 7 at step 2 is corrupt: there is no trial 7",
     "DELETE FROM reports WHERE trial = 7"),
    ("DELETE FROM trials WHERE id = 1", "the report of trial 1 at step 1 is corrupt: there is "
                                        "no trial 1", ""),
    ("ALTER TABLE reports DROP COLUMN time", "its 'reports' table has no column 'time'", ""),
    ("UPDATE trials SET status = 'stopped\x1b' WHERE id = 2", "its status is 'stopped\\x1b'",
     ""),
]


@pytest.mark.parametrize("statement, message, hint", REPORT_FAULTS,
                         ids=[f"fault{i}" for i in range(len(REPORT_FAULTS))])
def test_a_corrupt_report_is_one_clear_error_naming_trial_and_step(
        tmp_path: Path, statement: str, message: str, hint: str) -> None:
    with _study(tmp_path) as st:
        st.report(1, 1, 0.5, {"loss": 1.0})
        st.report(1, 2, 0.6, {"loss": 0.5})
    _sql(tmp_path / "s", statement)
    with pytest.raises(StudyError) as e:
        Study.open(tmp_path / "s")
    text = e.value.format()
    assert message in text and hint in text and "\x1b" not in text, text
