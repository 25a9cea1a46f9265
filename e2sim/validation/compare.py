"""Measured vs estimated energy per window (total, static/idle, dynamic), and the trace plot."""
from __future__ import annotations

import textwrap

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


def trace_title(est: EstimateRecord, log_name: str, estimate_name: str) -> str:
    """Workload, profile and settings of the estimate, and the two files compared."""
    from ..plotstyle import compose_title

    extra = est.model_extra or {}
    config = extra.get("configuration")
    parts = [("no technique" if config == "none" else str(config))] if config else []
    if extra.get("precision"):
        parts.append(f"precision {extra['precision']}")
    if extra.get("iterations_scheduled"):
        parts.append(f"{extra['iterations_scheduled']:g} iterations")
    parts.append(f"log {log_name} vs estimate {estimate_name}")
    return compose_title(est.workload or "workload not recorded", est.profile, ", ".join(parts))


def trace_png(log: pd.DataFrame, windows: pd.DataFrame, est: EstimateRecord | None, title: str) -> bytes:
    """PNG of the power trace (each rail, and their sum where rails share timestamps), the windows shaded,
    the idle baseline and the estimate's mean power (its energy over its own duration).

    The power axis is scaled to the measurement; an estimate line that would fall outside it is left out
    and stated in the annotation instead (a 21-day estimate against a 5 s window must not flatten the
    trace)."""
    from .. import plotstyle
    from ..summary import fmt_time

    fig, ax = plotstyle.new_figure(1, 1, figsize=(12, 4.8))
    rails = list(pd.unique(log["rail"]))
    series = []
    for r in rails:
        g = log[log["rail"] == r]
        series.append(g["power_W"].to_numpy())
    if len(rails) > 1:
        wide = log.pivot_table(index="timestamp_s", columns="rail", values="power_W")
        total = None if wide.isna().any().any() else wide.sum(axis=1)
        if total is not None:
            series.append(total.to_numpy())
    tot = window_totals(windows)
    idle = [w for w in tot["idle_w"] if np.isfinite(w)]
    top = max([float(np.nanmax(v)) for v in series if len(v)] + idle + [0.0])
    bottom = min([float(np.nanmin(v)) for v in series if len(v)] + [0.0])
    factor, unit = plotstyle.si_scale(top, "W")
    for r in rails:
        g = log[log["rail"] == r]
        ax.plot(g["timestamp_s"], g["power_W"] / factor, lw=0.8, label=f"rail {r}")
    if len(rails) > 1 and total is not None:
        ax.plot(total.index, total / factor, color="k", lw=1.0, label="sum of rails")
    est_w = est.energy_j / est.time_s if est is not None and est.time_s > 0 else None
    ylim = (bottom / factor, top / factor * 1.15 if top > 0 else 1.0)
    on_scale = est_w is not None and ylim[0] <= est_w / factor <= ylim[1]
    if on_scale:  # the estimate would not stretch the axis: show it as a line over the windows
        ylim = (ylim[0], max(ylim[1], est_w / factor * 1.1))
    colors = plotstyle.colors()
    t0, t1 = float(log["timestamp_s"].min()), float(log["timestamp_s"].max())
    pt_per_s = 0.7 * fig.get_figwidth() * 72 / max(t1 - t0, 1e-9)  # the axes take about 70 % of the width
    for i, (_, w) in enumerate(tot.iterrows()):
        ax.axvspan(w["t_start_s"], w["t_end_s"], color=colors[i % len(colors)], alpha=0.12)
        label = str(int(w["mark"]))
        if (w["t_end_s"] - w["t_start_s"]) * pt_per_s > 0.6 * plotstyle.MIN_FONT_PT * len(label) + 4:
            ax.text((w["t_start_s"] + w["t_end_s"]) / 2, 1.0, label, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=plotstyle.MIN_FONT_PT)
        if on_scale:
            ax.hlines(est_w / factor, w["t_start_s"], w["t_end_s"], colors="tab:red", linestyles="--", lw=1.5,
                      label="estimate: mean power" if i == 0 else None)
        if np.isfinite(w["idle_w"]):
            ax.hlines(w["idle_w"] / factor, w["t_start_s"], w["t_end_s"], colors="tab:gray", linestyles=":",
                      lw=1.2, label="idle baseline" if i == 0 else None)
    ax.set_ylim(*ylim)
    ax.set_xlabel("time (s); shaded: the marked windows, numbered by mark")
    ax.set_ylabel(f"power ({unit})")
    ax.grid(alpha=0.3)
    if est is not None:
        note = (f"estimate: {_si(est.energy_j, 'J')} over {fmt_time(est.time_s)}, mean {_si(est_w, 'W')}"
                if est_w is not None else f"estimate: {_si(est.energy_j, 'J')} (no duration)")
        if est_w is not None and not on_scale:
            note += " (off this scale)"
        shown = 6
        lines = [note, "measured:"] + [
            f"  mark {int(w['mark'])}: {_si(w['energy_j'], 'J')} over {fmt_time(w['duration_s'])}, "
            f"mean {_si(w['energy_j'] / w['duration_s'], 'W')}" for _, w in tot.head(shown).iterrows()
            if w["duration_s"] > 0]
        if len(tot) > shown:
            lines.append(f"  ... {len(tot) - shown} more windows in comparison.csv")
        ax.text(1.02, 0.0, "\n".join(textwrap.fill(x, 48, subsequent_indent="    ") for x in lines),
                transform=ax.transAxes, ha="left", va="bottom", fontsize=plotstyle.MIN_FONT_PT + 0.5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return plotstyle.to_png(fig, title=title)


def _si(value: float, unit: str) -> str:
    from ..plotstyle import si_scale

    factor, label = si_scale(value, unit)
    return f"{value / factor:.3g} {label}"


# Beyond this ratio between the estimate's modelled time and a window's measured duration the estimate does
# not describe what the window ran (e.g. a whole 64k-iteration run against a seconds-long measurement).
DURATION_RATIO_LIMIT = 2.0


def duration_mismatch(windows: pd.DataFrame, est: EstimateRecord) -> str | None:
    """One line saying which windows last more than DURATION_RATIO_LIMIT times longer or shorter than the
    estimate's time, and how to estimate the window instead; None when all agree."""
    from ..summary import fmt_time

    tot = window_totals(windows)
    bad = [(int(w["mark"]), float(w["duration_s"])) for _, w in tot.iterrows()
           if w["duration_s"] > 0 and not (1 / DURATION_RATIO_LIMIT <= est.time_s / w["duration_s"]
                                           <= DURATION_RATIO_LIMIT)]
    if not bad:
        return None
    mark, dur = bad[0]
    more = f" (and {len(bad) - 1} more window{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
    return (f"the estimate covers {fmt_time(est.time_s)} but window {mark} lasted {fmt_time(dur)}{more}, "
            f"{est.time_s / dur:.3g}x; estimate what the window ran: e2sim estimate --workload W "
            f"--iterations N --format json")
