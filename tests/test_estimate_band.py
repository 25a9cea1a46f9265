"""The estimate's band (from the profile's calibration bootstrap), the savings band and the sensitivities."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from e2sim.cli import run
from e2sim.estimate import estimate
from e2sim.profile import load_profile
from e2sim.records import validated
from e2sim.savings import compare, configure, estimate_with_savings
from e2sim.workload import PKG_ROOT

PRIOR = str(PKG_ROOT / "hardware_profiles" / "priors" / "zedboard.yaml")


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_band_brackets_the_estimate_and_follows_the_bootstrap(precision):
    e = estimate("resnet20_cifar10", "zedboard", precision, iterations=10)
    b = e.band()
    assert b["energy_j_low"] <= e.energy_j <= b["energy_j_high"] and b["energy_j_low"] > 0
    assert b["time_s_low"] <= e.time_s <= b["time_s_high"]
    # Independent recomputation: each replicate's constants priced by the run's activity, times its residual.
    bs = load_profile("zedboard").calibration.bootstrap
    act, vals = e.activity(), e.profile.linear_constants()
    fixed = sum(act[k] * v for k, v in vals.items() if k not in bs.constants)
    samples = [(fixed + sum(act[c] * x for c, x in zip(bs.constants, vec))) * (1 + r)
               for vec, r in zip(bs.vectors_si, bs.residual_fractions)]
    assert b["energy_j_low"] == pytest.approx(min(np.quantile(samples, 0.05), e.energy_j), rel=1e-9)
    assert b["energy_j_high"] == pytest.approx(max(np.quantile(samples, 0.95), e.energy_j), rel=1e-9)
    d = e.to_dict()
    assert all(k in d for k in ("energy_j_low", "energy_j_high", "time_s_low", "time_s_high"))


def test_uncalibrated_profiles_have_no_band():
    for prof in ("asic45nm", PRIOR):
        d = estimate("resnet20_cifar10", prof, iterations=2).to_dict()
        assert "energy_j_low" not in d and "time_s_high" not in d


def test_saving_band_is_narrower_than_the_energy_band():
    t = configure(smd=0.5, slu_skip=0.4, psg=True, psg_fallback=0.1)
    df = compare("resnet20_cifar10", "zedboard", "fp32", t, iterations=20).set_index("config")
    for cfg, r in df.iterrows():
        assert r["saving_low"] <= r["saving"] <= r["saving_high"]
        assert r["energy_j_low"] <= r["energy_j"] <= r["energy_j_high"]
        # relative width of the remaining energy (1 - saving) vs that of the energy itself
        if not cfg.startswith("baseline"):
            rem_w = (r["saving_high"] - r["saving_low"]) / (1 - r["saving"])
            e_w = (r["energy_j_high"] - r["energy_j_low"]) / r["energy_j"]
            assert rem_w < e_w / 5, cfg
    assert df.loc["SMD", "saving_low"] == pytest.approx(0.5) == df.loc["SMD", "saving_high"]
    sv = estimate_with_savings("resnet20_cifar10", "zedboard", "fp32", t, iterations=20).to_dict()
    assert sv["saving_low"] <= sv["saving"] <= sv["saving_high"]


@pytest.mark.parametrize("profile", ["zedboard", "asic45nm"])
def test_sensitivity_is_the_exact_elasticity(profile):
    e = estimate("resnet20_cifar10", profile, "int16", iterations=3)
    s = e.sensitivity()
    assert set(s) == set(e.profile.linear_constants())
    assert sum(s.values()) == pytest.approx(1.0, rel=1e-9)  # E is linear and homogeneous in the constants
    # finite difference on the DRAM read energy: d ln E / d ln c
    raw = dataclasses.asdict(e.profile)
    raw["dram"]["read_pj_per_bit"]["value"] *= 1.01
    bumped = estimate("resnet20_cifar10", validated(type(e.profile), raw), "int16", iterations=3)
    assert np.log(bumped.energy_j / e.energy_j) / np.log(1.01) == pytest.approx(s["dram.read_pj_per_bit"], rel=1e-2)


def test_cli_inference_and_sensitivity(capsys):
    code = run(["estimate", "--workload", "vgg16_imagenet", "--inference", "--precision", "int16",
                "--batch-size", "2", "--sensitivity", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    assert d["inference"] is True and d["batch_size"] == 2 and d["macs"] == 2 * 15470264320
    assert d["by_pass_j"]["bwd_input"] == 0 == d["by_pass_j"]["update"]
    assert sum(d["sensitivity"].values()) == pytest.approx(1.0)
    assert d["energy_j_low"] <= d["energy_j"] <= d["energy_j_high"]
    code = run(["estimate", "--workload", "resnet20_cifar10", "--inference", "--smd", "0.5", "--format", "json"])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "--inference" in err
