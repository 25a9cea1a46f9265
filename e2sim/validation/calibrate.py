"""Calibration: fit a profile's linear constants to measured window energies by non-negative least squares.

Interface with the energy model (its only dependency): per window, the *activity* — the coefficient of
each linear profile constant such that the window's energy is ``sum(coef[c] * value_SI[c])``. Constants not
fitted keep their profile value and their share is subtracted from the measurement; the fitted ones solve

    min_x  sum_w ((A_w . x - y_w) / y_w)^2   subject to x >= 0

(relative residuals, so long and short windows weigh alike: the meter's noise is proportional to power).
Columns are scaled to unit norm before the Lawson-Hanson solve, since coefficients span 1e0 (seconds) to
1e15 (bit-products). A constant no window exercises, or constants whose activities are collinear across the
windows, cannot be fitted: that is an error naming them, never an arbitrary split.

Profiles are read and written as YAML mappings of ``{value, source}`` leaves; a linear constant is a leaf
whose name ends in an energy or power unit (see LINEAR_UNITS), addressed by its dotted key path
(``compute.mac_fp32_pj``, ``static_power_w``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import E2simError
from .nnls import nnls

# name suffix -> factor from the file's unit to SI (longest suffix first)
LINEAR_UNITS: tuple[tuple[str, float], ...] = (
    ("_pj_per_bit2", 1e-12), ("_pj_per_bit", 1e-12), ("_pj_per_slice_cycle", 1e-12), ("_pj_per_lut_op", 1e-12),
    ("_pj_per_dsp_cycle", 1e-12), ("_pj", 1e-12), ("_w", 1.0),
)
STATIC_CONSTANT = "static_power_w"  # the constant whose coefficient is time (s) in an ASIC profile


def static_constants(names) -> list[str]:
    """The constants whose coefficient is time (s): static_power_w (ASIC) or fpga.static.* (PS, PL, DDR, board)."""
    return [n for n in names if n == STATIC_CONSTANT or n.startswith("fpga.static.")]


def unit_factor(name: str) -> float | None:
    leaf = name.rsplit(".", 1)[-1]
    for suffix, factor in LINEAR_UNITS:
        if leaf.endswith(suffix):
            return factor
    return None


def profile_constants(data: Mapping, prefix: str = "") -> dict[str, float]:
    """Every linear constant of a profile mapping: dotted key path -> value in SI (J, J/bit, W)."""
    out: dict[str, float] = {}
    for key, val in data.items():
        path = f"{prefix}{key}"
        if isinstance(val, Mapping):
            factor = unit_factor(path)
            if factor is not None and "value" in val and isinstance(val["value"], (int, float)):
                out[path] = float(val["value"]) * factor
            else:
                out.update(profile_constants(val, path + "."))
    return out


@dataclass(frozen=True)
class FitResult:
    fields: tuple[str, ...]
    fitted_si: dict[str, float]  # fitted constant -> value (SI)
    prior_si: dict[str, float]  # every constant's value before the fit (SI)
    windows: pd.DataFrame  # label, measured_j, prior_j, fitted_j, residual_j, residual_rel

    @property
    def rms_residual_rel(self) -> float:
        return float(np.sqrt(np.mean(self.windows["residual_rel"] ** 2)))

    @property
    def max_residual_rel(self) -> float:
        return float(self.windows["residual_rel"].abs().max())

    def constants_frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "constant": list(self.fields),
            "prior_si": [self.prior_si[f] for f in self.fields],
            "fitted_si": [self.fitted_si[f] for f in self.fields],
            "ratio": [self.fitted_si[f] / self.prior_si[f] if self.prior_si[f] else np.nan for f in self.fields],
        })


def fit_constants(activity: pd.DataFrame, measured_j: Sequence[float], constants: Mapping[str, float],
                  fit: Sequence[str]) -> FitResult:
    """Fit ``fit`` (constant names) to ``measured_j`` (one per row of ``activity``, rows = windows,
    columns = constants, coefficients in SI; absent columns are zero). ``constants``: prior SI values."""
    y = np.asarray(measured_j, dtype=float)
    if len(y) != len(activity):
        raise ValueError("one measurement per activity row")
    if not fit:
        raise E2simError("--fit: name at least one constant to fit")
    if len(set(fit)) != len(fit):
        raise E2simError(f"--fit: a constant is named twice ({', '.join(fit)})")
    for name in [*fit, *activity.columns]:
        if name not in constants:
            raise E2simError(f"unknown profile constant {name!r} (linear constants: {', '.join(sorted(constants))})")
    if not (np.isfinite(y).all() and (y > 0).all()):
        raise E2simError("every measured window energy must be finite and > 0 J")
    if len(y) < len(fit):
        raise E2simError(f"{len(fit)} constants to fit but only {len(y)} window(s): add windows or fit fewer")
    act = activity.reindex(columns=list(constants), fill_value=0.0).astype(float)
    if not np.isfinite(act.to_numpy()).all() or (act.to_numpy() < 0).any():
        raise E2simError("activity coefficients must be finite and >= 0")
    prior = np.array([constants[c] for c in act.columns])
    is_fit = np.array([c in fit for c in act.columns])
    a_fit = act.loc[:, list(fit)].to_numpy()
    fixed_j = act.to_numpy()[:, ~is_fit] @ prior[~is_fit]

    wa, wy = a_fit / y[:, None], (y - fixed_j) / y  # relative residuals
    scale = np.linalg.norm(wa, axis=0)
    unused = [f for f, s in zip(fit, scale) if s == 0]
    if unused:
        raise E2simError(f"no window exercises {', '.join(unused)}: its activity is zero in every window")
    wa = wa / scale
    if np.linalg.matrix_rank(wa, tol=1e-9 * np.sqrt(len(y))) < len(fit):
        raise E2simError(
            f"constants {', '.join(fit)} are not separable with these windows (their activities are "
            "proportional across windows): fit fewer constants or add windows with different mixes"
        )
    xs, _ = nnls(wa, wy)
    fitted = xs / scale
    values = prior.copy()
    values[[list(act.columns).index(f) for f in fit]] = fitted
    prior_j = act.to_numpy() @ prior
    fitted_j = act.to_numpy() @ values
    windows = pd.DataFrame({"window": list(activity.index), "measured_j": y, "prior_j": prior_j,
                            "fitted_j": fitted_j, "residual_j": fitted_j - y, "residual_rel": (fitted_j - y) / y})
    return FitResult(tuple(fit), dict(zip(fit, map(float, fitted))), dict(zip(act.columns, map(float, prior))), windows)


def calibrated_profile(data: Mapping, result: FitResult, logs: Sequence[str], name: str) -> dict:
    """A copy of profile mapping ``data`` with the fitted constants replaced (in the file's units) and
    their ``source`` recording the fit: method, logs, windows, residuals and the prior value."""
    out = copy.deepcopy(dict(data))
    if "name" in out:
        out["name"] = name
    # A previous calibration's record (rows, bootstrap) no longer describes the refitted constants: the new
    # profile has no band until it is calibrated again as a whole.
    out.pop("calibration", None)
    summary = (f"calibrated by e2sim calibrate: NNLS over {len(result.windows)} window(s) of "
               f"{', '.join(logs)}; fitted {', '.join(result.fields)}; relative residual rms "
               f"{result.rms_residual_rel:.3%}, max {result.max_residual_rel:.3%}")
    for field in result.fields:
        node = out
        *parents, leaf = field.split(".")
        for key in parents:
            node = node[key]
        old = node[leaf]
        factor = unit_factor(field)
        node[leaf] = {"value": float(f"{result.fitted_si[field] / factor:.6g}"),
                      "source": f"{summary}; prior {old['value']} ({old.get('source', 'no source')})"}
    return out
