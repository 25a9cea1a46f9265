"""Published Zynq-7000 measurements (validation/published/zynq7000.csv) against a hardware profile.

Model. A design running at its published throughput T (ops/s; one MAC = 2 ops, as GOPS figures count
them) on a board of static power P_s spends, per operation,

    e_op = E_mac(bits) / 2 + P_s / T

with E_mac from the profile's compute constants (integer: int_mult_pj_per_bit2 * b^2 + int_add_pj_per_bit
* b for b-bit operands, the form the energy stage uses; mac_fp16_pj / mac_fp32_pj for floats) and P_s its
static_power_w. The published energy per op is power / throughput, or 1 / efficiency where only GOPS/W is
published. The published throughput, not the DSP peak, sets T: it is the rate the reported power was drawn
at (the DSP peak, 2 x DSPs x clock x MACs per DSP per cycle, is listed for comparison where known).

A point is predicted only if it has an energy per op, a throughput and a bit width the MAC model covers
(2..32-bit integer, fp16, fp32); the others are listed with the reason. Confidence tags (V: read in the
source; R: recalled, unverified) are kept on every row.

Calibration, leave-one-out: for each predicted point, constants are fitted by NNLS (relative residuals,
e2sim.validation.calibrate.fit_constants) on all the other points and the held-out point is predicted.
Two models: ``scale`` (one scalar on the whole profile prediction) and ``static+mac`` (the static power
and one scalar on the MAC energies). No constant is fitted to the point it predicts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import E2simError
from ..workload import PKG_ROOT
from .calibrate import fit_constants

PUBLISHED_CSV = PKG_ROOT / "validation" / "published" / "zynq7000.csv"
COLUMNS = ("id", "design", "reference", "device", "board", "bits", "clock_hz", "dsps", "throughput_gops",
           "throughput_note", "power_w", "power_w_max", "efficiency_gops_per_w", "level", "confidence", "source",
           "notes")
NUMERIC = ("clock_hz", "dsps", "throughput_gops", "power_w", "power_w_max", "efficiency_gops_per_w")
MODELS = {"scale": ("scale",), "static+mac": ("static_power_w", "mac_scale")}


def load_published(path: str | Path = PUBLISHED_CSV) -> pd.DataFrame:
    p = Path(path)
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except OSError as exc:
        raise E2simError(f"{p}: cannot read file ({exc.strerror or exc})") from None
    if tuple(df.columns) != COLUMNS:
        raise E2simError(f"{p}: columns must be {', '.join(COLUMNS)}")
    for c in NUMERIC:
        vals = pd.to_numeric(df[c].replace("", np.nan), errors="coerce")
        bad = vals.isna() & (df[c] != "")
        if bad.any():
            raise E2simError(f"{p}: column {c!r}: not a number in row id {df.loc[bad, 'id'].iloc[0]}")
        df[c] = vals
    bad = ~df["confidence"].isin(["V", "R"])
    if bad.any():
        raise E2simError(f"{p}: column 'confidence' must be V or R (row id {df.loc[bad, 'id'].iloc[0]})")
    return df


def profile_path(name_or_path: str | Path) -> Path:
    """A bundled profile name (hardware_profiles/NAME.yaml) or a YAML path."""
    from ..config import bundled_or_path
    from ..profile import bundled_profiles

    return bundled_or_path("profile", name_or_path, bundled_profiles())


@dataclass(frozen=True)
class ProfileView:
    """The profile numbers the published-data model needs, in SI."""

    name: str
    static_power_w: float
    int_mult_j_per_bit2: float
    int_add_j_per_bit: float
    mac_fp16_j: float
    mac_fp32_j: float
    int_rates: tuple[tuple[int, float], ...]  # (max_bits, MACs per DSP per cycle), ascending
    fp_rates: dict

    def mac_j(self, bits: str) -> float | None:
        b = parse_bits(bits)
        if b == "fp16":
            return self.mac_fp16_j
        if b == "fp32":
            return self.mac_fp32_j
        if isinstance(b, int):
            return self.int_mult_j_per_bit2 * b * b + self.int_add_j_per_bit * b
        return None

    def macs_per_dsp_cycle(self, bits: str) -> float | None:
        b = parse_bits(bits)
        if isinstance(b, int):
            return next((r for mb, r in self.int_rates if b <= mb), None)
        return self.fp_rates.get(b)


_NEEDED = {"static_power_w": "static_power_w", "int_mult_j_per_bit2": "compute.int_mult_pj_per_bit2",
           "int_add_j_per_bit": "compute.int_add_pj_per_bit", "mac_fp16_j": "compute.mac_fp16_pj",
           "mac_fp32_j": "compute.mac_fp32_pj"}


def load_profile_view(name_or_path: str | Path) -> ProfileView:
    """The published-data view of a profile, read through the validated profile loader (every constant
    finite and in range, types strict) like every other command's."""
    from ..profile import load_profile

    path = profile_path(name_or_path)
    prof = load_profile(path)
    consts = prof.linear_constants()
    missing = [k for k in _NEEDED.values() if k not in consts]
    if missing:
        raise E2simError(f"{path}: missing {', '.join(missing)} (each a {{value, source}} mapping)")
    arr = prof.array
    rates = tuple((r.max_bits, r.macs_per_pe_per_cycle.value) for r in arr.int_throughput)
    fp = {"fp16": arr.fp16_macs_per_pe_per_cycle.value, "fp32": arr.fp32_macs_per_pe_per_cycle.value}
    return ProfileView(name=prof.name, int_rates=rates, fp_rates=fp, **{f: consts[k] for f, k in _NEEDED.items()})


def parse_bits(bits: str) -> int | str | None:
    """'8' -> 8, 'fp32' -> 'fp32'; None where the MAC model does not cover it (1-bit, mixed, unknown)."""
    s = str(bits).strip().lower()
    if s in ("fp16", "fp32"):
        return s
    if re.fullmatch(r"\d+", s) and 2 <= int(s) <= 32:
        return int(s)
    return None


def predict(points: pd.DataFrame, view: ProfileView) -> pd.DataFrame:
    """Per published row: the published and predicted energy per op (pJ), predicted power, relative error;
    ``reason`` says why a row is not predicted."""
    rows = []
    for _, r in points.iterrows():
        t_ops = r["throughput_gops"] * 1e9
        if np.isfinite(r["power_w"]) and np.isfinite(t_ops):
            e_pub = r["power_w"] / t_ops
        elif np.isfinite(r["efficiency_gops_per_w"]):
            e_pub = 1.0 / (r["efficiency_gops_per_w"] * 1e9)
        else:
            e_pub = np.nan
        mac = view.mac_j(r["bits"])
        rate = view.macs_per_dsp_cycle(r["bits"])
        peak = 2 * r["dsps"] * r["clock_hz"] * rate / 1e9 if rate is not None else np.nan
        reason = ""
        if not np.isfinite(e_pub):
            reason = ("power published but no throughput in ops/s" if np.isfinite(r["power_w"])
                      else "only an upper bound on power published" if np.isfinite(r["power_w_max"])
                      else "no absolute power or efficiency published")
        elif not np.isfinite(t_ops):
            reason = "no throughput in ops/s (static share unknown)"
        elif mac is None:
            reason = f"bit width {r['bits'] or 'unknown'!r} outside the MAC model (2..32-bit int, fp16, fp32)"
        e_pred = mac / 2 + view.static_power_w / t_ops if not reason else np.nan
        rows.append({"id": r["id"], "design": r["design"], "bits": r["bits"], "level": r["level"],
                     "confidence": r["confidence"], "throughput_gops": r["throughput_gops"], "peak_gops": peak,
                     "published_pj_per_op": e_pub * 1e12, "predicted_pj_per_op": e_pred * 1e12,
                     "published_power_w": r["power_w"],
                     "predicted_power_w": e_pred * t_ops if not reason else np.nan,
                     "error_rel": e_pred / e_pub - 1 if not reason else np.nan,
                     "mac_pj": mac * 1e12 if mac is not None else np.nan,
                     "static_w_per_gops": view.static_power_w / r["throughput_gops"] if np.isfinite(t_ops) else np.nan,
                     "reason": reason})
    return pd.DataFrame(rows)


def _features(pred: pd.DataFrame, view: ProfileView, model: str) -> tuple[pd.DataFrame, dict]:
    """Activity (coefficient per constant, J/op) of each predicted point under ``model``, and the priors."""
    if model == "scale":
        return pd.DataFrame({"scale": pred["predicted_pj_per_op"].to_numpy() * 1e-12}, index=pred["id"]), {"scale": 1.0}
    if model == "static+mac":
        return (pd.DataFrame({"static_power_w": 1.0 / (pred["throughput_gops"].to_numpy() * 1e9),
                              "mac_scale": pred["mac_pj"].to_numpy() * 1e-12 / 2}, index=pred["id"]),
                {"static_power_w": view.static_power_w, "mac_scale": 1.0})
    raise E2simError(f"unknown calibration model {model!r} (models: {', '.join(MODELS)})")


def leave_one_out(pred: pd.DataFrame, view: ProfileView, model: str) -> pd.DataFrame:
    """Held-out prediction of every predicted point, constants fitted on all the other points."""
    ok = pred[pred["reason"] == ""].reset_index(drop=True)
    fields = MODELS.get(model)
    if fields is None:
        raise E2simError(f"unknown calibration model {model!r} (models: {', '.join(MODELS)})")
    if len(ok) < len(fields) + 1:
        raise E2simError(f"leave-one-out with model {model!r} needs at least {len(fields) + 1} predicted points, "
                         f"have {len(ok)}")
    act, prior = _features(ok, view, model)
    y = ok["published_pj_per_op"].to_numpy() * 1e-12
    rows = []
    for i in range(len(ok)):
        keep = np.arange(len(ok)) != i
        fit = fit_constants(act.iloc[keep], y[keep], prior, list(fields))
        values = np.array([fit.fitted_si[c] for c in act.columns])
        e = float(act.iloc[i].to_numpy() @ values)
        rows.append({"id": ok["id"].iloc[i], "model": model, "loo_pj_per_op": e * 1e12,
                     "loo_error_rel": e / y[i] - 1, **{f"fit_{k}": v for k, v in fit.fitted_si.items()}})
    return pd.DataFrame(rows)


def summary(pred: pd.DataFrame, loo: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Median absolute relative error before calibration and leave-one-out after, per model."""
    ok = pred[pred["reason"] == ""]
    rows = [{"stage": "profile as is", "points": len(ok), "median_abs_error_rel": float(ok["error_rel"].abs().median())}]
    for model, t in loo.items():
        rows.append({"stage": f"leave-one-out, {model}", "points": len(t),
                     "median_abs_error_rel": float(t["loo_error_rel"].abs().median())})
    return pd.DataFrame(rows)


def published_report(profile: str | Path, path: str | Path = PUBLISHED_CSV) -> tuple[pd.DataFrame, dict, pd.DataFrame, ProfileView]:
    """(per-point predictions, leave-one-out table per model, summary, profile view)."""
    view = load_profile_view(profile)
    pred = predict(load_published(path), view)
    loo = {m: leave_one_out(pred, view, m) for m in MODELS}
    return pred, loo, summary(pred, loo), view
