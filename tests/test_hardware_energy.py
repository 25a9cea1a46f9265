"""Energy and estimate: a hand-computed toy case, the activity identity, invariants (hypothesis)."""
from __future__ import annotations

import dataclasses
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e2sim.counts import PASSES, count
from e2sim.estimate import estimate, estimate_plan
from e2sim.plan import base_plan
from e2sim.profile import bundled_profiles, load_profile
from e2sim.records import validated
from e2sim.workload import PKG_ROOT, Dataset, WorkloadFile
from e2sim.workload_files import load_workload, resolve


def toy(cin=64, cout=10, batch=4, iterations=3):
    spec = validated(WorkloadFile, dict(
        name="toy", model="custom", batch_size=batch, schedule={"iterations": iterations, "lr_milestones": []},
        dataset=Dataset(name="toy", classes=cout, train_images=100, test_images=10, image_shape=(cin, 1, 1)),
        layers=[{"name": "fc", "kind": "linear", "in_shape": (cin, 1, 1), "out_shape": (cout, 1, 1),
                 "role": "head", "needs_input_grad": False}],
    ))
    return resolve(spec)


PRIOR = str(PKG_ROOT / "hardware_profiles" / "priors" / "zedboard.yaml")


def test_toy_linear_layer_by_hand():
    """One 64->10 linear layer, batch 4, int8, on the ZedBoard prior profile, priced by hand."""
    w = toy()
    p = load_profile(PRIOR)
    est = estimate(w, p, "int8")
    f = est.items_frame().set_index("pass")
    # fwd GEMM (M, N, K) = (4, 10, 64), int8 packs 2 MACs per DSP: a 14 x 28 array, OS.
    # folds = ceil(4/14) * ceil(10/28) = 1; cycles = 64 + 14 + 28 - 2 - 1 = 103.
    assert f.loc["fwd", "compute_cycles"] == 103
    # bwd_weight GEMM (64, 10, 4): folds = ceil(64/14) = 5; cycles = 5 * (4 + 40) - 1 = 219.
    assert f.loc["bwd_weight", "compute_cycles"] == 219
    # update: 3 ops per parameter (640) on fp32 (0.2 ops/PE/cycle): ceil(1920 / (196 * 0.2)) = 49 cycles.
    assert f.loc["update", "compute_cycles"] == 49
    iters = 3
    cyc = f["cycles"].sum()
    # fwd and bwd_weight: 2560 int8 MACs each, packed in pairs: half a DSP slice-cycle each at full toggle
    # (12 pJ per slice-cycle). update: 1920 fp32 adds, 2 DSP slices (12 pJ) + 300 LUT ops (0.1 pJ) each.
    # Clock tree: 196 DSPs x 1.9 pJ on every cycle.
    e_mac = 2 * 2560 * 0.5 * 12e-12 + 1920 * (2 * 12e-12 + 300 * 0.1e-12) + cyc * 196 * 1.9e-12
    assert est.breakdown_j["mac"] == pytest.approx(iters * e_mac, rel=1e-12)
    # fwd memory: A (4x64) and B (64x10) fit: DRAM reads 256 + 640 elements, writes 40 outputs (8 bit).
    assert f.loc["fwd", "dram_read_bits"] == (256 + 640) * 8
    assert f.loc["fwd", "dram_write_bits"] == 40 * 8
    # SRAM: reads A once per column fold (1) and B once per row fold (1); OFMAP writes 40; fills and drain.
    assert f.loc["fwd", "sram_read_bits"] == (256 + 640 + 40) * 8
    assert f.loc["fwd", "sram_write_bits"] == (256 + 640 + 40) * 8
    # Static energy: PS 0.85 + PL 0.25 + DDR 0.66 + board 1.0 W x total cycles / 100 MHz.
    assert est.cycles == iters * cyc
    assert est.breakdown_j["static"] == pytest.approx(2.76 * iters * cyc / 1e8, rel=1e-12)


@pytest.mark.parametrize("name", ["resnet20_cifar10", "mobilenetv2_cifar10"])
@pytest.mark.parametrize("profile", ["zedboard", "asic45nm"])
def test_breakdowns_sum_and_activity_identity(name, profile):
    est = estimate(name, profile, "int16", iterations=10)
    assert sum(est.breakdown_j.values()) == pytest.approx(est.energy_j, rel=1e-12)
    assert sum(est.by_pass_j.values()) == pytest.approx(est.energy_j, rel=1e-12)
    assert est.to_frame()["energy_j"].sum() == pytest.approx(est.energy_j, rel=1e-12)
    coef, values = est.activity(), est.profile.linear_constants()
    assert list(coef) == list(values)
    assert sum(coef[k] * values[k] for k in coef) == pytest.approx(est.energy_j, rel=1e-12)
    # Perturbing one constant changes the energy by exactly its coefficient (linearity).
    raw = dataclasses.asdict(est.profile)
    raw["dram"]["read_pj_per_bit"]["value"] += 1.0
    bumped = estimate(name, validated(type(est.profile), raw), "int16", iterations=10)
    assert bumped.energy_j - est.energy_j == pytest.approx(coef["dram.read_pj_per_bit"] * 1e-12, rel=1e-9)


@pytest.mark.parametrize("profile", sorted(bundled_profiles()))
@pytest.mark.parametrize("name", ["resnet20_cifar10", "resnet110_cifar100", "mobilenetv2_cifar10"])
def test_int8_costs_less_than_fp32(profile, name):
    e8, e32 = estimate(name, profile, "int8"), estimate(name, profile, "fp32")
    assert e8.energy_j < e32.energy_j and e8.time_s <= e32.time_s
    for comp in ("mac", "sram", "dram"):
        assert e8.breakdown_j[comp] < e32.breakdown_j[comp]


def test_json_record():
    d = estimate("resnet20_cifar10", "zedboard", "int8", iterations=5).to_dict()
    for key in ("energy_j", "time_s", "cycles", "breakdown_j", "by_pass_j", "workload", "profile", "precision",
                "settings", "e2sim_version", "config_hash", "iterations_executed"):
        assert key in d
    assert set(d["breakdown_j"]) == {"mac", "sram", "dram", "static"}
    assert set(d["by_pass_j"]) == set(PASSES)


W20 = load_workload("resnet20_cifar10")


@settings(max_examples=25, deadline=None)
@given(profile=st.sampled_from(sorted(bundled_profiles())), bits=st.integers(2, 31), up=st.integers(1, 8),
       item=st.integers(0, 10_000), batch=st.integers(1, 256))
def test_monotone_in_bit_width(profile, bits, up, item, batch):
    plan = base_plan(count(W20, batch), "int8", iterations=1)
    i = item % plan.n_items
    lo = replace(plan, a_bits=plan.a_bits.copy(), b_bits=plan.b_bits.copy(), is_float=np.zeros(plan.n_items, bool))
    lo.a_bits[i] = lo.b_bits[i] = bits
    hi = replace(lo, a_bits=lo.a_bits.copy(), b_bits=lo.b_bits.copy(), tensor_bits=lo.tensor_bits.copy())
    hi.a_bits[i] = hi.b_bits[i] = min(32, bits + up)
    hi.tensor_bits[i] = np.maximum(hi.tensor_bits[i], min(32, bits + up))
    e_lo, e_hi = estimate_plan(lo, W20, profile), estimate_plan(hi, W20, profile)
    assert e_hi.energy_j >= e_lo.energy_j and e_hi.cycles >= e_lo.cycles
    assert e_lo.energy_j > 0 and min(e_lo.breakdown_j.values()) >= 0


@settings(max_examples=25, deadline=None)
@given(profile=st.sampled_from(sorted(bundled_profiles())), cin=st.integers(1, 600), cout=st.integers(1, 600),
       extra=st.integers(1, 300), batch=st.integers(1, 64),
       precision=st.sampled_from(["fp32", "fp16", "int8", "int16"]))
def test_monotone_in_macs(profile, cin, cout, extra, batch, precision):
    small = estimate(toy(cin, cout, batch), profile, precision)
    big = estimate(toy(cin, cout + extra, batch), profile, precision)
    assert big.costs.macs.sum() > small.costs.macs.sum()
    assert big.energy_j >= small.energy_j > 0 and big.cycles >= small.cycles > 0
    for est in (small, big):
        assert min(est.breakdown_j.values()) >= 0
        assert sum(est.breakdown_j.values()) == pytest.approx(est.energy_j, rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(frac=st.floats(0.05, 1.0), scale=st.floats(0.0, 1.0))
def test_fewer_samples_or_smaller_scale_never_cost_more(frac, scale):
    plan = base_plan(count(W20), "int8", iterations=1)
    base = estimate_plan(plan, W20, "zedboard")
    act = plan.counts.macs_sample[plan.layer, plan.pass_] > 0
    cheaper = replace(plan, samples=np.where(act, plan.samples * frac, plan.samples),
                      scale=np.where(plan.pass_ == 2, scale, 1.0))
    est = estimate_plan(cheaper, W20, "zedboard")
    assert est.energy_j <= base.energy_j * (1 + 1e-12) and est.cycles <= base.cycles * (1 + 1e-12)
