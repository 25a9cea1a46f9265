"""Techniques priced by the hardware stage: identities, SMD linearity per component, composition, savings,
--compare and the CLI's one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import e2sim
from e2sim.errors import E2simError
from e2sim.estimate import estimate, estimate_plan
from e2sim.savings import compare, configure, estimate_with_savings
from e2sim.techniques import PSG, SLU, SMD, Techniques, add_gates, baseline_plan, build

W20 = e2sim.load_workload("resnet20_cifar10")
PROF = "zedboard"


def price(techs, w=W20, precision="fp32"):
    wt, plan = build(w, techs, precision)
    return estimate_plan(plan, wt, PROF)


def test_zero_strength_is_the_baseline_estimate():
    base = estimate(W20, PROF, "fp32")
    for e in (price([]), price([SMD(0.0)]), estimate_plan(baseline_plan(W20), W20, PROF)):
        assert e.energy_j == base.energy_j and e.time_s == base.time_s
        assert e.breakdown_j == base.breakdown_j
    # SLU at 0 is the baseline plus exactly the gates' cost
    e = price([SLU(0.0)])
    gate = np.array([r == "gate" for r in e.plan.counts.roles])[e.plan.layer]
    per_it = e.energy_per_iteration_j.sum(1)
    assert per_it[~gate].sum() * e.iterations == pytest.approx(base.energy_j, rel=1e-12)
    assert 0 < per_it[gate].sum() / per_it.sum() < 0.01


@settings(max_examples=10, deadline=None)
@given(rate=st.floats(0, 0.99))
def test_smd_scales_every_component_and_nothing_else(rate):
    ref = price([SLU(0.2), PSG(fallback=0.3)])
    e = price([SLU(0.2), PSG(fallback=0.3), SMD(rate)])
    np.testing.assert_array_equal(e.energy_per_iteration_j, ref.energy_per_iteration_j)  # per iteration: same
    for comp, v in ref.breakdown_j.items():
        assert e.breakdown_j[comp] == pytest.approx((1 - rate) * v, rel=1e-12)
    assert e.time_s == pytest.approx((1 - rate) * ref.time_s, rel=1e-12)
    assert e.cycles == pytest.approx((1 - rate) * ref.cycles, rel=1e-12)


@settings(max_examples=8, deadline=None)
@given(rate=st.floats(0, 0.9), skip=st.floats(0, 1), fb=st.floats(0, 1), order=st.permutations([0, 1, 2]))
def test_combined_equals_sequential_application_priced(rate, skip, fb, order):
    ts = [SMD(rate), SLU(skip), PSG(fallback=fb)]
    wt, combined = build(W20, Techniques(*ts))
    seq = baseline_plan(add_gates(W20))
    for k in order:
        seq = ts[k].apply(seq, wt)
    a, b = estimate_plan(combined, wt, PROF), estimate_plan(seq, wt, PROF)
    assert a.energy_j == pytest.approx(b.energy_j, rel=1e-12)
    assert a.time_s == pytest.approx(b.time_s, rel=1e-12)


def test_savings_and_compare_rows():
    t = Techniques(smd=SMD(0.5), slu=SLU(0.4), psg=PSG(fallback=0.1))
    sv = estimate_with_savings(W20, PROF, "fp32", t)
    base = estimate(W20, PROF, "fp32")
    assert sv.baseline.energy_j == base.energy_j
    assert sv.saving == pytest.approx(1 - sv.config.energy_j / base.energy_j)
    d = sv.to_dict()
    assert d["baseline"]["name"] == "fp32" and d["baseline"]["energy_j"] == base.energy_j
    assert d["saving"] == sv.saving and 0 < d["saving"] < 1
    df = compare(W20, PROF, "fp32", t)
    assert list(df.config) == ["baseline:fp32", "SMD", "SLU", "PSG", "SMD+SLU", "SMD+SLU+PSG"]
    row = df.set_index("config")
    assert row.loc["SMD", "saving"] == pytest.approx(0.5, rel=1e-12)  # SMD alone: exactly the drop rate
    # SMD composes multiplicatively with anything: (1 - s_{SMD+SLU}) = 0.5 (1 - s_SLU)
    assert 1 - row.loc["SMD+SLU", "saving"] == pytest.approx(0.5 * (1 - row.loc["SLU", "saving"]), rel=1e-12)
    assert row.loc["SMD+SLU+PSG", "energy_j"] == pytest.approx(sv.config.energy_j, rel=1e-12)
    # other baselines price differently and are named
    sv8 = estimate_with_savings(W20, PROF, "fp32", t, baseline="int8")
    assert sv8.baseline.energy_j < base.energy_j and sv8.to_dict()["baseline"]["name"] == "int8"


def test_stats_files_drive_slu_and_psg(tmp_path):
    ratios = {b.name: 0.5 for b in W20.gated_blocks}
    p = tmp_path / "slu.yaml"
    p.write_text(yaml.safe_dump({"schema_version": 1, "kind": "slu", "workload": W20.name,
                                 "skip_ratio": ratios}))
    a = estimate_with_savings(W20, PROF, "fp32", configure(slu_stats=str(p))).config
    b = estimate_with_savings(W20, PROF, "fp32", configure(slu_skip=0.5)).config
    assert a.energy_j == pytest.approx(b.energy_j, rel=1e-12)
    convs = [L.name for L in W20.layers if L.kind == "conv"]
    q = tmp_path / "psg.json"
    settings = {"bits": 8, "msb_bits": 4, "grad_msb_bits": 16, "threshold": 5e-5, "steps": 1, "sample_every": 1,
                "batch_size": 128, "data": "digits", "seed": 0}
    q.write_text(json.dumps({"schema_version": 1, "kind": "psg", "workload": W20.name, "settings": settings,
                             "fallback_fraction": {n: 0.2 for n in convs}}))
    a = estimate_with_savings(W20, PROF, "fp32", configure(psg=True, psg_stats=str(q))).config
    b = estimate_with_savings(W20, PROF, "fp32", configure(psg=True, psg_fallback=0.2)).config
    assert a.energy_j == pytest.approx(b.energy_j, rel=1e-12)
    q.write_text(json.dumps({"schema_version": 1, "kind": "psg", "workload": W20.name, "settings": settings,
                             "fallback_fraction": {"conv1": 2}}))
    with pytest.raises(E2simError, match=r"psg.json: fallback_fraction.conv1"):
        configure(psg=True, psg_stats=str(q))
    with pytest.raises(E2simError, match="need --psg"):
        configure(psg_fallback=0.1)
    with pytest.raises(E2simError, match="needs --psg-fallback"):
        configure(psg=True)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "e2sim", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args,msg", [
    (["--smd", "1.0"], "--smd"), (["--smd", "-0.1"], "--smd"), (["--slu-skip", "1.2"], "--slu-skip"),
    (["--slu-stats", "/no/such/file.yaml"], "cannot read file"),
    (["--psg", "--psg-fallback", "0.1", "--psg-bits", "grad=40"], "1..32"),
    (["--psg", "--psg-stats", "/no/such.json"], "cannot read file"),
    (["--psg-fallback", "1.5"], "--psg-fallback"),
])
def test_cli_bad_technique_options_one_line_exit_2(args, msg):
    r = cli("estimate", "--workload", "resnet20_cifar10", *args)
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_cli_json_has_baseline_and_saving():
    r = cli("estimate", "--workload", "resnet20_cifar10", "--smd", "0.25", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["baseline"]["name"] == "fp32" and d["saving"] == pytest.approx(0.25, rel=1e-12)
    assert d["iterations_executed"] == 48_000
