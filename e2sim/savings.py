"""Savings: the estimate of a technique configuration beside the estimate of a named baseline.

    configure(...)                 Techniques from option values (stats files read here)
    estimate_with_savings(...)     -> Savings (configuration, baseline, saving = 1 - E / E_baseline)
    compare(...)                   one row per technique alone and combined, with energy, time and saving
"""
from __future__ import annotations


import numpy as np

from .errors import E2simError
from .estimate import Estimate, estimate_plan
from .profile import HardwareProfile
from .records import Record, record
from .techniques import PSG, SLU, SMD, Baseline, PSGBits, Techniques, as_techniques, baseline_plan, build
from .workload import Workload
from .workload_files import load_workload


# The settings of validation/REPRODUCTION.md's main rows, used by ``e2sim estimate --compare`` when no
# technique is given: SMD drop rate 0.5 is the official code's (main_all.py l.223); the SLU skip ratio and
# the PSG fallback fraction are not published, so these two are assumptions (REPRODUCTION.md shows a grid).
PAPER_SMD_RATE, ASSUMED_SLU_SKIP, ASSUMED_PSG_FALLBACK = 0.5, 0.4, 0.1


def paper_techniques(skip: float = ASSUMED_SLU_SKIP, fallback: float = ASSUMED_PSG_FALLBACK) -> Techniques:
    """All three techniques at the paper's SMD rate and the assumed skip ratio and fallback fraction."""
    return Techniques(smd=SMD(PAPER_SMD_RATE), slu=SLU(skip), psg=PSG(fallback=fallback))


def configure(*, smd: float | None = None, seed: int | None = None, slu_skip: float | None = None,
              slu_stats: str | None = None, psg: bool = False, psg_bits: str | None = None,
              psg_fallback: float | None = None, psg_stats: str | None = None) -> Techniques:
    """Techniques from CLI-style values; raises E2simError on inconsistent or bad values."""
    if slu_skip is not None and slu_stats is not None:
        raise E2simError("--slu-skip and --slu-stats are mutually exclusive")
    if psg_fallback is not None and psg_stats is not None:
        raise E2simError("--psg-fallback and --psg-stats are mutually exclusive")
    if not psg and (psg_bits or psg_fallback is not None or psg_stats):
        raise E2simError("--psg-bits / --psg-fallback / --psg-stats need --psg")
    if psg and psg_fallback is None and psg_stats is None:
        raise E2simError("--psg needs --psg-fallback F or --psg-stats FILE (the fraction recomputed at full "
                         "precision)")
    if seed is not None and smd is None:
        raise E2simError("--seed applies to --smd only")
    t_smd = SMD(smd, seed) if smd is not None else None
    t_slu = None
    if slu_skip is not None:
        t_slu = SLU(slu_skip)
    elif slu_stats is not None:
        from .stats import load_slu_stats  # pydantic models built only when a stats file is read

        per_block = dict(load_slu_stats(slu_stats).skip_ratio)
        if not per_block:
            raise E2simError(f"{slu_stats}: skip_ratio: lists no block")
        t_slu = SLU(per_block=per_block, source=str(slu_stats))
    t_psg = None
    if psg:
        bits = PSGBits.parse(psg_bits) if psg_bits else PSGBits()
        if psg_stats is not None:
            from .stats import load_psg_stats

            per_layer = dict(load_psg_stats(psg_stats).fallback_fraction)
            if not per_layer:
                raise E2simError(f"{psg_stats}: fallback_fraction: lists no layer")
            t_psg = PSG(bits, per_layer=per_layer, source=str(psg_stats))
        else:
            t_psg = PSG(bits, fallback=psg_fallback)
    return Techniques(smd=t_smd, slu=t_slu, psg=t_psg)


@record
class Savings(Record):
    config: Estimate
    baseline: Estimate
    baseline_name: str
    label: str

    @property
    def saving(self) -> float:
        """Fraction of the baseline's energy saved (negative: the configuration costs more)."""
        return 1.0 - self.config.energy_j / self.baseline.energy_j

    @property
    def time_saving(self) -> float:
        return 1.0 - self.config.time_s / self.baseline.time_s

    def summary(self) -> str:
        """The human-readable summary: the configuration, its baseline and the saving in %."""
        from .summary import summary_text

        return summary_text(self.to_dict(), cli_hint=False)

    def saving_band(self) -> dict[str, float]:
        return saving_band(self.config, self.baseline)

    def to_dict(self) -> dict:
        d = self.config.to_dict()
        d["configuration"] = self.label
        d["baseline"] = {"name": self.baseline_name, "energy_j": self.baseline.energy_j,
                         "time_s": self.baseline.time_s}
        d["saving"] = self.saving
        d.update(self.saving_band())
        d["time_saving"] = self.time_saving
        return d

    def to_frame(self):
        """Tidy breakdown of both runs: the estimate's rows with a ``config`` column."""
        import pandas as pd

        a, b = self.config.to_frame(), self.baseline.to_frame()
        a.insert(0, "config", self.label)
        b.insert(0, "config", f"baseline:{self.baseline_name}")
        return pd.concat([a, b], ignore_index=True)


def saving_band(config: Estimate, baseline: Estimate) -> dict[str, float]:
    """5-95 % band of the saving 1 - E / E_baseline over the profile's bootstrap replicates ({} when the
    profile is uncalibrated). Both runs are priced with the same replicate, and the model residual (a common
    factor of every energy on one board) cancels in the ratio: the band is narrower than the energy band."""
    from .estimate import BAND_HIGH, BAND_LOW, quantiles

    e, b = config.energy_samples(residual=False), baseline.energy_samples(residual=False)
    if e is None or b is None:
        return {}
    s = 1.0 - e / b
    lo, hi = quantiles(s, [BAND_LOW, BAND_HIGH])
    mid = 1.0 - config.energy_j / baseline.energy_j
    return {"saving_low": min(float(lo), mid), "saving_high": max(float(hi), mid)}


def _row(label: str, e: Estimate, base: Estimate) -> dict:
    band = e.band()
    return {"config": label, "energy_j": e.energy_j,
            **{k: band[k] for k in ("energy_j_low", "energy_j_high") if k in band}, "time_s": e.time_s,
            **{k: band[k] for k in ("time_s_low", "time_s_high") if k in band},
            "saving": 1.0 - e.energy_j / base.energy_j, **saving_band(e, base),
            "time_saving": 1.0 - e.time_s / base.time_s}


def _price(workload: Workload, techniques: Techniques, precision: str, profile, iterations, batch_size,
           compat: bool) -> Estimate:
    w, plan = build(workload, techniques, precision, iterations, batch_size)
    return estimate_plan(plan, w, profile, scalesim_compat=compat)


def estimate_baseline(workload: Workload, profile, baseline: str | None = None, iterations: int | None = None,
                      batch_size: int | None = None, compat: bool = False, precision: str = "fp32") -> Estimate:
    """The baseline's estimate; ``baseline`` None is plain training at ``precision`` (the run's)."""
    plan = baseline_plan(workload, baseline or precision, iterations, batch_size, precision)
    return estimate_plan(plan, workload, profile, scalesim_compat=compat)


def estimate_with_savings(workload: str | Workload, profile: str | HardwareProfile = "zedboard",
                          precision: str = "fp32", techniques=Techniques(), *,
                          baseline: str | None = None, iterations: int | None = None, batch_size: int | None = None,
                          scalesim_compat: bool = False) -> Savings:
    """The configuration's estimate beside the baseline's (default: plain training at ``precision``).
    ``techniques``: a Techniques or a sequence of technique objects (``[SMD(0.5), PSG(fallback=0.1)]``)."""
    techniques = as_techniques(techniques)
    w = load_workload(workload)
    cfg = _price(w, techniques, precision, profile, iterations, batch_size, scalesim_compat)
    if not techniques.ordered() and baseline in (None, precision):
        base = cfg  # plain training at the run's precision is its own baseline: priced once (start-up time)
    else:
        base = estimate_baseline(w, profile, baseline, iterations, batch_size, scalesim_compat, precision)
    return Savings(cfg, base, Baseline(baseline or precision, precision).name, techniques.label)


def compare(workload: str | Workload, profile: str | HardwareProfile = "zedboard", precision: str = "fp32",
            techniques=Techniques(), *, baseline: str | None = None, iterations: int | None = None,
            batch_size: int | None = None, scalesim_compat: bool = False):
    """One row per technique alone and combined (those configured), plus the baseline row (default: plain
    training at ``precision``)."""
    import pandas as pd

    w = load_workload(workload)
    subsets = as_techniques(techniques).subsets()
    if not subsets:
        raise E2simError("--compare needs at least one technique (--smd, --slu-skip/--slu-stats, --psg)")
    base = estimate_baseline(w, profile, baseline, iterations, batch_size, scalesim_compat, precision)
    name = Baseline(baseline or precision, precision).name
    rows = [_row(f"baseline:{name}", base, base)]
    for t in subsets:
        e = _price(w, t, precision, profile, iterations, batch_size, scalesim_compat)
        rows.append(_row(t.label, e, base))
    return pd.DataFrame(rows)
