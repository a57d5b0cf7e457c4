"""This archdsl's version: the installed package's (its metadata), or the source tree's when it
is not installed. The command line's `--version` and the Dask workers' check use it.

Imports archdsl's package only (its __version__).
"""

from __future__ import annotations

import functools
import importlib.metadata

__all__ = ["installed_version"]


@functools.cache  # what runs in this process does not change when pip does
def installed_version() -> str:
    """The installed package's version, or the source tree's."""
    try:
        return importlib.metadata.version("archdsl")
    except importlib.metadata.PackageNotFoundError:
        from . import __version__

        return __version__
