"""`e2sim psg-accuracy`: a short real training run on the bundled digits, its files, and its bad input."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from e2sim import plotstyle, progress
from e2sim.cli import main
from e2sim.stats import load_psg_stats
from e2sim.workload_files import load_workload


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.mark.slow
def test_sweep_full_width_is_exact_and_agreement_falls_with_msb_bits(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "enabled", lambda quiet=False: not quiet)  # as if stderr were a terminal
    with plotstyle.captured() as figs:
        code, out, err = run_cli(["psg-accuracy", "--workload", "resnet20_cifar10", "--steps", "2", "--sample-every",
                                  "2", "--batch-size", "8", "--msb-bits", "2,4,8", "--grad-msb-bits", "32",
                                  "--threshold", "0,-0.05", "--format", "csv", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "digits" in err  # the stand-in dataset is announced on stderr
    # the bar counts 2 steps + 21 layer comparisons and shows the remaining time; log lines still print
    assert "psg-accuracy (steps + layer comparisons)" in err and "/23 [" in err and "<" in err
    assert "e2sim: step 2/2: loss" in err
    (fig,) = figs
    assert plotstyle.problems(fig) == [] and fig.get_suptitle().startswith("resnet20_cifar10 · data digits")
    table = pd.read_csv(io.StringIO(out))
    convs = [layer.name for layer in load_workload("resnet20_cifar10").layers if layer.kind == "conv"]
    assert len(table) == len(convs) * 3 * 2 and set(table.layer) == set(convs) and set(table.step) == {2}
    assert table.sign_agreement.between(0, 1).all() and table.fallback_fraction.between(0, 1).all()
    full = table[table.msb_bits == 8]
    assert (full.sign_agreement == 1.0).all()  # MSB widths equal the full widths
    mean = table.groupby("msb_bits").sign_agreement.mean()
    assert mean[2] < mean[4] < mean[8]
    # threshold 0: only exact zeros fall back; relative -0.05: more fall back
    fb = table.groupby("threshold").fallback_fraction.mean()
    assert fb[0.0] < 0.01 < fb[-0.05]
    (run_dir,) = list(tmp_path.iterdir())
    files = {p.name for p in run_dir.iterdir()}
    assert {"psg_accuracy.csv", "psg_deciles.csv", "psg_accuracy.png", "run.json"} <= files
    assert (run_dir / "psg_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stats = load_psg_stats(run_dir / "psg_stats_msb4_thr-0.05.yaml")
    assert set(stats.fallback_fraction) == set(convs) and stats.settings.msb_bits == 4
    sel = table[(table.msb_bits == 4) & (table.threshold == -0.05)].set_index("layer").fallback_fraction
    assert stats.fallback_fraction["layer2.0.conv1"] == pytest.approx(sel["layer2.0.conv1"])
    dec = pd.read_csv(run_dir / "psg_deciles.csv")
    assert sorted(dec.decile.unique()) == list(range(1, 11))
    # deciles partition the layer's weights
    one = dec[(dec.layer == "conv1") & (dec.msb_bits == 2) & (dec.threshold == 0)]
    assert one.weights.sum() == 16 * 3 * 9


@pytest.mark.parametrize("args,match", [
    (["--msb-bits", "4,x"], "not a valid int"),
    (["--msb-bits", "1"], "outside"),
    (["--msb-bits", "10"], "exceeds --bits"),
    (["--threshold", "nan"], "NaN"),
    (["--grad-msb-bits", "20"], "or 32"),
    (["--sample-every", "5", "--steps", "2"], "no step would be sampled"),
    (["--data", "/nonexistent/cifar"], "not a directory"),
    (["--quiet=yes"], "does not take a value"),
])
def test_bad_options_exit_2(args, match, capsys, tmp_path):
    code, out, err = run_cli(["psg-accuracy", "--workload", "resnet20_cifar10", "--out", str(tmp_path), *args], capsys)
    assert code == 2 and match in err and out == ""
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
