"""The training loop: determinism, resuming after a kill, SMD accounting, SLU steering, stats files that
the estimate reads, and run-directory safety."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from e2sim.errors import E2simError
from e2sim.estimate import estimate_plan
from e2sim.stats import load_psg_stats, load_slu_stats
from e2sim.techniques import PSG, SLU, build
from e2sim.train.curves import CURVE_COLUMNS
from e2sim.train.loop import CHECKPOINT, TrainConfig, train
from e2sim.workload_files import load_workload

QUIET = dict(log=lambda _m: None)
ALL = dict(workload="resnet20_cifar10", data="synthetic", iterations=8, batch_size=4, eval_every=4, smd=0.5,
           slu=True, slu_target=0.5, slu_beta=1e-2, psg=True, seed=7, threads=1)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    rows = train(TrainConfig(**ALL), out, **QUIET)
    return out, rows


def _weights(out):
    return torch.load(out / CHECKPOINT, weights_only=True)["model"]


def test_curves_rows_and_smd_accounting(full_run):
    out, rows = full_run
    df = pd.read_csv(out / "curves.csv")
    assert tuple(df.columns) == CURVE_COLUMNS and df["iteration"].tolist() == list(range(1, 9))
    dropped = df[df.executed == 0]
    assert 0 < len(dropped) < 8  # seed 7, p = 0.5
    assert dropped["loss"].isna().all() and dropped["train_accuracy"].isna().all()
    # a dropped iteration adds no energy; an executed one does
    step = df["cumulative_energy_j"].diff().fillna(df["cumulative_energy_j"].iloc[0])
    assert (step[df.executed == 0] == 0).all() and (step[df.executed == 1] > 0).all()
    assert df["test_accuracy"].notna().tolist() == [i % 4 == 0 for i in range(1, 9)]
    assert (out / "curves.png").stat().st_size > 1000
    rec = json.loads((out / "config.json").read_text())
    assert rec["seed"] == 7 and rec["config"]["smd"] == 0.5 and len(rec["config_hash"]) == 16
    assert {"torch", "numpy", "python", "e2sim"} <= set(rec["versions"])


def test_same_seed_same_curves(full_run, tmp_path):
    out, _ = full_run
    train(TrainConfig(**ALL), tmp_path / "again", **QUIET)
    assert (tmp_path / "again" / "curves.csv").read_bytes() == (out / "curves.csv").read_bytes()
    other = train(TrainConfig(**{**ALL, "seed": 8}), tmp_path / "other", stop_after=4, **QUIET)
    assert [r["executed"] for r in other] + [r["loss"] for r in other] != \
        [r["executed"] for r in full_run[1][:4]] + [r["loss"] for r in full_run[1][:4]]


def test_resume_after_a_kill_gives_the_same_run(full_run, tmp_path):
    out, _ = full_run
    run = tmp_path / "killed"
    cfg = TrainConfig(**ALL)
    train(cfg, run, stop_after=6, **QUIET)  # killed at iteration 6; the last checkpoint is at 4
    assert len(pd.read_csv(run / "curves.csv")) == 4
    # a kill between writing curves.csv and the checkpoint leaves rows past the checkpoint: dropped on resume
    df = pd.read_csv(run / "curves.csv")
    pd.concat([df, df.assign(iteration=df.iteration + 4, loss=99.0)]).to_csv(run / "curves.csv", index=False)
    train(cfg, run, resume=True, **QUIET)
    assert (run / "curves.csv").read_bytes() == (out / "curves.csv").read_bytes()
    assert (run / "slu_stats.yaml").read_text() == (out / "slu_stats.yaml").read_text()
    assert (run / "psg_stats.yaml").read_text() == (out / "psg_stats.yaml").read_text()
    a, b = _weights(run), _weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stats_files_round_trip_into_the_estimate(full_run):
    out, _ = full_run
    w = load_workload("resnet20_cifar10")
    slu = load_slu_stats(out / "slu_stats.yaml")
    psg = load_psg_stats(out / "psg_stats.yaml")
    assert list(slu.skip_ratio) == [b.name for b in w.gated_blocks]
    assert all(0 <= r <= 1 for r in slu.skip_ratio.values())
    assert psg.settings.steps == len(pd.read_csv(out / "curves.csv").query("executed == 1"))
    gate_convs = [f"{b}.gate.conv" for b in slu.skip_ratio]
    assert set(psg.fallback_fraction) == {L.name for L in w.layers if L.kind == "conv"} | set(gate_convs)
    # the files drive the estimate: per-block skip ratios and per-layer fallbacks as measured
    ws, plan = build(w, [PSG(per_layer=psg.fractions()), SLU(per_block=slu.ratios())], "fp32", iterations=1,
                     batch_size=4)
    measured = estimate_plan(plan, ws, "zedboard").energy_j
    ws0, plan0 = build(w, [PSG(fallback=1.0), SLU(skip=0.0)], "fp32", iterations=1, batch_size=4)
    assert 0 < measured < estimate_plan(plan0, ws0, "zedboard").energy_j


def test_cli_estimate_reads_the_stats_files(full_run):
    from click.testing import CliRunner

    from e2sim.cli import cli

    out, _ = full_run
    r = CliRunner().invoke(cli, ["estimate", "--workload", "resnet20_cifar10", "--slu-stats",
                                 str(out / "slu_stats.yaml"), "--psg", "--psg-stats", str(out / "psg_stats.yaml"),
                                 "--format", "json"])
    assert r.exit_code == 0, r.output


def _executed_fraction(target: float, tmp_path) -> list[float]:
    cfg = TrainConfig(workload="resnet20_cifar10", data="synthetic", iterations=40, batch_size=16, slu=True,
                      slu_target=target, slu_beta=1e-2, eval_every=1000, seed=1, threads=1)
    rows = train(cfg, tmp_path / f"slu{target}", **QUIET)
    f = np.array([r["slu_executed_fraction"] for r in rows])
    return [float(f[:10].mean()), float(f[-10:].mean())]


@pytest.mark.slow
def test_slu_executed_fraction_moves_to_the_target(tmp_path):
    (hi0, hi1), (lo0, lo1) = _executed_fraction(0.9, tmp_path), _executed_fraction(0.2, tmp_path)
    # both start near the untrained gates' ~0.5; each ends closer to its own target
    assert abs(hi1 - 0.9) < abs(hi0 - 0.9) and abs(lo1 - 0.2) < abs(lo0 - 0.2)
    assert hi1 > 0.75 and lo1 < 0.35


def test_run_directory_safety(full_run, tmp_path):
    out, _ = full_run
    with pytest.raises(E2simError, match="already exists; pass --resume"):
        train(TrainConfig(**ALL), out, **QUIET)
    with pytest.raises(E2simError, match="no checkpoint.pt to resume from"):
        train(TrainConfig(**ALL), tmp_path / "nothing", resume=True, **QUIET)
    with pytest.raises(E2simError, match=r"other settings \(differs in seed\)"):
        train(TrainConfig(**{**ALL, "seed": 3}), out, resume=True, **QUIET)
