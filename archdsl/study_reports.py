"""A study's intermediate results and checkpoints: the `reports` table (one row per trial and
step, each checked as it is read) and the checkpoint files in DIR/checkpoints.

    reports (trial, step, value, metrics, time)   PRIMARY KEY (trial, step)
    DIR/checkpoints/trial-<id>.pt                 what a paused or running trial saved

A study made before reports existed has no `reports` table: it reads as having no reports and
gets the table on its first report. A study folder is untrusted: a report row whose fields are
not what they should be, or whose trial does not exist, is one StudyError naming the trial and
the step; a `checkpoints` folder or file that is a link out of the study folder (or not a
folder, not a regular file) is refused before anything is read, written or removed there.

May import: errors, study_checks, study_sources (and the standard library).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import StudyError
from .study_checks import CORRUPT, check_status, finite, json_value, kind
from .study_sources import os_error

__all__ = ["Report", "StudyReports", "REPORTS_SCHEMA", "CHECKPOINTS_DIR"]

REPORTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    trial INTEGER NOT NULL,
    step INTEGER NOT NULL,
    value REAL NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    time REAL NOT NULL,
    PRIMARY KEY (trial, step)
)"""
REPORT_COLUMNS = ("trial", "step", "value", "metrics", "time")
_SELECT = "SELECT rowid, " + ", ".join(REPORT_COLUMNS) + " FROM reports"
CHECKPOINTS_DIR = "checkpoints"


@dataclass
class Report:
    """One intermediate result of a trial: its value (the objective, higher is better) at a
    step (an epoch, say), the evaluator's other figures, and when it was stored."""
    step: int
    value: float
    metrics: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "value": self.value, "metrics": self.metrics,
                "time": self.time}


class StudyReports:
    """The reports and checkpoints of a Study (a base class of it: it uses the study's folder
    and its `_query` / `_write`)."""

    folder: Path
    db: sqlite3.Connection
    _reports_table: bool = False  # known to exist (checked or made)

    _query: Callable[..., list[tuple]]  # Study's: a query, its errors as StudyError
    _write: Callable[[str, list[tuple]], sqlite3.Cursor]  # Study's: a committed write

    # ---- reports -------------------------------------------------------------------------
    def report(self, trial: int, step: int, value: float, metrics: dict[str, Any]) -> None:
        """Store `value` at `step` for `trial` (replacing a report of that step), committed at
        once: a search killed right after loses no report."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"a report's step must be a whole number >= 0, not {step!r}")
        if not finite(value):
            raise ValueError(f"a report's value must be a finite number, not {value!r}")
        if not self._reports_table:
            self._write(REPORTS_SCHEMA, [()])  # an older study gets the table now
            self._reports_table = True
        if isinstance(trial, bool) or not isinstance(trial, int):
            raise ValueError(f"a trial's id is an integer, not {trial!r}")
        cur = self._write("INSERT OR REPLACE INTO reports SELECT ?, ?, ?, ?, ? WHERE EXISTS "
                          "(SELECT 1 FROM trials WHERE id = ?)",
                          [(trial, step, float(value), json.dumps(metrics, default=str),
                            time.time(), trial)])
        if cur.rowcount == 0:
            raise StudyError(f"no trial {trial} in {self.folder}")

    def reports(self, trial: int | None = None) -> dict[int, list[Report]]:
        """Every trial's reports (or one trial's), in step order, each row checked."""
        if not self._has_reports_table():
            return {}
        sql = _SELECT + (" WHERE trial = ?" if trial is not None else "") + " ORDER BY trial, step"
        out: dict[int, list[Report]] = {}
        path = self.folder / "study.db"
        for r in self._query(sql, (trial,) if trial is not None else ()):
            tid, report = checked_report(r, path)
            out.setdefault(tid, []).append(report)
        return out

    def has_reports(self) -> bool:
        """Whether any trial has reported a step."""
        return self._has_reports_table() and bool(self._query("SELECT 1 FROM reports LIMIT 1"))

    def _has_reports_table(self) -> bool:
        if not self._reports_table:
            self._reports_table = bool(self._query("PRAGMA table_info(reports)"))
        return self._reports_table

    def _check_reports(self) -> None:
        """Every report row checked, and every report's trial shown to exist (StudyError)."""
        path = self.folder / "study.db"
        have = {r[1] for r in self._query("PRAGMA table_info(reports)")}
        if not have:
            return
        missing = [c for c in REPORT_COLUMNS if c not in have]
        if missing:
            raise StudyError(f"{path} is not a study database: its 'reports' table has no "
                             f"column {', '.join(repr(c) for c in missing)}", hint=CORRUPT)
        self._reports_table = True
        self.reports()
        orphan = self._query("SELECT trial, MIN(step) FROM reports WHERE trial NOT IN "
                             "(SELECT id FROM trials) GROUP BY trial ORDER BY trial LIMIT 1")
        if orphan:
            tid, step = orphan[0]
            raise StudyError(f"{path}: the report of trial {tid} at step {step} is corrupt: "
                             f"there is no trial {tid}",
                             hint=f"delete that trial's reports (sqlite3 {path} \"DELETE FROM "
                                  f"reports WHERE trial = {tid}\"), or move the database away "
                                  "and start a new study")

    # ---- statuses --------------------------------------------------------------------------
    def set_status(self, trial_id: int, status: str) -> None:
        """Set a trial's status (a paused trial promoted is `running` again, say)."""
        check_status(status)
        cur = self._write("UPDATE trials SET status = ? WHERE id = ?", [(status, trial_id)])
        if cur.rowcount == 0:
            raise StudyError(f"no trial {trial_id} in {self.folder}")

    # ---- checkpoints -----------------------------------------------------------------------
    def checkpoint_path(self, trial_id: int) -> Path:
        """Where `trial_id` keeps its checkpoint: DIR/checkpoints/trial-<id>.pt (the folder is
        made if missing; the file may not exist yet). StudyError if `checkpoints`, or the
        file, is a link out of the study folder or not a folder / a regular file."""
        folder = _checkpoints(self.folder, make=True)
        path = folder / _name(trial_id)
        _refuse_foreign(self.folder, path, stat.S_ISREG, "a regular file")
        return path

    def remove_checkpoint(self, trial_id: int) -> None:
        """Remove a trial's checkpoint (and what a killed write left beside it); a missing one
        is fine."""
        folder = _checkpoints(self.folder, make=False)
        if folder is None:
            return
        name = _name(trial_id)
        for p in [folder / name, *folder.glob(name + ".*.tmp")]:
            try:
                p.unlink(missing_ok=True)  # a link is removed, never what it points to
            except IsADirectoryError:
                raise _foreign(self.folder, f"{p} is not a regular file") from None
            except OSError as e:
                raise os_error("remove the checkpoint", p, e) from None


def checked_report(r: tuple, path: Path) -> tuple[int, Report]:
    """A report row (rowid, then REPORT_COLUMNS) as its trial and Report, every field checked:
    StudyError naming the trial and the step."""
    rowid, tid, step, value, metrics, when = r
    if not _whole(tid):
        raise StudyError(f"{path}: a report's trial is {kind(tid)}, not a trial's id",
                         hint=_delete_hint(path, f"rowid = {rowid}"))
    if not _whole(step) or step < 0:
        raise StudyError(f"{path}: a report of trial {tid} is corrupt: its step is "
                         f"{kind(step)}, not a whole number >= 0",
                         hint=_delete_hint(path, f"rowid = {rowid}"))

    def bad(why: str) -> StudyError:
        return StudyError(f"{path}: the report of trial {tid} at step {step} is corrupt: {why}",
                          hint=_delete_hint(path, f"trial = {tid} AND step = {step}"))

    if not finite(value):
        raise bad(f"its value is {kind(value)}, not a number")
    metrics = json_value(metrics, lambda why: bad(f"its metrics {why}"))
    if not isinstance(metrics, dict):
        raise bad(f"its metrics is {kind(metrics)}, not a JSON object")
    if not finite(when):
        raise bad(f"its time is {kind(when)}, not a number")
    return tid, Report(step, float(value), metrics, float(when))


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _delete_hint(path: Path, where: str) -> str:
    return (f"delete that row (sqlite3 {path} \"DELETE FROM reports WHERE {where}\"), or move "
            "the database away and start a new study")


def _name(trial_id: int) -> str:
    if not _whole(trial_id):
        raise ValueError(f"a trial's id is an integer, not {trial_id!r}")
    return f"trial-{trial_id}.pt"


def _checkpoints(folder: Path, make: bool) -> Path | None:
    """DIR/checkpoints, checked to be a folder inside the study folder (made when `make`;
    None when it is missing and not `make`)."""
    path = folder / CHECKPOINTS_DIR
    if not os.path.lexists(path):
        if not make:
            return None
        try:
            path.mkdir(exist_ok=True)
        except OSError as e:
            raise os_error("create the checkpoint folder", path, e) from None
    _refuse_foreign(folder, path, stat.S_ISDIR, "a folder")
    return path


def _refuse_foreign(folder: Path, path: Path, is_kind: Any, what: str) -> None:
    """StudyError if `path` exists and lies (through a link) outside `folder`, or is not
    `what`."""
    if not os.path.lexists(path):
        return
    try:
        inside = path.resolve(strict=True).is_relative_to(folder.resolve())
        mode = os.stat(path).st_mode
    except (OSError, RuntimeError):
        raise _foreign(folder, f"{path} is a link to nothing, or cannot be read") from None
    if not inside:
        raise _foreign(folder, f"{path} leads out of the study folder")
    if not is_kind(mode):
        raise _foreign(folder, f"{path} is not {what}")


def _foreign(folder: Path, why: str) -> StudyError:
    return StudyError(f"the study in {folder} does not look like its own: {why}",
                      hint=f"a study folder may come from anyone: move {folder / CHECKPOINTS_DIR} "
                           "away (its checkpoints are then lost: those trials start again)")
