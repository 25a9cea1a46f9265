"""SMD, stochastic mini-batch dropping (E2-Train §3.1; official code main_all.py l.223): every iteration's
mini-batch is dropped with probability ``rate``. A dropped iteration costs nothing (the code fetches the
batch and discards it before any compute; the fetch is not modelled) but still counts toward the schedule,
so a 64k-iteration run executes (1 - rate) x 64k iterations in expectation. With a seed the executed count
is one Binomial(iterations, 1 - rate) draw (numpy Generator), i.e. one concrete training run.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import E2simError
from ..plan import Plan
from ..records import Record, record
from ..workload import Workload


def check_rate(rate: float, what: str = "--smd") -> float:
    rate = float(rate)
    if not (0.0 <= rate < 1.0):
        raise E2simError(f"{what}: drop rate must be in [0, 1), got {rate:g}")
    return rate


def check_seed(seed, what: str = "--seed") -> int | None:
    """None, or an integer numpy's Generator accepts (0 .. 2**63 - 1)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or not 0 <= seed < 2**63):
        raise E2simError(f"{what}: must be an integer in 0..2**63-1, got {seed!r}")
    return seed


def executed_iterations(iterations: int | float, rate, seed: int | None = None):
    """Executed iterations: the expectation (1 - rate) x iterations, or a Binomial draw with ``seed``.
    ``rate`` may be an array (the sweep); the draw is then one per rate, from one Generator."""
    keep = 1.0 - np.asarray(rate, dtype=float)
    if seed is None:
        return keep * iterations
    rng = np.random.default_rng(seed)
    return np.asarray(rng.binomial(int(iterations), keep), dtype=float)


@record
class SMD(Record):
    rate: float
    seed: int | None = None
    name: str = "smd"

    def __post_init__(self):
        check_rate(self.rate)
        check_seed(self.seed)

    def workload(self, w: Workload) -> Workload:
        return w

    def apply(self, plan: Plan, workload: Workload) -> Plan:
        # Drops act on the iterations the plan would otherwise execute (composes with other schedules).
        n = plan.iterations_executed if self.seed is None else round(plan.iterations_executed)
        executed = float(executed_iterations(n, self.rate, self.seed))
        note = f"smd: drop rate {self.rate:g}" + (f", seed {self.seed}" if self.seed is not None else "")
        return replace(plan, iterations_executed=executed).with_notes(note)
