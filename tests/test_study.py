"""`e2sim study`: a real Dask LocalCluster runs the grid; tables, resume, bad input, a dying worker."""
import math
import os

import numpy as np
import pandas as pd
import pytest

from e2sim.errors import E2simError
from e2sim.train.study import (BASELINE, SUMMARY_COLUMNS, StudyRun, accuracy_at_energy, execute,
                               parse_configs, plan_runs, summarize)


def _one_line_error(r, match):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("e2sim: error:"), r.stderr
    assert match in lines[0], lines[0]


STUDY = ["study", "--workload", "resnet20_cifar10", "--data", "synthetic", "--iterations", "4", "--batch-size",
         "4", "--eval-every", "2", "--seeds", "2", "--config", "smd=--smd 0.5", "--config", "psg=--psg",
         "--workers", "2", "--quiet"]


@pytest.mark.slow
def test_study_on_a_local_cluster_then_rerun_reuses_finished_runs(e2sim, tmp_path):
    out = tmp_path / "study"
    r = e2sim(*STUDY, "--out", str(out))
    assert r.returncode == 0, r.stderr
    study = pd.read_csv(out / "study.csv")
    assert len(study) == 6 and (study["status"] == "ok").all()
    assert sorted(zip(study["config"], study["seed"])) == sorted(
        (c, s) for c in (BASELINE, "smd", "psg") for s in (0, 1))
    summary = pd.read_csv(out / "summary.csv")
    assert tuple(summary.columns) == SUMMARY_COLUMNS and summary["config"].tolist() == [BASELINE, "smd", "psg"]
    assert (summary["runs"] == 2).all()
    # values are the runs' own: the mean of the seeds' final accuracies and energies, from their curves
    for name, g in study.groupby("config"):
        s = summary.set_index("config").loc[name]
        assert s["accuracy_mean"] == pytest.approx(g["final_test_accuracy"].mean())
        assert s["energy_j_mean"] == pytest.approx(g["energy_j"].mean())
        assert s["accuracy_stderr"] == pytest.approx(g["final_test_accuracy"].std(ddof=1) / math.sqrt(2))
        for row in g.itertuples():
            curves = pd.read_csv(os.path.join(row.run_dir, "curves.csv"))
            assert row.energy_j == curves["cumulative_energy_j"].iloc[-1]
            assert row.executed_iterations_fraction == (curves["smd_dropped"] == 0).mean()
    base = summary.set_index("config").loc[BASELINE]
    psg = summary.set_index("config").loc["psg"]
    assert base["saving"] == 0 and 0 < psg["saving"] < 1
    assert base["baseline_accuracy_at_equal_energy"] == pytest.approx(base["accuracy_mean"])
    assert (out / "study.png").read_bytes()[:4] == b"\x89PNG"
    # a rerun finds every run finished: same tables, no training (checkpoints untouched)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("checkpoint.pt")}
    before = (out / "study.csv").read_bytes(), (out / "summary.csv").read_bytes()
    r = e2sim(*STUDY, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert ((out / "study.csv").read_bytes(), (out / "summary.csv").read_bytes()) == before
    assert {p: p.stat().st_mtime_ns for p in out.rglob("checkpoint.pt")} == stamps
    # a run folder holding other settings is refused, not overwritten
    r = e2sim(*[a if a != "smd=--smd 0.5" else "smd=--smd 0.25" for a in STUDY], "--out", str(out))
    _one_line_error(r, "a run folder from other settings (differs in smd)")


@pytest.mark.parametrize("args, match", [
    (["--config", "smd"], "expected NAME="),
    (["--config", "=--smd 0.5"], "expected NAME="),
    (["--config", "a b=--smd 0.5"], "expected NAME="),
    (["--config", "x=--no-such-option"], "--config x: No such option"),
    (["--config", "x=--smd 2"], "--config x:"),
    (["--config", "x=--psg-lr 0.1"], "--psg-lr needs --psg"),
    (["--config", "x="], "no train options"),
    (["--config", "x=--seed 3"], "No such option"),
    (["--config", "baseline=--smd 0.5"], "reserved"),
    (["--config", "x=--smd 0.5", "--config", "x=--psg"], "given twice"),
    (["--config", "x='--smd 0.5"], "--config x:"),
    (["--seeds", "0"], "--seeds"),
    (["--workers", "0"], "--workers"),
])
def test_bad_study_input(e2sim, tmp_path, args, match):
    _one_line_error(e2sim("study", "--workload", "resnet20_cifar10", "--out", str(tmp_path / "s"), *args), match)
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_unreachable_scheduler_is_one_line(e2sim, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = e2sim("study", "--workload", "resnet20_cifar10", "--data", "synthetic", "--iterations", "1",
              "--batch-size", "2", "--seeds", "1", "--scheduler", f"tcp://127.0.0.1:{port}", "--quiet",
              "--out", str(tmp_path / "s"))
    _one_line_error(r, f"--scheduler tcp://127.0.0.1:{port}: cannot connect")


def test_parse_configs_values():
    c = parse_configs(["slu=--slu --slu-target 0.5 --slu-beta 1e-3", "all=--smd 0.5 --psg --psg-lr 0.003"])
    assert c["slu"]["slu"] is True and c["slu"]["slu_target"] == 0.5 and c["slu"]["slu_beta"] == 1e-3
    assert c["all"]["smd"] == 0.5 and c["all"]["psg"] and c["all"]["psg_lr"] == 0.003


def test_accuracy_at_equal_energy_interpolates_without_extrapolating():
    curve = (np.array([1.0, 2.0, 4.0]), np.array([0.2, 0.4, 0.8]))
    assert accuracy_at_energy(curve, 3.0) == pytest.approx(0.6)
    assert accuracy_at_energy(curve, 1.0) == pytest.approx(0.2)
    assert math.isnan(accuracy_at_energy(curve, 0.5)) and math.isnan(accuracy_at_energy(curve, 5.0))


def _die_on_seed1(config_json, run_dir):
    """A worker function whose process dies for seed 1 (as an out-of-memory kill would)."""
    if run_dir.endswith("seed1"):
        os._exit(1)
    from e2sim.train.study import run_one

    return run_one(config_json, run_dir)


@pytest.mark.slow
def test_a_dying_worker_is_reported_and_its_run_marked_failed(tmp_path):
    common = dict(workload="resnet20_cifar10", data="synthetic", iterations=2, batch_size=2, eval_every=1,
                  threads=1)
    runs = plan_runs(tmp_path, common, {}, seeds=2)
    lines = []
    rows = execute(runs, workers=1, quiet=True, log=lines.append, fn=_die_on_seed1)
    status = {r["seed"]: r["status"] for r in rows}
    assert status == {0: "ok", 1: "failed"}
    failed = [r for r in rows if r["seed"] == 1][0]
    assert "KilledWorker" in failed["error"] and math.isnan(failed["final_test_accuracy"])
    assert any("baseline/seed1: failed" in m for m in lines)
    _, summary, _ = summarize(rows)
    assert summary["runs"].tolist() == [1]
