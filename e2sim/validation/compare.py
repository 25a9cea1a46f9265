"""Measured vs estimated energy per window (total, static/idle, dynamic), and the trace plot."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from ..errors import E2simError
from .estimate_file import EstimateRecord
from .integrate import window_totals


def compare(windows: pd.DataFrame, est: EstimateRecord) -> pd.DataFrame:
    """Long table: one row per window x component (total; static and dynamic when an idle baseline is
    known), measured J with its sampling bound, estimated J, absolute and relative error (estimate vs
    measurement). Every window is compared with the same estimate."""
    rows = []
    for _, w in window_totals(windows).iterrows():
        comps = [("total", w["energy_j"], w["energy_unc_j"], est.energy_j)]
        if np.isfinite(w["idle_w"]):
            if w["dynamic_energy_j"] < -w["dynamic_unc_j"]:
                # An idle baseline above the window's power is a wrong baseline, not a negative energy.
                raise E2simError(f"window mark {int(w['mark'])}: idle baseline {w['idle_w']:.6g} W exceeds the "
                                 f"window's mean power {w['mean_power_w']:.6g} W (dynamic energy "
                                 f"{w['dynamic_energy_j']:.6g} J < 0); check --idle-w / --idle-mark")
            comps += [("static", w["idle_energy_j"], w["dynamic_unc_j"] - w["energy_unc_j"], est.static_j),
                      ("dynamic", w["dynamic_energy_j"], w["dynamic_unc_j"], est.dynamic_j)]
        for comp, meas, unc, e in comps:
            rows.append({"mark": int(w["mark"]), "component": comp, "measured_j": meas, "measured_unc_j": unc,
                         "estimated_j": e, "error_j": e - meas, "error_rel": (e - meas) / meas if meas else np.nan,
                         "duration_s": w["duration_s"], "estimated_time_s": est.time_s})
    return pd.DataFrame(rows)


def trace_png(log: pd.DataFrame, windows: pd.DataFrame, est: EstimateRecord | None, title: str) -> bytes:
    """PNG of the power trace (each rail, and their sum where rails share timestamps), the windows shaded,
    the idle baseline and, per window, the estimate's mean power over the measured duration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    rails = list(pd.unique(log["rail"]))
    for r in rails:
        g = log[log["rail"] == r]
        ax.plot(g["timestamp_s"], g["power_W"], lw=0.8, label=f"rail {r}")
    if len(rails) > 1:
        wide = log.pivot_table(index="timestamp_s", columns="rail", values="power_W")
        if not wide.isna().any().any():
            ax.plot(wide.index, wide.sum(axis=1), color="k", lw=1.0, label="sum of rails")
    tot = window_totals(windows)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (_, w) in enumerate(tot.iterrows()):
        ax.axvspan(w["t_start_s"], w["t_end_s"], color=colors[i % len(colors)], alpha=0.12)
        ax.text((w["t_start_s"] + w["t_end_s"]) / 2, 1.0, f"mark {int(w['mark'])}", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8)
        if est is not None:
            p = est.energy_j / w["duration_s"]
            ax.hlines(p, w["t_start_s"], w["t_end_s"], colors="tab:red", linestyles="--", lw=1.5,
                      label="estimate (mean W over window)" if i == 0 else None)
        if np.isfinite(w["idle_w"]):
            ax.hlines(w["idle_w"], w["t_start_s"], w["t_end_s"], colors="tab:gray", linestyles=":", lw=1.2,
                      label="idle baseline" if i == 0 else None)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("power (W)")
    ax.set_title(title, fontsize=9, pad=14)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()

