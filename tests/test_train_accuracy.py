"""A default run (bundled digits, ResNet-20) learns: test accuracy well above chance (0.1) on CPU, for the
baseline and for SMD+SLU+PSG. Seeded, so the accuracies are reproducible on the same torch build; the
thresholds sit below the measured values (baseline 0.85 at 100 iterations of batch 32; SMD+SLU+PSG 0.30 at
200 iterations of batch 16, measured 2026-12-02 with torch 2.13.0+cpu)."""
import pytest

from e2sim.train.loop import TrainConfig, train


def _final_accuracy(tmp_path, name, **kw):
    cfg = TrainConfig(workload="resnet20_cifar10", data="digits", threads=1, seed=0, **kw)
    rows = train(cfg, tmp_path / name, log=lambda _m: None)
    return rows[-1]["test_accuracy"]


@pytest.mark.slow
def test_baseline_learns_the_digits(tmp_path):
    assert _final_accuracy(tmp_path, "base", batch_size=32, iterations=100, eval_every=100) >= 0.6


@pytest.mark.slow
def test_smd_slu_psg_learns_the_digits(tmp_path):
    # beta 1e-2: the official 1e-5 steers the gates over 64k iterations, not over 200 (see test_train_loop).
    # PSG lr 0.003 as in the CPU reproduction (validation/TRAINING.md) and lr 0.03: at the workload's 0.1
    # and the paper's PSG lr 0.03 nothing is learnt before the first lr decay, and the run needed 300
    # iterations of batch 32 (twice the work) for 0.25.
    acc = _final_accuracy(tmp_path, "all", batch_size=16, iterations=200, eval_every=200, smd=0.5, slu=True,
                          slu_target=0.7, slu_beta=1e-2, psg=True, lr=0.03, psg_lr=0.003)
    assert acc >= 0.25
