"""Composing techniques: workload transforms (SLU adds its gates) first, then counts and the base plan,
then each technique's plan transform in a canonical order (PSG, SLU, SMD). The transforms commute (tested),
so the order only fixes the order of the notes and items.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..counts import count
from ..errors import E2simError
from ..plan import Plan, base_plan
from ..records import Record, record
from ..workload import Workload
from .baselines import Baseline, base_precision
from .psg import PSG
from .slu import SLU
from .smd import SMD


class Technique(Protocol):
    name: str

    def workload(self, w: Workload) -> Workload: ...

    def apply(self, plan: Plan, workload: Workload) -> Plan: ...


@record
class Techniques(Record):
    """The E2-Train techniques chosen for a run (None: off)."""

    smd: SMD | None = None
    slu: SLU | None = None
    psg: PSG | None = None

    def ordered(self) -> list[Technique]:
        return [t for t in (self.psg, self.slu, self.smd) if t is not None]

    @property
    def label(self) -> str:
        names = [n.upper() for n, t in (("smd", self.smd), ("slu", self.slu), ("psg", self.psg)) if t]
        return "+".join(names) or "none"

    def subsets(self) -> list[Techniques]:
        """The --compare rows: each technique alone, SMD+SLU, and all three (those that are set)."""
        picks = [("smd",), ("slu",), ("psg",), ("smd", "slu"), ("smd", "slu", "psg")]
        out: list[Techniques] = []
        for names in picks:
            if all(getattr(self, n) is not None for n in names):
                out.append(Techniques(**{n: getattr(self, n) for n in names}))
        return out


def as_techniques(techniques: Techniques | Sequence | None) -> Techniques:
    """``Techniques`` from a Techniques, None, or a sequence of technique objects (``[SMD(0.5), SLU(0.4),
    PSG(fallback=0.1)]``, at most one of each): the Python API's way to pass them."""
    if techniques is None:
        return Techniques()
    if isinstance(techniques, Techniques):
        return techniques
    kinds = {SMD: "smd", SLU: "slu", PSG: "psg"}
    chosen: dict[str, object] = {}
    for t in techniques:
        kind = kinds.get(type(t))
        if kind is None:
            raise E2simError(f"techniques: expected SMD, SLU or PSG objects, got {type(t).__name__}")
        if kind in chosen:
            raise E2simError(f"techniques: {kind.upper()} given twice")
        chosen[kind] = t
    return Techniques(**chosen)


def build(workload: Workload, techniques: Sequence[Technique] | Techniques = (), precision: str = "fp32",
          iterations: int | None = None, batch_size: int | None = None) -> tuple[Workload, Plan]:
    """The workload as the techniques change it and the plan of the whole training run."""
    ts = techniques.ordered() if isinstance(techniques, Techniques) else list(techniques)
    w = workload
    for t in ts:
        w = t.workload(w)
    plan = base_plan(count(w, batch_size), precision, iterations if iterations is not None else w.schedule.iterations)
    for t in ts:
        plan = t.apply(plan, w)
    return w, plan


def baseline_plan(workload: Workload, kind: str = "fp32", iterations: int | None = None,
                  batch_size: int | None = None, precision: str = "fp32") -> Plan:
    """The plan of a named baseline (see baselines.py) over the plain workload; ``precision`` is the run's
    (signsgd and stochastic-depth compute at it, the others at their own)."""
    return build(workload, [Baseline(kind, precision)], base_precision(kind, precision), iterations,
                 batch_size)[1]
