"""The copy of a space's `.arch` sources that a study keeps, and the checks that a study folder
names only its own files.

A study folder is untrusted input (it may come from someone else). What it stores about its
space is checked before anything is read or run:

    DIR/space/...   the .arch file searched and every file it imports, laid out as they were
                    relative to their common folder (so relative imports still resolve)

meta `space_files` lists the copies (the searched file first) as paths relative to DIR, each
of which must be a regular `.arch` file inside DIR/space (no link out of it), and together they
must hash to meta `space_hash`; meta `import_paths` lists the `--import-path` folders of the
search as they lie in the copy (folders inside DIR/space). The original file (meta `space_file`) is only compared with
the copy, and only if it is a regular `.arch` file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from .errors import StudyError

__all__ = ["SPACE_DIR", "space_hash", "copy_sources", "checked_copies", "checked_original",
           "checked_import_paths", "os_error"]

SPACE_DIR = "space"
_MAX_SOURCE_BYTES = 1 << 24  # more than any .arch file the parser accepts


def space_hash(files: list[str] | list[Path]) -> str:
    """The identity of a space's source: the bytes of the .arch file and of its imports."""
    h = hashlib.sha256()
    for i, f in enumerate(files):
        data = Path(f).read_bytes()
        h.update(f"{i}:{Path(f).name}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()[:16]


def os_error(what: str, path: Path | str, e: OSError) -> StudyError:
    """An OSError met while writing a study, as one clear message (a full disk says so)."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StudyError(f"cannot {what} {path}: the disk is full",
                          hint="free some space, then run the command again")
    return StudyError(f"cannot {what} {path}: {e.strerror or e}")


def copy_sources(folder: Path, files: list[str],
                 import_paths: Sequence[str | Path] = ()) -> tuple[list[str], list[str]]:
    """Copy `files` (the searched file first, then its imports) into folder/space, replacing
    what is there, laid out as they are relative to their common folder (and that of the
    `import_paths` folders, made in the copy too); returns the copies' paths and the import
    folders' paths in the copy, relative to `folder`."""
    paths = [Path(f).resolve() for f in files]
    dirs = [Path(d).resolve() for d in import_paths]
    root = Path(os.path.commonpath([*(p.parent for p in paths), *dirs]))
    rels = [PurePosixPath(SPACE_DIR, *p.relative_to(root).parts) for p in [*paths, *dirs]]
    fresh = folder / (SPACE_DIR + ".new")
    dest = folder / SPACE_DIR
    try:
        if fresh.exists():
            shutil.rmtree(fresh)
        fresh.mkdir()
        for p, rel in zip([*paths, *dirs], rels, strict=True):
            target = fresh.joinpath(*rel.parts[1:])
            if p in dirs:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)
        if dest.exists():
            shutil.rmtree(dest)
        fresh.rename(dest)
    except OSError as e:
        shutil.rmtree(fresh, ignore_errors=True)
        raise os_error("copy the space's files into", dest, e) from None
    return [str(r) for r in rels[:len(paths)]], [str(r) for r in rels[len(paths):]]


def checked_import_paths(folder: Path, listed: list[str]) -> list[Path]:
    """The import folders of the study's copy: each a folder inside folder/space."""
    inside = (folder / SPACE_DIR).resolve()
    out = []
    for rel in listed:
        p = PurePosixPath(rel) if isinstance(rel, str) else None
        full = folder.joinpath(*p.parts) if p is not None else folder
        if (p is None or p.is_absolute() or ".." in p.parts or p.parts[0] != SPACE_DIR
                or not _within(full, inside) or not full.is_dir()):
            raise _not_its_own(folder, f"its import folder {rel!r} is not a folder in "
                                       f"{folder / SPACE_DIR}")
        out.append(full)
    return out


def checked_copies(folder: Path, listed: object, stored_hash: str) -> list[Path]:
    """The study's copies of its sources, once each is shown to be a regular .arch file inside
    folder/space and together they hash to `stored_hash`; StudyError otherwise."""
    if (not isinstance(listed, list) or not listed
            or not all(isinstance(r, str) for r in listed)):
        raise StudyError(f"{folder / 'study.db'}: the list of the space's files "
                         "(meta 'space_files') is not a list of paths",
                         hint="the database may be corrupt: move it away and start a new study")
    inside = (folder / SPACE_DIR).resolve()
    paths = []
    for rel in listed:
        p = PurePosixPath(rel)
        full = folder.joinpath(*p.parts)
        if (p.is_absolute() or ".." in p.parts or p.parts[0] != SPACE_DIR
                or p.suffix != ".arch" or not _within(full, inside)):
            raise _not_its_own(folder, f"it names {rel!r}, which is not a .arch file in "
                                       f"{folder / SPACE_DIR}")
        problem = _not_regular(full)
        if problem:
            raise _not_its_own(folder, f"its copy {full} {problem}")
        paths.append(full)
    if space_hash(paths) != stored_hash:
        raise StudyError(f"the copy of the space in {folder / SPACE_DIR} does not match the "
                         "study: its files were changed or replaced",
                         hint="restore them, or start a new study")
    return paths


def checked_original(folder: Path, stored: str) -> Path | None:
    """The file the study searched, if it is still there; StudyError if the study names
    something that is not a regular .arch file (a device, /etc/passwd, a link to one)."""
    p = Path(stored)
    if not p.is_absolute():
        raise _not_its_own(folder, f"its space file {stored!r} is not an absolute path")
    if not p.exists() and not p.is_symlink():
        return None
    target = p.resolve()
    problem = "is not a .arch file" if target.suffix != ".arch" else _not_regular(target)
    if problem:
        raise _not_its_own(folder, f"its space file {stored} {problem}")
    return p


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def _not_regular(path: Path) -> str | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "is missing"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_size > _MAX_SOURCE_BYTES:
        return f"is {st.st_size:,} bytes, too large for a .arch file"
    return None


def _not_its_own(folder: Path, why: str) -> StudyError:
    return StudyError(f"the study in {folder} does not look like its own: {why}",
                      hint="a study folder may come from anyone: archdsl reads only the "
                           ".arch files it copied into the folder")
