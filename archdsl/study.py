"""A study: every trial of a search, kept in SQLite in a study folder.

    DIR/study.db    trials (configuration, status, objective, metrics, error, duration, hashes)
                    and the study's settings; one row is written and committed as each trial
                    starts and ends, so a killed search loses nothing that finished
    DIR/space/      a copy of the .arch file(s) searched
    DIR/.lock       held while a search runs (a second search on the folder is refused)

A trial is `running` while it is evaluated, then `ok` or `failed`. A `running` row left by
a search that was killed is marked `interrupted` when the study is opened again; its
configuration is evaluated again (as a new trial) by a resumed search.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import StudyError

__all__ = ["Study", "Trial", "space_hash", "SCHEMA_VERSION"]

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
"""


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


def space_hash(files: list[str]) -> str:
    """The identity of a space's source: the bytes of the .arch file and of its imports."""
    h = hashlib.sha256()
    for i, f in enumerate(files):
        data = Path(f).read_bytes()
        h.update(f"{i}:{Path(f).name}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()[:16]


class Study:
    """The trials of one search, in `folder/study.db`. Open with `Study.open` or `create`."""

    def __init__(self, folder: Path, db: sqlite3.Connection):
        self.folder = folder
        self.db = db
        self._lock: int | None = None

    # ---- opening -----------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, meta: dict[str, Any]) -> Study:
        """A new study in `folder` (made if missing; it must not hold a study already)."""
        folder = Path(folder)
        if (folder / "study.db").exists():
            raise StudyError(f"{folder} already holds a study",
                             hint="add --resume to continue it, or choose another --study")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StudyError(f"cannot create the study folder {folder}: "
                             f"{e.strerror or e}") from None
        study = cls._connect(folder)
        with study.db:
            study.db.executemany("INSERT INTO meta VALUES (?, ?)",
                                 [(k, json.dumps(v)) for k, v in
                                  {**meta, "schema": SCHEMA_VERSION,
                                   "created": time.time()}.items()])
        return study

    @classmethod
    def open(cls, folder: str | Path) -> Study:
        """An existing study (StudyError if `folder` holds none, or a corrupt one)."""
        folder = Path(folder)
        if not (folder / "study.db").is_file():
            raise StudyError(f"no study in {folder} (no study.db)",
                             hint="start one with `archdsl search FILE --study DIR`")
        study = cls._connect(folder)
        if study.meta().get("schema") != SCHEMA_VERSION:
            raise StudyError(f"{folder / 'study.db'}: not a study of this archdsl version")
        return study

    @classmethod
    def _connect(cls, folder: Path) -> Study:
        path = folder / "study.db"
        try:
            db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.isolation_level = "DEFERRED"
        except sqlite3.OperationalError as e:
            if "locked" in str(e):
                raise StudyError(f"{path} is locked by another program",
                                 hint="wait for it to finish, or use another --study") from None
            raise StudyError(f"{path}: cannot open the study database: {e}") from None
        except sqlite3.DatabaseError as e:
            raise StudyError(f"{path} is corrupt or not a study database ({e})",
                             hint="move it away and start a new study") from None
        return cls(folder, db)

    def lock(self) -> None:
        """Hold the study for one search; StudyError if another search holds it."""
        path = self.folder / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise StudyError(f"{self.folder} is in use by another search"
                             + (f" (process {other})" if other else ""),
                             hint="wait for it to end, or use another --study") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock = fd

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading -----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        rows = self._query("SELECT key, value FROM meta")
        return {k: json.loads(v) for k, v in rows}

    def set_meta(self, **items: Any) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [(k, json.dumps(v)) for k, v in items.items()])

    def trials(self, status: str | None = None) -> list[Trial]:
        sql = "SELECT * FROM trials" + (" WHERE status = ?" if status else "") + " ORDER BY id"
        return [_trial(r) for r in self._query(sql, (status,) if status else ())]

    def trial(self, trial_id: int) -> Trial:
        rows = self._query("SELECT * FROM trials WHERE id = ?", (trial_id,))
        if not rows:
            raise StudyError(f"no trial {trial_id} in {self.folder}")
        return _trial(rows[0])

    def best(self, n: int = 1) -> list[Trial]:
        rows = self._query("SELECT * FROM trials WHERE status = 'ok' "
                           "ORDER BY objective DESC, id LIMIT ?", (n,))
        return [_trial(r) for r in rows]

    def counts(self) -> dict[str, int]:
        return dict(self._query("SELECT status, COUNT(*) FROM trials GROUP BY status"))

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
        except sqlite3.DatabaseError as e:
            raise self._error(e) from None

    def _write(self, sql: str, rows: list[tuple]) -> sqlite3.Cursor:
        try:
            with self.db:
                if len(rows) == 1:
                    return self.db.execute(sql, rows[0])
                return self.db.executemany(sql, rows)
        except sqlite3.DatabaseError as e:
            raise self._error(e) from None

    def _error(self, e: sqlite3.DatabaseError) -> StudyError:
        path = self.folder / "study.db"
        if "locked" in str(e) or "busy" in str(e):
            return StudyError(f"{path} is locked by another program",
                              hint="wait for it to finish, or use another --study")
        return StudyError(f"{path}: {e}", hint="the database may be corrupt: move it away "
                                               "and start a new study")


def _trial(r: tuple) -> Trial:
    return Trial(id=r[0], config=json.loads(r[1]), arch_hash=r[2], space_hash=r[3],
                 status=r[4], objective=r[5], metrics=json.loads(r[6]), error=r[7],
                 started=r[8], duration=r[9], searcher=r[10])
