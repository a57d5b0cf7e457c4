"""The interpreter's stages stay stages (issue 12, item 1): each module of archdsl/interp/
imports only the modules listed above it in the package's docstring (imports for type hints
aside), and no module or class grows past the sizes the issue sets."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import archdsl.interp

PACKAGE = Path(archdsl.interp.__file__).parent


def _order() -> list[str]:
    """The modules, in the order the package's docstring lists them."""
    return re.findall(r"^    (\w+) {2,}", archdsl.interp.__doc__ or "", re.M)


def _siblings_imported(tree: ast.Module) -> set[str]:
    """Modules of the package imported at run time (not under `if TYPE_CHECKING:`)."""
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_the_docstring_lists_every_module() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert sorted(_order()) == sorted(modules)


def test_each_module_imports_only_earlier_stages() -> None:
    order = _order()
    for i, name in enumerate(order):
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        later = _siblings_imported(tree) - set(order[:i])
        assert not later, f"{name} imports {sorted(later)}, listed after it"


def test_no_module_or_class_is_too_large() -> None:
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        assert text.count("\n") <= 600, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                assert size <= 400, f"{path.name}: class {node.name} has {size} lines"
