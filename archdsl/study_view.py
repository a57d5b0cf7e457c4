"""What a study looks like: the leaderboard in the terminal, progress.png, and the best
architecture's files (best.arch, best.py, best.json) in the study folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, printable
from .space import Space
from .study import Study, Trial
from .study_sources import os_error

__all__ = ["write_results", "leaderboard", "plot", "progress_figure", "console", "write_text"]


def write_results(study: Study, space: Space) -> list[Path]:
    """best.arch, best.py, best.json and progress.png in the study folder."""
    out: list[Path] = []
    fitting = _best_fitting(study, space)
    if fitting is not None:
        t, arch = fitting
        out.append(write_text(study.folder / "best.json", json.dumps(
            {"trial": t.id, "objective": t.objective, "config": t.config}, indent=2) + "\n"))
        out.append(write_text(study.folder / "best.arch", arch.to_arch()))
        from .backends.pytorch import source

        out.append(write_text(study.folder / "best.py", source(arch)))
    png = plot(study, study.folder / "progress.png")
    if png is not None:
        out.append(png)
    return out


def _best_fitting(study: Study, space: Space) -> tuple[Trial, Any] | None:
    """The best trial whose configuration fits `space` (after --allow-changed the best ones
    may not), with its architecture."""
    for t in study.best(study.counts().get("ok", 0)):
        try:
            return t, space.materialize(t.config)
        except ArchDSLError:
            continue
    return None


def plot(study: Study, path: Path) -> Path | None:
    """progress.png: `progress_figure` saved to `path` (None without a successful trial)."""
    fig = progress_figure(study)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=100)
    except OSError as e:
        raise os_error("write", path, e) from None  # a full disk says so
    finally:
        plt.close(fig)
    return path


def progress_figure(study: Study) -> Any:
    """Each trial and the best so far, against trials and against time (a matplotlib Figure;
    None without a successful trial). The time is the evaluator's simulated `cost` where
    every successful trial reports one (NAS-Bench-201 lookups), else the wall clock."""
    trials = [t for t in study.trials() if t.status in ("ok", "failed")]
    if not any(t.objective is not None for t in trials):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    nan = float("nan")
    xs = list(range(1, len(trials) + 1))
    ys = [nan if t.objective is None else t.objective for t in trials]
    times, time_label = _times(trials)
    bests = _best_so_far(ys)
    order = sorted(range(len(trials)), key=lambda i: times[i])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, constrained_layout=True)
    a.scatter(xs, ys, s=12, color="0.6", label="trial")
    a.step(xs, bests, where="post", color="C0", label="best so far")
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_xlabel("trial")
    meta = study.meta()
    a.set_ylabel(_SHOWN.get(meta["evaluator"], ("objective",))[0])
    a.legend(loc="best")
    b.scatter(times, ys, s=12, color="0.6")
    b.step([times[i] for i in order], _best_so_far([ys[i] for i in order]), where="post",
           color="C0")
    b.set_xlabel(time_label)
    values = [y for y in ys if y == y]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.06 or abs(hi) * 0.06 or 0.05
    a.set_ylim(lo - pad, hi + pad)  # every trial's value in view, the worst included
    # stored names are shown as text: a '$' in a file name is not mathtext
    fig.suptitle(printable(f"{Path(meta['space_file']).name}: {meta['searcher']} search, "
                           f"{meta['evaluator']} evaluator, {len(trials)} trials", False),
                 parse_math=False)
    return fig


def _best_so_far(ys: list[float]) -> list[float]:
    out, best = [], float("nan")
    for y in ys:
        if y == y and not best > y:
            best = y
        out.append(best)
    return out


def _times(trials: list[Trial]) -> tuple[list[float], str]:
    """When each trial ended: the evaluator's simulated cost added up (in trial order) where
    every successful trial reports a `cost` in seconds, else the wall clock; in minutes, or
    hours past two of them."""
    costs = [t.metrics.get("cost") for t in trials]
    simulated = all(_is_number(c) for c, t in zip(costs, trials, strict=True) if t.status == "ok")
    if simulated:
        ends, total = [], 0.0
        for c in costs:
            total += c if _is_number(c) else 0.0
            ends.append(total)
        what = "simulated training time (the evaluator's cost)"
    else:
        t0 = min(t.started for t in trials)
        ends = [t.started + (t.duration or 0.0) - t0 for t in trials]
        what = "time since the study began"
    if max(ends) > 2 * 3600:
        return [e / 3600 for e in ends], f"{what}, hours"
    return [e / 60 for e in ends], f"{what}, minutes"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def write_text(path: Path, text: str) -> Path:
    try:
        path.write_text(text, "utf-8")
    except OSError as e:
        raise os_error("write", path, e) from None  # a full disk says so
    return path



# ---- the leaderboard ------------------------------------------------------------------------
def console(file: Any = None) -> Any:
    """A rich console; where output is not a terminal (a file, a pipe), wide enough that no
    column of the leaderboard is cut short."""
    from rich.console import Console

    console = Console(file=file, soft_wrap=False, highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 200)
    return console


# the name of the objective, and the metrics worth a column, for the evaluators archdsl ships;
# another evaluator's numeric metrics are shown as they come (up to _MAX_METRICS)
_SHOWN: dict[str, tuple[str, list[str]]] = {
    "digits": ("accuracy", ["valid_loss", "train_seconds"]),
    "nb201": ("c10_valid_12", ["c10_valid_200", "c10_test_200", "cost"]),
}
_MAX_METRICS = 4
_STATIC = ("params", "flops")  # from static shapes, for every trial: columns of their own


def leaderboard(study: Study, top: int) -> None:
    """The best `top` trials as a table: objective, the evaluator's own metrics, params,
    flops, seconds and the architecture's hash."""
    from rich.table import Table
    from rich.text import Text

    meta, counts = study.meta(), study.counts()
    finished = counts.get("ok", 0) + counts.get("failed", 0)
    title = (f"{Path(meta['space_file']).name}: {finished} trials "
             f"({counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed"
             + (f", {counts['interrupted']} interrupted" if counts.get("interrupted") else "")
             + f"); searcher {meta['searcher']}, evaluator {meta['evaluator']}")
    best = study.best(top)
    objective, metrics = _columns(meta["evaluator"], best)
    t = Table()
    for col, just in [("rank", "right"), ("trial", "right"), (objective, "right"),
                      *[(m, "right") for m in metrics], ("params", "right"),
                      ("flops", "right"), ("seconds", "right"), ("architecture", "left")]:
        t.add_column(Text(printable(col, False)), justify=just)  # type: ignore[arg-type]
    largest = {k: max((abs(t.metrics[k]) for t in best if _is_number(t.metrics.get(k))),
                      default=0.0) for k in metrics}
    for rank, tr in enumerate(best, 1):
        m = tr.metrics
        cells = [str(rank), str(tr.id), f"{tr.objective:.4f}",
                 *[_num(m.get(k), largest[k]) for k in metrics],
                 _num(m.get("params")), _num(m.get("flops")),
                 f"{tr.duration:.2f}" if tr.duration is not None else "", tr.arch_hash]
        t.add_row(*[Text(printable(c, False)) for c in cells])
    out = console()
    out.print(Text(printable(title, False)))  # above the table, never wrapped to its width
    out.print(t)
    failed = study.trials("failed")
    if failed:
        print(f"last failure (trial {failed[-1].id}): {printable(failed[-1].error or '', False)}")


def _columns(evaluator: str, trials: list[Trial]) -> tuple[str, list[str]]:
    """The objective's column name and the metric columns for these trials."""
    if evaluator in _SHOWN:
        name, wanted = _SHOWN[evaluator]
        return name, [k for k in wanted if any(k in t.metrics for t in trials)]
    keys: list[str] = []
    for t in trials:
        keys += [k for k, v in t.metrics.items() if k not in keys and k not in _STATIC
                 and _is_number(v)]
    return "objective", keys[:_MAX_METRICS]


def _num(v: Any, largest: float = 0.0) -> str:
    """A figure for a cell; floats get the decimals that suit the column's `largest` value
    (four for fractions, two for figures like 93.65, none past 10,000)."""
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        top = max(abs(largest), abs(v)) if math.isfinite(v) else abs(largest)
        return f"{v:,.{4 if top < 1 else 2 if top < 10_000 else 0}f}"
    return str(v)
