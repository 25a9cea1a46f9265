"""e2sim validate / calibrate end to end: values, files written, one-line errors with exit code 2."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from e2sim import plotstyle
from e2sim.config import read_yaml
from e2sim.validation.calibrate import profile_constants

from conftest import run_cli as run

ROOT = Path(__file__).resolve().parent.parent
LOGS = Path(__file__).parent / "data" / "logs"
PROFILE = Path(__file__).parent / "data" / "profile_min.yaml"
EST = {"energy_j": 0.7, "time_s": 0.2, "cycles": 2e7, "breakdown_j": {"mac": 0.1, "sram": 0.05, "dram": 0.05, "static": 0.5},
       "by_pass_j": {"fwd": 0.3}, "workload": "resnet20_cifar10", "profile": "zedboard", "settings": {"precision": "int8"}}


def test_validate_compares_windows_and_writes_png(tmp_path, capsys):
    (tmp_path / "est.json").write_text(json.dumps(EST))
    with plotstyle.captured() as figs:
        code, out, err = run(["validate", "--log", str(LOGS / "pynq.csv"), "--format", "pynq", "--against",
                              str(tmp_path / "est.json"), "--idle-mark", "0", "--window", "1",
                              "--run-dir", str(tmp_path / "run"), "--output-format", "csv"], capsys)
    (fig,) = figs
    assert plotstyle.problems(fig) == [] and fig.get_suptitle().startswith("resnet20_cifar10 · zedboard")
    assert code == 0, err
    t = pd.read_csv(io.StringIO(out)).set_index("component")
    # by hand (see test_validation_integrate): total 0.84 J, idle 2.6 W x 0.2 s = 0.52 J, dynamic 0.32 J
    assert t.loc["total", "measured_j"] == pytest.approx(0.84)
    assert t.loc["total", "error_j"] == pytest.approx(0.7 - 0.84)
    assert t.loc["total", "error_rel"] == pytest.approx((0.7 - 0.84) / 0.84)
    assert t.loc["static", "measured_j"] == pytest.approx(0.52) and t.loc["static", "estimated_j"] == 0.5
    assert t.loc["dynamic", "measured_j"] == pytest.approx(0.32) and t.loc["dynamic", "estimated_j"] == pytest.approx(0.2)
    png = (tmp_path / "run" / "trace.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert pd.read_csv(tmp_path / "run" / "comparison.csv").shape == (3, 9)


def test_validate_against_run_directory(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    code, _, err = run(["validate", "--log", str(LOGS / "ina.csv"), "--format", "ina", "--against", str(tmp_path / "r"),
                        "--run-dir", str(tmp_path / "o")], capsys)
    assert code == 2 and "run directory has no estimate.json" in err and err.count("\n") == 1
    (tmp_path / "r" / "estimate.json").write_text(json.dumps(EST))
    code, out, err = run(["validate", "--log", str(LOGS / "ina.csv"), "--format", "ina", "--against", str(tmp_path / "r"),
                          "--idle-w", "2.0", "--run-dir", str(tmp_path / "o"), "--output-format", "json"], capsys)
    assert code == 0, err
    rows = {r["component"]: r for r in json.loads(out)}
    assert rows["static"]["measured_j"] == pytest.approx(2.0 * 1.5)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--against", "EST", "--format", "pynq"], "missing option --log"),
        (["--log", "LOG", "--format", "pynq", "--against", "BAD"], "breakdown_j: missing required key"),
        (["--log", "LOG", "--format", "pynq", "--against", "EST", "--idle-mark", "0", "--idle-w", "1"],
         "either an idle mark or an idle power"),
        (["--log", "LOG", "--format", "pynq", "--against", "EST", "--rail", "12V"], "--rail 12V: not in the log"),
        (["--log", "LOG", "--format", "pynq", "--against", "EST", "--window", "9"], "no samples with mark 9"),
        (["--log", "LOG", "--format", "xml", "--against", "EST"], "Invalid value for '--format'"),
        (["--published", "--log", "LOG"], "takes no --log"),
        (["--log", "LOG", "--format", "pynq", "--against", "LOG"], "not a JSON estimate"),
    ],
)
def test_validate_errors(tmp_path, capsys, argv, message):
    (tmp_path / "est.json").write_text(json.dumps(EST))
    (tmp_path / "bad.json").write_text(json.dumps({"energy_j": 1, "time_s": 1}))
    subst = {"EST": str(tmp_path / "est.json"), "BAD": str(tmp_path / "bad.json"), "LOG": str(LOGS / "pynq.csv")}
    code, _, err = run(["validate", *[subst.get(a, a) for a in argv], "--run-dir", str(tmp_path / "o")], capsys)
    assert code == 2 and message in err and err.count("\n") == 1


def test_validate_published(capsys, tmp_path):
    code, out, err = run(["validate", "--published", "--profile", "zedboard", "--output-format", "json"], capsys)
    assert code == 0, err
    rep = json.loads(out)
    assert rep["profile"] == "zedboard" and len(rep["rows"]) == 30
    for r in rep["rows"]:
        assert {"id", "published_power_w", "predicted_power_w", "loo_error_rel", "used_in_fit", "reason"} <= set(r)
    assert rep["summary"]["predicted_rows"] >= 15 and rep["summary"]["loo_median_abs_error"] > 0
    # --rows: an extra design predicted with the shipped profile, never fitted
    import pandas as pd

    from e2sim.validation.published import PUBLISHED_CSV

    df = pd.read_csv(PUBLISHED_CSV, dtype=str, keep_default_na=False)
    df[df["id"] == "P19"].assign(id="NEW1", use_in_fit="yes").to_csv(tmp_path / "r.csv", index=False)
    code, out, err = run(["validate", "--published", "--rows", str(tmp_path / "r.csv"), "--output-format", "json"],
                         capsys)
    assert code == 0, err
    rows = {r["id"]: r for r in json.loads(out)["rows"]}
    assert rows["NEW1"]["used_in_fit"] is False
    assert rows["NEW1"]["predicted_power_w"] == pytest.approx(rows["P19"]["predicted_power_w"], rel=1e-12)
    code, _, err = run(["validate", "--published", "--rows", str(tmp_path / "none.csv")], capsys)
    assert code == 2 and "none.csv" in err and err.count("\n") == 1


def test_calibrate_recovers_synthetic_constants(tmp_path, capsys):
    out_yaml = tmp_path / "cal.yaml"
    code, out, err = run(["calibrate", "--logs", str(ROOT / "validation" / "logs" / "synthetic_pynq.csv"),
                          "--profile", str(ROOT / "hardware_profiles" / "asic45nm.yaml"),
                          "--fit", "static_power_w,compute.int_mult_pj_per_bit2",
                          "--fit", "dram.read_pj_per_bit", "--out", str(out_yaml), "--output-format", "csv"], capsys)
    assert code == 0, err
    new = profile_constants(read_yaml(out_yaml))
    truth = {"static_power_w": 2.4, "compute.int_mult_pj_per_bit2": 0.0045e-12, "dram.read_pj_per_bit": 25e-12}
    for k, v in truth.items():
        assert new[k] == pytest.approx(v, rel=0.02, abs=0), k
    assert new["compute.mac_fp32_pj"] == pytest.approx(4.6e-12, abs=0)  # not fitted: unchanged
    text = out_yaml.read_text()
    assert text.startswith("# Calibrated by e2sim calibrate") and "synthetic_pynq.csv#16" in text
    assert "prior 0.04 (" in read_yaml(out_yaml)["static_power_w"]["source"]
    assert pd.read_csv(io.StringIO(out))["constant"].tolist() == list(truth)


def test_calibrate_errors(tmp_path, capsys):
    log = str(ROOT / "validation" / "logs" / "synthetic_pynq.csv")
    code, _, err = run(["calibrate", "--logs", log, "--profile", str(PROFILE), "--fit", "compute.mac_int3_pj",
                        "--out", str(tmp_path / "x.yaml")], capsys)
    assert code == 2 and "unknown profile constant 'compute.mac_int3_pj'" in err
    code, _, err = run(["calibrate", "--logs", log, "--profile", str(PROFILE), "--fit", "compute.mac_fp32_pj",
                        "--out", str(tmp_path / "x.yaml")], capsys)
    assert code == 2 and "no window exercises compute.mac_fp32_pj" in err
    code, _, err = run(["calibrate", "--logs", str(LOGS / "ina.csv"), "--profile", str(PROFILE), "--fit",
                        "static_power_w", "--out", str(tmp_path / "x.yaml")], capsys)
    assert code == 2 and "no sidecar ina.windows.yaml" in err
    assert not (tmp_path / "x.yaml").exists()


def test_validation_path_imports_neither_torch_nor_numba():
    import subprocess
    import sys

    code = ("import sys, e2sim.commands.validate, e2sim.commands.calibrate, e2sim.validation.manifest, "
            "e2sim.validation.published, e2sim.validation.compare; "
            "bad = [m for m in ('torch', 'numba') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
