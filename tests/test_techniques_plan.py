"""Techniques at plan level: identities at zero strength, exact rescaling, gate overhead by hand,
PSG/baseline bit-widths, and composition (combined == sequential, order-independent)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import e2sim
from e2sim.counts import PASSES, TENSORS, count
from e2sim.errors import E2simError
from e2sim.plan import base_plan
from e2sim.techniques import PSG, SLU, SMD, PSGBits, Techniques, add_gates, baseline_plan, build
from e2sim.techniques.baselines import survival

FWD, BWD_IN, BWD_W, UPD = range(4)
W20 = e2sim.load_workload("resnet20_cifar10")
W74 = e2sim.load_workload("resnet74_cifar10")


def items(plan) -> pd.DataFrame:
    """Canonical per-item table (sorted), with the work each item does."""
    names = np.array(plan.counts.names)
    df = pd.DataFrame({
        "layer": names[plan.layer], "pass": np.array(PASSES)[plan.pass_], "tag": plan.tag.astype(str),
        "samples": plan.samples, "scale": plan.scale, "a_bits": plan.a_bits, "b_bits": plan.b_bits,
        "is_float": plan.is_float, "macs": plan.macs, "elem_ops": plan.elem_ops,
    })
    for t, name in enumerate(TENSORS):
        df[f"{name}_bits"] = plan.tensor_bits[:, t]
        df[f"{name}_read"] = plan.reads[:, t]
        df[f"{name}_write"] = plan.writes[:, t]
    return df.sort_values(["layer", "pass", "tag"]).reset_index(drop=True)


def assert_same(p, q):
    pd.testing.assert_frame_equal(items(p), items(q), check_exact=False, rtol=1e-12, atol=0)
    assert p.iterations_executed == pytest.approx(q.iterations_executed, rel=1e-15)
    assert p.iterations_scheduled == q.iterations_scheduled


# --- zero strength reproduces the baseline -------------------------------------------------------------

def test_no_technique_is_the_fp32_baseline():
    _, p = build(W20)
    assert_same(p, baseline_plan(W20, "fp32"))
    assert_same(p, base_plan(count(W20), "fp32", 64_000))


def test_smd_zero_and_psg_off_are_exactly_the_baseline():
    _, p = build(W20, [SMD(0.0)])
    assert_same(p, baseline_plan(W20))
    _, p = build(W20, [SMD(0.0, seed=3)])  # Binomial(n, 1) = n
    assert p.iterations_executed == 64_000


def test_slu_zero_is_the_baseline_plus_the_gates():
    _, p = build(W20, [SLU(0.0)])
    gate = np.array([r == "gate" for r in p.counts.roles])[p.layer]
    assert gate.any()
    assert_same(p.select(~gate), baseline_plan(add_gates(W20)).select(~gate))
    # Without the gate rows, the gated workload's items are the plain workload's, number for number.
    a, b = items(p.select(~gate)), items(baseline_plan(W20))
    pd.testing.assert_frame_equal(a, b)


# --- SMD ---------------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(rate=st.floats(0, 0.99))
def test_smd_changes_only_the_executed_iterations(rate):
    base = baseline_plan(W20)
    _, p = build(W20, [SMD(rate)])
    pd.testing.assert_frame_equal(items(p), items(base))
    assert p.iterations_executed == pytest.approx((1 - rate) * 64_000, rel=1e-12)
    assert p.iterations_scheduled == 64_000


def test_smd_seeded_draw_is_binomial_and_reproducible():
    a = build(W20, [SMD(0.5, seed=7)])[1].iterations_executed
    assert a == build(W20, [SMD(0.5, seed=7)])[1].iterations_executed
    assert a == float(np.random.default_rng(7).binomial(64_000, 0.5))
    assert abs(a - 32_000) < 6 * np.sqrt(64_000 * 0.25)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_smd_rate_out_of_range(rate):
    with pytest.raises(E2simError, match=r"--smd: drop rate must be in \[0, 1\)"):
        SMD(rate)


# --- SLU ----------------------------------------------------------------------------------------------

def _gate_macs_by_hand(workload):
    """Per image: conv C->10 on the pooled previous-block output, LSTM 4*10*(10+10), linear 10->1."""
    blocks = {b.name: b for b in workload.blocks}
    total = 0
    for layer in workload.layers:
        if layer.block in blocks and layer.name.endswith(".conv1"):
            if blocks[layer.block].gated:
                total += layer.in_shape[0] * 10 + 4 * 10 * (10 + 10) + 10
    return total


def test_gate_overhead_resnet74_by_hand_and_in_band():
    g = add_gates(W74)
    c = count(g, batch_size=1)
    gate = np.array([r == "gate" for r in c.roles])
    gate_fwd = int(c.macs[gate, FWD].sum())
    # 35 gates: 12 read 16-channel, 12 read 32-channel, 11 read 64-channel outputs.
    assert gate_fwd == 10 * (12 * 16 + 12 * 32 + 11 * 64) + 35 * (800 + 10) == 41_150
    assert gate_fwd == _gate_macs_by_hand(W74)
    fwd = W74.forward_macs_per_sample()
    assert fwd == 168_224_768 or fwd == pytest.approx(168.22e6, rel=1e-4)
    ratio = gate_fwd / fwd
    assert 0.0002 <= ratio <= 0.0004
    # The official code also runs a 36th gate after the last block (64 ch) whose decision it discards:
    assert gate_fwd + 64 * 10 + 810 == 42_600  # the reference's 42.6k MACs/image
    # Shared LSTM and projection: one owner, the other 34 gates own no parameters.
    owners = [n for n, k, p in zip(c.names, c.kinds, c.params) if k == "lstm" and p > 0]
    assert len(owners) == 1 and sum(k == "lstm" for k in c.kinds) == 35
    assert c.params[gate].sum() == (10 * (12 * 16 + 12 * 32 + 11 * 64)) + (4 * 10 * 20 + 80) + (10 + 1)


def test_gates_are_paid_forward_and_backward_at_any_skip():
    _, p0 = build(W20, [SLU(0.0)])
    _, p1 = build(W20, [SLU(1.0)])
    g0 = items(p0)[lambda d: d.layer.str.contains(".gate.")]
    g1 = items(p1)[lambda d: d.layer.str.contains(".gate.")]
    pd.testing.assert_frame_equal(g0, g1)
    assert set(g0["pass"]) == {"fwd", "bwd_input", "bwd_weight", "update"}
    # 8 gates; each own conv has all four passes; the shared LSTM has an update only at its owner
    assert len(W20.gated_blocks) == 8 and g0.layer.str.endswith(".gate.conv").sum() == 8 * 4
    lstm = g0[g0.layer.str.endswith(".gate.lstm")]
    assert len(lstm) == 8 * 3 + 1 and (lstm["pass"] == "update").sum() == 1


@settings(max_examples=20, deadline=None)
@given(r=st.floats(0, 1))
def test_slu_scales_main_path_of_gated_blocks_only(r):
    _, p0 = build(W20, [SLU(0.0)])
    _, p = build(W20, [SLU(r)])
    a, b = items(p0), items(p)
    gated = {x.name for x in W20.gated_blocks}
    blk = {L.name: (L.block, L.role) for L in add_gates(W20).layers}
    scaled = np.array([blk[n][0] in gated and blk[n][1] == "main" and ps != "update"
                       for n, ps in zip(a.layer, a["pass"])])
    assert scaled.sum() > 0
    for col in ("macs", "elem_ops", "input_read", "output_write", "grad_output_read"):
        # per-sample work scales by 1 - r; the fixed (per-iteration) weight reads stay
        np.testing.assert_allclose(b[col][~scaled], a[col][~scaled], rtol=0)
    np.testing.assert_allclose(b.macs[scaled], (1 - r) * a.macs[scaled], rtol=1e-12)
    np.testing.assert_allclose(b.weight_read[scaled], a.weight_read[scaled], rtol=0)
    # the first block and every shortcut run in full
    assert not any(n.startswith("layer1.0.") for n in a.layer[scaled])
    assert not any(".downsample." in n for n in a.layer[scaled])


def test_slu_per_block_ratios_and_bad_blocks():
    ratios = {b.name: 0.1 * (i % 5) for i, b in enumerate(W20.gated_blocks)}
    _, p = build(W20, [SLU(per_block=ratios, source="stats.yaml")])
    df = items(p).set_index(["layer", "pass", "tag"])
    for b, r in ratios.items():
        assert df.loc[(f"{b}.conv1", "fwd", "base"), "samples"] == pytest.approx(128 * (1 - r))
    with pytest.raises(E2simError, match="stats.yaml: 'layer1.0' is not a gated block"):
        build(W20, [SLU(per_block={**ratios, "layer1.0": 0.5}, source="stats.yaml")])
    missing = dict(list(ratios.items())[1:])
    with pytest.raises(E2simError, match="no skip ratio for gated block 'layer1.1'"):
        build(W20, [SLU(per_block=missing, source="stats.yaml")])
    with pytest.raises(E2simError, match=r"skip ratio must be in \[0, 1\]"):
        SLU(1.5)


# --- PSG ----------------------------------------------------------------------------------------------

def test_psg_items_by_hand():
    f = 0.25
    _, p = build(W20, [PSG(fallback=f)])
    base = items(baseline_plan(W20)).set_index(["layer", "pass"])
    df = items(p).set_index(["layer", "pass", "tag"])
    conv = "layer2.0.conv1"
    full = base.loc[(conv, "bwd_weight"), "macs"]
    pred = df.loc[(conv, "bwd_weight", "psg_predict")]
    fb = df.loc[(conv, "bwd_weight", "psg_fallback")]
    assert pred.macs == full and (pred.a_bits, pred.b_bits, pred.is_float) == (4, 16, False)
    assert fb.macs == pytest.approx(f * full) and (fb.a_bits, fb.b_bits, fb.is_float) == (8, 32, True)
    fw = df.loc[(conv, "fwd", "base")]
    assert (fw.a_bits, fw.b_bits, fw.is_float, fw.input_bits, fw.weight_bits) == (8, 8, False, 8, 8)
    bi = df.loc[(conv, "bwd_input", "base")]
    assert (bi.a_bits, bi.b_bits, bi.is_float) == (32, 8, True)
    up = df.loc[(conv, "update", "sign_update")]
    nparam = 32 * 16 * 9
    assert up.elem_ops == 3 * nparam and up.state_read == 0 and up.state_write == 0
    assert up.weight_read == nparam and up.weight_write == nparam
    # FC, batchnorm, downsample's BN keep fp32 SGD with momentum (3 ops, state read and written)
    fc = df.loc[("fc", "update", "base")]
    assert fc.elem_ops == 3 * (64 * 10 + 10) and fc.state_read == 64 * 10 + 10
    assert df.loc[("fc", "fwd", "base")].a_bits == 32 and df.loc[("layer1.0.bn1", "fwd", "base")].is_float
    # 1x1 downsample and the first conv are covered
    assert ("layer2.0.downsample.0", "bwd_weight", "psg_predict") in df.index
    assert ("conv1", "bwd_weight", "psg_fallback") in df.index


def test_psg_covers_gate_convs_but_not_lstm():
    _, p = build(W20, [PSG(fallback=0.1), SLU(0.2)])
    df = items(p).set_index(["layer", "pass", "tag"])
    assert ("layer1.1.gate.conv", "bwd_weight", "psg_predict") in df.index
    assert ("layer1.1.gate.lstm", "bwd_weight", "base") in df.index
    assert df.loc[("layer1.1.gate.lstm", "fwd", "base")].a_bits == 32


def test_psg_bits_parse_and_validate():
    assert PSGBits.parse("msb_act=3, grad=16,msb_grad=8") == PSGBits(msb_act=3, grad=16, msb_grad=8)
    for bad, msg in [("act=0", "1..32"), ("grad=33", "1..32"), ("foo=3", "expected NAME=BITS"),
                     ("act=x", "must be an integer"), ("msb_act=9", "cannot be wider")]:
        with pytest.raises(E2simError, match=msg):
            PSGBits.parse(bad)
    with pytest.raises(E2simError, match="fallback fraction must be in"):
        PSG(fallback=1.2)


def test_psg_per_layer_fractions():
    convs = [L.name for L in W20.layers if L.kind == "conv"]
    fr = {n: (i % 4) / 4 for i, n in enumerate(convs)}
    _, p = build(W20, [PSG(per_layer=fr, source="psg.yaml")])
    df = items(p).set_index(["layer", "pass", "tag"])
    base = items(baseline_plan(W20)).set_index(["layer", "pass"])
    for n in convs:
        assert df.loc[(n, "bwd_weight", "psg_fallback"), "macs"] == pytest.approx(
            fr[n] * base.loc[(n, "bwd_weight"), "macs"])
    with pytest.raises(E2simError, match="psg.yaml: 'fc' is not a convolution"):
        build(W20, [PSG(per_layer={**fr, "fc": 0.1}, source="psg.yaml")])
    with pytest.raises(E2simError, match="no fallback fraction for conv layer 'conv1'"):
        build(W20, [PSG(per_layer={k: v for k, v in fr.items() if k != "conv1"}, source="psg.yaml")])


# --- baselines ----------------------------------------------------------------------------------------

def test_baselines_by_hand():
    i8 = items(baseline_plan(W20, "int8-banner")).set_index(["layer", "pass"])
    bw = i8.loc[("layer1.0.conv1", "bwd_weight")]
    assert (bw.a_bits, bw.b_bits, bw.is_float, bw.grad_output_bits) == (8, 16, False, 16)
    bi = i8.loc[("layer1.0.conv1", "bwd_input")]
    assert (bi.a_bits, bi.b_bits, bi.grad_input_bits) == (8, 8, 8)
    assert i8.loc[("layer1.0.conv1", "update")].a_bits == 32  # fp32 master weights

    sg = items(baseline_plan(W20, "signsgd")).set_index(["layer", "pass"])
    fp = items(baseline_plan(W20, "fp32")).set_index(["layer", "pass"])
    up = sg.loc[("fc", "update")]
    assert up.elem_ops == 2 * 650 and up.state_read == 0 and up.tag == "sign_update"
    assert sg.loc[("fc", "fwd"), "macs"] == fp.loc[("fc", "fwd"), "macs"]

    p = survival(36)
    assert p[0] == pytest.approx(1 - 1 / 72) and p[-1] == 0.5 and p[17] == pytest.approx(0.75)
    sd = items(baseline_plan(W20, "stochastic-depth")).set_index(["layer", "pass"])
    L = len(W20.blocks)
    for ell, b in enumerate(W20.blocks, start=1):
        pl = 1 - ell / L * 0.5
        assert sd.loc[(f"{b.name}.conv1", "fwd"), "macs"] == pytest.approx(pl * fp.loc[(f"{b.name}.conv1", "fwd"), "macs"])
    assert sd.loc[("layer2.0.downsample.0", "fwd"), "macs"] == fp.loc[("layer2.0.downsample.0", "fwd"), "macs"]


# --- composition --------------------------------------------------------------------------------------

techs = st.tuples(st.floats(0, 0.95), st.floats(0, 1), st.floats(0, 1), st.integers(1, 8), st.integers(1, 32))


@settings(max_examples=15, deadline=None)
@given(t=techs, order=st.permutations([0, 1, 2]))
def test_combined_equals_sequential_in_any_order(t, order):
    rate, skip, fb, msb, grad = t
    bits = PSGBits(msb_act=min(msb, 8), grad=grad, msb_grad=min(16, grad))
    ts = [SMD(rate), SLU(skip), PSG(bits, fallback=fb)]
    w, combined = build(W20, Techniques(smd=ts[0], slu=ts[1], psg=ts[2]))
    # sequential: gates first (workload), then one technique after the other in the drawn order
    seq = base_plan(count(add_gates(W20)), "fp32", 64_000)
    for k in order:
        seq = ts[k].apply(seq, w)
    assert_same(combined, seq)


def test_compare_subsets():
    t = Techniques(smd=SMD(0.5), slu=SLU(0.3), psg=PSG(fallback=0.1))
    assert [s.label for s in t.subsets()] == ["SMD", "SLU", "PSG", "SMD+SLU", "SMD+SLU+PSG"]
    assert [s.label for s in Techniques(smd=SMD(0.5)).subsets()] == ["SMD"]
