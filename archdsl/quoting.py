"""Quoting: the one way text from a .arch file (or its file name) enters generated source.

Generated Python (`archdsl compile -o model.py`, a study's `best.py`) and generated .arch text
(`archdsl fix`) take names and strings from files that may come from anyone. Everything such text
reaches goes through one of these functions, so a file name or an identifier can never end a
string, a docstring or a comment early, or make a name that is not a working identifier:

- `escape_text(s)`: s with backslashes, quotes and every non-printable character (line breaks,
  NUL, unpaired surrogates from undecodable file names) written as escapes; safe inside a Python
  or .arch string, a docstring and a comment, and on one line;
- `py_literal(v)`: a Python expression for a JSON-like value (inf and nan included);
- `py_identifier(name, taken)`: a usable Python identifier for a name, clashing with no keyword,
  no builtin and no name in `taken`.
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
from collections.abc import Collection
from typing import Any

__all__ = ["escape_text", "py_literal", "py_identifier", "PY_RESERVED"]

_QUOTES = {"\\": "\\\\", '"': '\\"', "'": "\\'"}

# the names generated Python uses itself, which a layer or input name must not shadow
PY_RESERVED = frozenset({*keyword.kwlist, *keyword.softkwlist, *dir(builtins), "self", "torch",
                         "nn", "F"})


def escape_text(text: str) -> str:
    """`text` with `\\`, quotes and every non-printable character escaped (Python's escapes,
    which .arch strings read too): printable, one line, and inert in any string or comment."""
    if text.isprintable() and not any(c in text for c in _QUOTES):
        return text
    out = []
    for c in text:
        if c in _QUOTES:
            out.append(_QUOTES[c])
        elif c.isprintable():
            out.append(c)
        else:
            out.append(repr(c)[1:-1])  # \n, \x00, \u2028, \udcff ...
    return "".join(out)


def py_literal(v: Any) -> str:
    """A Python expression that evaluates to v: None, bools, ints, floats (inf and nan too),
    strings, and lists, tuples and dicts of them. A symbol (`same`) becomes its name as a string;
    anything else is refused with TypeError."""
    if v is None or isinstance(v, bool | int):
        return repr(v)
    if isinstance(v, float):
        if math.isfinite(v):
            return repr(v)
        return f"float({str(v)!r})"
    if isinstance(v, str):
        return repr(v)  # repr of a str is always a valid, inert literal
    if isinstance(v, list):
        return "[" + ", ".join(py_literal(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + "".join(py_literal(x) + ", " for x in v) + ")"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(x)}" for k, x in v.items()) + "}"
    name = getattr(v, "name", None)
    if type(v).__name__ == "Sym" and isinstance(name, str):
        return repr(name)
    raise TypeError(f"no Python literal for {v!r}")


def py_identifier(name: str, taken: Collection[str] = ()) -> str:
    """`name` if it is an ASCII identifier that is no keyword, builtin or reserved name, does
    not start with `__` and is not in `taken`; otherwise the nearest such name (other characters
    replaced by `_`, then `_`, `_2`, `_3` ... appended: `class` -> `class_`)."""
    base = re.sub(r"\W", "_", name, flags=re.ASCII) or "v"
    if base[0].isdigit() or base.startswith("__") or base == "_":
        base = "v" + base
    out, k = base, 1
    while out in PY_RESERVED or out in taken:
        k += 1
        out = f"{base}_" if k == 2 else f"{base}_{k - 1}"
    return out
