"""Imports: read and parse the files a module imports (transitively), refuse cycles and too many
files, and build each file's table of blocks (its own and those it imports).

The blocks of an imported file are handed to a `check_blocks` callback as soon as its table is
built (before the importing file goes on), so errors come in the order the files are read.

May import: archdsl.ast, errors, parser, sources (not .names or .checks: it receives the
check as a callback).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import ast as A
from ..errors import ArchDSLError, ArchImportError, ArchNameError, ArchSyntaxError, did_you_mean
from ..parser import parse
from ..sources import find_import, read_source

__all__ = ["MAX_IMPORTS", "Loader"]

MAX_IMPORTS = 64

# (the blocks an imported file defines, the file's table of blocks) -> None; raises on an error
CheckBlocks = Callable[[list[A.BlockDecl], dict[str, A.BlockDecl]], None]


class Loader:
    """Loads a main module's imports: `loaded` holds every file read (main file first),
    `file_blocks` each file's table of blocks."""

    def __init__(self, roots: list[Path], check_blocks: CheckBlocks) -> None:
        self.roots = roots  # the folders imports may read from (sources.import_roots)
        self.check_blocks = check_blocks
        self.loaded: dict[Path, A.Module] = {}
        self.file_blocks: dict[Path, dict[str, A.BlockDecl]] = {}

    def load(self, mod: A.Module, key: Path, stack: list[Path]) -> dict[str, A.BlockDecl]:
        """The table of blocks of `mod` (read from `key`; `stack` is the chain of files that
        import it, main file first, itself last)."""
        if key in self.file_blocks:
            return self.file_blocks[key]
        if len(self.loaded) > MAX_IMPORTS:
            raise ArchImportError(f"more than {MAX_IMPORTS} imported files", mod.span)
        self.loaded[key] = mod
        blocks: dict[str, A.BlockDecl] = {}
        for imp in mod.imports:
            self._import(imp, key, stack, blocks)
        for b in mod.blocks:
            if b.name in blocks:
                raise ArchNameError(f"block '{b.name}' is defined twice", b.span,
                                    hint="another definition is imported or earlier in this file")
            if b.name in A.DECISION_FUNCS:
                raise ArchNameError(f"'{b.name}' is a built-in decision and cannot name a block",
                                    b.span)
            blocks[b.name] = b
        self.file_blocks[key] = blocks
        if key != stack[0]:
            self.check_blocks(mod.blocks, blocks)
        return blocks

    def _import(self, imp: A.Import, key: Path, stack: list[Path],
                blocks: dict[str, A.BlockDecl]) -> None:
        """Read the file `imp` names and add the blocks it brings to `blocks`."""
        target = find_import(imp.path, key.parent, self.roots, imp.span)
        if target in stack:
            cycle = " -> ".join(p.name for p in stack[stack.index(target):] + [target])
            raise ArchImportError(f"import cycle: {cycle}", imp.span)
        try:
            text = read_source(target)
        except ArchSyntaxError:  # not text: located in the imported file, none of it quoted
            raise
        except ArchDSLError as e:
            raise ArchImportError(f"cannot import '{imp.path}': {e.message}", imp.span) from None
        sub = parse(text, str(target))
        sub_blocks = self.load(sub, target, stack + [target])
        wanted = imp.names if imp.names is not None else [
            b for b, d in sub_blocks.items() if d.module == sub.file]
        for n in wanted:
            if n not in sub_blocks:
                raise ArchImportError(f"'{imp.path}' defines no block '{n}'", imp.span,
                                      hint=did_you_mean(n, sub_blocks))
            if n in blocks and blocks[n] is not sub_blocks[n]:
                raise ArchNameError(f"block '{n}' is imported twice", imp.span)
            blocks[n] = sub_blocks[n]
