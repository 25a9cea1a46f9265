"""What ``e2sim estimate`` prints for a person: a summary in human units, read in ten seconds.

    summary_text(d)                 an Estimate's or a Savings' dict (``to_dict()``) -> text
    compare_text(rows, about)       the --compare rows (dicts) -> text
    detail_frame(frame, level)      the tidy per-item frame summed to layer | pass | component | item (SI)
    detail_text(df, level)          that frame as text, energies in one scaled unit per table, shares in %

Energies print in J / kJ / MJ / GJ and kWh, times in s / min / h / days, shares and savings in %. When the
dict carries a band (``energy_j_low`` / ``energy_j_high``, ``time_s_low`` / ``time_s_high``, on --compare
rows ``saving_low`` / ``saving_high``) it prints beside the value: ``4.1 MJ (2.9–6.0)``, ``82% (79–86%)``;
the central value then keeps two significant digits, since the band says the third is noise. CSV and JSON
never come through here: they stay in SI units.
"""
from __future__ import annotations

import math

DETAILS = ("layer", "pass", "component", "item")
J_PER_KWH = 3.6e6
_TIME_UNITS = ((86400.0, "days", 2 * 86400.0), (3600.0, "h", 2 * 3600.0), (60.0, "min", 120.0), (1.0, "s", 0.0))


def _sig(x: float, digits: int) -> str:
    """``x`` with ``digits`` significant digits, fixed point (no exponent), thousands separated."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def energy_unit(j: float) -> tuple[float, str]:
    """(joules per unit, unit name) for a value of ``j`` joules: 4e6 -> (1e6, "MJ")."""
    from .plotstyle import si_scale  # one prefix table for the plots and the text

    return si_scale(j, "J")


def _band(value: float, low: float | None, high: float | None, scale: float, unit: str, digits: int) -> str:
    if low is None or high is None:
        return f"{_sig(value / scale, digits)} {unit}"
    centre = _sig(value / scale, 2)
    d = _decimals(centre)
    return f"{centre} {unit} ({low / scale:,.{d}f}–{high / scale:,.{d}f})"


def fmt_energy(j: float, low: float | None = None, high: float | None = None) -> str:
    """``4.09 MJ``; with a band ``4.1 MJ (2.9–6.0)`` (the band in the value's unit)."""
    scale, unit = energy_unit(j)
    return _band(j, low, high, scale, unit, 3)


def fmt_kwh(j: float, low: float | None = None, high: float | None = None) -> str:
    """``1.14 kWh``; below a watt-hour in scientific notation (``1.9e-06 kWh``), where fixed point would
    bury the digits in zeros."""
    kwh = j / J_PER_KWH
    if kwh == 0 or abs(kwh) >= 1e-3 or not math.isfinite(kwh):
        return _band(j, low, high, J_PER_KWH, "kWh", 3)
    if low is None or high is None:
        return f"{kwh:.2e} kWh"
    return f"{kwh:.1e} kWh ({low / J_PER_KWH:.1e}–{high / J_PER_KWH:.1e})"


def fmt_time(s: float, low: float | None = None, high: float | None = None) -> str:
    """Seconds, minutes, hours or days, whichever reads best (``21.8 days``, ``4.5 s``)."""
    for scale, unit, above in _TIME_UNITS:
        if abs(s) >= above:
            return _band(s, low, high, scale, unit, 3)
    return _band(s, low, high, 1.0, "s", 3)


def fmt_pct(frac: float, low: float | None = None, high: float | None = None) -> str:
    """A fraction as a percentage: ``82.3%``; with a band ``82% (79–86%)``."""
    if low is None or high is None:
        return f"{100 * frac:.1f}%"
    return f"{100 * frac:.0f}% ({100 * low:.0f}–{100 * high:.0f}%)"


def _share(frac: float) -> str:
    return "<0.1%" if 0 < frac < 0.0005 else fmt_pct(frac)


def _shares(groups: dict[str, dict[str, float]], total: float) -> list[str]:
    """One block per group (title: {name: J}): name, share of ``total`` in %, energy; aligned across groups."""
    width = max(len(k) for parts in groups.values() for k in parts) + 2
    out = []
    for title, parts in groups.items():
        out.append(f"{title:<{width}}  {'share':>6}  energy")
        for k, v in parts.items():
            out.append(f"  {k:<{width - 2}}  {_share(v / total if total else 0.0):>6}  {fmt_energy(v)}")
    return out


def _headline(d: dict) -> list[str]:
    its, sched = d.get("iterations_executed"), d.get("iterations_scheduled")
    runs = f"{its:,.0f} iterations" if its == sched else f"{its:,.0f} of {sched:,} iterations executed"
    if d.get("inference"):
        runs = f"inference, {its:,.0f} forward pass{'es' if its != 1 else ''} of the batch"
    return [f"{d.get('workload')} on {d.get('profile')}: {d.get('precision')}, batch {d.get('batch_size')}, {runs}"]


def summary_text(d: dict, cli_hint: bool = True) -> str:
    """The summary of one estimate (``Estimate.to_dict()``) or of a configuration beside its baseline
    (``Savings.to_dict()``); ``cli_hint`` ends it with the options that give more."""
    lines = _headline(d)
    if d.get("configuration"):
        lines.append(f"techniques: {d['configuration']}")
    lines += [f"  - {n}" for n in d.get("techniques", [])]
    lines.append("")
    e, t = d["energy_j"], d["time_s"]
    lo, hi = d.get("energy_j_low"), d.get("energy_j_high")
    lines.append(f"energy  {fmt_energy(e, lo, hi)} = {fmt_kwh(e, lo, hi)}")
    lines.append(f"time    {fmt_time(t, d.get('time_s_low'), d.get('time_s_high'))}")
    base = d.get("baseline")
    if base:
        lines.append(f"baseline {base['name']}: {fmt_energy(base['energy_j'])} = {fmt_kwh(base['energy_j'])}, "
                     f"{fmt_time(base['time_s'])}")
        lines.append(f"saving  {fmt_pct(d['saving'], d.get('saving_low'), d.get('saving_high'))} of the energy, "
                     f"{fmt_pct(d['time_saving'])} of the time")
    passes = {k: v for k, v in d["by_pass_j"].items() if v or not d.get("inference")}  # inference: fwd only
    lines += [""] + _shares({"by component": d["breakdown_j"], "by pass": passes}, e)
    if cli_hint:
        lines += ["", "per-item rows: --detail layer|pass|component|item; SI units: --format csv|json"]
    return "\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return [line(header), *(line(r) for r in rows)]


def compare_text(rows: list[dict], about: dict) -> str:
    """The --compare rows (``config``, ``energy_j``, ``time_s``, ``saving``, ``time_saving``, optional band
    keys): one line per technique alone and combined, the baseline first. ``about``: workload, profile,
    precision."""
    head = [f"{about.get('workload')} on {about.get('profile')}: {about.get('precision')}, each technique alone "
            f"and combined against {rows[0]['config'].removeprefix('baseline:')} training", ""]
    table = []
    for i, r in enumerate(rows):
        lo, hi = r.get("energy_j_low"), r.get("energy_j_high")
        saving = "-" if i == 0 else fmt_pct(r["saving"], r.get("saving_low"), r.get("saving_high"))
        time_saving = "-" if i == 0 else fmt_pct(r["time_saving"])
        table.append([r["config"], fmt_energy(r["energy_j"], lo, hi), fmt_kwh(r["energy_j"], lo, hi),
                      fmt_time(r["time_s"], r.get("time_s_low"), r.get("time_s_high")), saving, time_saving])
    body = _table(["configuration", "energy", "kWh", "time", "energy saving", "time saving"], table, {1, 2, 3, 4, 5})
    notes = ["", "saving: share of the baseline's energy (time) that the configuration does not use; SI units: "
                 "--format csv|json"]
    costlier = [r["config"] for r in rows[1:] if r["saving"] < 0]
    if costlier:
        notes.append(f"a negative saving: {', '.join(costlier)} costs more than the baseline (e.g. PSG on int8: its "
                     f"predictor runs at the 8-bit rate; README, 'Precision and baselines')")
    return "\n".join(head + body + notes) + "\n"


def detail_frame(frame, level: str):
    """The tidy per-item frame (``Estimate.to_frame()``: layer, kind, pass, tag, component, energy_j; a
    ``config`` column when a baseline is beside it) summed to ``level``, with each row's ``share`` of its
    configuration's energy (a fraction). ``item`` keeps every row."""
    from .errors import E2simError

    if level not in DETAILS:
        raise E2simError(f"--detail: unknown level {level!r} (known: {', '.join(DETAILS)})")
    by_config = ["config"] if "config" in frame.columns else []
    keys = {"layer": ["layer", "kind"], "pass": ["pass"], "component": ["component"],
            "item": ["layer", "kind", "pass", "tag", "component"]}[level]
    df = frame if level == "item" else frame.groupby(by_config + keys, sort=False, as_index=False)["energy_j"].sum()
    df = df.copy()
    if level == "pass":  # the passes in the order they run, configurations in the order they come
        import pandas as pd

        from .counts import PASSES

        rank = df["pass"].map({p: i for i, p in enumerate(PASSES)})
        group = pd.factorize(df["config"])[0] if by_config else 0
        df = df.assign(_c=group, _p=rank).sort_values(["_c", "_p"], kind="stable").drop(columns=["_c", "_p"])
    total = df.groupby(by_config)["energy_j"].transform("sum") if by_config else df["energy_j"].sum()
    df["share"] = df["energy_j"] / total
    return df.reset_index(drop=True)


def detail_text(df, level: str) -> str:
    """``detail_frame``'s rows with the energy in one unit (the largest row's) and the share in %."""
    scale, unit = energy_unit(float(df["energy_j"].abs().max()) if len(df) else 1.0)
    cols = [c for c in df.columns if c not in ("energy_j", "share")]
    rows = [[str(v) for v in r] + [f"{e / scale:,.3f}", f"{100 * s:.2f}%"]
            for r, e, s in zip(df[cols].itertuples(index=False), df["energy_j"], df["share"])]
    return "\n".join(_table([*cols, f"energy ({unit})", "share"], rows, {len(cols), len(cols) + 1})) + "\n"
