"""Published FPGA designs: loader checks (file, row, field), the inference workloads' MAC counts against
published figures and hand formulas, the design re-targeting, the NNLS leave-one-out against a closed form,
and the calibrated profile and report being current."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from e2sim.errors import E2simError
from e2sim.estimate import estimate
from e2sim.profile import load_profile
from e2sim.validation.published import (COLUMNS, PUBLISHED_CSV, design_plan, design_profile, leave_one_out,
                                        load_designs, published_report)
from e2sim.workload_files import load_workload

ROOT = Path(__file__).resolve().parent.parent


def test_bundled_designs_keep_sources_and_published_figures():
    df = load_designs().set_index("id")
    assert len(df) == 30 and set(df["confidence"]) == {"V", "R"}
    assert (df["source"].str.len() > 3).all()
    p19 = df.loc["P19"]  # published-fpga.csv P19: 190 MHz, 253 DSP, 62.02 GOP/s, 7.67 W
    assert (p19["clock_hz"], p19["dsps"], p19["throughput_gops"], p19["power_w"]) == (190e6, 253, 62.02, 7.67)
    assert np.isnan(df.loc["Z1", "power_w"])  # unknown stays empty, never invented
    assert df.loc["P4", "effective_ops_factor"] == 4  # Winograd F(4x4, 3x3): 144 / 36
    assert df.loc["P17", "exclude_reason"] and df.loc["P17", "use_in_fit"] == "no"


def _conv_macs(layers):
    return sum(h * w * cout * cin // g * k * k for (cin, cout, k, h, w, g) in layers)


def test_inference_workload_macs_by_hand():
    # VGG-16 (224): 13 3x3 convs; published as 15.5 G multiply-adds (Simonyan & Zisserman 2015, ~30.9 GOP).
    cfg = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56),
           (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 28), (512, 512, 14), (512, 512, 14),
           (512, 512, 14)]
    conv = _conv_macs([(ci, co, 3, s, s, 1) for ci, co, s in cfg])
    fc = 25088 * 4096 + 4096 * 4096 + 4096 * 1000
    assert load_workload("vgg16_imagenet").forward_macs_per_sample() == conv + fc
    assert (conv + fc) / 1e9 == pytest.approx(15.47, abs=0.005)
    # AlexNet (227, grouped conv2/4/5): 666 M conv MACs, the survey's "1.3 GOP" conv layers.
    conv = _conv_macs([(3, 96, 11, 55, 55, 1), (96, 256, 5, 27, 27, 2), (256, 384, 3, 13, 13, 1),
                       (384, 384, 3, 13, 13, 2), (384, 256, 3, 13, 13, 2)])
    assert load_workload("alexnet_imagenet").forward_macs_per_sample() == conv + 9216 * 4096 + 4096 * 4096 + 4096 * 1000
    assert 2 * conv / 1e9 == pytest.approx(1.33, abs=0.005)
    # YOLOv2 416 (COCO): darknet reports 29.47 BFLOPs (= 2 x MACs) for cfg/yolov2.cfg.
    assert 2 * load_workload("yolov2_coco416").forward_macs_per_sample() / 1e9 == pytest.approx(29.47, rel=1e-3)


def test_inference_estimate_is_the_forward_pass_of_training():
    inf = estimate("resnet20_cifar10", "zedboard", "int8", batch_size=16, inference=True)
    train = estimate("resnet20_cifar10", "zedboard", "int8", batch_size=16, iterations=1)
    w = load_workload("resnet20_cifar10")
    assert inf.costs.macs.sum() == w.forward_macs_per_sample() * 16
    assert set(k for k, v in inf.by_pass_j.items() if v > 0) == {"fwd"}
    fwd = train.plan.pass_ == 0
    assert inf.costs.cycles.sum() == pytest.approx(train.costs.cycles[fwd].sum(), rel=1e-12)
    assert inf.costs.dram_read_bits.sum() == pytest.approx(train.costs.dram_read_bits[fwd].sum(), rel=1e-12)


def test_design_profile_scales_by_the_device_table():
    base = load_profile("zedboard")
    row = load_designs().set_index("id", drop=False).loc["P19"]
    prof, _ = design_profile(base, row)
    b, d = base.linear_constants(), prof.linear_constants()
    # ZU3EG: dynamic energy x (16/28)(0.85)^2 = 0.41; static by the device table over the ZedBoard's.
    assert d["fpga.energy.dsp_pj_per_slice_cycle"] == pytest.approx(0.41 * b["fpga.energy.dsp_pj_per_slice_cycle"])
    assert d["buffers.ifmap.read_pj_per_bit"] == pytest.approx(0.41 * b["buffers.ifmap.read_pj_per_bit"])
    assert d["fpga.static.ps_w"] == pytest.approx(b["fpga.static.ps_w"] * 1.2 / 0.85)
    assert d["fpga.static.board_w"] == pytest.approx(b["fpga.static.board_w"] * 4.83 / 1.0)
    assert d["dram.read_pj_per_bit"] == b["dram.read_pj_per_bit"]
    a = prof.array
    assert (a.rows_count.value, a.cols_count.value, a.clock_hz.value) == (8, 24, 190e6)
    assert prof.fpga.units.dsp_per_pe_count.value == pytest.approx(253 / 192)


def test_winograd_rows_run_a_quarter_of_the_3x3_work():
    row = load_designs().set_index("id", drop=False).loc["P4"]
    w, plan = design_plan(row)
    conv3 = np.array([w.layers[i].kernel == (3, 3) for i in plan.layer])
    assert np.allclose(plan.scale[conv3], 0.25) and np.allclose(plan.scale[~conv3], 1.0)
    assert all(w.layers[i].kind != "linear" for i in plan.layer)  # "conv" layers: no FC head


def test_leave_one_out_one_group_matches_closed_form():
    """One scale s on column b with a fixed column f minimises sum(((s b_i + f_i) - y_i) / y_i)^2:
    s = sum(b_i/y_i (1 - f_i/y_i)) / sum((b_i/y_i)^2)."""
    rng = np.random.default_rng(3)
    cols = pd.DataFrame({"dsp": rng.uniform(0.5, 3, 7), "board": rng.uniform(1, 4, 7)})
    y = cols["dsp"] * 1.7 + cols["board"] * rng.uniform(0.8, 1.2, 7)
    loo = leave_one_out(cols, y.to_numpy(), ("dsp",))
    b, f, yy = cols["dsp"].to_numpy(), cols["board"].to_numpy(), y.to_numpy()
    for i in range(7):
        k = np.arange(7) != i
        s = np.sum(b[k] / yy[k] * (1 - f[k] / yy[k])) / np.sum((b[k] / yy[k]) ** 2)
        assert loo[i] == pytest.approx((s * b[i] + f[i]) / yy[i] - 1, rel=1e-9)


def test_report_rows_and_targets():
    rep = published_report("zedboard")
    t = rep["rows"].set_index("id")
    s = rep["summary"]
    assert s["predicted_rows"] == int(t["predicted"].sum()) >= 15
    fitted = t[t["used_in_fit"]]
    assert set(fitted.index) == set(load_profile("zedboard").calibration.rows_fitted)
    assert s["loo_median_abs_error"] == pytest.approx(fitted["loo_error_rel"].abs().median())
    # every row off by more than 2x carries its explanation
    for rid in s["rows_off_more_than_2x"]:
        assert t.loc[rid, "reason"].startswith("excluded from the fit: "), rid
    assert (t.loc[~t["predicted"], "reason"].str.len() > 0).all()


def test_loader_errors_name_file_row_and_field(tmp_path):
    df = pd.read_csv(PUBLISHED_CSV, dtype=str, keep_default_na=False)
    cases = [("confidence", "maybe", "row 1 (id Z1): confidence: 'maybe' is not one of V, R"),
             ("power_w", "3.5 W", "row 1 (id Z1): power_w: not a number: '3.5 W'"),
             ("power_w", "-2", "row 1 (id Z1): power_w: must be finite and >= 0"),
             ("clock_hz", "inf", "row 1 (id Z1): clock_hz: must be finite"),
             ("device", "xc7z999", "row 1 (id Z1): device: unknown device 'xc7z999'"),
             ("network", "lenet", "row 1 (id Z1): network: unknown network 'lenet'"),
             ("dsps", "2.5", "row 1 (id Z1): dsps: must be a whole number")]
    for col, val, msg in cases:
        bad = df.copy()
        bad.loc[0, col] = val
        bad.to_csv(tmp_path / "c.csv", index=False)
        with pytest.raises(E2simError) as exc:
            load_designs(tmp_path / "c.csv")
        assert str(exc.value) == f"{tmp_path / 'c.csv'}: {msg}" or str(exc.value).startswith(f"{tmp_path / 'c.csv'}: {msg}")
    df.drop(columns="notes").to_csv(tmp_path / "n.csv", index=False)
    with pytest.raises(E2simError, match="header: missing column 'notes'"):
        load_designs(tmp_path / "n.csv")
    df.assign(extra="1").to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(E2simError, match="header: unknown column 'extra'"):
        load_designs(tmp_path / "x.csv")
    with pytest.raises(E2simError, match="needs? an fpga profile"):
        published_report("asic45nm")


@pytest.mark.slow
def test_committed_profile_and_report_are_current():
    """hardware_profiles/zedboard.yaml and validation/PUBLISHED.md equal fresh renderings (stale otherwise)."""
    for script in ("calibrate_zedboard.py", "report.py"):
        r = subprocess.run([sys.executable, str(ROOT / "validation" / "published" / script), "--check"],
                           capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, (script, r.stderr)
