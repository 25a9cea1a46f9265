"""The estimate entry point: workload + profile (+ techniques) -> Estimate (energy, time, breakdowns).

    estimate(workload, profile, precision)          base plan of the workload's whole training run
    estimate(..., plan_transform=f)                 f(plan) -> plan (techniques) before pricing
    estimate_plan(plan, workload, profile)          price an already-built plan

Totals for a training run are the per-iteration costs times the plan's executed iterations.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from .cost import ItemCosts, item_costs
from .counts import PASSES, count
from .energy import COMPONENTS, CONSTANTS, activity_matrix, component_energy
from .lowering import geometry
from .plan import Plan, base_plan
from .profile import HardwareProfile, load_profile
from .workload import Workload
from .workload_files import load_workload


def _plain(x):
    """A pydantic model as plain JSON-able values, by its fields (model_dump would build the serializer of
    every nested model on the first call: start-up time)."""
    fields = getattr(type(x), "model_fields", None)
    if fields is not None:
        return {k: _plain(getattr(x, k)) for k in fields}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    return getattr(x, "value", x) if isinstance(x, Enum) else x


@dataclass(frozen=True)
class Estimate:
    """Energy and time of a training run. Per-item arrays are per executed iteration."""

    plan: Plan
    workload: Workload
    profile: HardwareProfile
    costs: ItemCosts
    activity_per_iteration: np.ndarray  # [items, constants]
    energy_per_iteration_j: np.ndarray  # [items, components]
    scalesim_compat: bool = False
    settings: dict = field(default_factory=dict)

    @property
    def iterations(self) -> float:
        return self.plan.iterations_executed

    @property
    def cycles(self) -> float:
        return float(self.costs.cycles.sum() * self.iterations)

    @property
    def time_s(self) -> float:
        return self.cycles / self.profile.array.clock_hz.value

    @property
    def energy_j(self) -> float:
        return float(self.energy_per_iteration_j.sum() * self.iterations)

    @property
    def breakdown_j(self) -> dict[str, float]:
        tot = self.energy_per_iteration_j.sum(0) * self.iterations
        return {c: float(v) for c, v in zip(COMPONENTS, tot)}

    @property
    def by_pass_j(self) -> dict[str, float]:
        per_item = self.energy_per_iteration_j.sum(1) * self.iterations
        return {p: float(per_item[self.plan.pass_ == i].sum()) for i, p in enumerate(PASSES)}

    def activity(self) -> dict[str, float]:
        """Coefficient of each linear profile constant over the run: energy_j == sum(coef * value_SI)."""
        tot = self.activity_per_iteration.sum(0) * self.iterations
        return {k: float(v) for k, v in zip(CONSTANTS, tot)}

    def items_frame(self):
        """One row per plan item: cycles, MACs and traffic per executed iteration."""
        import pandas as pd

        p, c = self.plan, self.costs
        return pd.DataFrame({
            "layer": np.asarray(p.counts.names)[p.layer], "kind": np.asarray(p.counts.kinds)[p.layer],
            "pass": np.asarray(PASSES)[p.pass_], "tag": p.tag, "a_bits": p.a_bits, "b_bits": p.b_bits,
            "is_float": p.is_float, "macs": c.macs, "elem_ops": c.elem_ops,
            "compute_cycles": c.compute_cycles, "stall_cycles": c.stall_cycles, "cycles": c.cycles,
            "sram_read_bits": c.sram_read_bits.sum(1), "sram_write_bits": c.sram_write_bits.sum(1),
            "dram_read_bits": c.dram_read_bits, "dram_write_bits": c.dram_write_bits,
            "energy_j": self.energy_per_iteration_j.sum(1),
        })

    def to_frame(self):
        """Tidy: one row per item x component with the run's energy (J) in that component."""
        import pandas as pd

        p = self.plan
        n, nc = p.n_items, len(COMPONENTS)
        return pd.DataFrame({
            "layer": np.repeat(np.asarray(p.counts.names)[p.layer], nc),
            "kind": np.repeat(np.asarray(p.counts.kinds)[p.layer], nc),
            "pass": np.repeat(np.asarray(PASSES)[p.pass_], nc),
            "tag": np.repeat(p.tag, nc),
            "component": np.tile(COMPONENTS, n),
            "energy_j": (self.energy_per_iteration_j * self.iterations).reshape(-1),
        })

    def config_hash(self) -> str:
        blob = json.dumps({"profile": _plain(self.profile), "workload": self.workload.name,
                           "batch_size": self.plan.counts.batch_size, "settings": self.settings,
                           "notes": list(self.plan.notes)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def summary(self) -> str:
        """The human-readable summary ``e2sim estimate`` prints (energy in J..GJ and kWh, time, shares)."""
        from .summary import summary_text

        return summary_text(self.to_dict(), cli_hint=False)

    def to_dict(self) -> dict:
        from . import __version__

        return {
            "energy_j": self.energy_j, "time_s": self.time_s, "cycles": self.cycles,
            "macs": float(self.costs.macs.sum() * self.iterations),
            "breakdown_j": self.breakdown_j, "by_pass_j": self.by_pass_j,
            "workload": self.workload.name, "profile": self.profile.name,
            "precision": self.plan.precision, "batch_size": self.plan.counts.batch_size,
            "iterations_scheduled": self.plan.iterations_scheduled,
            "iterations_executed": self.plan.iterations_executed,
            "techniques": list(self.plan.notes), "settings": self.settings,
            # per linear profile constant, its coefficient over the run (calibrate and validate read it)
            "activity": self.activity(),
            "e2sim_version": __version__, "config_hash": self.config_hash(),
        }


def estimate_plan(plan: Plan, workload: Workload, profile: str | HardwareProfile = "zedboard", *,
                  scalesim_compat: bool = False) -> Estimate:
    """Price an already-built plan (e.g. one transformed by techniques) on a profile."""
    prof = load_profile(profile)
    costs = item_costs(plan, geometry(workload), prof, compat=scalesim_compat)
    time_s = costs.cycles / prof.array.clock_hz.value
    act = activity_matrix(plan, costs, time_s)
    values = np.array([prof.linear_constants()[k] for k in CONSTANTS])
    return Estimate(
        plan=plan, workload=workload, profile=prof, costs=costs, activity_per_iteration=act,
        energy_per_iteration_j=component_energy(act, values), scalesim_compat=scalesim_compat,
        settings={"precision": plan.precision, "scalesim_compat": scalesim_compat,
                  "dataflow": prof.array.dataflow.value},
    )


def estimate(workload: str | Workload, profile: str | HardwareProfile = "zedboard", precision: str = "fp32", *,
             techniques=None, iterations: int | None = None, batch_size: int | None = None,
             plan_transform: Callable[[Plan], Plan] | None = None, scalesim_compat: bool = False) -> Estimate:
    """Energy and time of training ``workload`` on ``profile`` (whole schedule unless ``iterations``).

    ``techniques``: E2-Train techniques applied on top of ``precision``, as technique objects
    (``[SMD(0.5), SLU(0.4), PSG(fallback=0.1)]``) or a ``Techniques``; for the saving against a baseline
    see ``e2sim.estimate_with_savings`` and ``e2sim.compare``.
    """
    if techniques is not None:
        from .techniques import as_techniques, build

        w, plan = build(load_workload(workload), as_techniques(techniques), precision, iterations, batch_size)
        if plan_transform is not None:
            plan = plan_transform(plan)
        return estimate_plan(plan, w, profile, scalesim_compat=scalesim_compat)
    w = load_workload(workload)
    plan = base_plan(count(w, batch_size), precision, iterations or w.schedule.iterations)
    if plan_transform is not None:
        plan = plan_transform(plan)
    return estimate_plan(plan, w, profile, scalesim_compat=scalesim_compat)
