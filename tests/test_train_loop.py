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
    dropped = df[df.smd_dropped == 1]
    assert 0 < len(dropped) < 8 and set(df.smd_dropped) == {0, 1}  # seed 7, p = 0.5
    assert dropped["loss"].isna().all() and dropped["train_accuracy"].isna().all()
    assert dropped["psg_fallback_fraction"].isna().all() and dropped["slu_executed_fraction"].isna().all()
    ran = df[df.smd_dropped == 0]
    assert ran["psg_fallback_fraction"].between(0, 1).all() and ran["slu_executed_fraction"].between(0, 1).all()
    # lr of the ordinary parameters (workload's 0.1) and of the sign-updated convs (paper's 0.03), same decay
    assert df["lr"].iloc[0] == pytest.approx(0.1) and df["psg_lr"].iloc[0] == pytest.approx(0.03)
    assert np.allclose(df["psg_lr"] / df["lr"], 0.3)
    # a dropped iteration adds no energy; an executed one does
    step = df["cumulative_energy_j"].diff().fillna(df["cumulative_energy_j"].iloc[0])
    assert (step[df.smd_dropped == 1] == 0).all() and (step[df.smd_dropped == 0] > 0).all()
    assert df["test_accuracy"].notna().tolist() == [i % 4 == 0 for i in range(1, 9)]
    assert (out / "curves.png").stat().st_size > 1000
    rec = json.loads((out / "config.json").read_text())
    assert rec["seed"] == 7 and rec["config"]["smd"] == 0.5 and len(rec["config_hash"]) == 16
    assert {"torch", "numpy", "python", "e2sim"} <= set(rec["versions"])


@pytest.mark.slow
def test_same_seed_same_curves(full_run, tmp_path):
    out, _ = full_run
    train(TrainConfig(**ALL), tmp_path / "again", **QUIET)
    assert (tmp_path / "again" / "curves.csv").read_bytes() == (out / "curves.csv").read_bytes()
    other = train(TrainConfig(**{**ALL, "seed": 8}), tmp_path / "other", stop_after=4, **QUIET)
    assert [r["smd_dropped"] for r in other] + [r["loss"] for r in other] != \
        [r["smd_dropped"] for r in full_run[1][:4]] + [r["loss"] for r in full_run[1][:4]]


@pytest.mark.slow
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
    assert psg.settings.steps == len(pd.read_csv(out / "curves.csv").query("smd_dropped == 0"))
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


def test_run_writes_its_estimate_json_for_validate(full_run):
    """estimate.json equals what `e2sim estimate --format json` prices for the run's measured stats: same
    executed iterations (SMD as it happened), batch, per-block skips and per-layer fallbacks."""
    from e2sim.savings import estimate_with_savings
    from e2sim.techniques import SMD, Techniques
    from e2sim.validation.estimate_file import load_estimate

    out, rows = full_run
    rec = json.loads((out / "estimate.json").read_text())
    executed = sum(1 - r["smd_dropped"] for r in rows)
    assert rec["iterations_scheduled"] == 8 and rec["iterations_executed"] == executed
    assert rec["configuration"] == "SMD+SLU+PSG" and rec["batch_size"] == 4
    assert any("charged their forward" in t for t in rec["techniques"])
    slu = load_slu_stats(out / "slu_stats.yaml")
    psg = load_psg_stats(out / "psg_stats.yaml")
    # the independent path: the estimate CLI's stage with SMD at the measured drop rate (mean = measured count)
    t = Techniques(smd=SMD(1 - executed / 8), slu=SLU(per_block=slu.ratios(), charge_skipped_forward=True),
                   psg=PSG(per_layer=psg.fractions()))
    sv = estimate_with_savings("resnet20_cifar10", "zedboard", "fp32", t, iterations=8, batch_size=4)
    assert rec["energy_j"] == pytest.approx(sv.config.energy_j, rel=1e-9)
    assert rec["baseline"]["energy_j"] == pytest.approx(sv.baseline.energy_j, rel=1e-9)
    # the per-iteration energy of the curves prices the same run iteration by iteration (bilinear in k, f)
    assert rows[-1]["cumulative_energy_j"] == pytest.approx(rec["energy_j"], rel=0.05)
    assert load_estimate(out).energy_j == rec["energy_j"]  # what validate --against RUN reads


def test_psg_stats_of_a_gated_run_drive_an_estimate_without_slu(full_run):
    """The gates' convs in a gated run's psg_stats.yaml are not convs of the plain workload: without SLU the
    estimate leaves them out (they do not exist there) instead of rejecting the file."""
    from click.testing import CliRunner

    from e2sim.cli import cli

    out, _ = full_run
    psg = load_psg_stats(out / "psg_stats.yaml")
    assert any(n.endswith(".gate.conv") for n in psg.fallback_fraction)
    r = CliRunner().invoke(cli, ["estimate", "--workload", "resnet20_cifar10", "--psg", "--psg-stats",
                                 str(out / "psg_stats.yaml"), "--format", "json"])
    assert r.exit_code == 0, r.output
    w = load_workload("resnet20_cifar10")
    plain = {k: v for k, v in psg.fractions().items() if not k.endswith(".gate.conv")}
    ws, plan = build(w, [PSG(per_layer=plain)], "fp32")
    assert json.loads(r.output)["energy_j"] == pytest.approx(estimate_plan(plan, ws, "zedboard").energy_j)
    # a name that is neither a conv nor a gate conv of one of the workload's blocks is still an error
    with pytest.raises(E2simError, match="not a convolution"):
        build(w, [PSG(per_layer={**plain, "layer9.1.gate.conv": 0.5})], "fp32")


def test_skipped_blocks_charged_forward_in_the_energy():
    """Charged: a skipped sample pays the block's forward (the straight-through gate gradient needs its
    output), not its backward; free: nothing. Fully skipped blocks: the difference is exactly the gated
    blocks' main-layer forward items."""
    w = load_workload("resnet20_cifar10")

    def energy(charged):
        ws, plan = build(w, [SLU(skip=1.0, charge_skipped_forward=charged)], "fp32", iterations=1, batch_size=4)
        return estimate_plan(plan, ws, "zedboard")

    free, charged = energy(False), energy(True)
    ws, plan = build(w, [SLU(skip=0.0)], "fp32", iterations=1, batch_size=4)
    full = estimate_plan(plan, ws, "zedboard")
    assert free.energy_j < charged.energy_j < full.energy_j
    assert charged.by_pass_j["fwd"] == pytest.approx(full.by_pass_j["fwd"])
    assert charged.by_pass_j["bwd_input"] == pytest.approx(free.by_pass_j["bwd_input"])
    assert any("charged" in n for n in charged.plan.notes) and any("free in every pass" in n for n in free.plan.notes)


@pytest.mark.slow
def test_resume_with_more_iterations_extends_a_finished_run(full_run, tmp_path):
    import shutil

    out, rows = full_run
    run = tmp_path / "extended"
    shutil.copytree(out, run)
    longer = train(TrainConfig(**{**ALL, "iterations": 12}), run, resume=True, **QUIET)
    df = pd.read_csv(run / "curves.csv")
    assert df["iteration"].tolist() == list(range(1, 13)) and len(longer) == 12
    assert df.iloc[:8].equals(pd.read_csv(out / "curves.csv"))  # the first 8 rows are the finished run's
    assert df["cumulative_energy_j"].iloc[-1] >= df["cumulative_energy_j"].iloc[7]
    rec = json.loads((run / "config.json").read_text())
    assert rec["config"]["iterations"] == 12 and rec["extended_from"] == [8]
    assert json.loads((run / "estimate.json").read_text())["iterations_scheduled"] == 12
    with pytest.raises(E2simError, match="can only grow"):
        train(TrainConfig(**{**ALL, "iterations": 10}), run, resume=True, **QUIET)
    # resuming a finished run at its own length does no iteration and changes nothing
    before = (run / "curves.csv").read_bytes()
    train(TrainConfig(**{**ALL, "iterations": 12}), run, resume=True, **QUIET)
    assert (run / "curves.csv").read_bytes() == before


def test_lr_schedules_and_parameter_groups(tmp_path):
    """official: one decay at 2/3 of the run (42,666 of 64k); paper: at 1/2 and 3/4. --lr drives BN/fc,
    --psg-lr the sign-updated convs; --momentum reaches the optimizer."""
    from e2sim.train.loop import lr_milestones

    w = load_workload("resnet20_cifar10")
    base = dict(workload="resnet20_cifar10", iterations=900)
    assert lr_milestones(TrainConfig(**base, lr_schedule="official"), w.schedule) == (600,)
    assert lr_milestones(TrainConfig(**base), w.schedule) == (450, 675)
    cfg = TrainConfig(workload="resnet20_cifar10", data="synthetic", iterations=3, batch_size=2, psg=True,
                      lr=0.05, psg_lr=0.002, momentum=0.5, lr_schedule="official", eval_every=10, threads=1)
    rows = train(cfg, tmp_path / "r", **QUIET)
    assert [r["lr"] for r in rows] == pytest.approx([0.05, 0.05, 0.005])
    assert [r["psg_lr"] for r in rows] == pytest.approx([0.002, 0.002, 0.0002])
    opt = torch.load(tmp_path / "r" / CHECKPOINT, weights_only=True)["optimizer"]
    assert [g["momentum"] for g in opt["param_groups"]] == [0.5, 0.5]
    rec = json.loads((tmp_path / "r" / "config.json").read_text())
    assert rec["psg_lr"] == 0.002 and rec["lr"] == 0.05 and rec["momentum"] == 0.5


def test_free_skips_give_skipped_samples_no_task_gradient():
    """slu_skipped=free: the decision of a sample that skipped a block gets no gradient from the task loss
    (its block output is never computed); charged: it does (straight-through through the block output)."""
    from e2sim.train.gated import GatedCifarResNet

    grads = {}
    for skipped_forward in (True, False):
        torch.manual_seed(0)
        m = GatedCifarResNet(20, 10, skipped_forward=skipped_forward)
        x = torch.randn(8, 3, 32, 32)
        torch.manual_seed(1)
        logits, masks, _ = m(x)
        for mk in masks:
            mk.retain_grad()
        logits.sum().backward()
        grads[skipped_forward] = [(mk.detach().clone(), mk.grad.clone()) for mk in masks]
    for (mask_c, g_c), (mask_f, g_f) in zip(grads[True], grads[False]):
        assert torch.equal(mask_c.round(), mask_f.round())
        skipped = mask_f.round() == 0
        assert (g_f[skipped] == 0).all() and (g_c[skipped] != 0).any()
    # the last block's executed samples: the same task gradient either way (nothing downstream differs)
    (mask_c, g_c), (_, g_f) = grads[True][-1], grads[False][-1]
    ran = mask_c.round() == 1
    assert ran.any() and torch.allclose(g_f[ran], g_c[ran])
