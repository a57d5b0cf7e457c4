"""What a study with several objectives looks like: its Pareto front (the trials no other
successful trial beats in every objective) as a terminal table and as JSON, pareto.png (the
front against every pair of objectives, and the hypervolume against trials) and pareto.json in
the study folder, and each front member's architecture as .arch and .py files.

The objectives are the study's `meta["objectives"]` (see archdsl.objectives); only `ok` trials
count. The hypervolume is measured from the study's reference point (`reference_point`): per
objective, the worst value an ok trial reached, 10% of the values' range further away.

May import: errors, objectives, pareto, space, study, study_checks, study_sources, study_view,
backends (for the .py files); rich and matplotlib inside the functions that draw.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, StudyError, printable
from .objectives import Objective, from_json, raw_values
from .pareto import hypervolume, hypervolume_history, pareto_front
from .space import Space
from .study import Study, Trial
from .study_checks import CORRUPT
from .study_sources import os_error
from .study_view import _num, console, save_figure, write_text

__all__ = ["study_objectives", "scored_trials", "reference_point", "front_trials",
           "pareto_table", "pareto_json", "pareto_figure", "write_pareto", "export_pareto"]

MARGIN = 0.1  # the reference point lies this share of the values' range beyond the worst


def study_objectives(study: Study) -> tuple[Objective, ...]:
    """The objectives the study stored (the one default objective if it stored none);
    StudyError for a stored setting that is not a list of DIRECTION:NAME texts."""
    stored = study.meta().get("objectives")
    path = study.folder / "study.db"
    if stored is not None and not (isinstance(stored, list)
                                   and all(isinstance(s, str) for s in stored)):
        raise StudyError(f"{path}: the setting 'objectives' is corrupt: not a list of texts",
                         hint=CORRUPT)
    try:
        return from_json(stored)
    except ArchDSLError as e:
        raise StudyError(f"{path}: the setting 'objectives' is corrupt: {e.message}",
                         hint=CORRUPT) from None


def scored_trials(study: Study) -> list[tuple[Trial, tuple[float, ...]]]:
    """The ok trials, in id order, each with its objectives' signed values (higher is better
    in every one); StudyError naming an ok trial that lacks one."""
    objs = study_objectives(study)
    out = []
    for t in study.trials("ok"):
        try:
            raw = raw_values(objs, {"objective": t.objective, **t.metrics})
        except ArchDSLError as e:
            raise StudyError(f"trial {t.id} in {study.folder} has no value for an objective: "
                             f"{e.message}", hint=CORRUPT) from None
        out.append((t, tuple(o.sign * v for o, v in zip(objs, raw, strict=True))))
    return out


def reference_point(values: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """The reference point for signed `values` (at least one point): per coordinate, the
    worst value minus MARGIN times the range of the values (of the value's size where all are
    equal, or 1 where that is 0), so that every point, the worst included, adds volume."""
    if not values:
        raise ValueError("a reference point needs at least one point")
    out = []
    for column in zip(*values, strict=True):
        lo, hi = min(column), max(column)
        span = (hi - lo) or abs(lo) or 1.0
        out.append(float(lo - MARGIN * span))
    return tuple(out)


def front_trials(study: Study) -> list[Trial]:
    """The Pareto front of the study's ok trials under its objectives, best first in the
    first objective (then by id)."""
    return [t for t, _ in _front(scored_trials(study))]


def _front(scored: list[tuple[Trial, tuple[float, ...]]]) -> list[tuple[Trial, tuple[float, ...]]]:
    members = [scored[i] for i in pareto_front([v for _, v in scored])]
    return sorted(members, key=lambda tv: (-tv[1][0], tv[0].id))


def pareto_json(study: Study) -> dict[str, Any]:
    """The study's front as JSON: `objectives` (DIRECTION:NAME texts), `trials` (the number
    of ok trials), `reference` and `hypervolume` (the reference point by objective, as given
    (not signed); None and 0.0 without an ok trial), `front` (each member's `trial`, `values`
    by objective as given, `config` and `arch_hash`, best first in the first objective) and
    `history` (after each ok trial, in id order: {`trial`, `hypervolume`})."""
    objs = study_objectives(study)
    scored = scored_trials(study)
    points = [v for _, v in scored]
    ref = reference_point(points) if points else None
    history = hypervolume_history(points, ref) if ref is not None else []

    def given(values: Sequence[float]) -> dict[str, float]:
        return {o.name: o.sign * v for o, v in zip(objs, values, strict=True)}

    return {"objectives": [str(o) for o in objs], "trials": len(scored),
            "reference": given(ref) if ref is not None else None,
            "hypervolume": history[-1] if history else 0.0,
            "front": [{"trial": t.id, "values": given(v), "config": t.config,
                       "arch_hash": t.arch_hash} for t, v in _front(scored)],
            "history": [{"trial": t.id, "hypervolume": h}
                        for (t, _), h in zip(scored, history, strict=True)]}


def pareto_table(study: Study, top: int) -> None:
    """Print the front as a table, best first in the first objective (at most `top` rows):
    trial, each objective with its direction, and the architecture's hash; above it a line
    with the front's size, the number of ok trials and the hypervolume."""
    from rich.table import Table
    from rich.text import Text

    objs = study_objectives(study)
    scored = scored_trials(study)
    name = Path(study.meta()["space_file"]).name
    out = console()
    if not scored:
        out.print(Text(printable(f"{name}: no successful trial yet: no Pareto front", False)))
        return
    front = _front(scored)
    hv = hypervolume([v for _, v in scored], reference_point([v for _, v in scored]))
    shown = "" if len(front) <= top else f" (the first {top} shown)"
    out.print(Text(printable(f"{name}: the Pareto front: {len(front)} of {len(scored)} ok "
                             f"trials{shown}; hypervolume {hv:.6g}", False)))
    table = Table()
    table.add_column("trial", justify="right")
    for o in objs:
        table.add_column(Text(f"{o.name} ({o.direction[:3]})"), justify="right")
    table.add_column("architecture")
    largest = [max(abs(v[k]) for _, v in front) for k in range(len(objs))]
    for t, _ in front[:top]:
        given = {"objective": t.objective, **t.metrics}  # as stored: a count stays a count
        cells = [_num(given[o.name], big) for o, big in zip(objs, largest, strict=True)]
        table.add_row(str(t.id), *cells, Text(printable(t.arch_hash, False)))
    out.print(table)


def pareto_figure(study: Study) -> Any:
    """pareto.png's figure (None without an ok trial): a panel per pair of objectives, every
    ok trial at its values (as given), the front's members in colour joined by the staircase
    of the pair's own front among them, the dominated trials faded; and a panel of the
    hypervolume after each ok trial."""
    objs = study_objectives(study)
    scored = scored_trials(study)
    if not scored:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    points = [v for _, v in scored]
    ref = reference_point(points)
    front = _front(scored)
    members = {t.id for t, _ in front}
    pairs = list(itertools.combinations(range(len(objs)), 2))
    panels = len(pairs) + 1
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig, grid = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False,
                             constrained_layout=True)
    axes = list(grid.flat)
    for ax in axes[panels:]:
        ax.set_visible(False)
    signs = [o.sign for o in objs]
    for ax, (i, j) in zip(axes, pairs, strict=False):
        faded = [v for t, v in scored if t.id not in members]
        if faded:
            ax.scatter([signs[i] * v[i] for v in faded], [signs[j] * v[j] for v in faded],
                       s=12, color="0.6", alpha=0.35, label="dominated")
        xs, ys = _staircase([(v[i], v[j]) for _, v in front])
        ax.plot([signs[i] * x for x in xs], [signs[j] * y for y in ys], color="C0",
                linewidth=1.2)
        ax.scatter([signs[i] * v[i] for _, v in front], [signs[j] * v[j] for _, v in front],
                   s=24, color="C0", zorder=3, label="Pareto front")
        ax.set_xlabel(f"{objs[i].name} ({objs[i].direction})")
        ax.set_ylabel(f"{objs[j].name} ({objs[j].direction})")
        ax.legend(loc="best")
    hv = axes[len(pairs)]
    hv.step([t.id for t, _ in scored], hypervolume_history(points, ref), where="post",
            color="C0", marker="o", markersize=3)
    hv.xaxis.set_major_locator(MaxNLocator(integer=True))
    hv.set_xlabel("trial")
    hv.set_ylabel("hypervolume")
    meta = study.meta()
    fig.suptitle(printable(f"{Path(meta['space_file']).name}: {meta['searcher']} search, "
                           f"{len(scored)} ok trials, {len(front)} on the Pareto front",
                           False), parse_math=False)
    return fig


def _staircase(front: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """The boundary of what the pair's own front (among `front`, signed) dominates: its points
    by the first coordinate, joined by a step at each."""
    pts = sorted({front[k] for k in pareto_front(front)}, key=lambda p: (p[0], -p[1]))
    xs: list[float] = []
    ys: list[float] = []
    for k, (x, y) in enumerate(pts):
        xs.append(x)
        ys.append(y)
        if k + 1 < len(pts):
            xs.append(x)
            ys.append(pts[k + 1][1])
    return xs, ys


def write_pareto(study: Study, folder: str | Path) -> list[Path]:
    """folder/pareto.json (`pareto_json`) and, with an ok trial, folder/pareto.png
    (`pareto_figure`); the paths written. A failed write (a full disk) is one StudyError."""
    folder = Path(folder)
    out = [write_text(folder / "pareto.json", json.dumps(pareto_json(study), indent=2) + "\n")]
    fig = pareto_figure(study)
    if fig is not None:
        out.append(save_figure(fig, folder / "pareto.png"))
    return out


def export_pareto(study: Study, space: Space, out_dir: str | Path) -> list[Path]:
    """Every front member as out_dir/trial-ID.arch and trial-ID.py (standalone PyTorch), made
    if missing; the paths written. ArchDSLError when no trial is ok; StudyError when a
    member's configuration does not fit `space` (nothing is written then) or a write fails."""
    front = front_trials(study)
    if not front:
        raise ArchDSLError(f"the study in {study.folder} has no successful trial yet")
    archs = []
    for t in front:
        try:
            archs.append((t, space.materialize(t.config)))
        except ArchDSLError as e:
            raise study.misfit(t, e) from None
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise os_error("create the folder", out_dir, e) from None
    from .backends.pytorch import source

    out: list[Path] = []
    for t, arch in archs:
        out.append(write_text(out_dir / f"trial-{t.id}.arch", arch.to_arch()))
        out.append(write_text(out_dir / f"trial-{t.id}.py", source(arch)))
    return out
