"""`e2sim train` / `e2sim curves` on the command line: bad input gives one line and exit code 2."""
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from e2sim import plotstyle
from e2sim.train.curves import CURVE_COLUMNS

from conftest import CliResult


def _one_line_error(r, match):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("e2sim: error:"), r.stderr
    assert match in lines[0], lines[0]
    assert r.stdout == ""


def _cifar_dir(root, n=4, labels_ok=True):
    root.mkdir()
    data = {b"data": np.zeros((n, 3072), np.uint8), b"labels": [i % 10 for i in range(n)]}
    if not labels_ok:
        data[b"labels"] = [42] * n
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / name).write_bytes(pickle.dumps(data, protocol=2))
    return root


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("args, match", [
    (["--smd", "1.5"], "--smd"),
    (["--slu-target", "0.5"], "--slu-target needs --slu"),
    (["--slu", "--slu-target", "0"], "--slu-target"),
    (["--psg-exact"], "--psg-exact needs --psg"),
    (["--iterations", "0"], "--iterations"),
    (["--workload", "nope"], "nope"),
    (["--workload", "mobilenetv2_cifar10", "--slu"], "CIFAR ResNets only"),
    (["--data", "/no/such/dir"], "not a directory"),
])
def test_invalid_options(e2sim, tmp_path, args, match):
    base = ["train", "--workload", "resnet20_cifar10", "--out", str(tmp_path / "run")]
    if "--workload" in args:
        base = ["train", "--out", str(tmp_path / "run")]
    _one_line_error(e2sim(*base, *args), match)


def test_bad_data_directories_and_pickles(e2sim, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = ["train", "--workload", "resnet20_cifar10", "--iterations", "1"]
    _one_line_error(e2sim(*run, "--data", str(empty), "--out", str(tmp_path / "r1")), "no CIFAR python-pickle")
    bad = _cifar_dir(tmp_path / "bad")
    (bad / "data_batch_3").write_bytes(b"\x80\x02not a pickle at all")
    _one_line_error(e2sim(*run, "--data", str(bad), "--out", str(tmp_path / "r2")), "data_batch_3")
    labels = _cifar_dir(tmp_path / "labels", labels_ok=False)
    _one_line_error(e2sim(*run, "--data", str(labels), "--out", str(tmp_path / "r3")), "labels outside")


@pytest.mark.slow
def test_crafted_pickle_is_refused_without_running_code(tmp_path):
    evil = _cifar_dir(tmp_path / "evil")
    (evil / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    # a real process: the console entry point, nothing printed by the payload
    p = subprocess.run([sys.executable, "-m", "e2sim", "train", "--workload", "resnet20_cifar10", "--data",
                        str(evil), "--out", str(tmp_path / "r")], capture_output=True, text=True)
    r = CliResult(p.returncode, p.stdout, p.stderr)
    _one_line_error(r, "refuses to load __builtin__.print")
    assert "pwned" not in r.stdout + r.stderr


def test_existing_run_directory_is_not_overwritten(e2sim, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "curves.csv").write_text("keep me")
    _one_line_error(e2sim("train", "--workload", "resnet20_cifar10", "--out", str(run)), "--resume")
    assert (run / "curves.csv").read_text() == "keep me"
    _one_line_error(e2sim("train", "--workload", "resnet20_cifar10", "--out", str(run), "--resume"),
                    "no checkpoint.pt")


def test_curves_command(e2sim, tmp_path):
    rows = "\n".join(f"{i},0,1.0,0.5,{0.1 * i},0.1,,,,{i * 2.0}" for i in range(1, 4))
    for name, smd in (("a", 0.0), ("b", 0.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "curves.csv").write_text(",".join(CURVE_COLUMNS) + "\n" + rows + "\n")
        (tmp_path / name / "config.json").write_text(json.dumps({"config": {"workload": "resnet20_cifar10",
                                                                            "smd": smd}}))
    png = tmp_path / "cmp.png"
    with plotstyle.captured() as figs:
        r = e2sim("curves", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the legend names the techniques each run's config.json records, not the folder names
    assert [t.get_text() for t in figs[0].axes[0].get_legend().get_texts()] == ["baseline (SGD)", "SMD p=0.5"]
    assert figs[0].get_suptitle().startswith("resnet20_cifar10") and plotstyle.problems(figs[0]) == []
    (tmp_path / "c").mkdir()
    _one_line_error(e2sim("curves", str(tmp_path / "c"), "--out", str(png)), "config.json: no such file")
    (tmp_path / "c" / "config.json").write_text("{}")
    _one_line_error(e2sim("curves", str(tmp_path / "c"), "--out", str(png)), "unreadable run record")
    (tmp_path / "c" / "config.json").write_text(json.dumps({"config": {"workload": "resnet20_cifar10"}}))
    _one_line_error(e2sim("curves", str(tmp_path / "c"), "--out", str(png)), "curves.csv: no such file")
    (tmp_path / "c" / "curves.csv").write_text("x,y\n1,2\n")
    _one_line_error(e2sim("curves", str(tmp_path / "c"), "--out", str(png)), "columns")


@pytest.mark.parametrize("args, match", [
    (["--psg-lr", "0.01"], "--psg-lr needs --psg"),
    (["--psg-threshold", "0.1"], "--psg-threshold needs --psg"),
    (["--slu-skipped", "free"], "--slu-skipped needs --slu"),
    (["--psg", "--psg-lr", "nan"], "--psg-lr"),
    (["--psg", "--psg-lr", "0"], "--psg-lr"),
    (["--psg", "--psg-threshold", "-2"], "--psg-threshold"),
    (["--psg", "--psg-threshold", "inf"], "--psg-threshold"),
    (["--momentum", "1"], "--momentum"),
    (["--momentum", "abc"], "--momentum"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr-schedule", "cosine"], "--lr-schedule"),
    (["--slu", "--slu-skipped", "maybe"], "--slu-skipped"),
    (["--slu", "--slu-beta", "nan"], "--slu-beta"),
    (["--smd", "nan"], "--smd"),
])
def test_invalid_training_options(e2sim, tmp_path, args, match):
    _one_line_error(e2sim("train", "--workload", "resnet20_cifar10", "--out", str(tmp_path / "run"), *args), match)
    assert not (tmp_path / "run").exists()


def test_digits_are_cropped_not_flipped():
    """A mirrored digit is another digit: every augmented digit is an unflipped shifted window of its source
    (and at least one source is not mirror-symmetric, so a flip would be caught)."""
    from e2sim.train.data import CROP_PADDING, load_dataset, normalize
    from e2sim.train.datasource import load_data

    data = load_data("digits", seed=0, log=lambda _m: None)
    idx = np.arange(32)
    x = data.augment(idx, np.random.default_rng(0))
    raw = load_dataset("digits").x_train[idx]
    p = CROP_PADDING
    pad = np.pad(raw, ((0, 0), (p, p), (p, p), (0, 0)))
    shifts = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)]
    for k in range(len(idx)):
        windows = [normalize(pad[k:k + 1, dy:dy + 32, dx:dx + 32])[0] for dy, dx in shifts]
        assert any(np.array_equal(x[k], w) for w in windows), k
    assert any(not np.array_equal(raw[k], raw[k, :, ::-1]) for k in range(len(idx)))


@pytest.mark.slow
def test_dropped_iterations_are_logged_as_dropped_and_quiet_is_silent(e2sim, tmp_path):
    """An evaluation on an SMD-dropped iteration says 'dropped (SMD)' instead of 'loss nan'; --quiet prints
    nothing on stderr (no bar either: stderr is not a terminal here)."""
    run = ["train", "--workload", "resnet20_cifar10", "--data", "synthetic", "--iterations", "2", "--batch-size",
           "2", "--smd", "0.99", "--eval-every", "1", "--threads", "1"]
    r = e2sim(*run, "--out", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    lines = [m for m in r.stderr.splitlines() if m.startswith("iteration")]
    assert len(lines) == 2 and all("dropped (SMD)" in m and "nan" not in m for m in lines), r.stderr
    r = e2sim(*run, "--out", str(tmp_path / "b"), "--quiet")
    assert r.returncode == 0 and r.stderr == "" and r.stdout == ""
    assert (tmp_path / "b" / "estimate.json").is_file()
