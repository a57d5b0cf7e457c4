"""The PyTorch backend against hand-written PyTorch, measured in the same run.

    python benchmarks/compile.py [--reps N] [--warmup N] [--json]

Every figure is a ratio archdsl / hand-written (lower is better; 1.00 = equal), from the medians
of alternating repetitions on one thread:

- build: sample a configuration -> a ready nn.Module, for examples/digits.arch and
  examples/nb201.arch, against hand-written samplers + builders of the same spaces (the digits one
  also checks its `require params <= 200_000` by counting the built module's parameters). The
  archdsl side is `pt.build(space.materialize(space.sample(rng, uniform=False)))`, each time a
  new random configuration of a space loaded once, drawn the way the hand-written builders draw
  theirs: each decision on its own (uniform over architectures would be another distribution:
  on digits.arch it takes the deepest repeat 93% of the time, against the builder's 1 in 3, and
  so builds bigger networks; on nb201.arch the two are the same). Sampling (for digits: with the architecture built and
  planned to check `require params`), the interpreter's walk that makes the architecture graph,
  static shape inference, code generation (a new forward pass is compiled once per structure) and
  the layers' constructors; where that time goes is printed below the table. The build is
  measured twice: first in a fresh process (its first 5 x reps builds: "cold", where archdsl's
  caches are empty: new structures walked in full, layer recipes checked against the real
  constructors, forward passes compiled), then once both builders have made `--warmup` more
  networks ("steady": what a search that builds many networks gets). The target is for the
  steady figure; the cold one is printed beside it;
- step: forward + backward of the compiled NAS-Bench-201 network, batch 64, against a
  hand-written nn.Module written the way NAS-Bench-201's own code writes it;
- memory: peak memory allocated during one training step (forward, backward, SGD update), from
  the profiler's allocation events, against the same hand-written module.
Targets (issue 3): build <= 1.10, step <= 1.02, memory <= 1.05.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from archdsl.backends import pytorch as pt
from torch import nn

import archdsl
from archdsl.evaluators.nb201 import EDGES, OPERATIONS

ROOT = Path(__file__).resolve().parent.parent


# ============================================================ hand-written NAS-Bench-201
class ReLUConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int) -> None:
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(cin, cout, k, stride, padding, bias=False),
                                nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def nb201_op(name: str, c: int) -> nn.Module:
    return {"none": lambda: Zero(), "skip_connect": lambda: nn.Identity(),
            "nor_conv_1x1": lambda: ReLUConvBN(c, c, 1, 1, 0),
            "nor_conv_3x3": lambda: ReLUConvBN(c, c, 3, 1, 1),
            "avg_pool_3x3": lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False)}[name]()


class InferCell(nn.Module):
    def __init__(self, ops: dict[tuple[int, int], str], c: int) -> None:
        super().__init__()
        self.edges = list(ops)
        self.layers = nn.ModuleList(nb201_op(ops[e], c) for e in self.edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(sum(layer(nodes[i]) for (jj, i), layer in zip(self.edges, self.layers,
                                                                       strict=True) if jj == j))
        return nodes[-1]


class ResNetBasicblock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, 2, 1)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0),
                                        nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Net(nn.Module):
    def __init__(self, ops: dict[tuple[int, int], str]) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        cells: list[nn.Module] = []
        for i, c in enumerate((16, 32, 64)):
            if i:
                cells.append(ResNetBasicblock(c // 2, c))
            cells += [InferCell(ops, c) for _ in range(5)]
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.lastact(x)
        return self.classifier(x.mean(dim=(2, 3)))


def hand_nb201(rng: random.Random) -> nn.Module:
    return NB201Net({e: rng.choice(OPERATIONS) for e in EDGES})


# ============================================================ hand-written digits space
class ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, act: type[nn.Module]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DigitsNet(nn.Module):
    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        width = rng.choice((16, 32))
        act = rng.choice((nn.ReLU, nn.GELU, nn.SiLU))
        layers: list[nn.Module] = [ConvBN(1, width, 3, act)]
        c = width
        for _ in range(rng.choice((1, 2, 3))):
            out = rng.choice((width, 2 * width))
            layers.append(ConvBN(c, out, rng.choice((3, 5)), act))
            if rng.random() < 0.5:
                layers.append(nn.Dropout(rng.choice((0.1, 0.3, 0.5))))
            c = out
        self.body = nn.Sequential(*layers)
        self.res = nn.Sequential(ConvBN(c, width, 3, act), nn.Conv2d(width, width, 3, padding=1),
                                 nn.BatchNorm2d(width))
        self.proj = (nn.Sequential(nn.Conv2d(c, width, 1, bias=False), nn.BatchNorm2d(width))
                     if c != width else nn.Identity())
        if rng.random() < 0.5:
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            feats = width
        else:
            hidden = rng.choice((32, 64))
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * 16, hidden), act())
            feats = hidden
        self.out = nn.Linear(feats, 10)
        self.lr = 10 ** rng.uniform(-4, -1)
        self.batch = rng.choice((32, 64, 128))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        x = self.res(x) + self.proj(x)
        x = nn.functional.max_pool2d(x, 2)
        return self.out(self.head(x))


def hand_digits(rng: random.Random) -> nn.Module:
    while True:
        model = DigitsNet(rng)
        if sum(p.numel() for p in model.parameters()) <= 200_000:
            return model


# ============================================================ measuring
def alternate(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median seconds of each function, the functions run in turn `reps` times."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def archdsl_builder(space: archdsl.Space, rng: random.Random) -> Callable[[], nn.Module]:
    return lambda: pt.build(space.materialize(space.sample(rng, uniform=False)))


def build_parts(space: archdsl.Space, rng: random.Random, reps: int) -> dict[str, float]:
    """Median milliseconds of each part of the archdsl build, over `reps` new configurations."""
    times: dict[str, list[float]] = {k: [] for k in ("sample", "materialize", "plan",
                                                     "codegen + constructors")}
    for _ in range(reps):
        t0 = time.perf_counter()
        config = space.sample(rng, uniform=False)
        t1 = time.perf_counter()
        arch = space.materialize(config)
        t2 = time.perf_counter()
        p = pt.plan(arch)
        t3 = time.perf_counter()
        pt.build(p)
        t4 = time.perf_counter()
        for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[k].append(dt * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_step_memory(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Peak bytes allocated (above the start) during one SGD training step."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # momentum buffers exist from here on, for both models alike
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                profile_memory=True) as prof:
        step()
    # allocations are the ops' own (self) memory, frees are "[memory]" events; in time order
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage),
                    key=lambda e: e.time_range.start)
    now = peak = 0
    for e in events:
        now += e.self_cpu_memory_usage
        peak = max(peak, now)
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=21, help="alternating repetitions (odd)")
    ap.add_argument("--warmup", type=int, default=300,
                    help="networks each builder makes between the cold and the steady figures")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    out: dict[str, float] = {}
    parts: dict[str, dict[str, float]] = {}

    digits = archdsl.load(ROOT / "examples/digits.arch")
    nb201 = archdsl.load(ROOT / "examples/nb201.arch")
    for name, space, hand in [("digits", digits, hand_digits), ("nb201", nb201, hand_nb201)]:
        r1, r2 = random.Random(1), random.Random(1)
        fns = {"archdsl": archdsl_builder(space, r1), "hand": lambda h=hand, r=r2: h(r)}
        t = alternate(fns, args.reps * 5)
        out[f"cold_{name}_ms"] = t["archdsl"] * 1e3
        out[f"cold_{name}_hand_ms"] = t["hand"] * 1e3
        out[f"cold_{name}_ratio"] = t["archdsl"] / t["hand"]
        alternate(fns, args.warmup)
        t = alternate(fns, args.reps * 5)
        out[f"build_{name}_ms"] = t["archdsl"] * 1e3
        out[f"build_{name}_hand_ms"] = t["hand"] * 1e3
        out[f"build_{name}_ratio"] = t["archdsl"] / t["hand"]
        parts[name] = build_parts(space, random.Random(2), args.reps * 5)

    # the same NB201 architecture both ways, with the same weights
    ops = {e: op for e, op in zip(EDGES, ("nor_conv_3x3", "nor_conv_1x1", "skip_connect",
                                          "avg_pool_3x3", "nor_conv_3x3", "none"), strict=True)}
    config = {EDGES[e]: op for e, op in ops.items()}
    ours = pt.build(nb201.materialize(config))
    hand = NB201Net(ops)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hand.parameters())
    x = torch.randn(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,))

    def fwd_bwd(model: nn.Module) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
        return run

    for m in (ours, hand):
        fwd_bwd(m)()  # warm up
    t = alternate({"archdsl": fwd_bwd(ours), "hand": fwd_bwd(hand)}, args.reps)
    out["step_nb201_ms"] = t["archdsl"] * 1e3
    out["step_nb201_hand_ms"] = t["hand"] * 1e3
    out["step_nb201_ratio"] = t["archdsl"] / t["hand"]
    mem_ours, mem_hand = peak_step_memory(ours, x, y), peak_step_memory(hand, x, y)
    out["memory_nb201_mib"] = mem_ours / 2**20
    out["memory_nb201_hand_mib"] = mem_hand / 2**20
    out["memory_nb201_ratio"] = mem_ours / mem_hand

    if args.json:
        print(json.dumps(out))
        return
    rows = [("sample -> module, digits.arch", "build_digits", "ms", 1.10),
            ("  the same, cold (fresh process)", "cold_digits", "ms", None),
            ("sample -> module, nb201.arch", "build_nb201", "ms", 1.10),
            ("  the same, cold (fresh process)", "cold_nb201", "ms", None),
            ("forward+backward, NB201, batch 64", "step_nb201", "ms", 1.02),
            ("peak memory of a training step, NB201", "memory_nb201", "mib", 1.05)]
    print(f"{'figure':42} {'archdsl':>10} {'hand':>10} {'ratio':>7} {'target':>7}")
    for label, key, unit, target in rows:
        ours_v, hand_v = out[f"{key}_{unit}"], out[f"{key}_hand_{unit}"]
        ratio = out[f"{key}_ratio"]
        verdict = "" if target is None or ratio <= target else "  MISSED"
        print(f"{label:42} {ours_v:9.2f}{unit[0]} {hand_v:9.2f}{unit[0]} {ratio:7.3f} "
              f"{'<= ' + str(target) if target else '':>7}{verdict}")
    print("archdsl build, median ms of each part (new configurations, not alternated):")
    for name, ms in parts.items():
        print(f"  {name + '.arch':12} " + "   ".join(f"{k} {v:.2f}" for k, v in ms.items()))


if __name__ == "__main__":
    main()
