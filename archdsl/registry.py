"""Extension points by name: a table of `name -> "module:Class"` in a package, each class
imported when first used (searchers, schedulers)."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ArchDSLError, did_you_mean

__all__ = ["named_class"]


def named_class(table: dict[str, str], name: str, package: str, what: str) -> Any:
    """The class `table` names `name` in `package`; ArchDSLError naming the unknown `what`
    (searcher, scheduler) with a did-you-mean, else the list of known names."""
    if name not in table:
        raise ArchDSLError(f"unknown {what} '{name}'",
                           hint=did_you_mean(name, table) or f"{what}s: " + ", ".join(table))
    module, cls = table[name].split(":")
    return getattr(importlib.import_module(f"{package}.{module}"), cls)
