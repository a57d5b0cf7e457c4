"""NAS-Bench-201: configurations of examples/nb201.arch <-> the benchmark's cell strings.

A cell string lists, for nodes 1..3, the operation on the edge from every earlier node:
`|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`.
In examples/nb201.arch node j's k-th `edge` (from node k-1) is the decision `cell/nj/edge#k`
(`#1` is left out), and its values are the benchmark's own operation names.

The results table ships with the package (data/nb201.csv.xz; its source and licence are in
data/NB201-README.md); `$ARCHDSL_NB201` names another copy (.csv or .csv.xz) to read instead.
"""

from __future__ import annotations

import csv
import io
import lzma
import os
import re
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import IO, Any

from archdsl.errors import ArchDSLError, ConfigError

from . import Evaluator

__all__ = ["OPERATIONS", "EDGES", "from_arch_string", "to_arch_string", "Table", "table",
           "find_csv", "NB201Evaluator", "ENV", "SHIPPED"]

ENV = "ARCHDSL_NB201"  # names a copy of the table to read instead of the shipped one
SHIPPED = resources.files(__package__) / "data" / "nb201.csv.xz"

OPERATIONS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

# (node j, input node i) -> decision name, in the order of the cell string
EDGES: dict[tuple[int, int], str] = {
    (j, i): f"cell/n{j}/edge" + (f"#{i + 1}" if i else "") for j in (1, 2, 3) for i in range(j)
}

_NODE = re.compile(r"\|([^|~]+)~(\d+)")


def from_arch_string(s: str) -> dict[str, Any]:
    """The configuration of examples/nb201.arch for a NAS-Bench-201 cell string."""
    if not isinstance(s, str):
        raise ConfigError(f"a NAS-Bench-201 cell string is text, got {type(s).__name__}")
    nodes = s.strip().split("+")
    if len(nodes) != 3:
        raise ConfigError(f"not a NAS-Bench-201 cell string (3 nodes joined by '+'): {s!r}")
    config: dict[str, Any] = {}
    for j, node in enumerate(nodes, start=1):
        edges = _NODE.findall(node)
        if not node.endswith("|") or "".join(f"|{o}~{i}" for o, i in edges) + "|" != node:
            raise ConfigError(f"node {j} of {s!r} is not of the form |op~i|op~i|...|")
        if [int(i) for _, i in edges] != list(range(j)):
            raise ConfigError(f"node {j} of {s!r} must take one edge from each of nodes "
                              f"0..{j - 1} in order")
        for op, i in edges:
            if op not in OPERATIONS:
                raise ConfigError(f"unknown NAS-Bench-201 operation {op!r} in {s!r}",
                                  hint="operations: " + ", ".join(OPERATIONS))
            config[EDGES[j, int(i)]] = op
    return config


def to_arch_string(config: dict[str, Any]) -> str:
    """The NAS-Bench-201 cell string of a configuration of examples/nb201.arch."""
    missing = [k for k in EDGES.values() if k not in config]
    if missing:
        raise ConfigError(f"not a configuration of examples/nb201.arch: no '{missing[0]}'")
    nodes = []
    for j in (1, 2, 3):
        ops = []
        for i in range(j):
            op = config[EDGES[j, i]]
            if op not in OPERATIONS:
                raise ConfigError(f"'{EDGES[j, i]}' = {op!r} is not a NAS-Bench-201 operation")
            ops.append(f"{op}~{i}")
        nodes.append("|" + "|".join(ops) + "|")
    return "+".join(nodes)


def find_csv() -> Traversable:
    """The NAS-Bench-201 table to read: the file named by $ARCHDSL_NB201, or the shipped one."""
    env = os.environ.get(ENV)
    return Path(env) if env else SHIPPED


def _open(path: Traversable) -> IO[str]:
    """A table's text, through xz where its name ends in .xz."""
    raw = path.open("rb")
    if path.name.endswith(".xz"):
        raw = lzma.open(raw)
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


class Table:
    """NAS-Bench-201 results by cell string: `table.row(config)` for a configuration of
    examples/nb201.arch gives that cell's row (numbers as floats, `index` as int)."""

    def __init__(self, path: str | Path | Traversable):
        path = Path(path) if isinstance(path, str) else path
        try:
            with _open(path) as f:
                reader = csv.DictReader(f)
                self.rows: dict[str, dict[str, Any]] = {}
                for r in reader:
                    row: dict[str, Any] = {k: (v if k == "arch" else float(v))
                                           for k, v in r.items()}
                    row["index"] = int(row["index"])
                    self.rows[r["arch"]] = row
        except FileNotFoundError:
            raise ArchDSLError(f"the NAS-Bench-201 table {path} was not found",
                               hint=f"{ENV} names it; leave {ENV} unset to use the table "
                                    "that ships with archdsl") from None
        except (OSError, KeyError, ValueError, TypeError, EOFError, lzma.LZMAError) as e:
            raise ArchDSLError(f"{path}: not a readable NAS-Bench-201 table: {e}") from None
        self.path = path

    def row(self, config: dict[str, Any]) -> dict[str, Any]:
        s = to_arch_string(config)
        try:
            return self.rows[s]
        except KeyError:
            raise ConfigError(f"cell {s} is not in {self.path}") from None

    def __len__(self) -> int:
        return len(self.rows)


@lru_cache(maxsize=4)
def table(path: str | None = None) -> Table:
    """The table at `path` (default: `find_csv()`), read once per process."""
    return Table(Path(path) if path else find_csv())


class NB201Evaluator(Evaluator):
    """Looks a configuration of examples/nb201.arch up in NAS-Bench-201: objective
    c10_valid_12, cost c10_train_time_12 (simulated seconds), the 200-epoch figures kept."""

    name = "nb201"
    metrics = ("objective", "c10_valid_12", "cost", "index", "params_m", "c10_valid_200",
               "c10_test_200", "params", "flops")

    def __init__(self, path: str | None = None):
        self.table = table(path)

    def evaluate(self, arch: Any) -> dict[str, Any]:
        row = self.table.row(arch.config)
        return {"objective": row["c10_valid_12"], "c10_valid_12": row["c10_valid_12"],
                "cost": row["c10_train_time_12"],
                "index": row["index"], "params_m": row["params_m"],
                "c10_valid_200": row["c10_valid_200"], "c10_test_200": row["c10_test_200"]}
