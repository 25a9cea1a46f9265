"""Energy integration: exact on piecewise-linear traces, the sampling bound holds on synthetic traces,
idle baselines and windows by hand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from e2sim.errors import E2simError
from e2sim.validation.integrate import trapezoid, window_energy, window_totals
from e2sim.validation.logs import read_log

DATA = Path(__file__).parent / "data" / "logs"


def canonical(t, p, mark=None, rail="r") -> pd.DataFrame:
    n = len(t)
    return pd.DataFrame({"timestamp_s": t, "rail": rail, "voltage_V": np.nan, "current_A": np.nan,
                         "power_W": p, "mark": np.zeros(n, int) if mark is None else mark})


@pytest.mark.parametrize("seed", range(8))
def test_exact_on_piecewise_linear(seed):
    """Samples at every breakpoint (plus extra samples on the segments): the trapezoid equals the
    antiderivative-based integral of the piecewise-linear trace."""
    rng = np.random.default_rng(seed)
    knots = np.cumsum(rng.uniform(0.01, 2.0, 12))
    vals = rng.uniform(0.0, 10.0, 12)
    extra = rng.uniform(knots[0], knots[-1], 30)
    t = np.unique(np.concatenate([knots, extra]))
    p = np.interp(t, knots, vals)
    exact = 0.0
    for (t1, t2), (p1, p2) in zip(zip(knots[:-1], knots[1:]), zip(vals[:-1], vals[1:])):
        slope = (p2 - p1) / (t2 - t1)
        alpha = p1 - slope * t1  # P(t) = alpha + slope * t on this segment
        exact += alpha * (t2 - t1) + slope * (t2**2 - t1**2) / 2
    e, _ = trapezoid(t, p)
    assert e == pytest.approx(exact, rel=1e-12)
    assert window_energy(canonical(t, p))["energy_j"].item() == pytest.approx(exact, rel=1e-12)


def _monotone_trace(rng, n):
    """Samples P_i at times t_i and, between samples, P_i + (P_i+1 - P_i) * f(u) with a random monotone
    shape f (u^k or 1-(1-u)^k): returns t, P and the exact integral of the continuous trace."""
    t = np.cumsum(rng.uniform(0.05, 1.0, n))
    p = rng.uniform(0.5, 8.0, n)
    k = rng.uniform(0.2, 60.0, n - 1)
    late = rng.random(n - 1) < 0.5  # f = u^k (change arrives late) or 1-(1-u)^k (early)
    frac = np.where(late, 1.0 / (k + 1.0), k / (k + 1.0))  # integral of f over [0, 1]
    exact = float(np.sum(np.diff(t) * (p[:-1] + np.diff(p) * frac)))
    return t, p, exact


@pytest.mark.parametrize("seed", range(20))
def test_sampling_bound_holds_on_monotone_traces(seed):
    rng = np.random.default_rng(seed)
    t, p, exact = _monotone_trace(rng, int(rng.integers(3, 200)))
    e, bound = trapezoid(t, p)
    assert abs(e - exact) <= bound * (1 + 1e-12)
    ps = np.sort(p)  # on a rising trace the bound is half the right-minus-left Riemann gap
    dt = np.diff(t)
    assert trapezoid(t, ps)[1] == pytest.approx((np.sum(dt * ps[1:]) - np.sum(dt * ps[:-1])) / 2)


def test_sampling_bound_is_attained_by_steps():
    """Rising steps right after each sample are the worst case: the error equals the bound."""
    t = np.array([0.0, 1.0, 2.0, 3.0])
    p = np.array([1.0, 4.0, 6.0, 7.0])
    exact = 1 * 4.0 + 1 * 6.0 + 1 * 7.0  # each change happens just after the earlier sample
    e, bound = trapezoid(t, p)
    assert abs(e - exact) == pytest.approx(bound)


@pytest.mark.parametrize("rate_hz", [2.0, 5.0, 20.0, 100.0])
def test_sampling_bound_on_training_like_trace(rate_hz):
    """Idle 2 W; a training phase starting at 3.3 s settles exponentially to 3.5 W (tau 0.4 s); a drop
    back to idle at 9.05 s. Sampled at ``rate_hz`` with a random phase; the bound holds and shrinks with
    the sampling rate."""
    t_on, t_off, tau, p0, p1 = 3.3, 9.05, 0.4, 2.0, 3.5

    def power(t):
        rise = p0 + (p1 - p0) * (1 - np.exp(-(np.clip(t, t_on, None) - t_on) / tau))
        return np.where(t < t_on, p0, np.where(t < t_off, rise, p0))

    def energy(a, b):  # exact integral over [a, b]
        def prim(x):  # antiderivative of power on [0, x]
            x = float(x)
            e = p0 * x
            xe = min(max(x, t_on), t_off) - t_on
            e += (p1 - p0) * (xe - tau * (1 - np.exp(-xe / tau)))
            return e
        return prim(b) - prim(a)

    rng = np.random.default_rng(int(rate_hz))
    t = np.arange(rng.uniform(0, 1 / rate_hz), 12.0, 1 / rate_hz)
    e, bound = trapezoid(t, power(t))
    assert abs(e - energy(t[0], t[-1])) <= bound
    assert bound < 2.0 * (p1 - p0) / rate_hz  # the two transitions dominate: ~ dt * swing each


def test_windows_idle_mark_by_hand():
    log = read_log(DATA / "pynq.csv", "pynq")
    t = window_energy(log, [1], idle_mark=0).set_index("rail")
    # 5V idle: mean of 2.0..2.2 W over 0.1 s = 2.1 W; window 1 lasts 0.2 s
    assert t.loc["5V", "idle_w"] == pytest.approx(2.1)
    assert t.loc["5V", "idle_energy_j"] == pytest.approx(0.42)
    assert t.loc["5V", "dynamic_energy_j"] == pytest.approx(0.64 - 0.42)
    assert t.loc["INT", "dynamic_energy_j"] == pytest.approx(0.2 - 0.1)
    assert t.loc["total", "idle_w"] == pytest.approx(2.6)
    assert t.loc["total", "dynamic_energy_j"] == pytest.approx(0.84 - 0.52)
    # idle sampling bound: 5V idle trapezoid bound 0.1*0.2/2 = 0.01 J over 0.1 s -> 0.1 W, x 0.2 s
    assert t.loc["5V", "dynamic_unc_j"] == pytest.approx(t.loc["5V", "energy_unc_j"] + 0.02)
    assert t.loc["5V", "energy_unc_j"] == pytest.approx(0.1 * 0.4 / 2 * 2)


def test_windows_default_all_but_idle_and_given_idle_power():
    log = read_log(DATA / "pynq.csv", "pynq")
    t = window_energy(log, idle_mark=0)
    assert sorted(t["mark"].unique()) == [1, 2]
    g = window_totals(window_energy(log, [1, 2], idle_w=2.5))
    assert g["rail"].tolist() == ["total", "total"]
    np.testing.assert_allclose(g["dynamic_energy_j"], [0.84 - 2.5 * 0.2, (2.0 + 0.5) * 0.1 - 2.5 * 0.1])
    per_rail = window_energy(log, [1], idle_w=2.5)
    assert per_rail.loc[per_rail["rail"] == "5V", "idle_w"].isna().all()  # a board-level value


def test_recurring_mark_integrated_run_by_run():
    t = np.arange(8, dtype=float)
    p = np.array([1, 1, 5, 5, 1, 1, 9, 9], dtype=float)
    m = np.array([0, 0, 1, 1, 0, 0, 2, 2])
    w = window_energy(canonical(t, p, m), [0]).iloc[0]
    assert w["energy_j"] == pytest.approx(2.0)  # [0,1] and [4,5]; the 1->5 ramp belongs to neither
    assert w["duration_s"] == pytest.approx(2.0)
    assert w["samples"] == 4


def test_window_errors():
    log = canonical(np.arange(4.0), np.ones(4), np.array([0, 0, 1, 2]))
    with pytest.raises(E2simError, match="no samples with mark 7"):
        window_energy(log, [7])
    with pytest.raises(E2simError, match="window mark 1 spans no time"):
        window_energy(log, [1])
    with pytest.raises(E2simError, match="either an idle mark or an idle power"):
        window_energy(log, [0], idle_mark=2, idle_w=1.0)
    with pytest.raises(E2simError, match="idle power must be"):
        window_energy(log, [0], idle_w=-1.0)
    with pytest.raises(E2simError, match="idle mark 2 spans no time|mark 2 spans no time"):
        window_energy(log, [0], idle_mark=2)
