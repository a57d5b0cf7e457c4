"""A study: every trial of a search, kept in SQLite in a study folder.

    DIR/study.db    trials (configuration, status, objective, metrics, error, duration, hashes)
                    and the study's settings; one row is written and committed as each trial
                    starts and ends, so a killed search loses nothing that finished
    DIR/space/      a copy of the .arch file searched and of every file it imports (see
                    study_sources); `export`, `status` and `--resume` read the copy
    DIR/.lock       held while a search runs (a second search on the folder is refused)
    DIR/checkpoints/  what trials saved to continue from (see study_reports)

A trial is `running` while it is evaluated, then `ok` or `failed`; under an early-stopping
scheduler it may instead be `paused` (at a rung, its checkpoint kept: it may be promoted and run
again from it) or `stopped` (ended early: its objective is its last reported value). A
`running` row left by a search that was killed is marked `interrupted` when the study is opened
again; a resumed search evaluates it again (from its checkpoint, if it kept one; else anew,
as a new trial). The intermediate results an evaluator reports (a value per step) are the
`reports` table (see study_reports).

A study folder is untrusted: `Study.open` checks the database (tables, columns, every row's
JSON and types) and every fault is one StudyError naming the trial or the cause.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, StudyError, printable
from .study_checks import (
    CORRUPT,
    EVALUATOR_NAME,
    STATUSES,
    check_status,
    checked_meta,
    checked_row,
    db_error,
    delete_row_hint,
    text_factory,
)
from .study_reports import REPORTS_SCHEMA, Report, StudyReports
from .study_sources import (
    SPACE_DIR,
    checked_copies,
    checked_import_paths,
    checked_original,
    copy_sources,
    os_error,
    space_hash,
)

__all__ = ["Study", "Trial", "Report", "space_hash", "SCHEMA_VERSION", "STATUSES"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    config TEXT NOT NULL,
    arch_hash TEXT NOT NULL,
    space_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    objective REAL,
    metrics TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    started REAL NOT NULL,
    duration REAL,
    searcher TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS trials_status ON trials (status);
""" + REPORTS_SCHEMA + ";\n"
_COLUMNS = ("id", "config", "arch_hash", "space_hash", "status", "objective", "metrics",
            "error", "started", "duration", "searcher")
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM trials"



@dataclass
class Trial:
    id: int
    config: dict[str, Any]
    arch_hash: str
    space_hash: str
    status: str  # one of STATUSES: running, ok, failed, interrupted, paused, stopped
    objective: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started: float = 0.0
    duration: float | None = None
    searcher: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "objective": self.objective,
                "config": self.config, "metrics": self.metrics, "error": self.error,
                "duration": self.duration, "arch_hash": self.arch_hash,
                "space_hash": self.space_hash, "searcher": self.searcher,
                "started": self.started}


class Study(StudyReports):
    """The trials of one search, in `folder/study.db`. Open with `Study.open` or `create`;
    the reports and checkpoints are StudyReports'."""

    def __init__(self, folder: Path, db: sqlite3.Connection):
        self.folder = folder
        self.db = db
        self._lock: int | None = None

    # ---- opening -----------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, meta: dict[str, Any],
               sources: list[str] | None = None,
               import_paths: Sequence[str | Path] = ()) -> Study:
        """A new study in `folder` (made if missing; it must not hold a study already),
        holding the folder's lock; `sources` (the searched .arch file, then its imports) are
        copied into folder/space, with the `import_paths` folders they were loaded with."""
        folder = Path(folder)
        _refuse_existing(folder)
        made = [p for p in [*reversed(folder.parents), folder] if not p.exists()]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise os_error("create the study folder", folder, e) from None
        had_lock = (folder / ".lock").exists()
        fd = _take_lock(folder)
        try:
            _refuse_existing(folder)  # made by a search that started just before this one
            if (folder / SPACE_DIR).exists():
                raise StudyError(f"{folder} holds a '{SPACE_DIR}' folder but no study",
                                 hint="choose another --study")
        except BaseException:
            os.close(fd)
            raise
        made = ([] if had_lock else [folder / ".lock"]) + [
            folder / SPACE_DIR, *_db_files(folder), *made[::-1]]
        study: Study | None = None
        try:
            extra: dict[str, Any] = {}
            if sources:
                extra["space_files"], extra["import_paths"] = copy_sources(
                    folder, sources, import_paths)
                extra["searched_import_paths"] = [str(Path(d).resolve()) for d in import_paths]
            study = cls._connect(folder, create=True)
            study._lock = fd
            rows = [(k, json.dumps(v)) for k, v in
                    {**meta, **extra, "schema": SCHEMA_VERSION, "created": time.time()}.items()]
            try:
                with study.db:
                    study.db.executemany("INSERT INTO meta VALUES (?, ?)", rows)
            except sqlite3.IntegrityError:
                raise _holds_a_study(folder) from None
            except sqlite3.DatabaseError as e:
                raise study._error(e) from None
        except BaseException:
            if study is not None:
                study.close()
            else:
                os.close(fd)
            _remove(made)
            raise
        return study

    @classmethod
    def open(cls, folder: str | Path) -> Study:
        """An existing study, checked through (StudyError if `folder` holds none, or a
        corrupt one: the message names the trial or the setting at fault)."""
        folder = Path(folder)
        if not (folder / "study.db").is_file():
            raise StudyError(f"no study in {folder} (no study.db)",
                             hint="start one with `archdsl search FILE --study DIR`")
        study = cls._connect(folder, create=False)
        try:
            study._check()
        except BaseException:
            study.close()
            raise
        return study

    @classmethod
    def _connect(cls, folder: Path, create: bool) -> Study:
        path = folder / "study.db"
        db = None
        try:
            db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
            db.text_factory = text_factory
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            if create:
                db.executescript(_SCHEMA)
            db.isolation_level = "DEFERRED"
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            if db is not None:
                db.close()
            raise db_error(path, e) from None
        return cls(folder, db)

    def _check(self) -> None:
        """Tables, columns, pages, settings and every row as a study's (StudyError if not)."""
        path = self.folder / "study.db"
        for table, wanted in (("meta", ("key", "value")), ("trials", _COLUMNS)):
            have = {r[1] for r in self._query(f"PRAGMA table_info({table})")}
            if not have:
                raise StudyError(f"{path} is not a study database: it has no '{table}' table",
                                 hint=CORRUPT)
            missing = [c for c in wanted if c not in have]
            if missing:
                raise StudyError(f"{path} is not a study database: its '{table}' table has "
                                 f"no column {', '.join(repr(c) for c in missing)}",
                                 hint=CORRUPT)
        problems = [r[0] for r in self._query("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise StudyError(f"{path} is corrupt: {printable(str(problems[0]), False)}", hint=CORRUPT)
        self.meta()
        self.trials()
        self._check_reports()

    def lock(self) -> None:
        """Hold the study for one search; StudyError if another search holds it."""
        if self._lock is None:
            self._lock = _take_lock(self.folder)

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the space ---------------------------------------------------------------------
    def space_path(self) -> Path:
        """The study's copy of the .arch file it searched, checked to be its own (a regular
        .arch file inside DIR/space whose files hash as the study says). A study made
        before copies were kept gives its original file, if that has not changed."""
        meta = self.meta()
        if "space_files" in meta:
            return checked_copies(self.folder, meta["space_files"], meta["space_hash"])[0]
        original = checked_original(self.folder, meta["space_file"])
        if original is None:
            raise StudyError(f"the study in {self.folder} searched {meta['space_file']}, "
                             "which is gone (the study keeps no copy of it)")
        from .space import load

        if space_hash(load(original).ir.files) != meta["space_hash"]:
            raise StudyError(f"{original} (or a file it imports) has changed since the study "
                             "began, and the study keeps no copy of it",
                             hint="resume it with --allow-changed to keep a copy from now on")
        return original

    def resume_space(self, file: str | Path | None, allow_changed: bool,
                     log: Callable[[str], None], import_paths: Sequence[str | Path] = ()) -> Path:
        """The .arch file a resumed search loads, once the study's stored paths are shown to
        be its own; says (through `log`) what the search will run. That is the study's copy,
        or, when the original file has changed and `allow_changed`, the changed original
        (then `keep_sources` replaces the copy). Nothing is written."""
        meta = self.meta()
        stored = meta["space_file"]
        if file is not None and not Path(file).is_file():
            raise ArchDSLError(f"{file}: no such file",
                               hint=f"the study searched {stored}; leave the file out "
                                    "when resuming")
        if file is not None and Path(file).resolve() != Path(stored):
            raise StudyError(f"the study searched {stored}, not {file}",
                             hint="leave the file out when resuming")
        evaluator = meta["evaluator"]
        if not EVALUATOR_NAME.fullmatch(evaluator):
            raise StudyError(f"the study in {self.folder} does not look like its own: its "
                             f"evaluator '{printable(evaluator, False)}' is not an evaluator's name",
                             hint="evaluators: digits, nb201, or module:function (Python "
                                  "names only)")
        self._refuse_own_module(evaluator)
        original = checked_original(self.folder, stored)
        copy = None if "space_files" not in meta else \
            checked_copies(self.folder, meta["space_files"], meta["space_hash"])[0]
        if original is None and copy is None:
            raise StudyError(f"the study in {self.folder} searched {stored}, which is gone "
                             "(the study keeps no copy of it)")
        path = copy
        if original is not None and self._changed(original, meta["space_hash"], log,
                                                  import_paths or self._searched_import_paths()):
            if not allow_changed:
                raise StudyError(f"{original} (or a file it imports) has changed since the "
                                 "study began",
                                 hint="add --allow-changed to resume on the changed file (the "
                                      "study's copy is then replaced); trials that no longer "
                                      "fit it are left out")
            log(f"{original} has changed: resuming on it (the study's copy is replaced)")
            path = original
        elif copy is None:
            path = original  # a study made before copies were kept, its file unchanged
        assert path is not None
        log(f"resuming {self.folder}: space {path}"
            + (f" (the study's copy of {stored})" if path == copy else "")
            + f", evaluator {printable(meta['evaluator'], False)}"
            + (" (this imports and runs that Python function)"
               if ":" in meta["evaluator"] else ""))
        return path

    def _refuse_own_module(self, evaluator: str) -> None:
        """StudyError if the evaluator's module would be imported from inside the study
        folder (the working folder, or a folder on the Python path, lies in it)."""
        if ":" not in evaluator:
            return
        top = evaluator.partition(":")[0].split(".")[0]
        inside = self.folder.resolve()
        for entry in {str(Path.cwd()), *sys.path}:
            base = Path(entry or ".").resolve()
            if (base == inside or inside in base.parents) and (
                    (base / f"{top}.py").exists() or (base / top).is_dir()):
                raise StudyError(f"the study's evaluator '{evaluator}' would be imported from "
                                 f"{base / top}, inside the study folder {self.folder}",
                                 hint="a study folder may come from anyone: resume it from "
                                      "another folder, with your own module on the path")

    def import_paths_for(self, file: str | Path, given: Sequence[str | Path]) -> list[Path]:
        """The import folders to load `file` with: the study's own (inside its copy) for its
        copy, else those `given` (by default those the search was given)."""
        meta = self.meta()
        inside = (self.folder / SPACE_DIR).resolve()
        if "space_files" not in meta or inside not in Path(file).resolve().parents:
            return [Path(d) for d in given] or self._searched_import_paths()
        return checked_import_paths(self.folder, meta.get("import_paths", []))

    def _searched_import_paths(self) -> list[Path]:
        """The --import-path folders the search was given (absolute paths only)."""
        return [Path(d) for d in self.meta().get("searched_import_paths", [])
                if isinstance(d, str) and Path(d).is_absolute()]

    def keep_sources(self, files: list[str], import_paths: Sequence[str | Path] = ()) -> None:
        """Keep a copy of the space's `files` (the searched file first, loaded with the
        `import_paths` folders) in DIR/space, unless the study already keeps these very files;
        the study's space hash follows them."""
        meta = self.meta()
        sh = space_hash(files)
        if "space_files" in meta and sh == meta["space_hash"] and \
                [Path(f).resolve() for f in files] == [
                    self.folder.joinpath(*Path(r).parts).resolve()
                    for r in meta["space_files"]]:
            return
        rels, dirs = copy_sources(self.folder, files, import_paths)
        self.set_meta(space_files=rels, import_paths=dirs, space_hash=sh,
                      searched_import_paths=[str(Path(d).resolve()) for d in import_paths])

    @staticmethod
    def _changed(original: Path, stored_hash: str, log: Callable[[str], None],
                 import_paths: Sequence[str | Path]) -> bool:
        """Whether the original file (or one it imports) differs from what the study searched."""
        from .space import load

        try:
            return space_hash(load(original, import_paths).ir.files) != stored_hash
        except ArchDSLError as e:
            log(f"{original} no longer loads: {e.message}")
            return True

    def misfit(self, trial: Trial, error: ArchDSLError) -> StudyError:
        """The error for a stored trial whose configuration does not fit the study's space:
        a corrupt row if it was run on this very space, else one left by --allow-changed."""
        if trial.space_hash == self.meta()["space_hash"]:
            return StudyError(f"{self.folder / 'study.db'}: trial {trial.id} is corrupt: its "
                              f"config does not fit the space it was run on ({error.message})",
                              hint=delete_row_hint(self.folder / "study.db", trial.id))
        return StudyError(f"trial {trial.id} does not fit the study's space: {error.message}",
                          hint="the space was changed (--allow-changed) after this trial ran")

    # ---- reading -----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """The study's settings, each checked (StudyError names a missing or bad one)."""
        return checked_meta(self._query("SELECT key, value FROM meta"),
                            self.folder / "study.db", SCHEMA_VERSION)

    def set_meta(self, **items: Any) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [(k, json.dumps(v)) for k, v in items.items()])

    def trials(self, status: str | None = None) -> list[Trial]:
        sql = _SELECT + (" WHERE status = ?" if status else "") + " ORDER BY id"
        return [self._trial(r) for r in self._query(sql, (status,) if status else ())]

    def trial(self, trial_id: int) -> Trial:
        rows = self._query(_SELECT + " WHERE id = ?", (trial_id,))
        if not rows:
            raise StudyError(f"no trial {trial_id} in {self.folder}")
        return self._trial(rows[0])

    def best(self, n: int = 1) -> list[Trial]:
        rows = self._query(_SELECT + " WHERE status = 'ok' ORDER BY objective DESC, id LIMIT ?",
                           (n,))
        return [self._trial(r) for r in rows]

    def counts(self) -> dict[str, int]:
        return {printable(str(k), False): n for k, n in
                self._query("SELECT status, COUNT(*) FROM trials GROUP BY status")}

    # ---- writing -----------------------------------------------------------------------
    def start(self, config: dict[str, Any], arch_hash: str, space_hash: str,
              searcher: str) -> int:
        """A new `running` trial; returns its id."""
        cur = self._write("INSERT INTO trials (config, arch_hash, space_hash, status, started, "
                          "searcher) VALUES (?, ?, ?, 'running', ?, ?)",
                          [(json.dumps(config, sort_keys=True), arch_hash, space_hash,
                            time.time(), searcher)])
        return int(cur.lastrowid)

    def finish(self, trial_id: int, objective: float | None, metrics: dict[str, Any],
               error: str | None, duration: float, status: str | None = None) -> None:
        """The trial's end: `status` (`stopped`, `paused`...), by default `ok`, or `failed`
        when there is an `error`."""
        if status is None:
            status = "ok" if error is None else "failed"
        check_status(status)
        self._write("UPDATE trials SET status = ?, objective = ?, metrics = ?, error = ?, "
                    "duration = ? WHERE id = ?",
                    [(status, objective, json.dumps(metrics, default=str), error, duration,
                      trial_id)])

    def mark_interrupted(self, ids: list[int] | None = None) -> int:
        """Mark running trials (all, or those listed) as interrupted; returns how many."""
        if ids is None:
            cur = self._write("UPDATE trials SET status = 'interrupted' "
                              "WHERE status = 'running'", [()])
        else:
            cur = self._write("UPDATE trials SET status = 'interrupted' WHERE id = ? "
                              "AND status = 'running'", [(i,) for i in ids])
        return cur.rowcount

    # ---- plumbing ----------------------------------------------------------------------
    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            raise self._error(e) from None

    def _write(self, sql: str, rows: list[tuple]) -> sqlite3.Cursor:
        try:
            with self.db:
                if len(rows) == 1:
                    return self.db.execute(sql, rows[0])
                return self.db.executemany(sql, rows)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            raise self._error(e) from None

    def _error(self, e: sqlite3.DatabaseError | UnicodeDecodeError) -> StudyError:
        return db_error(self.folder / "study.db", e)

    def _trial(self, r: tuple) -> Trial:
        """A row as a Trial, every field checked: StudyError naming the trial and the fault."""
        return Trial(**checked_row(r, _COLUMNS, self.folder / "study.db"))


# ---- helpers -------------------------------------------------------------------------------
def _remove(paths: list[Path]) -> None:
    """Remove what a study's creation made: files, its copy of the space, empty folders."""
    for p in paths:
        try:
            if p.is_dir() and not p.is_symlink():
                if p.name == SPACE_DIR:
                    shutil.rmtree(p)
                else:
                    p.rmdir()  # only when empty
            else:
                p.unlink(missing_ok=True)
        except OSError:
            pass


def _db_files(folder: Path) -> list[Path]:
    return [folder / n for n in ("study.db", "study.db-wal", "study.db-shm")]


def _refuse_existing(folder: Path) -> None:
    if (folder / "study.db").exists():
        raise _holds_a_study(folder)


def _holds_a_study(folder: Path) -> StudyError:
    return StudyError(f"{folder} already holds a study",
                      hint="add --resume to continue it, or choose another --study")


def _take_lock(folder: Path) -> int:
    """The folder's lock, held until the descriptor is closed; StudyError if another search
    holds it."""
    path = folder / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise os_error("create the lock file", path, e) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 64).decode(errors="replace").strip()
        os.close(fd)
        raise StudyError(f"{folder} is in use by another search"
                         + (f" (process {other})" if other.isdigit() else ""),
                         hint="wait for it to end, or use another --study") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
    except OSError as e:
        os.close(fd)
        raise os_error("write the lock file", path, e) from None
    return fd
