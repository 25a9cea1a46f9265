"""Precision and baseline semantics (issue 13, item 2): the baseline is named for its precision and defaults
to plain training at the run's --precision; PSG applies on top of the chosen precision (it never widens a
gradient or a stored tensor that the precision narrowed). Expected bit-widths are written out by hand."""
import json
import subprocess
import sys

import pytest

import e2sim
from e2sim.estimate import estimate, estimate_plan
from e2sim.plan import base_plan
from e2sim.savings import compare, estimate_with_savings
from e2sim.techniques import PSG, SMD, Baseline, PSGBits, Techniques, baseline_plan, build
from e2sim.errors import E2simError

from test_techniques_plan import W20, assert_same, items

PROF = "zedboard"


@pytest.mark.parametrize("prec", ["fp32", "fp16", "int8", "int16"])
def test_plain_baselines_are_the_precision_presets(prec):
    assert_same(baseline_plan(W20, prec), base_plan(e2sim.count(W20), prec, 64_000))


def test_baseline_names_carry_their_precision():
    assert [Baseline(k, "int8").name for k in ("int8", "fp32", "int8-banner", "signsgd", "stochastic-depth")] == \
        ["int8", "fp32", "int8-banner", "signsgd-int8", "stochastic-depth-int8"]
    sg = items(baseline_plan(W20, "signsgd", precision="int8")).set_index(["layer", "pass"])
    assert (sg.loc[("layer1.0.conv1", "fwd")].a_bits, sg.loc[("layer1.0.conv1", "fwd")].is_float) == (8, False)
    assert sg.loc[("fc", "update")].tag == "sign_update"


def test_default_baseline_is_plain_training_at_the_run_precision():
    t = Techniques(smd=SMD(0.5))
    for prec in ("fp32", "int8"):
        sv = estimate_with_savings(W20, PROF, prec, t)
        assert sv.baseline_name == prec and sv.to_dict()["baseline"]["name"] == prec
        assert sv.baseline.energy_j == estimate(W20, PROF, prec).energy_j
        assert sv.saving == pytest.approx(0.5, rel=1e-12)  # SMD alone: the drop rate, at any precision
        df = compare(W20, PROF, prec, t)
        assert df.config[0] == f"baseline:{prec}"
    # an explicit cross-precision baseline is allowed and named
    sv = estimate_with_savings(W20, PROF, "int8", t, baseline="fp32")
    assert sv.baseline_name == "fp32" and sv.saving > 0.9


def test_psg_on_int8_keeps_int8_widths_by_hand():
    _, p = build(W20, [PSG(fallback=0.25)], "int8")
    df = items(p).set_index(["layer", "pass", "tag"])
    conv = "layer2.0.conv1"
    fw = df.loc[(conv, "fwd", "base")]
    assert (fw.a_bits, fw.b_bits, fw.is_float, fw.output_bits) == (8, 8, False, 8)
    bi = df.loc[(conv, "bwd_input", "base")]
    assert (bi.a_bits, bi.b_bits, bi.is_float, bi.grad_input_bits) == (8, 8, False, 8)
    pred = df.loc[(conv, "bwd_weight", "psg_predict")]
    assert (pred.a_bits, pred.b_bits, pred.is_float, pred.grad_weight_bits) == (4, 8, False, 8)
    fb = df.loc[(conv, "bwd_weight", "psg_fallback")]
    assert (fb.a_bits, fb.b_bits, fb.is_float) == (8, 8, False)


def test_psg_on_fp32_is_the_official_code_and_fp16_int16_follow():
    _, p = build(W20, [PSG(fallback=0.25)], "fp32")
    df = items(p).set_index(["layer", "pass", "tag"])
    bi = df.loc[("layer1.0.conv1", "bwd_input", "base")]
    assert (bi.is_float, bi.a_bits) == (True, 32)
    assert df.loc[("conv1", "bwd_weight", "psg_predict")].b_bits == 16
    assert df.loc[("conv1", "fwd", "base")].output_bits == 32
    for prec, fl in (("fp16", True), ("int16", False)):
        _, p = build(W20, [PSG(fallback=0.25)], prec)
        bi = items(p).set_index(["layer", "pass", "tag"]).loc[("layer1.0.conv1", "bwd_input", "base")]
        assert (bi.a_bits, bi.is_float) == (16, fl)
    # explicit widths win; an explicit MSB wider than the precision's gradient is refused
    _, p = build(W20, [PSG(PSGBits(grad=32), fallback=0.1)], "int8")
    assert items(p).set_index(["layer", "pass", "tag"]).loc[("conv1", "bwd_weight", "psg_fallback")].is_float
    with pytest.raises(E2simError, match="msb_grad"):
        build(W20, [PSG(PSGBits(msb_grad=12), fallback=0.1)], "int8")


def test_psg_on_int8_costs_what_its_extra_work_costs():
    """At F = 0 PSG on int8 costs no more than plain int8 (the sign update saves the momentum traffic; the
    4-bit predictor runs at the 8-bit DSP rate, so it costs what the 8-bit weight gradient cost). The
    fallback adds F of that pass again."""
    plain = estimate(W20, PROF, "int8")
    w0, p0 = build(W20, [PSG(fallback=0.0)], "int8")
    e0 = estimate_plan(p0, w0, PROF)
    assert e0.energy_j <= plain.energy_j
    w1, p1 = build(W20, [PSG(fallback=0.1)], "int8")
    e1 = estimate_plan(p1, w1, PROF)
    fb_cycles = e1.costs.cycles[p1.tag == "psg_fallback"].sum() * e1.iterations
    assert e1.cycles == pytest.approx(e0.cycles + fb_cycles, rel=1e-12)


def test_cli_int8_compare_names_the_int8_baseline():
    r = subprocess.run([sys.executable, "-m", "e2sim", "estimate", "--workload", "resnet20_cifar10", "--precision",
                        "int8", "--smd", "0.5", "--compare", "--format", "json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows[0]["config"] == "baseline:int8" and rows[1]["saving"] == pytest.approx(0.5, rel=1e-12)


def test_plain_run_is_its_own_baseline():
    sv = estimate_with_savings(W20, PROF, "int8", Techniques(), iterations=10)
    priced = estimate_plan(baseline_plan(W20, "int8", 10), W20, PROF)
    assert sv.saving == 0.0 and sv.baseline.energy_j == pytest.approx(priced.energy_j, rel=1e-12)
