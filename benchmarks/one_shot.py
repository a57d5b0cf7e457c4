"""One-shot search on a harder digits: does a supernet rank architectures as training them does?

    nice -n 10 python benchmarks/one_shot.py [--archs 30] [--seeds 2] [--train 600]
        [--noise 0.2] [--epochs 6] [--supernet-epochs 24] [--sandwich] [--budget 60]
        [--calibrate 10] [--standalone-cache FILE] [--json]

The task is digits made harder, so that stand-alone accuracies spread: only `--train` of the
1,437 training images are kept (the first ones of the fixed split), and Gaussian noise of
standard deviation `--noise` (pixels are in [0, 1]) is added to every training and validation
image (a fixed seed); the 360 validation images stay. The space (SPACE below) is a CNN of 1 to
3 conv-batchnorm-relu layers, each of width 4, 8, 16 or 32 and kernel 1, 3 or 5, then global
average pooling: 1,884 architectures, whose training recipe is fixed (adam, lr 0.01, batch 32,
`--epochs` epochs).

1. `--archs` architectures are sampled uniformly (seed 0) and each is trained stand-alone with
   `--seeds` seeds (the recipe's seed): its stand-alone accuracy is the mean.
2. One supernet is trained (`archdsl.one_shot.train_supernet`, SPOS, `--supernet-epochs`),
   once; each of the sampled architectures is scored with its inherited weights (the supernet
   evaluator: BatchNorm recalibrated on `--calibrate` training batches).
3. Kendall's tau between the inherited and the stand-alone accuracies (scipy).
4. The one-shot search: evolution with the supernet evaluator for `--budget` candidates; its
   pick is trained stand-alone (the same seeds) and compared with the best of the sampled ones.
5. The time ratio: (supernet training + search) / the mean time of one stand-alone training
   (one architecture, one seed, over the stand-alone trainings of step 1), in CPU seconds of
   this process (one thread: the work done, whatever else runs on the machine) and in wall
   seconds (which a shared machine's load sways).

Everything runs on the CPU with one torch thread (fastest on a shared machine), in this process.
The issue's targets: tau >= 0.5, the pick within 1 point of the best of the sampled ones, the
ratio <= 5. `--standalone-cache FILE` keeps the stand-alone results (keyed by configuration,
seed and settings) so that a second run trains only the supernet.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import archdsl
from archdsl.evaluators.data import load_data
from archdsl.evaluators.supernet import SupernetEvaluator
from archdsl.evaluators.train import TrainEvaluator
from archdsl.one_shot import train_supernet
from archdsl.runner import search

SPACE = """# the one-shot benchmark's space (benchmarks/one_shot.py)
input image: [1, 8, 8]
network {
    image
    -> repeat(choice(1, 2, 3)) {
           conv2d(choice(4, 8, 16, 32), kernel = choice(1, 3, 5), padding = same)
           -> batchnorm -> relu
       }
    -> global_avg_pool
    -> linear(10)
}
train { optimizer = adam(lr = 0.01)  batch = 32  epochs = EPOCHS }
"""


def harder_digits(path: Path, train: int, noise: float) -> Path:
    """Digits with `train` training images and Gaussian pixel noise, as a .npz file."""
    d = load_data("digits")
    rng = np.random.default_rng(0)
    xt, yt = d.train.x.numpy()[:train], d.train.y.numpy()[:train]
    xv, yv = d.valid.x.numpy(), d.valid.y.numpy()
    xt = (xt + rng.normal(0, noise, xt.shape)).astype("float32")
    xv = (xv + rng.normal(0, noise, xv.shape)).astype("float32")
    np.savez(path, x_train=xt, y_train=yt, x_valid=xv, y_valid=yv)
    return path


def clocks() -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) now."""
    return time.process_time(), time.perf_counter()


def since(t0: tuple[float, float]) -> tuple[float, float]:
    """(CPU, wall) seconds since `t0`."""
    c, w = clocks()
    return c - t0[0], w - t0[1]


def standalone(space: archdsl.Space, ev: TrainEvaluator, cfg: dict[str, Any], seeds: int,
               cache: dict[str, Any], settings: str) -> tuple[float, list[tuple[float, float]]]:
    """(mean accuracy over the seeds, the (CPU, wall) seconds of each run) of `cfg` trained
    alone."""
    accs, secs = [], []
    for seed in range(seeds):
        key = json.dumps([settings, seed, cfg], sort_keys=True)
        if key not in cache:
            arch = space.materialize(cfg)
            arch.train = {**arch.train, "seed": seed}
            t0 = clocks()
            r = ev.evaluate(arch)
            cache[key] = {"accuracy": r["accuracy"], "seconds": since(t0)}
        accs.append(cache[key]["accuracy"])
        secs.append(tuple(cache[key]["seconds"]))
    return statistics.mean(accs), secs


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import kendalltau

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--train", type=int, default=600, help="training images kept")
    p.add_argument("--noise", type=float, default=0.2, help="pixel noise's std")
    p.add_argument("--epochs", type=int, default=6, help="stand-alone epochs")
    p.add_argument("--supernet-epochs", type=int, default=24)
    p.add_argument("--sandwich", action="store_true")
    p.add_argument("--budget", type=int, default=60, help="the one-shot search's candidates")
    p.add_argument("--calibrate", type=int, default=10, help="BatchNorm calibration batches")
    p.add_argument("--standalone-cache", type=Path)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    settings = f"train={a.train} noise={a.noise} epochs={a.epochs}"
    cache = (json.loads(a.standalone_cache.read_text())
             if a.standalone_cache and a.standalone_cache.is_file() else {})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bench.arch").write_text(SPACE.replace("EPOCHS", str(a.epochs)))
        data = str(harder_digits(folder / "hard.npz", a.train, a.noise))
        space = archdsl.load(folder / "bench.arch")
        ev = TrainEvaluator(data, "cpu")
        ev.prepare(space)
        configs = list(space.samples(a.archs, seed=0))
        alone, reference = [], []
        for i, cfg in enumerate(configs):
            acc, secs = standalone(space, ev, cfg, a.seeds, cache, settings)
            alone.append(acc)
            reference += secs
            print(f"stand-alone {i + 1}/{len(configs)}: {acc:.4f}", file=sys.stderr, flush=True)
        if a.standalone_cache:
            a.standalone_cache.write_text(json.dumps(cache))
        t0 = clocks()
        run = train_supernet(space, data=data, epochs=a.supernet_epochs, sandwich=a.sandwich,
                             device="cpu", threads=1)
        t_train = since(t0)
        run.supernet.save(folder / "supernet.pt")
        sev = SupernetEvaluator(str(folder / "supernet.pt"), device="cpu", threads=1,
                                calibrate=a.calibrate)
        sev.prepare(space)
        inherited = [sev.evaluate(space.materialize(c))["accuracy"] for c in configs]
        tau = float(kendalltau(inherited, alone).statistic)
        t0 = clocks()
        r = search(str(folder / "bench.arch"), searcher="evolution", evaluator_object=sev,
                   budget=a.budget, study_dir=str(folder / "study"), device="cpu")
        t_search = since(t0)
        with r.study as study:
            pick = study.best(1)[0].config
        pick_acc, _ = standalone(space, ev, pick, a.seeds, cache, settings)
        if a.standalone_cache:
            a.standalone_cache.write_text(json.dumps(cache))
    one = tuple(statistics.mean(x) for x in zip(*reference, strict=True))
    ratio = tuple((a + b) / c for a, b, c in zip(t_train, t_search, one, strict=True))
    figures = {
        "task": f"digits, {a.train} training images, noise std {a.noise}; stand-alone "
                f"{a.epochs} epochs, mean of {a.seeds} seeds",
        "archs": len(configs), "standalone_min": min(alone), "standalone_max": max(alone),
        "spread_points": 100 * (max(alone) - min(alone)), "kendall_tau": tau,
        "best_of_sampled": max(alone), "pick_standalone": pick_acc,
        "pick_minus_best_points": 100 * (pick_acc - max(alone)),
        "supernet_epochs": a.supernet_epochs, "sandwich": a.sandwich,
        "supernet_seconds_cpu_wall": t_train, "search_seconds_cpu_wall": t_search,
        "search_budget": a.budget, "standalone_seconds_cpu_wall": one,
        "time_ratio_cpu": ratio[0], "time_ratio_wall": ratio[1],
        "pick": pick,
    }
    if a.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"task: {figures['task']}")
    print(f"stand-alone accuracy of {len(configs)} sampled architectures: "
          f"{min(alone):.4f} .. {max(alone):.4f} (spread {figures['spread_points']:.1f} points)")
    print(f"Kendall tau, inherited vs stand-alone: {tau:.3f} (target >= 0.5)")
    print(f"one-shot pick (evolution, {a.budget} candidates) trained stand-alone: {pick_acc:.4f}; "
          f"best of the sampled: {max(alone):.4f} ({figures['pick_minus_best_points']:+.1f} "
          "points; target >= -1)")
    for i, clock in enumerate(("CPU", "wall")):
        print(f"{clock} time: supernet {t_train[i]:.1f} s ({a.supernet_epochs} epochs"
              f"{', sandwich' if a.sandwich else ''}) + search {t_search[i]:.1f} s = "
              f"{ratio[i]:.2f} x one stand-alone training ({one[i]:.1f} s; target <= 5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
