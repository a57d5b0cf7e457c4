"""The `hyperband` scheduler: successive halving over brackets of every aggressiveness
(imports base and sha).

Li et al. 2018, "Hyperband: A Novel Bandit-Based Approach to Hyperparameter Optimization"
(JMLR), Algorithm 1: with R = max_steps / min_steps, s_max = log_eta(R) and B = (s_max + 1) R,
bracket s (from s_max down to 0) starts n = ceil(B / R * eta**s / (s + 1)) trials at
r = R * eta**-s steps and runs successive halving on them: n_i = floor(n * eta**-i) trials
reach r_i = r * eta**i, the top floor(n_i / eta) go on. Bracket s_max is the most aggressive
(many trials, first rung min_steps), bracket 0 trains its few trials to max_steps with no
stopping. After bracket 0 the cycle starts again from s_max until the budget ends the search.

Steps are whole epochs on the ladder every scheduler here uses (`ladder`: min_steps * eta**k
below max_steps, then max_steps): s_max is the number of rungs below max_steps. When R is a
power of eta this is the paper exactly (R = 81, eta = 3: brackets of 81, 34, 15, 8 and 5
trials); otherwise the last rung is max_steps and the counts are those for R = eta**s_max.

Brackets run as in `sha` (synchronous, decided rung by rung; one not full is decided with the
members it has once no trial may start); new trials fill them in turn, the next one beginning
as soon as the last is full, so a free worker is never idle while a trial may start.
"""

from __future__ import annotations

from .sha import SuccessiveHalving


class Hyperband(SuccessiveHalving):
    """Hyperband: brackets s = s_max..0 in turn, each a synchronous successive halving."""

    name = "hyperband"

    def shape(self, index: int) -> tuple[int, int]:
        s_max = len(self.ladder) - 1
        s = s_max - index % (s_max + 1)
        size = -(-(s_max + 1) * self.eta ** s // (s + 1))  # ceil(B/R * eta**s / (s+1))
        return size, s_max - s
