"""How a stored study is checked: its settings and trial rows as they come out of SQLite
(every field's type, JSON and UTF-8), and SQLite's errors as one clear message each.

Every fault is a StudyError that names the setting or the trial, and what is wrong with it.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import StudyError, printable

__all__ = ["STATUSES", "check_status", "CORRUPT", "EVALUATOR_NAME", "checked_meta", "checked_row", "db_error",
           "delete_row_hint", "text_factory"]

STATUSES = ("running", "ok", "failed", "interrupted", "paused", "stopped")
CORRUPT = "the database may be corrupt: move it away and start a new study"

_NUMBER = (int, float)
# the settings a study stores: their types, and which a study must have
_META: dict[str, tuple[type, ...]] = {
    "schema": (int,), "space_file": (str,), "space_hash": (str,), "searcher": (str,),
    "evaluator": (str,), "seed": (int,), "created": _NUMBER, "budget": (int, type(None)),
    "trial_timeout": (*_NUMBER, type(None)), "space_files": (list,),
    "import_paths": (list,), "searched_import_paths": (list,),
    # training and early stopping (issue 13); older studies have none of them
    "scheduler": (str,), "min_epochs": (int,), "reduction_factor": (int,),
    "max_epochs": (int, type(None)), "epoch_budget": (int, type(None)), "device": (str,),
    "data": (str, type(None)),
    # several objectives (issue 15): ["maximize:accuracy", "minimize:params"]
    "objectives": (list,),
    # the --ops modules it was searched with (issue 16)
    "ops": (list,),
}
# the settings that, when set, must be positive (and finite): what each must be
_POSITIVE = {"budget": "a number of trials of at least 1",
             "trial_timeout": "a positive number of seconds"}
# the whole-number settings that, when set, have a least value
_AT_LEAST = {"min_epochs": 1, "reduction_factor": 2, "max_epochs": 1, "epoch_budget": 1}
# what `module:function` evaluators may be called: Python names, no paths
EVALUATOR_NAME = re.compile(r"[A-Za-z_]\w*|[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*"
                            r"|supernet:[^\x00-\x1f\x7f]+", re.ASCII)  # + a checkpoint's path
_REQUIRED = ("space_file", "space_hash", "searcher", "evaluator", "seed")


def check_status(status: str) -> None:
    """ValueError (a caller's mistake, not a stored fault) unless `status` is a known one."""
    if status not in STATUSES:
        raise ValueError(f"a trial's status is one of {', '.join(STATUSES)}, not {status!r}")


def checked_meta(rows: list[tuple], path: Path, schema: int) -> dict[str, Any]:
    """The settings from the meta table's rows, each checked against `_META`."""
    out: dict[str, Any] = {}
    for key, value in rows:
        if not isinstance(key, str):
            raise StudyError(f"{path}: a setting's name is not text", hint=CORRUPT)
        out[key] = json_value(value, lambda why, k=key: StudyError(
            f"{path}: the setting '{printable(k, False)}' is corrupt: {why}", hint=CORRUPT))
    if out.get("schema") != schema:
        raise StudyError(f"{path}: not a study of this archdsl version"
                         + ("" if "schema" in out else " (no schema setting)"))
    for key in _REQUIRED:
        if key not in out:
            raise StudyError(f"{path}: the study has no {key!r} setting", hint=CORRUPT)
    for key, types in _META.items():
        v = out.get(key)
        if key in out and (not isinstance(v, types) or isinstance(v, bool)):
            raise StudyError(f"{path}: the setting {key!r} is corrupt: "
                             f"{kind(v)}, not {' or '.join(_TYPE_NAMES[t] for t in types)}",
                             hint=CORRUPT)
    if "objectives" in out:
        from .errors import ArchDSLError
        from .objectives import parse_objectives

        try:
            if not all(isinstance(o, str) for o in out["objectives"]):
                raise ArchDSLError("not all text")
            parse_objectives(out["objectives"])
        except ArchDSLError as e:
            raise StudyError(f"{path}: the setting 'objectives' is corrupt: "
                             f"{printable(e.message, False)}", hint=CORRUPT) from None
    for key, why in _POSITIVE.items():
        v = out.get(key)
        if v is not None and not (finite(v) and v > 0):
            raise StudyError(f"{path}: the setting {key!r} is corrupt: {kind(v)}, not {why}",
                             hint=CORRUPT)
    for key, least in _AT_LEAST.items():
        v = out.get(key)
        if v is not None and v < least:
            raise StudyError(f"{path}: the setting {key!r} is corrupt: {kind(v)}, not a whole "
                             f"number of at least {least}", hint=CORRUPT)
    return out


def checked_row(r: tuple, columns: tuple[str, ...], path: Path) -> dict[str, Any]:
    """A trial row (values in the order of `columns`) as the fields of a Trial, every one
    checked: StudyError naming the trial and the fault."""
    row = dict(zip(columns, r, strict=True))
    tid = row["id"]
    if not isinstance(tid, int) or isinstance(tid, bool):
        raise StudyError(f"{path}: a trial's id is {kind(tid)}", hint=CORRUPT)

    def bad(why: str) -> StudyError:
        return StudyError(f"{path}: trial {tid} is corrupt: {why}",
                          hint=delete_row_hint(path, tid))

    for name in ("config", "metrics"):
        row[name] = json_value(row[name], lambda why, n=name: bad(f"its {n} {why}"))
        if not isinstance(row[name], dict):
            raise bad(f"its {name} is {kind(row[name])}, not a JSON object")
    for c in ("arch_hash", "space_hash", "status", "searcher", "error"):
        if not isinstance(row[c], str) and not (c == "error" and row[c] is None):
            raise bad(f"its {c} is {kind(row[c])}, not text")
    status, objective = row["status"], row["objective"]
    if status not in STATUSES:
        raise bad(f"its status is '{printable(status, False)}', not one of {', '.join(STATUSES)}")
    if objective is not None and not finite(objective):
        raise bad(f"its objective is {kind(objective)}, not a number")
    if status == "ok" and objective is None:
        raise bad("it succeeded but has no objective")
    for c, what in (("started", "start time"), ("duration", "duration")):
        if not finite(row[c]) and not (c == "duration" and row[c] is None):
            raise bad(f"its {what} is {kind(row[c])}, not a number")
        if row[c] is not None:
            row[c] = float(row[c])
    if objective is not None:
        row["objective"] = float(objective)
    return row


class _Undecodable(bytes):
    """TEXT in the database that is not UTF-8."""


def text_factory(data: bytes) -> str | _Undecodable:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _Undecodable(data)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "text", list: "a list",
               type(None): "null"}


def kind(v: Any) -> str:
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
        return f"the text '{printable(v[:40], False)}'" + ("..." if len(v) > 40 else "")
    if isinstance(v, list):
        return "a JSON list"
    return f"a JSON {type(v).__name__}"


def json_value(value: Any, bad: Callable[[str], StudyError]) -> Any:
    if isinstance(value, _Undecodable):
        raise bad("is text that is not UTF-8")
    if not isinstance(value, str):
        raise bad(f"is {kind(value)}, not JSON text")
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise bad(f"is not valid JSON ({e.msg} at character {e.pos})") from None
    except RecursionError:
        raise bad("is JSON nested too deeply") from None


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def delete_row_hint(path: Path, trial_id: int) -> str:
    return (f"delete that row (sqlite3 {path} \"DELETE FROM trials WHERE id = "
            f"{trial_id}\"), or move the database away and start a new study")


def db_error(path: Path, e: sqlite3.DatabaseError | UnicodeDecodeError) -> StudyError:
    """A database error as one message: a full disk, a lock, a damaged file each say so."""
    if isinstance(e, UnicodeDecodeError):  # SQLite's own message about a damaged schema
        return StudyError(f"{path} is corrupt or not a study database (text that is not "
                          "UTF-8 where SQLite keeps its tables)", hint=CORRUPT)
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
        return StudyError(f"{path} is corrupt or not a study database ({text})", hint=CORRUPT)
    if primary == sqlite3.SQLITE_READONLY:
        return StudyError(f"cannot write {path}: it is read-only ({text})")
    if primary == sqlite3.SQLITE_IOERR:
        return StudyError(f"{path}: the disk could not be read or written ({text})")
    if primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
        return StudyError(f"{path}: cannot open the study database ({text})")
    if "no such table" in text or "no such column" in text:
        return StudyError(f"{path} is not a study database ({text})", hint=CORRUPT)
    return StudyError(f"{path}: {printable(text, False)}")


def _disk_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < 4096
    except OSError:
        return False
