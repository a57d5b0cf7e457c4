"""Reading .arch files safely: what may be read (regular files, at most MAX_SOURCE_BYTES, UTF-8
text) and where an `import` may point (a relative `.arch` path inside the main file's folder or a
folder the user named with --import-path). Nothing here blocks: a FIFO or a device is refused
before it is read, and at most the size limit is ever read."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, ArchImportError, ArchLimitError, ArchSyntaxError, Span

__all__ = ["MAX_SOURCE_BYTES", "read_source", "read_regular", "decode_source", "import_roots",
           "find_import", "shows_lines", "add_import_path_option"]

MAX_SOURCE_BYTES = 1_000_000  # a .arch file larger than this is refused before parsing
SUFFIX = ".arch"
_OPEN_FLAGS = (os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0))
_CHUNK = 1 << 16


def shows_lines(file: str) -> bool:
    """Whether an error may quote lines of `file` before any of it has parsed as .arch text:
    only for text that was not read from a file or a `.arch` file judged by its real path (a
    `sh.arch` link to /etc/shadow is not one, so an error in it quotes nothing, like
    `archdsl check /etc/shadow`; imports are always a real `.arch` file)."""
    if file.startswith("<"):
        return True
    try:
        return os.path.realpath(file).endswith(SUFFIX)
    except (OSError, ValueError):  # a NUL, or a name the system will not resolve
        return False


def _describe(e: OSError) -> str:
    """An OSError as a few plain words."""
    if e.errno == errno.ELOOP:
        return "a loop of symbolic links"
    if e.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    if e.errno == errno.ENOENT:
        return "no such file"
    if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
        return "reading it would wait for more data (not a plain file)"
    return e.strerror or str(e)


def _not_regular(mode: int, noun: str = "a .arch file") -> str | None:
    """Why a file of this mode is not read as `noun`, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"is a folder, not {noun}"
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode)
            or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")
    return f"is {kind}, not {noun} (only regular files are read)"


def read_source(path: str | Path) -> str:
    """Read a .arch file as UTF-8 text: a regular file of at most MAX_SOURCE_BYTES (never more
    is read, whatever its size says), without NUL bytes. Never blocks."""
    name = str(path)
    data = read_regular(name, MAX_SOURCE_BYTES, ArchDSLError, "a .arch file", "a .arch file")
    return decode_source(data, name)


def read_regular(name: str, limit: int, error: type[ArchDSLError], what: str,
                 noun: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (never more is read); otherwise
    `error` (or ArchLimitError, for size) naming the file, `what` was being read ("the
    configuration") and the kind of file it should be (`noun`: "a configuration file").
    Never blocks: a FIFO or a device is refused before it is opened."""
    if "\0" in name:
        raise error(f"{name!r}: a file name cannot contain a NUL character")
    try:
        why = _not_regular(os.stat(name).st_mode, noun)
        if why:
            raise error(f"{name}: {why}")
        fd = os.open(name, _OPEN_FLAGS)
        try:
            why = _not_regular(os.fstat(fd).st_mode, noun)  # the file opened, not the one seen
            if why:
                raise error(f"{name}: {why}")
            data = _read_at_most(fd, limit + 1)
        finally:
            os.close(fd)
    except OSError as e:
        raise error(f"{name}: cannot read {what}: {_describe(e)}") from None
    if len(data) > limit:
        raise ArchLimitError(f"{name}: the file is larger than {limit:,} bytes, the limit for "
                             f"{what}")
    return data


def _read_at_most(fd: int, limit: int) -> bytes:
    parts, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(_CHUNK, limit - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _where(data: bytes, offset: int, file: str) -> Span:
    """The line and column of a byte offset, with no text to quote: the file is not .arch."""
    line = data.count(b"\n", 0, offset) + 1
    col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return Span(file, line, col, line, col + 1)


def decode_source(data: bytes, file: str) -> str:
    """Bytes -> text; binary or non-UTF-8 data is an error that quotes none of it."""
    off = data.find(b"\0")
    if off >= 0:
        raise ArchSyntaxError(f"binary data (a NUL byte at offset {off}), not .arch text",
                              _where(data, off, file))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArchSyntaxError(
            f"the file is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})",
            _where(data, e.start, file)) from None


def import_roots(base: Path, import_paths: Sequence[str | Path] = ()) -> list[Path]:
    """The folders imports may read from: `base` (the main file's folder) and the user's
    import paths, each with its symbolic links resolved."""
    roots = [Path(os.path.realpath(base))]
    for d in import_paths:
        name = str(d)
        try:
            if "\0" in name:
                raise ValueError
            ok = stat.S_ISDIR(os.stat(name).st_mode)
        except (OSError, ValueError):
            ok = False
        if not ok:
            raise ArchImportError(f"import path {name!r}: no such folder",
                                  hint="--import-path (import_paths=) names folders that "
                                  "imports may read .arch files from")
        roots.append(Path(os.path.realpath(name)))
    return roots


def _inside(path: str, roots: Sequence[Path]) -> bool:
    return any(path == str(r) or path.startswith(str(r).rstrip(os.sep) + os.sep)
               for r in roots)


def find_import(spec: str, importer_dir: Path, roots: Sequence[Path], span: Span) -> Path:
    """The file `import "spec"` reads: `spec` relative to the importing file's folder, then to
    each import path (roots[1:]); it must be a `.arch` regular file inside one of `roots` once
    symbolic links are resolved. An ArchImportError at `span` otherwise."""
    shown = spec if len(spec) <= 80 else spec[:60] + "..." + spec[-15:]

    def fail(why: str, hint: str | None = None) -> ArchImportError:
        return ArchImportError(f"cannot import {shown!r}: {why}", span, hint=hint)

    if "\0" in spec:
        raise fail("an import path cannot contain a NUL character")
    if os.path.isabs(spec):
        raise fail("an import path must be relative",
                   hint="imports are relative to the importing file (or an --import-path folder)")
    if not spec.endswith(SUFFIX):
        raise fail("only .arch files can be imported")
    missing = False
    for folder in [importer_dir, *roots[1:]]:
        real = os.path.realpath(folder / spec)
        if not _inside(real, roots):
            continue
        try:
            mode = os.stat(real).st_mode
        except OSError as e:
            if e.errno == errno.ENOENT or e.errno == errno.ENOTDIR:
                missing = True
                continue
            raise fail(_describe(e)) from None
        why = _not_regular(mode)
        if why:
            raise fail(why)
        if not real.endswith(SUFFIX):
            raise fail(f"it is a link to {Path(real).name!r}, not to a .arch file")
        return Path(real)
    where = "the importing file" + (" or an --import-path folder" if len(roots) > 1 else "")
    if missing:
        raise fail("no such file", hint=f"imports are relative to {where}")
    raise fail(f"it is outside the folders imports may read ({roots[0]}"
               + "".join(f", {r}" for r in roots[1:]) + ")",
               hint="an import stays inside the main file's folder; name another folder with "
                    "--import-path DIR (import_paths= in Python)")


def add_import_path_option(parser: Any) -> None:
    """`--import-path DIR` (repeatable) on a CLI command that loads a .arch file; the command
    passes `args.import_path` to `load`."""
    parser.add_argument("--import-path", action="append", default=[], metavar="DIR",
                        help="a folder that imports may also read .arch files from (besides "
                        "the file's own folder); may be given several times")
