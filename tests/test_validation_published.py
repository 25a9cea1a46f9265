"""Published Zynq-7000 data: loader checks, the per-op model by hand, leave-one-out against closed forms."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from e2sim.errors import E2simError
from e2sim.validation.published import (COLUMNS, PUBLISHED_CSV, leave_one_out, load_profile_view, load_published,
                                        parse_bits, predict, published_report)

PROFILE = Path(__file__).parent / "data" / "profile_min.yaml"


def test_published_csv_keeps_sources_and_confidence():
    df = load_published()
    assert len(df) == 11 and set(df["confidence"]) == {"V", "R"}
    assert (df["source"].str.len() > 5).all()
    ae = df.set_index("id").loc["9"]
    assert (ae["power_w"], ae["throughput_gops"], ae["clock_hz"], ae["dsps"], ae["confidence"]) == (3.5, 84.3, 214e6, 190, "R")
    assert np.isnan(df.set_index("id").loc["1", "power_w"])  # unknown stays empty, never invented


def test_prediction_by_hand():
    pred = predict(load_published(), load_profile_view(PROFILE)).set_index("id")
    # Angel-Eye, int8: MAC 0.003125*64 + 0.00375*8 = 0.23 pJ; per op 0.115 pJ + 2 W / 84.3 GOP/s
    e = 0.115 + 2.0 / 84.3e9 * 1e12
    assert pred.loc["9", "predicted_pj_per_op"] == pytest.approx(e)
    assert pred.loc["9", "published_pj_per_op"] == pytest.approx(3.5 / 84.3e9 * 1e12)
    assert pred.loc["9", "error_rel"] == pytest.approx(e / (3.5 / 84.3e9 * 1e12) - 1)
    assert pred.loc["9", "predicted_power_w"] == pytest.approx(e * 1e-12 * 84.3e9)
    assert pred.loc["9", "peak_gops"] == pytest.approx(2 * 190 * 214e6 * 2 / 1e9)  # 2 int8 MACs/DSP/cycle
    # EF-Train: efficiency only -> 1 / 6.09 GFLOPS/W; fp32 MAC 4.6 pJ
    assert pred.loc["7", "published_pj_per_op"] == pytest.approx(1e12 / 6.09e9)
    assert pred.loc["7", "predicted_pj_per_op"] == pytest.approx(2.3 + 2.0 / 46.99e9 * 1e12)
    assert "bit width '1'" in pred.loc["10", "reason"]
    assert "no throughput" in pred.loc["6", "reason"]
    assert "upper bound" in pred.loc["5", "reason"]
    assert "power published but no throughput" in pred.loc["2", "reason"]
    assert sorted(pred.index[pred["reason"] == ""]) == ["11", "7", "9"]


def test_leave_one_out_scale_matches_closed_form():
    """One scalar s minimising sum((s p_i - y_i)/y_i)^2 is sum(r)/sum(r^2), r_i = p_i / y_i."""
    view = load_profile_view(PROFILE)
    pred = predict(load_published(), view)
    ok = pred[pred["reason"] == ""].reset_index(drop=True)
    r = (ok["predicted_pj_per_op"] / ok["published_pj_per_op"]).to_numpy()
    loo = leave_one_out(pred, view, "scale")
    for i in range(len(ok)):
        rest = np.delete(r, i)
        s = rest.sum() / (rest**2).sum()
        assert loo["fit_scale"].iloc[i] == pytest.approx(s, rel=1e-9)
        assert loo["loo_pj_per_op"].iloc[i] == pytest.approx(s * ok["predicted_pj_per_op"].iloc[i], rel=1e-9)


def test_leave_one_out_two_constants_exact_on_two_points():
    """static+mac on two training points is a 2x2 solve when the solution is non-negative."""
    view = load_profile_view(PROFILE)
    pred = predict(load_published(), view)
    ok = pred[pred["reason"] == ""].reset_index(drop=True)
    loo = leave_one_out(pred, view, "static+mac")
    i = 2  # hold out the third point; the fit on points 0, 1
    a = np.column_stack([1 / (ok["throughput_gops"][:2] * 1e9), ok["mac_pj"][:2] * 1e-12 / 2])
    x = np.linalg.solve(a, ok["published_pj_per_op"][:2] * 1e-12)
    if (x >= 0).all():
        assert loo["fit_static_power_w"].iloc[i] == pytest.approx(x[0], rel=1e-9)
        assert loo["fit_mac_scale"].iloc[i] == pytest.approx(x[1], rel=1e-9)
    else:  # NNLS clamps: the fit cannot be the exact solve
        assert min(loo["fit_static_power_w"].iloc[i], loo["fit_mac_scale"].iloc[i]) == 0


def test_report_summary_is_median_of_the_tables():
    pred, loo, summ, _ = published_report(PROFILE)
    ok = pred[pred["reason"] == ""]
    s = summ.set_index("stage")["median_abs_error_rel"]
    assert s["profile as is"] == pytest.approx(ok["error_rel"].abs().median())
    assert s["leave-one-out, scale"] == pytest.approx(loo["scale"]["loo_error_rel"].abs().median())


def test_parse_bits():
    assert parse_bits("8") == 8 and parse_bits("fp32") == "fp32"
    assert parse_bits("1") is None and parse_bits("W1/A2") is None and parse_bits("") is None


def test_loader_and_profile_errors(tmp_path):
    df = pd.read_csv(PUBLISHED_CSV, dtype=str, keep_default_na=False)
    bad = df.copy()
    bad.loc[0, "confidence"] = "maybe"
    bad.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(E2simError, match="'confidence' must be V or R"):
        load_published(tmp_path / "c.csv")
    bad = df.copy()
    bad.loc[8, "power_w"] = "3.5 W"
    bad.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(E2simError, match="'power_w': not a number in row id 9"):
        load_published(tmp_path / "p.csv")
    df.drop(columns="notes").to_csv(tmp_path / "n.csv", index=False)
    with pytest.raises(E2simError, match="columns must be " + ", ".join(COLUMNS[:3])):
        load_published(tmp_path / "n.csv")
    # Profiles are read through the validated loader: a missing section or an out-of-range constant is
    # named (it once gave KeyError / TypeError / OverflowError here).
    (tmp_path / "prof.yaml").write_text("name: x\nstatic_power_w: {value: 1, source: abcdefgh}\n")
    with pytest.raises(E2simError, match="prof.yaml: .*missing required key"):
        load_profile_view(tmp_path / "prof.yaml")
    text = PROFILE.read_text()
    for old, new, match in (("value: 2.0, source", "value: 1e308, source", r"static_power_w: 1e\+308 W is outside"),
                            ("max_bits: 8", "max_bits: ws", r"int_throughput.0.max_bits: Input should be a valid integer"),
                            ("mac_fp32_pj: {value: 4.6", "mac_fp32_pj: {value: .inf", "mac_fp32_pj.value: .*finite"),
                            ("mac_fp16_pj: {value: 1.5, source: \"Horowitz ISSCC'14 1.1 + 0.4\"}", "mac_fp16_pj: 1.5",
                             "mac_fp16_pj: Input should be a valid dictionary")):
        assert old in text
        (tmp_path / "bad.yaml").write_text(text.replace(old, new, 1))
        with pytest.raises(E2simError, match=match):
            load_profile_view(tmp_path / "bad.yaml")
    with pytest.raises(E2simError, match="neither a bundled profile"):
        load_profile_view("no_such_profile")


def _report_module():
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("published_report", root / "validation" / "published" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, root


def test_report_script_renders(tmp_path):
    mod, _ = _report_module()
    text = mod.render(str(PROFILE))
    assert "| profile as is | 3 |" in text and "| leave-one-out, scale | 3 |" in text
    assert "Angel-Eye" in text and "sha256" in text


def test_committed_report_is_current():
    """validation/PUBLISHED.md equals a fresh rendering with the bundled zedboard profile (stale otherwise)."""
    mod, root = _report_module()
    if not (root / "hardware_profiles" / "zedboard.yaml").is_file():
        pytest.skip("bundled zedboard profile not on this branch yet")
    assert (root / "validation" / "PUBLISHED.md").read_text() == mod.render("zedboard")
