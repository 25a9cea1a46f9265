"""Energy from a canonical power log: trapezoid integration per marked window, per rail and total, with an
idle-power baseline and a sampling uncertainty bound.

Sampling bound. Between two samples the log says nothing; assume power moves monotonically between them
(no unobserved spike or dip). Then the true energy of the interval lies between dt*min(P_i, P_i+1) and
dt*max(P_i, P_i+1), the trapezoid is the midpoint of that range, and its error is at most
dt*|P_i+1 - P_i|/2. Summed over a window this equals half the gap between the right and left Riemann sums:

    |E_true - E_trap| <= sum_i dt_i * |P_i+1 - P_i| / 2

The bound is exact (zero) where power is constant and grows with the power swing the sampling may hide.
The tests check it on synthetic traces that satisfy the assumption; spikes shorter than the sampling
interval violate it, and no log can bound those.

Windows. A window is the set of samples carrying one mark value; it spans its first to its last sample
(the interval between the last sample of one mark and the first of the next belongs to neither). A mark
that occurs in several separate runs of samples is integrated run by run and summed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import E2simError

TOTAL = "total"


def trapezoid(t: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(energy_j, sampling bound_j) of samples ``p`` (W) at increasing times ``t`` (s)."""
    t = np.asarray(t, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(t) < 2:
        return 0.0, 0.0
    dt = np.diff(t)
    return float(np.sum(dt * (p[1:] + p[:-1]) / 2)), float(np.sum(dt * np.abs(np.diff(p)) / 2))


def _runs(sel: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index ranges of the contiguous True runs of ``sel``."""
    edges = np.diff(np.concatenate([[0], sel.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _rail_window(t: np.ndarray, p: np.ndarray, marks: np.ndarray, mark: int, rail: str) -> dict:
    runs = _runs(marks == mark)
    if not runs:
        raise E2simError(f"rail {rail!r}: no samples with mark {mark} (marks in the log: "
                         f"{', '.join(map(str, sorted(set(marks.tolist()))))})")
    energy = bound = duration = 0.0
    for a, b in runs:
        e, u = trapezoid(t[a:b], p[a:b])
        energy, bound, duration = energy + e, bound + u, duration + (t[b - 1] - t[a])
    if duration <= 0:
        raise E2simError(f"rail {rail!r}: window mark {mark} spans no time (needs at least 2 samples in a run)")
    return {"t_start_s": float(t[runs[0][0]]), "t_end_s": float(t[runs[-1][1] - 1]), "duration_s": duration,
            "samples": int(sum(b - a for a, b in runs)), "energy_j": energy, "energy_unc_j": bound}


def window_energy(log: pd.DataFrame, marks: list[int] | None = None, *, idle_mark: int | None = None,
                  idle_w: float | None = None) -> pd.DataFrame:
    """Per window mark x rail (plus a ``total`` row summing the rails): duration, energy, its sampling
    bound, mean power, the idle baseline (W and J over the window) and the dynamic energy above it.

    The idle baseline is either the time-weighted mean power of the ``idle_mark`` window (per rail; the
    total's is the sum) or a given board-level ``idle_w`` (applied to the total row, and to the single rail
    when there is only one; other rail rows get NaN). The idle window itself is not listed among the
    windows unless asked for. The total row's duration is the longest rail duration.
    """
    if idle_mark is not None and idle_w is not None:
        raise E2simError("give either an idle mark or an idle power, not both")
    if idle_w is not None and not (np.isfinite(idle_w) and 0 <= idle_w <= 1e5):
        raise E2simError(f"idle power must be a finite number in [0, 1e5] W, got {idle_w}")
    all_marks = sorted(set(log["mark"].tolist()))
    if marks is None:
        marks = [m for m in all_marks if m != idle_mark]
    if not marks:
        raise E2simError("no window to integrate (the log has only the idle mark)")
    rails = list(pd.unique(log["rail"]))
    series = {r: (g["timestamp_s"].to_numpy(float), g["power_W"].to_numpy(float), g["mark"].to_numpy())
              for r, g in log.groupby("rail", sort=False)}

    idle: dict[str, tuple[float, float]] = {}  # rail -> (idle W, its sampling bound W)
    if idle_mark is not None:
        for r in rails:
            w = _rail_window(*series[r], idle_mark, r)
            idle[r] = (w["energy_j"] / w["duration_s"], w["energy_unc_j"] / w["duration_s"])
        idle[TOTAL] = (sum(v[0] for v in idle.values()), sum(v[1] for v in idle.values()))
    elif idle_w is not None:
        idle[TOTAL] = (float(idle_w), 0.0)
        if len(rails) == 1:
            idle[rails[0]] = idle[TOTAL]

    rows = []
    for m in marks:
        per = [{"mark": m, "rail": r, **_rail_window(*series[r], m, r)} for r in rails]
        tot = {"mark": m, "rail": TOTAL, "t_start_s": min(x["t_start_s"] for x in per),
               "t_end_s": max(x["t_end_s"] for x in per), "duration_s": max(x["duration_s"] for x in per),
               "samples": sum(x["samples"] for x in per), "energy_j": sum(x["energy_j"] for x in per),
               "energy_unc_j": sum(x["energy_unc_j"] for x in per)}
        rows.extend(per + ([tot] if len(rails) > 1 else []))
    out = pd.DataFrame(rows)
    out["mean_power_w"] = out["energy_j"] / out["duration_s"]
    idle_of = {r: idle.get(r, (np.nan, np.nan)) for r in [*rails, TOTAL]}
    out["idle_w"] = [idle_of[r][0] for r in out["rail"]]
    idle_unc = np.array([idle_of[r][1] for r in out["rail"]])
    if idle_mark is not None:
        # the total's idle energy is the sum of each rail's idle power over that rail's own duration
        per_rail = out[out["rail"] != TOTAL].assign(ie=lambda d: d["idle_w"] * d["duration_s"])
        sums = per_rail.groupby("mark")["ie"].sum()
        out["idle_energy_j"] = np.where(out["rail"] == TOTAL, out["mark"].map(sums), out["idle_w"] * out["duration_s"])
    else:
        out["idle_energy_j"] = out["idle_w"] * out["duration_s"]
    out["dynamic_energy_j"] = out["energy_j"] - out["idle_energy_j"]
    out["dynamic_unc_j"] = out["energy_unc_j"] + idle_unc * out["duration_s"]
    return out


def window_totals(table: pd.DataFrame) -> pd.DataFrame:
    """The board-level row of each window: the ``total`` row, or the only rail when the log has one."""
    rails = table["rail"].unique()
    if TOTAL in rails:
        return table[table["rail"] == TOTAL].reset_index(drop=True)
    if len(rails) == 1:
        return table.reset_index(drop=True)
    raise E2simError("table has several rails but no total row")
