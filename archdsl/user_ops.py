"""The user's operation modules: which Python modules register operations (`--ops MODULE` on
the command line, `[tool.archdsl] ops = [...]` in the working folder's pyproject.toml), and
importing them before a space is loaded, in the search's process and in each of its workers.
A .arch file never names Python code: only the user does, here. A study keeps the modules it
was searched with; resuming it imports them only when the user names them again.

May import: errors, layers, sources, study (for its settings); the standard library.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import re
import shlex
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, StudyError, did_you_mean, printable
from .layers import LAYERS
from .sources import read_regular

__all__ = ["add_ops_option", "project_ops", "requested", "import_ops", "check_resumed_ops",
           "refuse_inside", "stored_ops", "import_study_ops", "PYPROJECT", "MODULE_NAME"]

PYPROJECT = "pyproject.toml"  # read in the working folder only, never in a parent
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)
_MAX_PYPROJECT = 1_000_000
_HINT = ("operations modules are named with --ops MODULE or in the working folder's "
         "pyproject.toml ([tool.archdsl] ops = [\"MODULE\"]); docs/backend.md, your own "
         "operations")
# what each module imported here registered (a module already imported is not run again)
_REGISTERED: dict[str, tuple[str, ...]] = {}


def add_ops_option(parser: Any) -> None:
    """`--ops MODULE` (repeatable) on a CLI command that loads a .arch file; the command
    passes `requested(args.ops)` to `import_ops` before loading."""
    parser.add_argument("--ops", action="append", default=[], metavar="MODULE",
                        help="a Python module that registers operations (register_op), "
                        "imported from the working folder or the Python path before the "
                        "space is loaded; may be given several times (also: [tool.archdsl] "
                        "ops in ./pyproject.toml)")


def project_ops(folder: str | Path | None = None) -> list[str]:
    """The modules `[tool.archdsl] ops` names in `folder`'s pyproject.toml (default: the
    working folder's; parents are not searched); [] without that file or table. A file that
    never mentions archdsl is not parsed, so an unrelated broken one is no error."""
    path = Path.cwd() / PYPROJECT if folder is None else Path(folder) / PYPROJECT
    if not path.is_file():
        return []
    data = read_regular(str(path), _MAX_PYPROJECT, ArchDSLError, "pyproject.toml",
                        "a TOML file")
    if b"archdsl" not in data:
        return []
    shown = PYPROJECT if folder is None else printable(str(path), False)
    try:
        table = tomllib.loads(data.decode("utf-8")).get("tool", {}).get("archdsl")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ArchDSLError(f"{shown}: cannot read its [tool.archdsl] table: {e}") from None
    if table is None:
        return []
    if not isinstance(table, dict):
        raise ArchDSLError(f"{shown}: [tool.archdsl] must be a table")
    for key in table:
        if key != "ops":
            raise ArchDSLError(f"{shown}: [tool.archdsl] has no setting '{printable(key)}'",
                               hint=did_you_mean(key, ["ops"]) or "its one setting is ops")
    ops = table.get("ops", [])
    if not isinstance(ops, list) or not all(isinstance(m, str) for m in ops):
        raise ArchDSLError(f"{shown}: [tool.archdsl] ops must be a list of module names",
                           hint='ops = ["my_ops"] imports my_ops.py from the working folder')
    for m in ops:
        _check_name(m, f"{shown}: [tool.archdsl] ops")
    return ops


def requested(given: Sequence[str] = ()) -> list[str]:
    """The modules the user names: pyproject.toml's first, then `given` (--ops), once each."""
    return list(dict.fromkeys([*project_ops(), *given]))


def _check_name(name: str, where: str = "--ops") -> None:
    if MODULE_NAME.fullmatch(name) and not name.endswith(".py"):  # x.py: a file, surely
        return
    stem = Path(name).stem if name.endswith(".py") else ""
    raise ArchDSLError(f"{where}: '{printable(name)}' is not a module name",
                       hint=f"name the module as Python imports it: --ops {stem}"
                       if MODULE_NAME.fullmatch(stem) else
                       "a module name is Python names joined by dots, such as my_ops or "
                       "pkg.ops")


def _registry() -> dict[str, int]:
    return {name: id(sig) for name, sig in LAYERS.items()}


def import_ops(modules: Sequence[str]) -> None:
    """Import each module (from the working folder or the Python path), each of which must
    register at least one operation; one clear ArchDSLError naming the first that cannot be
    imported, raises on import or registers nothing."""
    if not modules:
        return
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    for name in modules:
        _check_name(name)
        if name in sys.modules:  # imported before: by us (we know what it added) or the user
            if _REGISTERED.get(name) == ():
                raise _nothing(name)
            continue
        before = _registry()
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
                near = did_you_mean(name, [p.stem for p in Path(cwd).glob("*.py")])
                raise ArchDSLError(f"operations module '{name}': no such module in the "
                                   "working folder or on the Python path",
                                   hint=near or _HINT) from None
            raise _raised(name, e) from None
        except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's code: any failure
            raise _raised(name, e) from None
        after = _registry()
        _REGISTERED[name] = tuple(n for n, i in after.items() if before.get(n) != i)
        if not _REGISTERED[name]:
            raise _nothing(name)


def _raised(name: str, e: BaseException) -> ArchDSLError:
    return ArchDSLError(f"operations module '{name}': importing it raised "
                        f"{type(e).__name__}: {printable(str(e), False)}")


def _nothing(name: str) -> ArchDSLError:
    return ArchDSLError(f"operations module '{name}' registers no operation",
                        hint="call archdsl.backends.pytorch.register_op(...) when the module "
                             "is imported (at its top level); docs/backend.md")


def stored_ops(meta: dict[str, Any], folder: Path) -> list[str]:
    """The operations modules a study was searched with ([] for one made before they were
    kept); a StudyError if the stored setting is not a list of module names."""
    ops = meta.get("ops", [])
    if not isinstance(ops, list) or not all(isinstance(m, str) and MODULE_NAME.fullmatch(m)
                                            for m in ops):
        raise StudyError(f"{folder / 'study.db'}: the setting 'ops' is corrupt: not a list "
                         "of module names", hint="it was changed outside archdsl")
    return ops


def check_resumed_ops(folder: Path, stored: Sequence[str], given: Sequence[str],
                      doing: str = "resuming") -> None:
    """A study folder may come from anyone: the operations modules it names are Python code,
    imported (on resume, or by export: `doing`) only when the user names each of them again."""
    missing = [m for m in stored if m not in given]
    if not missing:
        return
    again = [x for m in stored for x in ("--ops", m)]
    command = (f"`{shlex.join(['archdsl', 'search', '--study', str(folder), '--resume', *again])}`"
               f" (in Python: search(..., resume=True, ops={list(stored)!r}))"
               if doing == "resuming" else f"add `{shlex.join(again)}` to the command")
    names = ", ".join(f"'{m}'" for m in missing)
    raise StudyError(f"the study in {folder} was searched with the operations of the module"
                     f"{'s' if len(missing) > 1 else ''} {names}: Python code it names, which "
                     f"{doing} would import; a study folder may come from anyone, so name "
                     "the module yourself", hint=f"if you trust it, {command}")


def refuse_inside(modules: Sequence[str], folder: Path) -> None:
    """StudyError if a module not yet imported would be imported from inside the study
    `folder` (found there through the working folder or the Python path). Nothing is run."""
    inside = folder.resolve()
    for name in modules:
        if name in sys.modules:
            continue
        top = name.split(".")[0]
        paths = [str(Path.cwd()), *sys.path]
        spec = importlib.machinery.PathFinder.find_spec(top, [p or "." for p in paths])
        places = [spec.origin] if spec is not None and spec.origin else []
        if spec is not None and spec.submodule_search_locations:
            places += list(spec.submodule_search_locations)
        for p in places:
            where = Path(p).resolve()
            if where == inside or inside in where.parents:
                raise StudyError(f"operations module '{name}' would be imported from "
                                 f"{where}, inside the study folder {folder}",
                                 hint="a study folder may come from anyone: run archdsl from "
                                      "another folder, with your own module on the path")


def import_study_ops(folder: Path, modules: Sequence[str]) -> None:
    """Import the operations modules the user names before a study's space is loaded (export):
    each module the study was searched with must be among them, and none is imported from
    inside the study folder."""
    from .study import Study  # a study's settings; study never imports this module

    with Study.open(folder) as study:
        check_resumed_ops(folder, stored_ops(study.meta(), folder), modules, "exporting")
    refuse_inside(modules, folder)
    import_ops(modules)
