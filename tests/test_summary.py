"""The estimate summary (e2sim/summary.py): human units and shares from the Estimate's dict, bands when the
dict carries them, per-item detail on request. Expected strings are written out by hand."""
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from e2sim.estimate import estimate
from e2sim.summary import (compare_text, detail_frame, detail_text, fmt_energy, fmt_kwh, fmt_pct, fmt_time,
                           summary_text)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "e2sim", *args], capture_output=True, text=True)


@pytest.mark.parametrize("j,text", [(4_086_451.8, "4.09 MJ"), (721_339.0, "721 kJ"), (1_160.0, "1.16 kJ"),
                                    (12.345, "12.3 J"), (0.5, "500 mJ"), (3.2e9, "3.20 GJ"), (0.0, "0 J")])
def test_energy_units(j, text):
    assert fmt_energy(j) == text


def test_kwh_time_and_percent():
    assert fmt_kwh(3.6e6) == "1.00 kWh" and fmt_kwh(4_086_451.8) == "1.14 kWh"
    assert fmt_kwh(6.7) == "1.86e-06 kWh" and fmt_kwh(6.7, 3.9, 11.1) == "1.9e-06 kWh (1.1e-06–3.1e-06)"
    assert fmt_time(1_881_493.4) == "21.8 days"  # 1,881,493 s / 86,400
    assert fmt_time(5 * 3600) == "5.00 h" and fmt_time(300) == "5.00 min" and fmt_time(4.5) == "4.50 s"
    assert fmt_time(100) == "100 s"  # under two minutes stays in seconds
    assert fmt_pct(0.8235) == "82.3%" and fmt_pct(-0.0271) == "-2.7%"


def test_band_rendering():
    assert fmt_energy(4.1e6, 2.9e6, 6.0e6) == "4.1 MJ (2.9–6.0)"
    assert fmt_pct(0.82, 0.79, 0.86) == "82% (79–86%)"
    assert fmt_time(1_881_493.4, 1.5e6, 2.4e6) == "22 days (17–28)"
    assert fmt_kwh(4.1e6, 2.9e6, 6.0e6) == "1.1 kWh (0.8–1.7)"


BASE = {"workload": "w", "profile": "p", "precision": "fp32", "batch_size": 128, "iterations_scheduled": 64000,
        "iterations_executed": 64000.0, "techniques": [], "energy_j": 4.0e6, "time_s": 1.8e6,
        "breakdown_j": {"mac": 0.2e6, "sram": 0.2e6, "dram": 0.6e6, "static": 3.0e6},
        "by_pass_j": {"fwd": 1.0e6, "bwd_input": 2.0e6, "bwd_weight": 0.999e6, "update": 1e3}}


def test_summary_without_band():
    text = summary_text(BASE)
    lines = text.splitlines()
    assert lines[0] == "w on p: fp32, batch 128, 64,000 iterations"
    assert "energy  4.00 MJ = 1.11 kWh" in lines and "time    20.8 days" in lines
    assert "  static       75.0%  3.00 MJ" in lines and "  dram         15.0%  600 kJ" in lines
    assert "  bwd_input    50.0%  2.00 MJ" in lines and "  update       <0.1%  1.00 kJ" in lines
    assert "(" not in text.split("by component")[0].split("\n", 1)[1]  # no band when none is given


def test_inference_summary_lists_the_forward_pass_only():
    d = {**BASE, "inference": True, "iterations_scheduled": 100, "iterations_executed": 100.0, "energy_j": 6.0,
         "by_pass_j": {"fwd": 6.0, "bwd_input": 0.0, "bwd_weight": 0.0, "update": 0.0},
         "breakdown_j": {"mac": 1.0, "sram": 0.0, "dram": 1.0, "static": 4.0}}
    lines = summary_text(d).splitlines()
    assert lines[0] == "w on p: fp32, batch 128, inference, 100 forward passes of the batch"
    assert "  fwd     100.0%  6.00 J" in lines and not any("bwd_input" in x for x in lines)
    assert "energy  6.00 J = 1.67e-06 kWh" in lines


def test_summary_with_band_and_saving():
    d = {**BASE, "energy_j_low": 2.9e6, "energy_j_high": 6.0e6, "time_s_low": 1.2e6, "time_s_high": 2.6e6,
         "configuration": "SMD", "techniques": ["smd: drop rate 0.5"], "iterations_executed": 32000.0,
         "baseline": {"name": "int8", "energy_j": 8.0e6, "time_s": 3.6e6}, "saving": 0.5, "time_saving": 0.5}
    lines = summary_text(d).splitlines()
    assert lines[0] == "w on p: fp32, batch 128, 32,000 of 64,000 iterations executed"
    assert "techniques: SMD" in lines and "  - smd: drop rate 0.5" in lines
    assert "energy  4.0 MJ (2.9–6.0) = 1.1 kWh (0.8–1.7)" in lines
    assert "time    21 days (14–30)" in lines
    assert "baseline int8: 8.00 MJ = 2.22 kWh, 41.7 days" in lines
    assert "saving  50.0% of the energy, 50.0% of the time" in lines


ROWS = [{"config": "baseline:int8", "energy_j": 4.0e6, "time_s": 1.8e6, "saving": 0.0, "time_saving": 0.0},
        {"config": "SMD+SLU+PSG", "energy_j": 7.2e5, "time_s": 3.3e5, "saving": 0.82, "time_saving": 0.817}]


def test_compare_text_with_and_without_band():
    plain = compare_text(ROWS, {"workload": "w", "profile": "p", "precision": "int8"}).splitlines()
    assert plain[0] == "w on p: int8, each technique alone and combined against int8 training"
    row = next(x for x in plain if x.startswith("SMD+SLU+PSG"))
    assert row.split() == ["SMD+SLU+PSG", "720", "kJ", "0.200", "kWh", "3.82", "days", "82.0%", "81.7%"]
    assert "negative saving" not in "\n".join(plain)
    worse = compare_text([ROWS[0], {**ROWS[1], "config": "PSG", "saving": -0.022}], {}).splitlines()
    assert "-2.2%" in next(x for x in worse if x.startswith("PSG")) and "PSG costs more than the baseline" in worse[-1]
    banded = [dict(ROWS[0]), {**ROWS[1], "saving_low": 0.79, "saving_high": 0.86, "energy_j_low": 5.1e5,
                              "energy_j_high": 9.9e5}]
    row = next(x for x in compare_text(banded, {}).splitlines() if x.startswith("SMD+SLU+PSG"))
    assert "720 kJ (510–990)" in row and "82% (79–86%)" in row


def test_detail_levels_sum_to_the_total():
    est = estimate("resnet20_cifar10", "zedboard", iterations=10)
    frame = est.to_frame()
    for level, n in (("component", 4), ("pass", 4)):
        df = detail_frame(frame, level)
        assert len(df) == n and df.energy_j.sum() == pytest.approx(est.energy_j, rel=1e-12)
        assert df.share.sum() == pytest.approx(1.0, rel=1e-12)
    p = detail_frame(frame, "pass").set_index("pass")
    assert list(p.index) == ["fwd", "bwd_input", "bwd_weight", "update"]
    assert p.energy_j.to_dict() == pytest.approx(est.by_pass_j, rel=1e-12)
    layers = detail_frame(frame, "layer")
    assert list(layers.layer) == list(est.workload.layer_index)  # network order
    assert len(detail_frame(frame, "item")) == len(frame)
    text = detail_text(detail_frame(frame, "component"), "component").splitlines()
    assert text[0].split() == ["component", "energy", "(J)", "share"]


def test_cli_summary_contract():
    r = cli("estimate", "--workload", "resnet74_cifar10", "--profile", "zedboard")
    assert r.returncode == 0, r.stderr
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    shown = readme.split("\n## Reading an estimate\n", 1)[1].split("```\n", 2)[1]
    assert shown == r.stdout, "README's 'Reading an estimate' example is stale: paste this command's output"
    lines = r.stdout.splitlines()
    assert len(lines) <= 40 and any("kWh" in x for x in lines) and sum("%" in x for x in lines) >= 8
    r = cli("estimate", "--workload", "resnet74_cifar10", "--profile", "zedboard", "--compare")
    assert r.returncode == 0 and "assumed" in r.stderr and len(r.stderr.splitlines()) == 1
    # the combined savings as compare() computes them: energy with its band (whole %), time to one decimal
    from e2sim.savings import compare, paper_techniques

    s = compare("resnet74_cifar10", "zedboard", "fp32", paper_techniques()).set_index("config").loc["SMD+SLU+PSG"]
    assert f"{100 * s['saving']:.0f}% ({100 * s['saving_low']:.0f}–{100 * s['saving_high']:.0f}%)" in r.stdout
    assert f"{100 * s['time_saving']:.1f}%" in r.stdout
    assert "50.0%" in r.stdout and len(r.stdout.splitlines()) <= 40


def test_cli_detail_csv_json_stay_si_and_bad_detail_is_one_line():
    r = cli("estimate", "--workload", "resnet20_cifar10", "--iterations", "10", "--detail", "pass", "--format", "csv")
    df = pd.read_csv(io.StringIO(r.stdout))
    assert list(df.columns) == ["pass", "energy_j", "share"] and len(df) == 4
    r = cli("estimate", "--workload", "resnet20_cifar10", "--iterations", "10", "--detail", "component",
            "--format", "json")
    d = json.loads(r.stdout)
    mine = [x for x in d["detail"] if x["config"] == d["configuration"]]  # the baseline's rows follow
    assert len(mine) == 4 and sum(x["energy_j"] for x in mine) == pytest.approx(d["energy_j"], rel=1e-12)
    for bad in (["--detail", "layers"], ["--detail", "pass", "--compare", "--smd", "0.5"]):
        r = cli("estimate", "--workload", "resnet20_cifar10", *bad)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--detail" in r.stderr
