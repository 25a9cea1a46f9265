"""Calibration sidecars: what each marked window of a power log ran.

A log ``LOG.csv`` is described by ``LOG.windows.yaml`` beside it::

    format: pynq                 # pynq | ina | usb | csv (as for e2sim validate)
    column_map: null             # csv only, e.g. "time=t_s,power=P_mW,mark=phase"
    rails: [5V]                  # rails summed as the board (default: all rails of the log)
    windows:
      - mark: 0
        idle: true               # nothing but static power ran: each static constant's activity = duration
      - mark: 1
        run: {workload: resnet20_cifar10, precision: int8, iterations: 20, batch_size: 32}
      - mark: 2
        estimate: est_mark2.json # output of e2sim estimate --format json that carries "activity"
      - mark: 3
        activity: {static_power_w: 4.0, compute.mac_fp32_pj: 1.2e12}  # coefficients given directly

Each window names exactly one of ``idle``, ``run``, ``estimate`` or ``activity``. Paths are relative to
the sidecar. The coefficient of each static constant (``static_power_w``, or ``fpga.static.*``: time) is the
window's measured duration unless
``static_time_from: estimate`` says to keep the estimate's modelled time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import Int, Real, load_model
from ..errors import E2simError
from ..workload import BatchSize, Iterations
from .calibrate import static_constants
from .estimate_file import load_estimate
from .integrate import window_energy, window_totals
from .logs import LOG_FORMATS, MAX_MARK, LogChecks, read_log


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSpec(_Strict):
    workload: str
    precision: str = "fp32"
    iterations: Iterations
    batch_size: BatchSize | None = None


class WindowSpec(_Strict):
    mark: Int = Field(ge=-MAX_MARK, le=MAX_MARK)
    idle: bool = False
    run: RunSpec | None = None
    estimate: str | None = None
    # coefficient of each constant (s for static_power_w, events or bits for the energies): finite, >= 0
    activity: dict[str, Annotated[Real, Field(ge=0, le=1e30)]] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WindowSpec:
        given = [k for k in ("idle", "run", "estimate", "activity") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"a window names exactly one of idle, run, estimate, activity (got {given or 'none'})")
        return self


class LogManifest(_Strict):
    format: Literal[LOG_FORMATS]  # type: ignore[valid-type]
    column_map: str | None = None
    rails: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1)
    max_gap_s: Real | None = Field(default=None, gt=0, le=1e9)
    sort: bool = False
    allow_negative: bool = False
    static_time_from: Literal["log", "estimate"] = "log"
    windows: list[WindowSpec] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _unique_marks(self) -> LogManifest:
        marks = [w.mark for w in self.windows]
        if len(set(marks)) != len(marks):
            raise ValueError("windows: a mark is listed twice")
        if self.rails is not None and len(set(self.rails)) != len(self.rails):
            raise ValueError("rails: a rail is listed twice")
        return self


def sidecar_path(log: str | Path) -> Path:
    p = Path(log)
    return p.with_name(p.stem + ".windows.yaml")


# (RunSpec, profile) -> activity; the default asks the estimate stage (imported lazily)
ActivityFn = Callable[[RunSpec, str], dict[str, float]]


def estimate_activity(run: RunSpec, profile: str) -> dict[str, float]:
    try:
        from ..estimate import estimate
    except ImportError:
        raise E2simError("a window with 'run:' needs the estimate stage (e2sim.estimate), which this "
                         "installation lacks; give 'estimate:' or 'activity:' instead") from None
    est = estimate(run.workload, profile, run.precision, iterations=run.iterations, batch_size=run.batch_size)
    return dict(est.activity())


def log_windows(log: str | Path, profile: str, activity_fn: ActivityFn = estimate_activity) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(activity [windows x constants], measured table) for one log and its sidecar. The measured table
    has one board-level row per window (label, energy_j, energy_unc_j, duration_s)."""
    log = Path(log)
    side = sidecar_path(log)
    if not side.is_file():
        raise E2simError(f"{log}: no sidecar {side.name} saying what each window ran (see e2sim calibrate --help)")
    man = load_model(LogManifest, side)
    table = read_log(log, man.format, column_map=man.column_map,
                     checks=LogChecks(max_gap_s=man.max_gap_s, sort=man.sort, allow_negative=man.allow_negative))
    if man.rails is not None:
        missing = sorted(set(man.rails) - set(table["rail"]))
        if missing:
            raise E2simError(f"{side}: rails {missing} not in {log.name} (rails: {sorted(set(table['rail']))})")
        table = table[table["rail"].isin(man.rails)]
    measured = window_totals(window_energy(table, [w.mark for w in man.windows]))
    rows = []
    for w, (_, m) in zip(man.windows, measured.iterrows()):
        if w.idle:
            act = {}  # filled below, once the static constants in use are known
        elif w.activity is not None:
            act = dict(w.activity)
        elif w.estimate is not None:
            rec = load_estimate(side.parent / w.estimate)
            if rec.activity is None:
                raise E2simError(f"{side.parent / w.estimate}: estimate has no 'activity' (the per-constant "
                                 f"coefficients); write it for what window {w.mark} ran with e2sim estimate "
                                 f"--workload W --iterations N --format json")
            act = dict(rec.activity)
        else:
            act = activity_fn(w.run, profile)
        if man.static_time_from == "log":
            act.update({c: m["duration_s"] for c in static_constants(act)})
        rows.append(act)
    if any(w.idle for w in man.windows):
        # An idle window runs every static constant for its duration: those the other windows price
        # (static_power_w, or fpga.static.* of an FPGA profile), else the profile's.
        statics = sorted({c for act in rows for c in static_constants(act)})
        if not statics:
            from ..profile import load_profile

            statics = static_constants(load_profile(profile).linear_constants())
        for w, act, (_, m) in zip(man.windows, rows, measured.iterrows()):
            if w.idle:
                act.update({c: m["duration_s"] for c in statics})
    labels = [f"{log.name}#{w.mark}" for w in man.windows]
    activity = pd.DataFrame(rows, index=labels).fillna(0.0)
    measured = measured.assign(window=labels)[["window", "energy_j", "energy_unc_j", "duration_s"]]
    return activity, measured.reset_index(drop=True)
