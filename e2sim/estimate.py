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
from dataclasses import field

import numpy as np

from .cost import ItemCosts, item_costs
from .counts import PASSES, count
from .errors import E2simError
from .energy import COMPONENTS, activity_matrix, component_energy, component_of
from .lowering import geometry
from .plan import Plan, base_plan, inference_plan
from .profile import HardwareProfile, load_profile
from .records import to_plain
from .records import Record, record
from .workload import Workload
from .workload_files import load_workload


BAND_LOW, BAND_HIGH = 0.05, 0.95  # quantiles of the band


def quantiles(x, qs) -> np.ndarray:
    """``np.quantile(x, qs)`` (its default linear method, the same floating-point steps) without its call of
    ``np.unique``, which imports ``numpy.ma`` (tens of ms of every estimate's start-up)."""
    a = np.sort(np.asarray(x, float).ravel())
    h = (len(a) - 1) * np.asarray(qs, float)
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, len(a) - 1)
    t = h - lo
    below, above = a[lo], a[hi]
    diff = above - below
    # numpy's _lerp: from the lower point for t < 0.5, from the upper one above (monotone and exact at ends)
    return np.where(t >= 0.5, above - diff * (1 - t), below + diff * t)
# Per-profile values derived once (a calibrated profile carries a 200-vector bootstrap): id -> (profile, data).
_DERIVED: dict[int, tuple[HardwareProfile, dict]] = {}


def _derived(profile: HardwareProfile) -> dict:
    hit = _DERIVED.get(id(profile))
    if hit is not None and hit[0] is profile:
        return hit[1]
    vals = profile.linear_constants()
    d = {"names": list(vals), "values": np.fromiter(vals.values(), float)}
    cal = profile.calibration
    if cal is not None:
        bs = cal.bootstrap
        cols = [d["names"].index(c) for c in bs.constants]
        rest = np.ones(len(vals), bool)
        rest[cols] = False
        d.update(cols=np.array(cols), rest=rest, vectors=np.asarray(bs.vectors_si, float),
                 residual=1.0 + np.asarray(bs.residual_fractions, float),
                 time_q=quantiles(bs.time_ratios, [BAND_LOW, BAND_HIGH]))
    if len(_DERIVED) > 64:
        _DERIVED.clear()
    _DERIVED[id(profile)] = (profile, d)
    return d


def _components(profile: HardwareProfile) -> np.ndarray:
    d = _derived(profile)
    if "components" not in d:
        d["components"] = component_of(profile)
    return d["components"]


def _profile_digest(profile: HardwareProfile) -> str:
    d = _derived(profile)
    if "digest" not in d:
        blob = json.dumps(to_plain(profile), sort_keys=True)
        d["digest"] = hashlib.sha256(blob.encode()).hexdigest()
    return d["digest"]


@record
class Estimate(Record):
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
        return {k: float(v) for k, v in zip(_derived(self.profile)["names"], tot)}

    def sensitivity(self) -> dict[str, float]:
        """Elasticity d ln E / d ln c of every linear constant: c * activity_c / E (exact, E is linear)."""
        e = self.energy_j
        d = _derived(self.profile)
        tot = self.activity_per_iteration.sum(0) * self.iterations
        return {k: (float(v * a / e) if e > 0 else 0.0) for k, v, a in zip(d["names"], d["values"], tot)}

    def energy_samples(self, residual: bool = True) -> np.ndarray | None:
        """Energy (J) of the run under each bootstrap replicate of the profile's calibration (times that
        replicate's model residual factor unless ``residual`` is False); None for an uncalibrated profile."""
        d = _derived(self.profile)
        if "vectors" not in d:
            return None
        tot = self.activity_per_iteration.sum(0) * self.iterations
        e = d["vectors"] @ tot[d["cols"]] + float(tot[d["rest"]] @ d["values"][d["rest"]])
        return e * d["residual"] if residual else e

    def band(self) -> dict[str, float]:
        """5-95 % band of energy and time from the profile's calibration ({} when uncalibrated):
        energy from the bootstrap replicates of the fit times their leave-one-out residuals, time from the
        published / predicted time ratios of the fitted designs. Always low <= value <= high."""
        e = self.energy_samples()
        if e is None:
            return {}
        lo, hi = quantiles(e, [BAND_LOW, BAND_HIGH])
        r_lo, r_hi = _derived(self.profile)["time_q"]
        t = self.time_s
        return {"energy_j_low": min(float(lo), self.energy_j), "energy_j_high": max(float(hi), self.energy_j),
                "time_s_low": min(t * float(r_lo), t), "time_s_high": max(t * float(r_hi), t)}

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
        blob = json.dumps({"profile": _profile_digest(self.profile), "workload": self.workload.name,
                           "batch_size": self.plan.counts.batch_size, "settings": self.settings,
                           "notes": list(self.plan.notes)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def summary(self) -> str:
        """The human-readable summary ``e2sim estimate`` prints (energy in J..GJ and kWh, time, shares)."""
        from .summary import summary_text

        return summary_text(self.to_dict(), cli_hint=False)

    def to_dict(self, sensitivity: bool = False) -> dict:
        from . import __version__

        band = self.band()
        d = {
            "energy_j": self.energy_j, **{k: band[k] for k in ("energy_j_low", "energy_j_high") if k in band},
            "time_s": self.time_s, **{k: band[k] for k in ("time_s_low", "time_s_high") if k in band},
            "cycles": self.cycles,
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
        if self.plan.inference:
            d["inference"] = True
        if sensitivity:
            d["sensitivity"] = self.sensitivity()
        return d


def estimate_plan(plan: Plan, workload: Workload, profile: str | HardwareProfile = "zedboard", *,
                  scalesim_compat: bool = False) -> Estimate:
    """Price an already-built plan (e.g. one transformed by techniques) on a profile."""
    prof = load_profile(profile)
    costs = item_costs(plan, geometry(workload), prof, compat=scalesim_compat)
    time_s = costs.cycles / prof.array.clock_hz.value
    act = activity_matrix(plan, costs, time_s, prof)
    values = _derived(prof)["values"]
    return Estimate(
        plan=plan, workload=workload, profile=prof, costs=costs, activity_per_iteration=act,
        energy_per_iteration_j=component_energy(act, values, _components(prof)), scalesim_compat=scalesim_compat,
        settings={"precision": plan.precision, "scalesim_compat": scalesim_compat,
                  "dataflow": prof.array.dataflow.value},
    )


def estimate(workload: str | Workload, profile: str | HardwareProfile = "zedboard", precision: str = "fp32", *,
             techniques=None, iterations: int | None = None, batch_size: int | None = None,
             plan_transform: Callable[[Plan], Plan] | None = None, scalesim_compat: bool = False,
             inference: bool = False) -> Estimate:
    """Energy and time of training ``workload`` on ``profile`` (whole schedule unless ``iterations``); with
    ``inference``, of ``iterations`` (default 1) forward passes of one batch.

    ``techniques``: E2-Train techniques applied on top of ``precision``, as technique objects
    (``[SMD(0.5), SLU(0.4), PSG(fallback=0.1)]``) or a ``Techniques``; for the saving against a baseline
    see ``e2sim.estimate_with_savings`` and ``e2sim.compare``.
    """
    if techniques is not None:
        if inference:
            raise E2simError("inference: techniques describe training; estimate inference without them")
        from .techniques import as_techniques, build

        w, plan = build(load_workload(workload), as_techniques(techniques), precision, iterations, batch_size)
        if plan_transform is not None:
            plan = plan_transform(plan)
        return estimate_plan(plan, w, profile, scalesim_compat=scalesim_compat)
    w = load_workload(workload)
    if inference:
        plan = inference_plan(count(w, batch_size), precision, iterations or 1)
    else:
        plan = base_plan(count(w, batch_size), precision, iterations or w.schedule.iterations)
    if plan_transform is not None:
        plan = plan_transform(plan)
    return estimate_plan(plan, w, profile, scalesim_compat=scalesim_compat)
