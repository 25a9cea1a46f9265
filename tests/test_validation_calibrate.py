"""NNLS against brute-force enumeration; constant fitting on activity matrices and on synthetic logs."""
from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from e2sim.errors import E2simError
from e2sim.validation.calibrate import calibrated_profile, fit_constants, profile_constants
from e2sim.validation.manifest import log_windows
from e2sim.validation.nnls import nnls

ROOT = Path(__file__).resolve().parent.parent
SYNTH = ROOT / "validation" / "logs"


def _generator():
    spec = importlib.util.spec_from_file_location("make_synthetic", SYNTH / "make_synthetic.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def brute_force_nnls(a, b):
    """Minimum residual over every column subset whose unconstrained least squares is non-negative."""
    best = (np.zeros(a.shape[1]), np.linalg.norm(b))
    for k in range(1, a.shape[1] + 1):
        for cols in itertools.combinations(range(a.shape[1]), k):
            z = np.linalg.lstsq(a[:, cols], b, rcond=None)[0]
            if (z >= 0).all():
                x = np.zeros(a.shape[1])
                x[list(cols)] = z
                r = np.linalg.norm(a @ x - b)
                if r < best[1]:
                    best = (x, r)
    return best


@pytest.mark.parametrize("seed", range(200))
def test_nnls_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(1, 9)), int(rng.integers(1, 6))
    a, b = rng.normal(size=(m, n)), rng.normal(size=m)
    x, r = nnls(a, b)
    xb, rb = brute_force_nnls(a, b)
    assert (x >= 0).all()
    assert r == pytest.approx(rb, rel=1e-9, abs=1e-12)
    assert r == pytest.approx(np.linalg.norm(a @ x - b), rel=1e-12, abs=1e-12)
    if m >= n and np.linalg.matrix_rank(a) == n:  # strictly convex: the minimiser is unique
        np.testing.assert_allclose(x, xb, rtol=1e-7, atol=1e-9)


def test_nnls_recovers_sparse_nonnegative_solution():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, (30, 6))
    x_true = np.array([0.0, 2.0, 0.0, 0.5, 3.0, 0.0])
    x, r = nnls(a, a @ x_true)
    np.testing.assert_allclose(x, x_true, atol=1e-10)
    assert r < 1e-10


def test_nnls_clamps_at_zero_when_unconstrained_is_negative():
    a = np.eye(2)
    x, r = nnls(a, np.array([1.0, -2.0]))
    np.testing.assert_allclose(x, [1.0, 0.0])
    assert r == pytest.approx(2.0)


PRIOR = {"static_power_w": 2.0, "compute.mac_fp32_pj": 4.6e-12, "dram.read_pj_per_bit": 20e-12,
         "buffers.ifmap.read_pj_per_bit": 0.375e-12}


def _activity(rng, n):
    return pd.DataFrame({"static_power_w": rng.uniform(1, 10, n), "compute.mac_fp32_pj": rng.uniform(1e11, 1e12, n),
                         "dram.read_pj_per_bit": rng.uniform(1e9, 5e10, n),
                         "buffers.ifmap.read_pj_per_bit": rng.uniform(1e11, 1e12, n)},
                        index=[f"w{i}" for i in range(n)])


def test_fit_exact_on_noiseless_activity_matrix():
    rng = np.random.default_rng(0)
    act = _activity(rng, 12)
    truth = dict(PRIOR, **{"static_power_w": 2.7, "compute.mac_fp32_pj": 9.1e-12, "dram.read_pj_per_bit": 31e-12})
    y = act.to_numpy() @ np.array([truth[c] for c in act.columns])
    r = fit_constants(act, y, PRIOR, ["static_power_w", "compute.mac_fp32_pj", "dram.read_pj_per_bit"])
    for f in r.fields:
        assert r.fitted_si[f] == pytest.approx(truth[f], rel=1e-9, abs=0)
    assert r.max_residual_rel < 1e-12
    # the unfitted constant kept its prior and its energy was subtracted, not absorbed
    assert r.prior_si["buffers.ifmap.read_pj_per_bit"] == PRIOR["buffers.ifmap.read_pj_per_bit"]
    np.testing.assert_allclose(r.windows["prior_j"], act.to_numpy() @ np.array([PRIOR[c] for c in act.columns]))


def test_fit_within_noise_on_activity_matrix():
    """1% relative noise on 40 windows: the constants come back within 2% (statistical error ~0.5%)."""
    rng = np.random.default_rng(3)
    act = _activity(rng, 40)
    truth = dict(PRIOR, **{"static_power_w": 2.7, "compute.mac_fp32_pj": 9.1e-12})
    y = act.to_numpy() @ np.array([truth[c] for c in act.columns]) * (1 + 0.01 * rng.standard_normal(40))
    r = fit_constants(act, y, PRIOR, ["static_power_w", "compute.mac_fp32_pj"])
    assert r.fitted_si["static_power_w"] == pytest.approx(2.7, rel=0.02)
    assert r.fitted_si["compute.mac_fp32_pj"] == pytest.approx(9.1e-12, rel=0.02, abs=0)
    assert 0.003 < r.rms_residual_rel < 0.02  # the residuals show the noise


def test_fit_errors():
    rng = np.random.default_rng(0)
    act = _activity(rng, 5)
    y = np.full(5, 10.0)
    with pytest.raises(E2simError, match="unknown profile constant 'compute.mac_fp64_pj'"):
        fit_constants(act, y, PRIOR, ["compute.mac_fp64_pj"])
    with pytest.raises(E2simError, match="no window exercises dram.read_pj_per_bit"):
        fit_constants(act.assign(**{"dram.read_pj_per_bit": 0.0}), y, PRIOR, ["dram.read_pj_per_bit"])
    collinear = act.assign(**{"dram.read_pj_per_bit": act["compute.mac_fp32_pj"] * 0.05})
    with pytest.raises(E2simError, match="not separable"):
        fit_constants(collinear, y, PRIOR, ["compute.mac_fp32_pj", "dram.read_pj_per_bit"])
    with pytest.raises(E2simError, match="only 2 window"):
        fit_constants(act.iloc[:2], y[:2], PRIOR, ["static_power_w", "compute.mac_fp32_pj", "dram.read_pj_per_bit"])
    with pytest.raises(E2simError, match="named twice"):
        fit_constants(act, y, PRIOR, ["static_power_w", "static_power_w"])
    with pytest.raises(E2simError, match="finite and > 0"):
        fit_constants(act, np.array([1, 2, np.nan, 4, 5.0]), PRIOR, ["static_power_w"])


def test_profile_constants_and_calibrated_profile():
    data = {"name": "p", "array": {"clock_hz": {"value": 1e8, "source": "x"}},
            "compute": {"mac_fp32_pj": {"value": 4.6, "source": "Horowitz"}},
            "dram": {"read_pj_per_bit": {"value": 20.0, "source": "Han"}, "bandwidth_bytes_per_s": {"value": 3.2e9, "source": "ug"}},
            "static_power_w": {"value": 2.0, "source": "estimate"}}
    consts = profile_constants(data)
    assert consts == pytest.approx({"compute.mac_fp32_pj": 4.6e-12, "dram.read_pj_per_bit": 20e-12, "static_power_w": 2.0}, abs=0)
    act = pd.DataFrame({"static_power_w": [1.0, 2.0], "compute.mac_fp32_pj": [1e12, 1e11]}, index=["a", "b"])
    y = act.to_numpy() @ np.array([2.5, 8e-12])
    r = fit_constants(act, y, consts, ["static_power_w", "compute.mac_fp32_pj"])
    new = calibrated_profile(data, r, ["log.csv"], "p-cal")
    assert new["name"] == "p-cal"
    assert new["compute"]["mac_fp32_pj"]["value"] == pytest.approx(8.0)  # back in pJ
    assert new["static_power_w"]["value"] == pytest.approx(2.5)
    assert "log.csv" in new["static_power_w"]["source"] and "prior 2.0 (estimate)" in new["static_power_w"]["source"]
    assert new["dram"] == data["dram"] and data["static_power_w"]["value"] == 2.0  # untouched, input not mutated


SYNTH_FIT = ["static_power_w", "compute.int_mult_pj_per_bit2", "dram.read_pj_per_bit"]
SYNTH_PRIOR = {"static_power_w": 2.0, "compute.int_mult_pj_per_bit2": 0.003125e-12,
               "compute.int_add_pj_per_bit": 0.00375e-12, "dram.read_pj_per_bit": 20e-12}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calibration_recovers_constants_from_synthetic_logs(tmp_path, seed):
    truth = _generator().generate(tmp_path, seed=seed, noise=0.01)
    act, measured = log_windows(tmp_path / "synthetic_pynq.csv", "unused")
    # the log integrates back to the generator's window energies (sample noise averages out)
    np.testing.assert_allclose(measured["energy_j"], [truth["window_energy_j"][m] for m in range(17)], rtol=0.005)
    r = fit_constants(act, measured["energy_j"], SYNTH_PRIOR, SYNTH_FIT)
    for f in SYNTH_FIT:
        assert r.fitted_si[f] == pytest.approx(truth["constants"][f], rel=0.02, abs=0), f
        assert r.fitted_si[f] != pytest.approx(SYNTH_PRIOR[f], rel=0.05, abs=0)  # the fit moved it


def test_committed_synthetic_log_is_reproducible(tmp_path):
    _generator().generate(tmp_path)  # defaults: seed 0, 1% noise, as committed
    for name in ("synthetic_pynq.csv", "synthetic_pynq.windows.yaml"):
        assert (tmp_path / name).read_bytes() == (SYNTH / name).read_bytes(), name
    assert (SYNTH / "synthetic_pynq.csv").read_text().startswith("# synthetic:")


def test_sidecar_errors(tmp_path):
    log = tmp_path / "l.csv"
    log.write_text(",Mark,5V_power\n0.0,0,1\n0.1,0,1\n0.2,1,2\n0.3,1,2\n")
    with pytest.raises(E2simError, match="no sidecar l.windows.yaml"):
        log_windows(log, "p")
    side = tmp_path / "l.windows.yaml"
    side.write_text("format: pynq\nwindows:\n  - {mark: 0, idle: true, activity: {static_power_w: 1}}\n")
    with pytest.raises(E2simError, match="exactly one of idle, run, estimate, activity"):
        log_windows(log, "p")
    side.write_text("format: pynq\nrails: [12V]\nwindows:\n  - {mark: 0, idle: true}\n")
    with pytest.raises(E2simError, match=r"rails \['12V'\] not in l.csv"):
        log_windows(log, "p")
    side.write_text("format: pynq\nwindows:\n  - {mark: 1, estimate: e.json}\n")
    (tmp_path / "e.json").write_text('{"energy_j": 1, "time_s": 1, "breakdown_j": {"mac": 0, "sram": 0, "dram": 0, "static": 1}}')
    with pytest.raises(E2simError, match="estimate has no 'activity'"):
        log_windows(log, "p")
    (tmp_path / "e.json").write_text('{"energy_j": 1, "time_s": 9, "activity": {"static_power_w": 9, "dram.read_pj_per_bit": 1e9},'
                                     ' "breakdown_j": {"mac": 0, "sram": 0, "dram": 0, "static": 1}}')
    act, meas = log_windows(log, "p")
    assert act.loc["l.csv#1"].to_dict() == {"static_power_w": pytest.approx(0.1), "dram.read_pj_per_bit": 1e9}
    assert meas["energy_j"].item() == pytest.approx(0.2)


def test_fpga_energies_are_linear_constants_and_recalibration_drops_the_band():
    from e2sim.config import read_yaml
    from e2sim.profile import PROFILE_DIR

    data = read_yaml(PROFILE_DIR / "zedboard.yaml")
    consts = profile_constants(data)
    assert consts["fpga.energy.dsp_pj_per_slice_cycle"] == pytest.approx(
        data["fpga"]["energy"]["dsp_pj_per_slice_cycle"]["value"] * 1e-12)
    assert "fpga.energy.clock_pj_per_dsp_cycle" in consts and "fpga.static.board_w" in consts
    act = pd.DataFrame({"fpga.static.board_w": [1.0, 2.0], "fpga.energy.dsp_pj_per_slice_cycle": [1e12, 3e11]})
    y = act.to_numpy() @ np.array([1.5, 30e-12])
    r = fit_constants(act, y, consts, ["fpga.static.board_w", "fpga.energy.dsp_pj_per_slice_cycle"])
    new = calibrated_profile(data, r, ["log.csv"], "mine")
    assert "calibration" not in new and "calibration" in data
    assert new["fpga"]["energy"]["dsp_pj_per_slice_cycle"]["value"] == pytest.approx(30.0)
