"""What a study looks like: the leaderboard in the terminal (with learning curves where trials
reported steps), the table of a trial's reports, the study as JSON, progress.png, and the best
architecture's files (best.arch, best.py, best.json, best.svg: its diagram) in the study folder.

May import: errors, space, study, study_sources, backends (for best.py and best.svg); rich and
matplotlib inside the functions that draw.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, printable
from .space import Space
from .study import Report, Study, Trial
from .study_sources import os_error

__all__ = ["write_results", "leaderboard", "curves_table", "study_json", "sparkline", "plot",
           "progress_figure", "console", "write_text", "save_figure"]


def write_results(study: Study, space: Space) -> list[Path]:
    """best.arch, best.py, best.json, best.svg and progress.png in the study folder."""
    out: list[Path] = []
    fitting = _best_fitting(study, space)
    if fitting is not None:
        t, arch = fitting
        out.append(write_text(study.folder / "best.json", json.dumps(
            {"trial": t.id, "objective": t.objective, "config": t.config}, indent=2) + "\n"))
        out.append(write_text(study.folder / "best.arch", arch.to_arch()))
        from .backends.pytorch import source

        out.append(write_text(study.folder / "best.py", source(arch)))
        out.append(_diagram(arch, study.folder / "best.svg"))
    png = plot(study, study.folder / "progress.png")
    if png is not None:
        out.append(png)
    if len(study.meta().get("objectives", [])) > 1:  # several objectives: the Pareto front too
        from .pareto_view import write_pareto

        out += write_pareto(study, study.folder)
    return out


def _diagram(arch: Any, path: Path) -> Path:
    """The architecture's neural circuit diagram as `path` (an .svg), or as the .dot text
    beside it where graphviz's `dot` program is missing."""
    import shutil

    from .backends.diagram import architecture_dot, render

    text = architecture_dot(arch)
    return render(text, path if shutil.which("dot") else path.with_suffix(".dot"))


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
    """progress.png: `progress_figure` saved to `path` (None when there is nothing to draw)."""
    fig = progress_figure(study)
    return None if fig is None else save_figure(fig, path)


def save_figure(fig: Any, path: Path) -> Path:
    """Save a matplotlib figure as `path` (a .png) and close it; a failed write (a full disk)
    is one StudyError."""
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=100)
    except OSError as e:
        raise os_error("write", path, e) from None  # a full disk says so
    finally:
        plt.close(fig)
    return path


_ENDED = ("ok", "failed", "stopped", "paused")  # trials drawn: those whose job has ended
_PARTIAL = ("stopped", "paused")  # ended before their last step: not in "best so far"


def progress_figure(study: Study) -> Any:
    """Each trial and the best so far, against trials and against time, and, when trials
    reported steps, their learning curves (a matplotlib Figure; None without a successful
    trial or a report). The time is the evaluator's simulated `cost` where every successful
    trial reports one (NAS-Bench-201 lookups), else the wall clock. Trials stopped or paused
    early are drawn as x and left out of the best so far."""
    trials = [t for t in study.trials() if t.status in _ENDED]
    curves = study.reports()
    if not any(t.objective is not None for t in trials) and not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    nan = float("nan")
    xs = list(range(1, len(trials) + 1))
    ys = [nan if t.objective is None else t.objective for t in trials]
    whole = [nan if t.status in _PARTIAL else y for t, y in zip(trials, ys, strict=True)]
    times, time_label = _times(trials) if trials else ([], "time")
    bests = _best_so_far(whole)
    order = sorted(range(len(trials)), key=lambda i: times[i])
    fig, axes = plt.subplots(1, 3 if curves else 2, figsize=(15 if curves else 10, 3.8),
                             sharey=True, constrained_layout=True)
    a, b = axes[0], axes[1]
    part = [i for i, t in enumerate(trials) if t.status in _PARTIAL]
    full = [i for i in range(len(trials)) if i not in set(part)]
    a.scatter([xs[i] for i in full], [ys[i] for i in full], s=12, color="0.6", label="trial")
    if part:
        a.scatter([xs[i] for i in part], [ys[i] for i in part], s=12, color="0.6", marker="x",
                  label="stopped or paused early")
    a.step(xs, bests, where="post", color="C0", label="best so far")
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_xlabel("trial")
    meta = study.meta()
    a.set_ylabel(_SHOWN.get(meta["evaluator"], ("objective",))[0])
    a.legend(loc="best")
    b.scatter([times[i] for i in full], [ys[i] for i in full], s=12, color="0.6")
    if part:
        b.scatter([times[i] for i in part], [ys[i] for i in part], s=12, color="0.6",
                  marker="x")
    b.step([times[i] for i in order], _best_so_far([whole[i] for i in order]), where="post",
           color="C0")
    b.set_xlabel(time_label)
    values = [y for y in ys if y == y] + [r.value for rs in curves.values() for r in rs]
    if curves:
        _draw_curves(axes[2], curves, {t.id: t.status for t in study.trials()},
                     [t.id for t in study.best(1)], _step_name(meta["evaluator"]))
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.06 or abs(hi) * 0.06 or 0.05
    a.set_ylim(lo - pad, hi + pad)  # every trial's value in view, the worst included
    # stored names are shown as text: a '$' in a file name is not mathtext
    fig.suptitle(printable(f"{Path(meta['space_file']).name}: {meta['searcher']} search, "
                           f"{meta['evaluator']} evaluator, {len(trials)} trials", False),
                 parse_math=False)
    return fig


def _draw_curves(ax: Any, curves: dict[int, list[Report]], status: dict[int, str],
                 best: list[int], xlabel: str) -> None:
    """The learning curves panel: value against step, a grey line per trial, an x where a
    stopped trial ended, the best complete trial's curve in colour."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    others = [tid for tid in curves if tid not in best]
    ax.add_collection(LineCollection([[(r.step, r.value) for r in curves[t]] for t in others],
                                     colors="0.6", linewidths=0.8, alpha=0.7))
    dots = [r for t in others for r in curves[t]]
    ax.scatter([r.step for r in dots], [r.value for r in dots], s=6, color="0.6")
    handles = [Line2D([], [], color="0.6", marker="o", markersize=3, label="trial")]
    ends = [curves[t][-1] for t in curves if status.get(t) == "stopped"]
    if ends:
        ax.scatter([r.step for r in ends], [r.value for r in ends], s=30, marker="x",
                   color="C3", zorder=3)
        handles.append(Line2D([], [], color="C3", marker="x", linestyle="", label="stopped"))
    for t in best:
        if t in curves:
            ax.plot([r.step for r in curves[t]], [r.value for r in curves[t]], color="C0",
                    linewidth=2, marker="o", markersize=3, zorder=4)
            handles.append(Line2D([], [], color="C0", marker="o", markersize=3,
                                  label=f"best (trial {t})"))
    steps = [r.step for rs in curves.values() for r in rs]
    ax.set_xlim(min(steps) - 0.5, max(steps) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.legend(handles=handles, loc="best")


def _step_name(evaluator: str) -> str:
    """What a step is for this evaluator: an epoch for those archdsl trains with."""
    return "epoch" if evaluator in ("train", "digits") else "step"


def _best_so_far(ys: list[float]) -> list[float]:
    out, best = [], float("nan")
    for y in ys:
        if y == y and not best > y:
            best = y
        out.append(best)
    return out


def _times(trials: list[Trial]) -> tuple[list[float], str]:
    """When each trial ended: the evaluator's simulated cost added up (in trial order) where
    every successful trial (there is one) reports a `cost` in seconds, else the wall clock; in
    minutes, or hours past two of them."""
    costs = [t.metrics.get("cost") for t in trials]
    ok = [c for c, t in zip(costs, trials, strict=True) if t.status == "ok"]
    simulated = bool(ok) and all(_is_number(c) for c in ok)
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
    flops, seconds and the architecture's hash; where trials reported steps, also the last
    step each reported and its learning curve as a sparkline."""
    from rich.table import Table
    from rich.text import Text

    meta, best = study.meta(), study.best(top)
    objective, metrics = _columns(meta["evaluator"], best)
    curves = {t.id: study.reports(t.id).get(t.id, []) for t in best} \
        if study.has_reports() else None
    t = Table()
    for col, just in [("rank", "right"), ("trial", "right"), (objective, "right"),
                      *([("steps", "right"), ("curve", "left")] if curves is not None else []),
                      *[(m, "right") for m in metrics], ("params", "right"),
                      ("flops", "right"), ("seconds", "right"), ("architecture", "left")]:
        t.add_column(Text(printable(col, False)), justify=just)  # type: ignore[arg-type]
    largest = {k: max((abs(t.metrics[k]) for t in best if _is_number(t.metrics.get(k))),
                      default=0.0) for k in metrics}
    scale = _scale([r.value for rs in (curves or {}).values() for r in rs])
    for rank, tr in enumerate(best, 1):
        m = tr.metrics
        shown = [] if curves is None else [
            str(curves[tr.id][-1].step) if curves[tr.id] else "",
            sparkline([r.value for r in curves[tr.id]], scale)]
        cells = [str(rank), str(tr.id), f"{tr.objective:.4f}", *shown,
                 *[_num(m.get(k), largest[k]) for k in metrics],
                 _num(m.get("params")), _num(m.get("flops")),
                 f"{tr.duration:.2f}" if tr.duration is not None else "", tr.arch_hash]
        t.add_row(*[Text(printable(c, False)) for c in cells])
    out = console()
    out.print(Text(_title(study, meta)))  # above the table, never wrapped to its width
    out.print(t)
    if not best:
        _best_partial(study, meta)
    failed = study.trials("failed")
    if failed:
        print(f"last failure (trial {failed[-1].id}): {printable(failed[-1].error or '', False)}")


def _best_partial(study: Study, meta: dict[str, Any]) -> None:
    """Where no trial is complete: the best of those a scheduler stopped or paused early."""
    partial = [t for s in _PARTIAL for t in study.trials(s) if t.objective is not None]
    if not partial:
        return
    t = max(partial, key=lambda t: (t.objective, -t.id))
    reports = study.reports(t.id).get(t.id, [])
    at = f" at {_step_name(meta['evaluator'])} {reports[-1].step}" if reports else ""
    print(f"no trial ran to its last step; the best that ended early: trial {t.id}, "
          f"{t.objective:.4f}{at} ({t.status})")


def _title(study: Study, meta: dict[str, Any]) -> str:
    """The leaderboard's title: the trials ended and how, the searcher and the evaluator."""
    counts = study.counts()
    ended = sum(counts.get(s, 0) for s in _ENDED)
    extra = "".join(f", {counts[s]} {s}" for s in ("stopped", "paused", "interrupted")
                    if counts.get(s))
    return printable(f"{Path(meta['space_file']).name}: {ended} trials "
                     f"({counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed{extra}); "
                     f"searcher {meta['searcher']}, evaluator {meta['evaluator']}", False)


_BARS = "▁▂▃▄▅▆▇█"
_SPARK_WIDTH = 20  # characters at most: a longer curve is sampled evenly, its last step kept


def _scale(values: list[float]) -> tuple[float, float]:
    return (min(values), max(values)) if values else (0.0, 0.0)


def sparkline(values: list[float], scale: tuple[float, float] | None = None) -> str:
    """A curve as bars (▁ lowest to █ highest) on the scale (low, high), by default its own; at
    most _SPARK_WIDTH of them: a longer curve is sampled evenly, first and last values kept."""
    if not values:
        return ""
    lo, hi = scale if scale is not None else _scale(values)
    n = len(values)
    if n > _SPARK_WIDTH:
        values = [values[round(i * (n - 1) / (_SPARK_WIDTH - 1))] for i in range(_SPARK_WIDTH)]
    if hi <= lo:
        return _BARS[len(_BARS) // 2] * len(values)
    top = len(_BARS) - 1
    return "".join(_BARS[min(top, max(0, round((v - lo) / (hi - lo) * top)))] for v in values)


def curves_table(study: Study, ids: list[int] | None, top: int) -> None:
    """Print the reports of the trials `ids` (None: those of the leaderboard, the best `top`
    complete trials) as a table: trial, its status, then a row per report: step, value and
    up to four of the other figures reported with it (the train evaluator's train_loss and
    valid_loss). StudyError names an id the study does not hold."""
    from rich.table import Table
    from rich.text import Text

    trials = [study.trial(i) for i in ids] if ids is not None else study.best(top)
    curves = {t.id: study.reports(t.id).get(t.id, []) for t in trials}
    keys: list[str] = []
    for r in (r for rs in curves.values() for r in rs):
        keys += [k for k, v in r.metrics.items() if k not in keys and _is_number(v)]
    keys = keys[:_MAX_METRICS]
    largest = {k: max((abs(r.metrics[k]) for rs in curves.values() for r in rs
                       if _is_number(r.metrics.get(k))), default=0.0) for k in keys}
    table = Table()
    for col, just in [("trial", "right"), ("status", "left"), ("step", "right"),
                      ("value", "right"), *[(k, "right") for k in keys]]:
        table.add_column(Text(printable(col, False)), justify=just)  # type: ignore[arg-type]
    for t in trials:
        rows = [[str(r.step), f"{r.value:.4f}", *[_num(r.metrics.get(k), largest[k])
                                                 for k in keys]] for r in curves[t.id]]
        for i, row in enumerate(rows or [["", "no reports", *[""] * len(keys)]]):
            first = [str(t.id), t.status] if i == 0 else ["", ""]
            table.add_row(*[Text(printable(c, False)) for c in first + row],
                          end_section=i == max(len(rows), 1) - 1)
    out = console()
    name = Path(study.meta()["space_file"]).name
    what = f"{len(trials)} trial" + ("" if len(trials) == 1 else "s")
    out.print(Text(printable(f"{name}: the reports of {what}", False)))
    out.print(table)


def study_json(study: Study, top: int) -> dict[str, Any]:
    """The study for `archdsl status --json`: its folder, settings, the count of trials of
    each status, and the best `top` complete trials, each with all its figures and its
    reports (a list of {step, value, metrics, time}, in step order; empty when it reported
    none)."""
    best = []
    for t in study.best(top):
        reports = study.reports(t.id).get(t.id, [])
        best.append({**t.to_json(), "reports": [r.to_json() for r in reports]})
    return {"study": str(study.folder), "meta": study.meta(), "counts": study.counts(),
            "best": best}


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
