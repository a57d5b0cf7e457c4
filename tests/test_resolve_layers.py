"""The resolver's stages stay stages (issue 12, item 1): each module of archdsl/resolve/ imports
only the modules listed above it in the package's docstring and never what runs it
(archdsl.semantics) or comes after it (the interpreter); name resolution raises no error of its
own (every check is in .checks); no module or class grows past the sizes the issue sets; and
archdsl.semantics still exports what the rest of archdsl imports from it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import archdsl.resolve
import archdsl.semantics

PACKAGE = Path(archdsl.resolve.__file__).parent
CORE = [PACKAGE.parent / "semantics.py", PACKAGE.parent / "shared_names.py"]


def _order() -> list[str]:
    """The modules, in the order the package's docstring lists them."""
    return re.findall(r"^    (\w+) {2,}", archdsl.resolve.__doc__ or "", re.M)


def _imports(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(modules of this package, modules of archdsl) imported at the top of a module."""
    siblings: set[str] = set()
    core: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            siblings.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            siblings.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 2:
            core.update([node.module.split(".")[0]] if node.module else
                        [a.name for a in node.names])
    return siblings, core


def test_each_module_is_listed_and_imports_only_earlier_stages_and_nothing_after() -> None:
    order = _order()
    assert sorted(order) == sorted(p.stem for p in PACKAGE.glob("[!_]*.py"))
    wrong = {}
    for i, name in enumerate(order):
        siblings, core = _imports(ast.parse((PACKAGE / f"{name}.py").read_text()))
        bad = (siblings - set(order[:i])) | (core & {"semantics", "interp", "analysis", "space"})
        if bad:
            wrong[name] = sorted(bad)
    assert not wrong, f"imports that break the order of the stages: {wrong}"


def test_name_resolution_raises_only_what_the_checks_make() -> None:
    tree = ast.parse((PACKAGE / "names.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            call = node.exc
            assert (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and isinstance(call.func.value, ast.Name) and call.func.value.id == "C"), (
                f"names.py:{node.lineno} raises an error of its own")


def test_each_module_states_its_job_and_imports() -> None:
    for path in [*PACKAGE.glob("*.py"), *CORE]:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert "May import" in doc or "imports only" in doc, path.name


def _too_large(path: Path) -> list[str]:
    text = path.read_text()
    found = [f"{path.name}: {text.count(chr(10))} lines"] if text.count("\n") > 600 else []
    return found + [f"{path.name}: class {c.name}, {(c.end_lineno or 0) - c.lineno + 1} lines"
                    for c in ast.walk(ast.parse(text)) if isinstance(c, ast.ClassDef)
                    and (c.end_lineno or 0) - c.lineno + 1 > 400]


def test_no_module_over_600_lines_and_no_class_over_400() -> None:
    assert [x for p in [*PACKAGE.glob("*.py"), *CORE] for x in _too_large(p)] == []


def test_semantics_exports_what_archdsl_imports_from_it() -> None:
    for name in ("SpaceIR", "resolve_file", "resolve_text", "MAX_IMPORTS", "block_arity",
                 "net_arity"):
        assert name in archdsl.semantics.__all__ and hasattr(archdsl.semantics, name), name
