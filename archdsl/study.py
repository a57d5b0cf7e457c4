"""A study: every trial of a search, kept in SQLite in a study folder.

    DIR/study.db    trials (configuration, status, objective, metrics, error, duration, hashes)
                    and the study's settings; one row is written and committed as each trial
                    starts and ends, so a killed search loses nothing that finished
    DIR/space/      a copy of the .arch file searched and of every file it imports (see
                    study_sources); `export`, `status` and `--resume` read the copy
    DIR/.lock       held while a search runs (a second search on the folder is refused)

A trial is `running` while it is evaluated, then `ok` or `failed`. A `running` row left by
a search that was killed is marked `interrupted` when the study is opened again; its
configuration is evaluated again (as a new trial) by a resumed search.

A study folder is untrusted: `Study.open` checks the database (tables, columns, every row's
JSON and types) and every fault is one StudyError naming the trial or the cause.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, StudyError
from .study_sources import (
    SPACE_DIR,
    checked_copies,
    checked_original,
    copy_sources,
    os_error,
    space_hash,
)

__all__ = ["Study", "Trial", "space_hash", "printable", "SCHEMA_VERSION", "STATUSES"]

SCHEMA_VERSION = 1
STATUSES = ("running", "ok", "failed", "interrupted")

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
"""
_COLUMNS = ("id", "config", "arch_hash", "space_hash", "status", "objective", "metrics",
            "error", "started", "duration", "searcher")
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM trials"
_CORRUPT = "the database may be corrupt: move it away and start a new study"

_NUMBER = (int, float)
# the settings a study stores: their types, and which a study must have
_META: dict[str, tuple[type, ...]] = {
    "schema": (int,), "space_file": (str,), "space_hash": (str,), "searcher": (str,),
    "evaluator": (str,), "seed": (int,), "created": _NUMBER, "budget": (int, type(None)),
    "trial_timeout": (*_NUMBER, type(None)), "space_files": (list,),
}
# what `module:function` evaluators may be called: Python names, no paths
_EVALUATOR_NAME = re.compile(r"[A-Za-z_]\w*|[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", re.ASCII)
_REQUIRED = ("space_file", "space_hash", "searcher", "evaluator", "seed")


@dataclass
class Trial:
    id: int
    config: dict[str, Any]
    arch_hash: str
    space_hash: str
    status: str  # running, ok, failed, interrupted
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


class Study:
    """The trials of one search, in `folder/study.db`. Open with `Study.open` or `create`."""

    def __init__(self, folder: Path, db: sqlite3.Connection):
        self.folder = folder
        self.db = db
        self._lock: int | None = None
        self._made: list[Path] = []  # what `create` made, for `discard`

    # ---- opening -----------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, meta: dict[str, Any],
               sources: list[str] | None = None) -> Study:
        """A new study in `folder` (made if missing; it must not hold a study already),
        holding the folder's lock; `sources` (the searched .arch file, then its imports) are
        copied into folder/space."""
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
                extra["space_files"] = copy_sources(folder, sources)
            study = cls._connect(folder, create=True)
            study._lock, study._made = fd, made
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
            db.text_factory = _text
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            if create:
                db.executescript(_SCHEMA)
            db.isolation_level = "DEFERRED"
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            if db is not None:
                db.close()
            raise _db_error(path, e) from None
        return cls(folder, db)

    def _check(self) -> None:
        """Tables, columns, pages, settings and every row as a study's (StudyError if not)."""
        path = self.folder / "study.db"
        for table, wanted in (("meta", ("key", "value")), ("trials", _COLUMNS)):
            have = {r[1] for r in self._query(f"PRAGMA table_info({table})")}
            if not have:
                raise StudyError(f"{path} is not a study database: it has no '{table}' table",
                                 hint=_CORRUPT)
            missing = [c for c in wanted if c not in have]
            if missing:
                raise StudyError(f"{path} is not a study database: its '{table}' table has "
                                 f"no column {', '.join(repr(c) for c in missing)}",
                                 hint=_CORRUPT)
        problems = [r[0] for r in self._query("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise StudyError(f"{path} is corrupt: {printable(str(problems[0]))}", hint=_CORRUPT)
        self.meta()
        self.trials()

    def lock(self) -> None:
        """Hold the study for one search; StudyError if another search holds it."""
        if self._lock is None:
            self._lock = _take_lock(self.folder)

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def discard(self) -> None:
        """Close a study made by `create` in this process and remove what it made (its
        database, its copy of the space, its lock, and the folders it created if empty)."""
        self.close()
        _remove(self._made)
        self._made = []

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
                     log: Callable[[str], None]) -> Path:
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
        if not _EVALUATOR_NAME.fullmatch(evaluator):
            raise StudyError(f"the study in {self.folder} does not look like its own: its "
                             f"evaluator '{printable(evaluator)}' is not an evaluator's name",
                             hint="evaluators: digits, nb201, or module:function (Python "
                                  "names only)")
        original = checked_original(self.folder, stored)
        copy = None if "space_files" not in meta else \
            checked_copies(self.folder, meta["space_files"], meta["space_hash"])[0]
        if original is None and copy is None:
            raise StudyError(f"the study in {self.folder} searched {stored}, which is gone "
                             "(the study keeps no copy of it)")
        path = copy
        if original is not None and self._changed(original, meta["space_hash"], log):
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
            + f", evaluator {printable(meta['evaluator'])}"
            + (" (this imports and runs that Python function)"
               if ":" in meta["evaluator"] else ""))
        return path

    def keep_sources(self, files: list[str]) -> None:
        """Keep a copy of the space's `files` (the searched file first) in DIR/space, unless
        the study already keeps these very files; the study's space hash follows them."""
        meta = self.meta()
        sh = space_hash(files)
        if "space_files" in meta and sh == meta["space_hash"] and \
                [Path(f).resolve() for f in files] == [
                    self.folder.joinpath(*Path(r).parts).resolve()
                    for r in meta["space_files"]]:
            return
        self.set_meta(space_files=copy_sources(self.folder, files), space_hash=sh)

    @staticmethod
    def _changed(original: Path, stored_hash: str, log: Callable[[str], None]) -> bool:
        """Whether the original file (or one it imports) differs from what the study searched."""
        from .space import load

        try:
            return space_hash(load(original).ir.files) != stored_hash
        except ArchDSLError as e:
            log(f"{original} no longer loads: {e.message}")
            return True

    def misfit(self, trial: Trial, error: ArchDSLError) -> StudyError:
        """The error for a stored trial whose configuration does not fit the study's space:
        a corrupt row if it was run on this very space, else one left by --allow-changed."""
        if trial.space_hash == self.meta()["space_hash"]:
            return StudyError(f"{self.folder / 'study.db'}: trial {trial.id} is corrupt: its "
                              f"config does not fit the space it was run on ({error.message})",
                              hint=_delete_row(self.folder, trial.id))
        return StudyError(f"trial {trial.id} does not fit the study's space: {error.message}",
                          hint="the space was changed (--allow-changed) after this trial ran")

    # ---- reading -----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """The study's settings, each checked (StudyError names a missing or bad one)."""
        path = self.folder / "study.db"
        out: dict[str, Any] = {}
        for key, value in self._query("SELECT key, value FROM meta"):
            if not isinstance(key, str):
                raise StudyError(f"{path}: a setting's name is not text", hint=_CORRUPT)
            out[key] = _json(value, lambda why, k=key: StudyError(
                f"{path}: the setting '{printable(k)}' is corrupt: {why}", hint=_CORRUPT))
        if out.get("schema") != SCHEMA_VERSION:
            raise StudyError(f"{path}: not a study of this archdsl version"
                             + ("" if "schema" in out else " (no schema setting)"))
        for key in _REQUIRED:
            if key not in out:
                raise StudyError(f"{path}: the study has no {key!r} setting", hint=_CORRUPT)
        for key, types in _META.items():
            v = out.get(key)
            if key in out and (not isinstance(v, types) or isinstance(v, bool)):
                raise StudyError(f"{path}: the setting {key!r} is corrupt: "
                                 f"{_kind(v)}, not {' or '.join(_TYPE_NAMES[t] for t in types)}",
                                 hint=_CORRUPT)
        return out

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
        return {printable(str(k)): n for k, n in
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
               error: str | None, duration: float) -> None:
        status = "ok" if error is None else "failed"
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
        return _db_error(self.folder / "study.db", e)

    def _trial(self, r: tuple) -> Trial:
        """A row as a Trial, every field checked: StudyError naming the trial and the fault."""
        tid = r[0]

        def bad(why: str) -> StudyError:
            if not isinstance(tid, int) or isinstance(tid, bool):
                return StudyError(f"{self.folder / 'study.db'}: a trial's id is {_kind(tid)}",
                                  hint=_CORRUPT)
            return StudyError(f"{self.folder / 'study.db'}: trial {tid} is corrupt: {why}",
                              hint=_delete_row(self.folder, tid))

        if not isinstance(tid, int) or isinstance(tid, bool):
            raise bad("")
        config = _json(r[1], lambda why: bad(f"its config {why}"))
        metrics = _json(r[6], lambda why: bad(f"its metrics {why}"))
        for name, value in (("config", config), ("metrics", metrics)):
            if not isinstance(value, dict):
                raise bad(f"its {name} is {_kind(value)}, not a JSON object")
        texts = {c: r[i] for i, c in enumerate(_COLUMNS)
                 if c in ("arch_hash", "space_hash", "status", "searcher", "error")}
        for c, v in texts.items():
            if not isinstance(v, str) and not (c == "error" and v is None):
                raise bad(f"its {c} is {_kind(v)}, not text")
        status, objective, started, duration = r[4], r[5], r[8], r[9]
        if status not in STATUSES:
            raise bad(f"its status is '{printable(status)}', not one of {', '.join(STATUSES)}")
        if objective is not None and not _finite(objective):
            raise bad(f"its objective is {_kind(objective)}, not a number")
        if status == "ok" and objective is None:
            raise bad("it succeeded but has no objective")
        if not _finite(started):
            raise bad(f"its start time is {_kind(started)}, not a number")
        if duration is not None and not _finite(duration):
            raise bad(f"its duration is {_kind(duration)}, not a number")
        return Trial(id=tid, config=config, arch_hash=r[2], space_hash=r[3], status=status,
                     objective=None if objective is None else float(objective),
                     metrics=metrics, error=r[7], started=float(started),
                     duration=None if duration is None else float(duration), searcher=r[10])


# ---- helpers -------------------------------------------------------------------------------
class _Undecodable(bytes):
    """TEXT in the database that is not UTF-8."""


def _text(data: bytes) -> str | _Undecodable:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _Undecodable(data)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "text", list: "a list",
               type(None): "null"}


def _kind(v: Any) -> str:
    """What a stored value is, for a message (never the value itself if it is long)."""
    if isinstance(v, _Undecodable):
        return "text that is not UTF-8"
    if isinstance(v, bytes):
        return "binary data (a blob)"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"{str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"the number {v!r}"
    if isinstance(v, str):
        return f"the text '{printable(v[:40])}'" + ("..." if len(v) > 40 else "")
    if isinstance(v, list):
        return "a JSON list"
    return f"a JSON {type(v).__name__}"


def _json(value: Any, bad: Callable[[str], StudyError]) -> Any:
    if isinstance(value, _Undecodable):
        raise bad("is text that is not UTF-8")
    if not isinstance(value, str):
        raise bad(f"is {_kind(value)}, not JSON text")
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise bad(f"is not valid JSON ({e.msg} at character {e.pos})") from None
    except RecursionError:
        raise bad("is JSON nested too deeply") from None


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def printable(s: str) -> str:
    """Stored text made safe to print: control characters (terminal escapes) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


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


def _delete_row(folder: Path, trial_id: int) -> str:
    return (f"delete that row (sqlite3 {folder / 'study.db'} \"DELETE FROM trials WHERE id = "
            f"{trial_id}\"), or move the database away and start a new study")


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


def _db_error(path: Path, e: sqlite3.DatabaseError | UnicodeDecodeError) -> StudyError:
    """A database error as one message: a full disk, a lock, a damaged file each say so."""
    if isinstance(e, UnicodeDecodeError):  # SQLite's own message about a damaged schema
        return StudyError(f"{path} is corrupt or not a study database (text that is not "
                          "UTF-8 where SQLite keeps its tables)", hint=_CORRUPT)
    code = getattr(e, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(e)
    if primary == sqlite3.SQLITE_FULL or "disk is full" in text or _disk_full(path):
        return StudyError(f"cannot write {path}: the disk is full",
                          hint="free some space, then continue with `archdsl search --study "
                               f"{path.parent} --resume`")
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
        return StudyError(f"{path} is locked by another program",
                          hint="wait for it to finish, or use another --study")
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StudyError(f"{path} is corrupt or not a study database ({text})", hint=_CORRUPT)
    if primary == sqlite3.SQLITE_READONLY:
        return StudyError(f"cannot write {path}: it is read-only ({text})")
    if primary == sqlite3.SQLITE_IOERR:
        return StudyError(f"{path}: the disk could not be read or written ({text})")
    if primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
        return StudyError(f"{path}: cannot open the study database ({text})")
    if "no such table" in text or "no such column" in text:
        return StudyError(f"{path} is not a study database ({text})", hint=_CORRUPT)
    return StudyError(f"{path}: {printable(text)}")


def _disk_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < 4096
    except OSError:
        return False
