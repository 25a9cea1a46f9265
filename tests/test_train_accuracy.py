"""A default run (bundled digits, ResNet-20) learns: test accuracy well above chance (0.1) on CPU, for the
baseline and for SMD+SLU+PSG. Seeded, so the accuracies are reproducible on the same torch build; the
thresholds sit below the measured values (baseline 0.80 at 100 iterations, SMD+SLU+PSG 0.30 at 300)."""
import pytest

from e2sim.train.loop import TrainConfig, train


def _final_accuracy(tmp_path, name, **kw):
    cfg = TrainConfig(workload="resnet20_cifar10", data="digits", batch_size=32, threads=1, seed=0, **kw)
    rows = train(cfg, tmp_path / name, log=lambda _m: None)
    return rows[-1]["test_accuracy"]


@pytest.mark.slow
def test_baseline_learns_the_digits(tmp_path):
    assert _final_accuracy(tmp_path, "base", iterations=100, eval_every=100) >= 0.6


@pytest.mark.slow
def test_smd_slu_psg_learns_the_digits(tmp_path):
    # beta 1e-2: the official 1e-5 steers the gates over 64k iterations, not over 300 (see test_train_loop)
    acc = _final_accuracy(tmp_path, "all", iterations=300, eval_every=300, smd=0.5, slu=True, slu_target=0.7,
                          slu_beta=1e-2, psg=True)
    assert acc >= 0.25
