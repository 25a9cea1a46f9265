"""Estimates for measured windows (issue 13, item 3): ``estimate --iterations N --format json`` carries the
per-constant activity that a calibrate sidecar's ``estimate:`` entry reads; calibrate recovers known
constants from a noiseless log built from those activities; validate warns when the estimate and the window
last very differently; an estimate without activity is one line and exit 2."""
from __future__ import annotations

import json

import numpy as np
import pytest

from e2sim.estimate import estimate
from e2sim.profile import load_profile

from conftest import run_cli as run

DT_S = 0.02
# The "true" board: the zedboard profile with its board static power and DRAM energy moved (a fit must find
# them). Static power is four constants (PS, PL, DDR, board), each W x the window's duration.
BOARD = "fpga.static.board_w"
STATICS = ("fpga.static.ps_w", "fpga.static.pl_w", "fpga.static.ddr_w", BOARD)
TRUE_SCALE = {BOARD: 1.3, "dram.read_pj_per_bit": 0.7}


def _write_estimates(tmp_path, capsys):
    """Three windows' estimates written by the CLI: (file name, iterations, precision)."""
    specs = [("w1.json", 1, "int8"), ("w2.json", 2, "int8"), ("w3.json", 1, "fp32")]
    for name, n, prec in specs:
        code, out, err = run(["estimate", "--workload", "resnet20_cifar10", "--precision", prec, "--iterations",
                              str(n), "--format", "json"], capsys)
        assert code == 0, err
        (tmp_path / name).write_text(out)
    return specs


def _log(tmp_path, windows: list[tuple[int, float, float]]) -> None:
    """A PYNQ-style log: per (mark, duration s, mean power W) a constant-power stretch sampled every DT_S."""
    lines = [",Mark,5V_power"]
    t = 0.0
    for mark, dur, watts in windows:
        for _ in range(int(round(dur / DT_S)) + 1):
            stamp = np.datetime64("2024-05-01T12:00:00") + np.timedelta64(int(round(t * 1e6)), "us")
            lines.append(f"{str(stamp).replace('T', ' ')},{mark},{watts:.9f}")
            t += DT_S
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")


def test_estimate_json_carries_activity_that_reproduces_its_energy(tmp_path, capsys):
    _write_estimates(tmp_path, capsys)
    d = json.loads((tmp_path / "w2.json").read_text())
    prof = load_profile("zedboard").linear_constants()
    assert set(d["activity"]) == set(prof)
    assert sum(c * prof[k] for k, c in d["activity"].items()) == pytest.approx(d["energy_j"], rel=1e-9)
    for c in STATICS:
        assert d["activity"][c] == pytest.approx(d["time_s"], rel=1e-12)  # static: W x s
    # twice the iterations, twice every coefficient
    one = estimate("resnet20_cifar10", "zedboard", "int8", iterations=1).activity()
    assert d["activity"] == pytest.approx({k: 2 * v for k, v in one.items()}, rel=1e-12)


def test_calibrate_reads_cli_estimates_and_recovers_the_constants(tmp_path, capsys):
    specs = _write_estimates(tmp_path, capsys)
    prof = load_profile("zedboard").linear_constants()
    truth = {k: v * TRUE_SCALE.get(k, 1.0) for k, v in prof.items()}
    static_w = sum(truth[c] for c in STATICS)
    windows = [(0, 5.0, static_w)]
    for mark, (name, _, _) in enumerate(specs, start=1):
        act = json.loads((tmp_path / name).read_text())["activity"]
        dur = round(act[BOARD] / DT_S) * DT_S  # the log's window duration
        dyn_j = sum(c * truth[k] for k, c in act.items() if k not in STATICS)
        windows.append((mark, dur, static_w + dyn_j / dur))
    _log(tmp_path, windows)
    side = "format: pynq\nwindows:\n  - {mark: 0, idle: true}\n" + "".join(
        f"  - {{mark: {m}, estimate: {name}}}\n" for m, (name, _, _) in enumerate(specs, start=1))
    (tmp_path / "log.windows.yaml").write_text(side)
    code, out, err = run(["calibrate", "--logs", str(tmp_path / "log.csv"), "--profile", "zedboard", "--fit",
                          f"{BOARD},dram.read_pj_per_bit", "--out", str(tmp_path / "fit.yaml"),
                          "--output-format", "json"], capsys)
    assert code == 0, err
    fitted = {r["constant"]: r for r in json.loads(out)}
    assert fitted[BOARD]["fitted_si"] == pytest.approx(truth[BOARD], rel=1e-5)
    assert fitted["dram.read_pj_per_bit"]["fitted_si"] == pytest.approx(truth["dram.read_pj_per_bit"], rel=1e-5)


def test_estimate_without_activity_is_one_line_saying_how_to_write_it(tmp_path, capsys):
    _log(tmp_path, [(0, 1.0, 2.0), (1, 1.0, 3.0)])
    (tmp_path / "log.windows.yaml").write_text("format: pynq\nwindows:\n  - {mark: 0, idle: true}\n"
                                               "  - {mark: 1, estimate: old.json}\n")
    (tmp_path / "old.json").write_text(json.dumps({"energy_j": 1.0, "time_s": 1.0, "breakdown_j":
                                                   {"mac": 0, "sram": 0, "dram": 0, "static": 1.0}}))
    code, _, err = run(["calibrate", "--logs", str(tmp_path / "log.csv"), "--profile", "zedboard", "--fit",
                        "static_power_w", "--out", str(tmp_path / "fit.yaml")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "old.json" in err and "no 'activity'" in err and "e2sim estimate" in err and "--iterations N" in err


def test_validate_warns_when_durations_differ_more_than_twice(tmp_path, capsys):
    _write_estimates(tmp_path, capsys)
    d = json.loads((tmp_path / "w1.json").read_text())
    _log(tmp_path, [(0, 2.0, 2.0), (1, d["time_s"], d["energy_j"] / d["time_s"])])
    base = ["validate", "--log", str(tmp_path / "log.csv"), "--format", "pynq", "--idle-mark", "0",
            "--run-dir", str(tmp_path / "out")]
    code, _, err = run([*base, "--against", str(tmp_path / "w1.json")], capsys)
    assert code == 0 and "warning" not in err
    run_est = tmp_path / "run.json"
    code, out, _ = run(["estimate", "--workload", "resnet20_cifar10", "--precision", "int8", "--format", "json"],
                       capsys)
    run_est.write_text(out)
    code, _, err = run([*base, "--against", str(run_est)], capsys)
    warn = [x for x in err.splitlines() if "warning" in x]
    assert code == 0 and len(warn) == 1
    assert "window 1 lasted" in warn[0] and "--iterations N --format json" in warn[0] and "64000" not in warn[0]
