"""The early-stopping schedulers (archdsl/schedulers/): one conformance suite run over every
scheduler, then hand-worked examples per algorithm.

The conformance suite simulates a search: W workers, trials with random learning curves, random
numbers of epochs of their own, random failures (before any report, between reports, after the
decision that ends them), evaluators that save state (PAUSE pauses) or not (PAUSE stops). It
logs every call and checks: every trial ends; next() only promotes paused trials, never one
twice at the same rung, never starts one when it may not; when nothing runs and next() gives
None, no paused trial is promotable by the algorithm's own rule (an oracle computed from the
log, independent of the scheduler's books); and a scheduler rebuilt from the "study" at any
point (the runner's replay, in two call orders) answers the rest of the log as the live one did.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl.errors import ArchDSLError
from archdsl.reporting import CONTINUE, DECISIONS, PAUSE, STOP
from archdsl.schedulers import NEW, SCHEDULERS, Scheduler, ladder, make_scheduler

SYNCHRONOUS = ("sha", "hyperband")


# ---- the simulated search -------------------------------------------------------------------
@dataclass
class Trial:
    epochs: int
    curve: list[float]  # the value at steps 1..epochs
    fail_at: int | None  # fails instead of reporting this step; epochs + 1: at its end
    step: int = 0  # the last step reported
    job: str | None = None  # None (no job), "train", or the status its job will end with
    status: str = "running"  # running, paused, or how it ended


@dataclass
class World:
    sched: Scheduler
    workers: int
    budget: int  # trials that may start
    rnd: random.Random
    max_epochs: int
    keeps_state: bool
    trials: dict[int, Trial] = field(default_factory=dict)
    log: list[tuple] = field(default_factory=list)
    promotions: set[tuple[int, int]] = field(default_factory=set)  # (trial, step) pairs

    def new_trial(self) -> Trial:
        r = self.rnd
        epochs = r.randint(1, self.max_epochs + 2)
        start, gain, speed = r.random() * 0.5, r.random() * 0.5, r.random() * 2 + 0.1
        curve = [round(start + gain * (1 - math.exp(-speed * s)) + r.gauss(0, 0.02), 2)
                 for s in range(1, epochs + 1)]
        fail_at = r.randint(1, epochs + 1) if r.random() < 0.2 else None
        return Trial(epochs, curve, fail_at)

    def busy(self) -> list[int]:
        return [t for t, trial in self.trials.items() if trial.job is not None]

    def fill(self) -> bool:
        """Free workers ask next() until one gets None; False when it did."""
        while len(self.busy()) < self.workers:
            can_start = len(self.trials) < self.budget
            d = self.sched.next(can_start)
            self.log.append(("next", can_start, d))
            if d is None:
                return False
            if d == NEW:
                assert can_start, "NEW when no trial may start"
                d = len(self.trials)
                self.trials[d] = self.new_trial()
                self.sched.add(d)
                self.log.append(("add", d))
            else:
                trial = self.trials[d]
                assert trial.status == "paused" and trial.job is None, \
                    f"promoted trial {d}, which is {trial.status}"
                assert (d, trial.step) not in self.promotions, f"trial {d} promoted twice"
                self.promotions.add((d, trial.step))
                trial.status = "running"
            self.trials[d].job = "train"
        return True

    def advance(self, t: int) -> None:
        """The trial's job does its next thing: report a step, fail, or end."""
        trial = self.trials[t]
        if trial.job != "train":  # the decision was made: the job ends
            status = "failed" if trial.fail_at == trial.epochs + 1 else trial.job
            self.end(t, status)
            return
        s = trial.step + 1
        if trial.fail_at == s:
            self.end(t, "failed")
            return
        value = trial.curve[s - 1]
        d = self.sched.report(t, s, value)
        self.log.append(("report", t, s, value, d))
        assert d in DECISIONS and (d != PAUSE or self.sched.pauses)
        trial.step = s
        if s == trial.epochs:  # its last step: the reporter answers True whatever was said
            trial.job = "ok"
        elif d == STOP or (d == PAUSE and not self.keeps_state):
            trial.job = "stopped"
        elif d == PAUSE:
            trial.job = "paused"

    def end(self, t: int, status: str) -> None:
        self.sched.end(t, status)
        self.log.append(("end", t, status))
        self.trials[t].job, self.trials[t].status = None, status

    def run(self) -> None:
        for _ in range(100_000):
            more = self.fill()
            busy = self.busy()
            if not busy:
                assert not more or len(self.trials) >= self.budget
                return
            self.advance(self.rnd.choice(busy))
        raise AssertionError("the search never ended")


def scheduler(name: str, min_steps: int, eta: int, max_steps: int | None) -> Scheduler:
    return make_scheduler(name, min_steps=min_steps, reduction_factor=eta, max_steps=max_steps)


# ---- the oracle: what the algorithm's own rule says about the log --------------------------
def pauses_of(log: list[tuple]) -> dict[int, list[float]]:
    """trial -> its value at each of its pauses (a report answered PAUSE), in order."""
    out: dict[int, list[float]] = {}
    for e in log:
        if e[0] == "report" and e[4] == PAUSE:
            out.setdefault(e[1], []).append(e[3])
    return out


def promoted_of(log: list[tuple]) -> set[tuple[int, int]]:
    """(trial, j): the trial was promoted after its j-th pause (from 0)."""
    count: dict[int, int] = {}
    out = set()
    for e in log:
        if e[0] == "report" and e[4] == PAUSE:
            count[e[1]] = count.get(e[1], 0) + 1
        elif e[0] == "next" and isinstance(e[2], int):
            out.add((e[2], count[e[2]] - 1))
    return out


def top(values: dict[int, float], n: int) -> list[int]:
    return sorted(values, key=lambda t: (-values[t], t))[:n]


def check_asha_promotions(log: list[tuple], eta: int) -> None:
    """Each ASHA promotion, when it was made, came from the top 1/eta of the trial's rung."""
    rungs: list[dict[int, float]] = []
    at: dict[int, int] = {}  # trial -> the rung it paused at last
    for e in log:
        if e[0] == "report" and e[4] == PAUSE:
            k = at[e[1]] = at.get(e[1], -1) + 1
            rungs.extend({} for _ in range(k + 1 - len(rungs)))
            rungs[k][e[1]] = e[3]
        elif e[0] == "next" and isinstance(e[2], int):
            rung = rungs[at[e[2]]]
            assert e[2] in top(rung, len(rung) // eta), f"{e} is not in the top of its rung"


def check_median_decisions(log: list[tuple], min_steps: int) -> None:
    """Each answer of `median` is the rule's: STOP when, at a step >= min_steps with at least
    3 other trials there, the trial's best so far is below the median of theirs."""
    at_step: dict[int, dict[int, float]] = {}
    best: dict[int, float] = {}
    for e in log:
        if e[0] == "report":
            _, t, step, value, d = e
            best[t] = max(best.get(t, value), value)
            others = list(at_step.setdefault(step, {}).values())
            at_step[step][t] = value
            stop = step >= min_steps and len(others) >= 3 and best[t] < statistics.median(others)
            assert d == (STOP if stop else CONTINUE), e


def bracket_sizes(name: str, min_steps: int, eta: int, max_steps: int, count: int) -> list[int]:
    """Bracket sizes in the order they fill: sha eta**K; hyperband per Li et al. 2018."""
    k = len(ladder(min_steps, eta, max_steps)) - 1
    if name == "sha":
        return [eta ** k] * count
    return [math.ceil((k + 1) * eta ** s / (s + 1)) for s in range(k, -1, -1)] * count


def check_nothing_promotable(world: World, name: str, min_steps: int, eta: int,
                             max_steps: int | None) -> None:
    """At the end of a search (closed), no paused trial is in the top of its rung, and every
    promotion came from the top."""
    pauses, promoted = pauses_of(world.log), promoted_of(world.log)
    paused = {t for t, trial in world.trials.items() if trial.status == "paused"}
    groups: list[tuple[dict[int, float], int]] = []  # (values at a rung, how many go on)
    if name == "asha":
        check_asha_promotions(world.log, eta)
        for k in range(max((len(v) for v in pauses.values()), default=0)):
            rung = {t: v[k] for t, v in pauses.items() if len(v) > k}
            groups.append((rung, len(rung) // eta))
        ks = range(len(groups))
    elif name in SYNCHRONOUS:
        assert max_steps is not None
        members = sorted(world.trials)
        ks, groups = [], []
        for size in bracket_sizes(name, min_steps, eta, max_steps, len(members) + 1):
            if not members:
                break
            bracket, members = members[:size], members[size:]
            n = size if len(bracket) == size else len(bracket)
            for level in range(max((len(pauses.get(t, [])) for t in bracket), default=0)):
                rung = {t: pauses[t][level] for t in bracket if len(pauses.get(t, [])) > level}
                groups.append((rung, n // eta ** (level + 1)))
                ks.append(level)
    else:
        assert not pauses and not paused
        if name == "median":
            check_median_decisions(world.log, min_steps)
        return
    for (rung, keep), k in zip(groups, ks, strict=True):
        best = set(top(rung, keep))
        went_on = {t for t in rung if (t, k) in promoted}
        if name != "asha":  # (a later trial may push one ASHA promoted out of its top)
            assert went_on <= best, f"promoted {went_on - best} from outside the top {best}"
        waiting = {t for t in best & paused if len(pauses[t]) == k + 1}
        assert not waiting, f"trials {waiting} are promotable but the search ended"


# ---- replay ---------------------------------------------------------------------------------
def replay(name: str, options: tuple, log: list[tuple], order: str) -> Scheduler:
    """A scheduler rebuilt the way the runner does on --resume, from the study `log` makes."""
    added: list[int] = []
    reports: dict[int, list[tuple[int, float]]] = {}
    status: dict[int, str] = {}
    for e in log:
        if e[0] == "add":
            added.append(e[1])
            reports[e[1]] = []
        elif e[0] == "report":
            reports[e[1]].append((e[2], e[3]))
        elif e[0] == "end":
            status[e[1]] = e[2]
        elif e[0] == "next" and isinstance(e[2], int):
            status.pop(e[2])  # promoted: running again (interrupted: no end)
    s = scheduler(name, *options)
    if order == "by trial":
        for t in added:
            s.add(t)
            for step, value in reports[t]:
                s.report(t, step, value)
            if t in status:
                s.end(t, status[t])
    else:  # every add, then every report by step, then every end
        for t in added:
            s.add(t)
        every = sorted((step, t, v) for t in added for step, v in reports[t])
        for step, trial, value in every:
            s.report(trial, step, value)
        for t in added:
            if t in status:
                s.end(t, status[t])
    return s


def check_replay(s: Scheduler, rest: list[tuple]) -> None:
    """The replayed scheduler answers the rest of the log as the live one did."""
    for e in rest:
        if e[0] == "next":
            assert s.next(e[1]) == e[2], f"replay: {e}"
        elif e[0] == "add":
            s.add(e[1])
        elif e[0] == "report":
            assert s.report(e[1], e[2], e[3]) == e[4], f"replay: {e}"
        else:
            s.end(e[1], e[2])


# ---- the conformance suite ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SCHEDULERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workers=st.integers(1, 4), budget=st.integers(1, 40), min_steps=st.integers(1, 2),
       eta=st.integers(2, 4), span=st.integers(0, 12), bounded=st.booleans(),
       keeps_state=st.booleans(), rnd=st.randoms(use_true_random=False))
def test_conformance(name: str, workers: int, budget: int, min_steps: int, eta: int, span: int,
                     bounded: bool, keeps_state: bool, rnd: random.Random) -> None:
    max_steps = min_steps + span if bounded or name in SYNCHRONOUS else None
    options = (min_steps, eta, max_steps)
    sched = scheduler(name, *options)
    world = World(sched, workers, budget, rnd, max_steps or min_steps * eta ** 2, keeps_state)
    world.run()

    assert 1 <= len(world.trials) <= budget
    for t, trial in world.trials.items():  # every trial ended
        assert trial.job is None and trial.status in ("ok", "paused", "stopped", "failed"), t
    assert world.log[-1] == ("next", False, None)
    assert sched.running() == [] and sched.pausing() == []
    assert sched.paused() == sorted(t for t, x in world.trials.items() if x.status == "paused")
    if not keeps_state or not sched.pauses:
        assert sched.paused() == []
    check_nothing_promotable(world, name, *options)

    cuts = {0, len(world.log)} | {rnd.randrange(len(world.log)) for _ in range(3)}
    for cut in sorted(cuts):
        for order in ("by trial", "by step"):
            check_replay(replay(name, options, world.log[:cut], order), world.log[cut:])


# ---- options and names ----------------------------------------------------------------------
def test_names_and_pauses() -> None:
    assert list(SCHEDULERS) == ["none", "median", "sha", "asha", "hyperband"]
    pauses = {n: scheduler(n, 1, 3, 9).pauses for n in SCHEDULERS}
    assert pauses == {"none": False, "median": False, "sha": True, "asha": True,
                      "hyperband": True}
    assert all(scheduler(n, 1, 3, 9).name == n for n in SCHEDULERS)


def test_unknown_name_suggests() -> None:
    with pytest.raises(ArchDSLError) as e:
        make_scheduler("ahsa")
    assert e.value.message == "unknown scheduler 'ahsa'" and e.value.hint == "did you mean 'asha'?"
    with pytest.raises(ArchDSLError) as e:
        make_scheduler("xyz")
    assert e.value.hint == "schedulers: none, median, sha, asha, hyperband"


@pytest.mark.parametrize("options,flag", [
    ((0, 3, None), "--min-epochs"), ((1, 1, None), "--reduction-factor"),
    ((True, 3, None), "--min-epochs"), ((1, 2.5, None), "--reduction-factor"),
    ((3, 3, 2), "--max-epochs"), ((1, 3, 0), "--max-epochs")])
def test_bad_options_name_the_flag(options: tuple, flag: str) -> None:
    for name in SCHEDULERS:
        with pytest.raises(ArchDSLError) as e:
            scheduler(name, *options)
        assert e.value.message.startswith(flag)
    with pytest.raises(ArchDSLError, match="--max-epochs .3. must be at least --min-epochs .4."):
        make_scheduler("asha", min_steps=4, max_steps=3)


@pytest.mark.parametrize("name", SYNCHRONOUS)
def test_synchronous_ones_need_max_epochs(name: str) -> None:
    with pytest.raises(ArchDSLError, match=f"the {name} scheduler needs --max-epochs"):
        make_scheduler(name)


def test_ladder() -> None:
    assert ladder(1, 3, 5) == [1, 3, 5]  # examples/digits.arch: 5 epochs
    assert ladder(1, 3, 9) == [1, 3, 9]
    assert ladder(2, 2, 16) == [2, 4, 8, 16]
    assert ladder(3, 3, 3) == [3]
    s = make_scheduler("asha")
    assert [s.rung(k) for k in range(4)] == [1, 3, 9, 27]  # no max: for ever
    s = make_scheduler("asha", max_steps=5)
    assert [s.rung(k) for k in range(3)] == [1, 3, None]


def test_misuse_is_refused() -> None:
    s = make_scheduler("asha")
    with pytest.raises(ValueError, match="never added"):
        s.report(0, 1, 0.5)
    s.add(0)
    with pytest.raises(ValueError, match="added before"):
        s.add(0)
    with pytest.raises(ValueError, match="unknown end status"):
        s.end(0, "done")
    s.end(0, "failed")
    with pytest.raises(ValueError, match="which ended failed"):
        s.report(0, 1, 0.5)


# ---- hand-worked examples -------------------------------------------------------------------
def start(s: Scheduler, t: int) -> None:
    assert s.next(True) == NEW
    s.add(t)


def pause(s: Scheduler, t: int, step: int, value: float) -> None:
    assert s.report(t, step, value) == PAUSE
    s.end(t, "paused")


def test_asha_promotes_the_best_of_the_first_three() -> None:
    s = make_scheduler("asha", min_steps=1, reduction_factor=3, max_steps=5)
    for t, v in enumerate([0.5, 0.9, 0.7]):
        start(s, t)
        if t == 2:
            assert s.next(True) == NEW  # 2 in rung 1: floor(2/3) = 0 candidates
        pause(s, t, 1, v)
    assert s.next(False) == 1  # the best of 3 at rung 1
    assert s.report(1, 2, 0.91) == CONTINUE
    assert s.report(1, 3, 0.93) == PAUSE  # rung 3
    s.end(1, "paused")
    assert s.next(True) == NEW  # rung 3 holds 1 (0 candidates); rung 1's top 1 went on
    assert s.next(False) is None
    for t, v in [(3, 0.95), (4, 0.1), (5, 0.2)]:
        s.add(t)
        pause(s, t, 1, v)
    assert s.next(True) == 3  # 6 at rung 1: the top 2 are 3 (0.95) and 1 (promoted)
    assert s.next(True) == NEW
    assert s.report(3, 2, 0.96) == CONTINUE and s.report(3, 3, 0.97) == PAUSE
    s.end(3, "paused")
    for t in (6, 7):
        s.add(t)
        pause(s, t, 1, 0.0)
    s.add(8)
    pause(s, 8, 1, 0.0)  # rung 1: 9 trials, top 3 = 3, 1, 2 (0.7)
    assert s.next(True) == 2
    assert s.report(2, 2, 0.6) == CONTINUE and s.report(2, 3, 0.6) == PAUSE
    s.end(2, "paused")  # rung 3: 0.97 (3), 0.93 (1), 0.6 (2): the top 1 is 3
    assert s.next(True) == 3
    assert s.report(3, 4, 0.98) == CONTINUE  # past the last rung: on to its end
    assert s.report(3, 5, 0.99) == CONTINUE
    s.end(3, "ok")
    assert s.next(False) is None and s.paused() == [0, 1, 2, 4, 5, 6, 7, 8]


def test_asha_without_max_epochs_pauses_at_every_rung() -> None:
    s = make_scheduler("asha", reduction_factor=2)
    s.add(0)
    s.add(1)
    pause(s, 0, 1, 0.9)
    pause(s, 1, 1, 0.1)
    assert s.next(False) == 0
    assert s.report(0, 2, 0.9) == PAUSE  # rung 2
    s.end(0, "paused")
    s.add(2)
    pause(s, 2, 1, 0.5)
    s.add(3)
    pause(s, 3, 1, 0.6)  # rung 1: 0.9 (0, promoted), 0.6 (3): the top 2
    assert s.next(False) == 3
    assert s.report(3, 2, 0.7) == PAUSE
    s.end(3, "paused")  # rung 2: 0.9 (0), 0.7 (3): 0 goes on
    assert s.next(False) == 0
    assert [s.report(0, k, 0.9) for k in (3, 4)] == [CONTINUE, PAUSE]  # rung 4
    s.end(0, "ok")  # its own epochs ended there


def test_asha_a_candidate_that_cannot_go_on_keeps_its_place() -> None:
    s = make_scheduler("asha", max_steps=9)
    for t in range(3):
        s.add(t)
    assert s.report(0, 1, 0.9) == PAUSE
    s.end(0, "ok")  # its own last epoch was 1: it finished at the rung
    pause(s, 1, 1, 0.5)
    s.end(2, "failed")  # before its first report
    assert s.next(False) is None  # rung 1: 0 and 1, floor(2/3) = 0
    s.add(3)
    pause(s, 3, 1, 0.4)  # 3 at rung 1: the top 1 is 0, which finished
    assert s.next(False) is None
    assert s.finished(0) and s.paused() == [1, 3]


def test_sha_brackets() -> None:
    assert make_scheduler("sha", 1, 3, 5).schedule() == [(9, 1), (3, 3), (1, 5)]  # digits
    assert make_scheduler("sha", 1, 3, 9).schedule() == [(9, 1), (3, 3), (1, 9)]
    assert make_scheduler("sha", 1, 3, 27).schedule() == [(27, 1), (9, 3), (3, 9), (1, 27)]
    assert make_scheduler("sha", 2, 2, 8).schedule() == [(4, 2), (2, 4), (1, 8)]
    assert make_scheduler("sha", 5, 3, 5).schedule() == [(1, 5)]  # no rung: no stopping


def test_sha_waits_for_the_whole_rung_then_promotes_the_top_third() -> None:
    s = make_scheduler("sha", 1, 3, 9)
    values = [0.1, 0.8, 0.3, 0.9, 0.2, 0.7, 0.4, 0.6, 0.5]
    for t in range(9):
        start(s, t)
    for t in range(8):
        pause(s, t, 1, values[t])
    assert s.next(True) == NEW  # trial 8 still trains to rung 1: the next bracket starts
    s.add(9)
    assert s.next(False) is None
    pause(s, 8, 1, values[8])
    assert [s.next(True) for _ in range(4)] == [3, 1, 5, NEW]  # the best 3 of 9, best first
    for t, v in [(3, 0.95), (1, 0.85), (5, 0.99)]:
        assert s.report(t, 2, v) == CONTINUE
        if t != 5:
            pause(s, t, 3, v)
    assert s.next(False) is None  # 5 has not reached rung 3
    pause(s, 5, 3, 0.99)
    assert s.next(False) == 5
    assert [s.report(5, k, 0.99) for k in range(4, 10)] == [CONTINUE] * 6
    s.end(5, "ok")
    assert s.next(False) is None  # bracket 2 (trial 9 alone) still trains


def test_sha_failures_and_early_ends_do_not_block_a_rung() -> None:
    s = make_scheduler("sha", 1, 3, 9)
    for t in range(9):
        s.add(t)
    s.end(0, "failed")  # before its first report
    assert s.report(1, 1, 0.99) == PAUSE
    s.end(1, "ok")  # its own last epoch
    s.end(2, "stopped")  # paused, but it saves no state
    for t in range(3, 9):
        pause(s, t, 1, t / 10)
    assert [s.next(False) for _ in range(3)] == [8, 7, None]  # top 3 by value: 1, 8, 7
    assert s.report(8, 2, 0.5) == CONTINUE
    s.end(8, "ok")  # ends before rung 3
    assert s.report(7, 2, 0.5) == CONTINUE
    pause(s, 7, 3, 0.5)  # rung 3: 7 alone reached it; n = 3: top 1
    assert s.next(False) == 7


def test_sha_a_bracket_not_full_is_decided_when_no_trial_may_start() -> None:
    s = make_scheduler("sha", 1, 3, 9)
    for t in range(4):
        s.add(t)
        pause(s, t, 1, t / 10)
    assert s.next(True) == NEW  # the bracket of 9 waits for 5 more
    s.add(4)
    s.end(4, "failed")
    assert s.next(False) == 3  # no more: 5 members, floor(5/3) = 1 goes on
    assert s.next(False) is None


def test_hyperband_brackets_are_the_papers() -> None:
    h = make_scheduler("hyperband", 1, 3, 81)  # Li et al. 2018, table 1 (R = 81, eta = 3)
    assert [h.schedule(i) for i in range(5)] == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)]]
    assert h.schedule(5) == h.schedule(0)  # then again
    h = make_scheduler("hyperband", 1, 3, 9)
    assert [h.schedule(i) for i in range(3)] == [[(9, 1), (3, 3), (1, 9)], [(5, 3), (1, 9)],
                                                [(3, 9)]]
    h = make_scheduler("hyperband", 1, 3, 5)  # digits: the last rung is 5
    assert [h.schedule(i) for i in range(3)] == [[(9, 1), (3, 3), (1, 5)], [(5, 3), (1, 5)],
                                                [(3, 5)]]


def test_hyperband_fills_brackets_in_turn() -> None:
    h = make_scheduler("hyperband", 1, 3, 9)
    for t in range(18):
        start(h, t)
    assert h.report(0, 1, 0.5) == PAUSE  # bracket s=2: rung 1
    assert h.report(9, 1, 0.5) == CONTINUE  # bracket s=1 (trials 9-13): first rung 3
    assert h.report(9, 2, 0.5) == CONTINUE and h.report(9, 3, 0.5) == PAUSE
    assert [h.report(14, k, 0.5) for k in range(1, 10)] == [CONTINUE] * 9  # s=0: no stopping
    h.end(14, "ok")
    assert h.report(17, 1, 0.5) == PAUSE  # a new cycle: bracket s=2 again
    h.end(9, "paused")
    for t in range(10, 14):
        assert h.report(t, 3, t / 100) == PAUSE
        h.end(t, "paused")
    assert h.next(False) == 9  # bracket s=1: n = 5, the top floor(5/3) = 1: 9 (0.5)
    assert h.next(False) is None  # bracket s=2 waits for trials 1-8


def test_median_stops_below_the_median_of_the_others() -> None:
    s = make_scheduler("median", min_steps=2)
    for t in range(5):
        s.add(t)
    for t, v in enumerate([0.5, 0.6, 0.45]):
        assert s.report(t, 1, v) == CONTINUE
        assert s.report(t, 2, v) == CONTINUE  # fewer than 3 others at step 2
    assert s.report(3, 1, 0.1) == CONTINUE  # step 1 < --min-epochs
    assert s.report(3, 2, 0.48) == STOP  # 0.48 < median(0.5, 0.6, 0.45) = 0.5
    s.end(3, "stopped")
    assert s.report(4, 1, 0.65) == CONTINUE
    assert s.report(4, 2, 0.4) == CONTINUE  # its best so far, 0.65, beats 0.49
    assert s.report(4, 3, 0.1) == CONTINUE  # nobody else reached step 3
    s.end(4, "ok")
    assert s.next(True) == NEW and s.next(False) is None


def test_none_never_stops() -> None:
    s = make_scheduler("none", max_steps=3)
    s.add(0)
    assert [s.report(0, k, -1.0) for k in range(1, 6)] == [CONTINUE] * 5
    assert s.next(True) == NEW and s.next(False) is None


def test_pausing_after_a_replay_names_the_interrupted_pauses() -> None:
    s = make_scheduler("asha", max_steps=9)
    s.add(0)
    s.add(1)
    assert s.report(0, 1, 0.5) == PAUSE  # the search was killed before the job ended
    assert s.report(1, 1, 0.4) == PAUSE
    s.end(1, "paused")
    assert s.pausing() == [0] and s.paused() == [1] and s.running() == [0]
    s.end(0, "paused")  # what the runner does with it
    assert s.pausing() == [] and s.paused() == [0, 1]


@pytest.mark.parametrize("name", ["sha", "asha", "hyperband"])
def test_promote_by_hand_counts_as_a_promotion(name: str) -> None:
    s = make_scheduler(name, max_steps=9)
    for t in range(3):
        s.add(t)
        pause(s, t, 1, t / 10)
    with pytest.raises(ValueError, match="not paused"):
        s.promote(7)
    s.promote(0)  # the runner's choice: trial 0 trains on
    assert s.running() == [0] and s.paused() == [1, 2]
    assert s.report(0, 2, 0.1) == CONTINUE and s.report(0, 3, 0.1) == PAUSE  # the next rung
    s.end(0, "paused")
    assert s.next(False) == 2  # rung 1's top 1 (in sha: of the bracket closed with 3)
    assert s.next(False) is None
