"""Lowering of plan items to GEMMs and the closed-form mapping, against hand-derived and published values."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e2sim.counts import P, count
from e2sim.cycles import topology_cycles
from e2sim.dataflow import DF_CODE, map_gemms
from e2sim.lowering import geometry, lower
from e2sim.plan import base_plan
from e2sim.topology import from_workload
from e2sim.workload_files import bundled_workloads, load_workload


@pytest.mark.parametrize("name", ["resnet20_cifar10", "resnet110_cifar100", "mobilenetv2_cifar10"])
def test_gemm_macs_equal_plan_macs(name):
    w = load_workload(name)
    plan = base_plan(count(w), "int8")
    # Fractional samples (as selective layer update produces) keep the identity.
    rng = np.random.default_rng(0)
    plan = replace(plan, samples=plan.samples * rng.uniform(0.2, 1.0, plan.n_items))
    g = lower(plan, geometry(w))
    np.testing.assert_allclose(np.bincount(g.item, g.macs, plan.n_items), plan.macs, rtol=1e-12)
    assert set(g.item) == set(np.nonzero(plan.macs > 0)[0])


def test_conv_lowering_by_hand():
    w = load_workload("resnet20_cifar10")
    plan = base_plan(count(w, 128), "fp32")
    g = lower(plan, geometry(w))
    names = np.asarray(plan.counts.names)[plan.layer[g.item]]

    def dims(layer, pass_):
        i = np.nonzero((names == layer) & (plan.pass_[g.item] == P[pass_]))[0][0]
        return g.m[i], g.n[i], g.k[i], g.a_unique[i], g.count[i]

    assert dims("conv1", "fwd") == (128 * 1024, 16, 27, 128 * 3 * 34 * 34, 1)
    # 3x3 stride 2, 16 -> 32 channels, 32x32 -> 16x16; padded input 33x33 (SCALE-Sim convention).
    assert dims("layer2.0.conv1", "fwd") == (128 * 256, 32, 144, 128 * 16 * 33 * 33, 1)
    assert dims("layer2.0.conv1", "bwd_input") == (128 * 256, 144, 32, 128 * 256 * 32, 1)
    assert dims("layer2.0.conv1", "bwd_weight") == (144, 32, 128 * 256, 128 * 16 * 33 * 33, 1)
    # 1x1 stride-2 projection touches only every other row and column: 16x16 of the input per channel.
    assert dims("layer2.0.downsample.0", "fwd") == (128 * 256, 32, 16, 128 * 16 * 16 * 16, 1)
    assert dims("fc", "fwd") == (128, 10, 64, 128 * 64, 1)
    assert dims("fc", "bwd_weight") == (64, 10, 128, 64 * 128, 1)


def test_depthwise_is_per_group_gemms():
    w = load_workload("mobilenetv2_cifar10")
    plan = base_plan(count(w, 2), "fp32")
    g = lower(plan, geometry(w))
    li = plan.layer[g.item]
    i = np.nonzero((np.asarray(plan.counts.names)[li] == "layers.0.conv2") & (plan.pass_[g.item] == P["fwd"]))[0][0]
    layer = w.layers[w.layer_index["layers.0.conv2"]]
    assert layer.groups == 32
    assert (g.m[i], g.n[i], g.k[i], g.count[i]) == (2 * 32 * 32, 1, 9, 32)


# Published SCALE-Sim 3.0.0 values (shared/reference/scalesim.md §4.3, §7.2, §6) for ResNet-20 option A
# (no projection convs) on a 16x16 array.
@pytest.mark.parametrize("df,fc,total", [("os", 93, 180_554), ("ws", 187, 207_004), ("is", 223, 433_084)])
def test_published_scalesim_cycles(df, fc, total):
    topo = from_workload(load_workload("resnet20_cifar10"))
    keep = np.array(["downsample" not in n for n in topo.names])
    r = topology_cycles(topo, rows=16, cols=16, dataflow=df, sram_kb=(512, 512, 512), compat=True)
    assert r["total_cycles"][-1] == fc
    assert r["total_cycles"][keep].sum() == total


def test_stage3_conv_by_hand():
    # s3b0_conv2: 8x8 ofmap, 64 filters, K = 3*3*64; OS on 16x16: 4 * 4 folds of 576 + 30 cycles, minus 1.
    r = map_gemms(64, 64, 576, DF_CODE["os"], 16, 16, a_unique=10 * 10 * 64, buf_a=1e9, buf_b=1e9, buf_c=1e9)
    assert r["compute_cycles"] == 9695
    assert r["sram_ifmap_reads"] == 4 * 64 * 576 and r["sram_filter_reads"] == 4 * 64 * 576
    assert r["sram_ofmap_writes"] == 64 * 64
    assert r["dram_ifmap_reads"] == 6400 and r["dram_filter_reads"] == 576 * 64


def test_documented_differences_from_scalesim():
    kw = dict(a_unique=10 * 10 * 64, buf_a=65536, buf_b=65536, buf_c=65536)
    hw = map_gemms(64, 64, 576, DF_CODE["os"], 16, 16, **kw)
    sc = map_gemms(64, 64, 576, DF_CODE["os"], 16, 16, compat=True, **kw)
    # os.py:403 adds AR + AC per fold to the OFMAP SRAM writes.
    assert sc["sram_ofmap_writes"] - hw["sram_ofmap_writes"] == 16 * (16 + 16)
    # 36,864 filter words fit a 64 KB buffer but exceed SCALE-Sim's half-buffer window (32,750 words).
    assert hw["dram_filter_reads"] == 36_864 and hw["dram_exact"]
    assert not sc["dram_exact"]
    # WS: the hardware reads partial sums back before accumulating; SCALE-Sim counts no such reads.
    ws_hw = map_gemms(64, 64, 576, DF_CODE["ws"], 16, 16, **kw)
    ws_sc = map_gemms(64, 64, 576, DF_CODE["ws"], 16, 16, compat=True, **kw)
    assert ws_hw["sram_ofmap_reads"] == 35 * 64 * 64 and ws_sc["sram_ofmap_reads"] == 0
    assert ws_hw["dram_ofmap_writes"] == 64 * 64 and ws_sc["dram_ofmap_writes"] == 36 * 64 * 64


def test_operand_that_does_not_fit_is_refetched_per_pass():
    # OS: the ifmap is re-streamed once per column fold when it does not fit its buffer.
    r = map_gemms(1024, 64, 144, DF_CODE["os"], 16, 16, a_unique=18_496, buf_a=10_000, buf_b=1e9, buf_c=1e9)
    assert r["col_folds"] == 4 and r["dram_ifmap_reads"] == 4 * 18_496


dims = st.integers(1, 3000)


@settings(max_examples=60, deadline=None)
@given(m=dims, n=dims, k=dims, df=st.sampled_from(["os", "ws", "is"]), rows=st.integers(1, 64),
       cols=st.integers(1, 64), which=st.sampled_from(["m", "n", "k"]), extra=st.integers(1, 500),
       buf=st.integers(64, 1 << 20))
def test_mapping_nonnegative_and_monotone_in_gemm_size(m, n, k, df, rows, cols, which, extra, buf):
    def run(mm, nn, kk):
        return map_gemms(mm, nn, kk, DF_CODE[df], rows, cols, a_unique=mm * kk, buf_a=buf, buf_b=buf, buf_c=buf)

    a = run(m, n, k)
    b = run(m + extra * (which == "m"), n + extra * (which == "n"), k + extra * (which == "k"))
    for key in ("compute_cycles", "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes", "sram_ofmap_reads",
                "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes", "dram_ofmap_reads"):
        assert a[key] >= 0
        assert b[key] >= a[key], key
    assert 0 < a["mapping_efficiency_pct"] <= 100 and a["overall_util_pct"] > 0
    # Never faster than the PEs allow (SCALE-Sim's cycle count is the last cycle's index, hence the + 1).
    assert (a["compute_cycles"] + 1) * rows * cols >= m * n * k


def test_vectorised_over_configurations():
    # One call over a grid of array shapes x GEMMs gives the same numbers as separate calls.
    m, n, k = np.array([1024, 64]), np.array([16, 64]), np.array([27, 576])
    rows = np.array([8, 16, 32])[:, None]
    grid = map_gemms(m, n, k, 0, rows, 16, a_unique=m * k, buf_a=1e9, buf_b=1e9, buf_c=1e9)["compute_cycles"]
    for i, r in enumerate((8, 16, 32)):
        one = map_gemms(m, n, k, 0, r, 16, a_unique=m * k, buf_a=1e9, buf_b=1e9, buf_c=1e9)["compute_cycles"]
        np.testing.assert_array_equal(grid[i], one)


def test_all_bundled_workloads_lower():
    for name in bundled_workloads():
        w = load_workload(name)
        plan = base_plan(count(w), "fp32")
        g = lower(plan, geometry(w))
        assert np.all(g.m >= 1) and np.all(g.n >= 1) and np.all(g.k >= 1)


def test_depthwise_dp_row_expands_per_channel(tmp_path):
    """SCALE-Sim (topology_utils.load_arrays_conv) reads a row whose name contains DP as one layer per
    channel with 1 channel each; a 3x3 depthwise row on a padded 18x18 map, 32 channels, OS on 16x16."""
    from e2sim.topology import read_topology

    p = tmp_path / "dw.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                 "Strides,\nconv1,18,18,3,3,3,32,1,\nconv_dw_DP,18,18,3,3,32,1,1,\n")
    topo = read_topology(p)
    assert topo.names[:3] == ("conv1", "conv_dw_DPChannel_0", "conv_dw_DPChannel_1") and len(topo.names) == 33
    r = topology_cycles(topo, rows=16, cols=16, dataflow="os", sram_kb=(512, 512, 512), compat=True)
    # Per channel: M = 256 ofmap pixels, N = 1, K = 9; 16 row folds of 9 + 16 + 16 - 2 cycles, minus 1.
    assert list(r["total_cycles"][1:3]) == [16 * 39 - 1] * 2 and r["total_cycles"][1:].sum() == 32 * 623
    assert r["sram_ifmap_reads"][1] == 256 * 9 and r["sram_filter_reads"][1] == 16 * 9
    assert r["sram_ofmap_writes"][1] == 256 + 16 * (16 + 16)


def test_workload_depthwise_convs_become_per_channel_rows():
    w = load_workload("mobilenetv2_cifar10")
    topo = from_workload(w)
    dw = w.layers[w.layer_index["layers.0.conv2"]]  # 3x3 depthwise, 32 channels, 32x32
    rows = [i for i, n in enumerate(topo.names) if n.startswith("layers.0.conv2Channel_")]
    assert len(rows) == 32 and topo.names[rows[0]] == "layers.0.conv2Channel_0"
    assert (topo.ifmap_h[rows] == 34).all() and (topo.channels[rows] == 1).all() and (topo.num_filter[rows] == 1).all()
    # per channel the same GEMM as the depthwise conv's per-group GEMM in the estimate path
    m, n, k, _ = topo.gemms()
    assert (set(m[rows]), set(n[rows]), set(k[rows])) == ({32 * 32}, {1}, {9})
    assert dw.groups == 32
    total_macs = int((m * n * k).sum())
    fwd = sum(layer.fwd_macs for layer in w.layers if layer.kind in ("conv", "linear"))
    assert total_macs == fwd
