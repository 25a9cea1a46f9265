"""Sweeps: the vectorised grid equals one-at-a-time estimates; chunked runs resume exactly, also over
corrupted parts; bad ranges, duplicates and oversized grids give one-line errors (exit 2); the plot is
readable and shows the grid's savings."""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from e2sim.errors import E2simError
from e2sim.estimate import estimate_plan
from e2sim.savings import estimate_baseline
from e2sim import plotstyle
from e2sim.sweep import SweepSpec, axis_size, check_budget, evaluate, parse_values, precompute
from e2sim.sweep_plot import plotted_axes, saving_grid
from e2sim.sweep_run import DATASET, part_path, run_sweep
from e2sim.techniques import PSG, SLU, SMD, PSGBits, Techniques, build
from e2sim.workload_files import load_workload

from fuzzing import invoke

SPEC = SweepSpec("resnet20_cifar10", precision=("fp32", "int8"), psg=True, psg_msb_bits=(2, 4),
                 grad_bits=(8, 32), slu=True, slu_skip=(0.0, 0.37, 0.9), psg_fallback=(0.0, 0.15, 1.0),
                 smd=(0.0, 0.5, 0.9), chunk_size=97)


def one_at_a_time(spec, row, w, grad_from_precision=False):
    msb, grad = int(row.psg_msb_bits), int(row.grad_bits)
    bits = PSGBits(msb_act=msb) if grad_from_precision else PSGBits(msb_act=msb, grad=grad, msb_grad=min(16, grad))
    t = Techniques(smd=SMD(row.smd), slu=SLU(row.slu_skip), psg=PSG(bits, fallback=row.psg_fallback))
    wt, plan = build(w, t, row.precision)
    return estimate_plan(plan, wt, spec.profile)


def test_vectorised_equals_one_configuration_at_a_time():
    tables = precompute(SPEC)
    df = evaluate(SPEC, tables, np.arange(SPEC.n_configs))
    assert len(df) == 2 * 2 * 2 * 3 * 3 * 3 and df.config_id.is_unique
    w = load_workload(SPEC.workload)
    rng = np.random.default_rng(0)
    for i in rng.choice(SPEC.n_configs, 12, replace=False):
        row = df.iloc[i]
        e = one_at_a_time(SPEC, row, w)
        assert row.energy_j == pytest.approx(e.energy_j, rel=1e-12)
        assert row.time_s == pytest.approx(e.time_s, rel=1e-12)
        for comp, v in e.breakdown_j.items():
            assert row[f"{comp}_energy_j"] == pytest.approx(v, rel=1e-12, abs=1e-9)
    base = estimate_baseline(w, SPEC.profile)
    assert df.baseline_energy_j.iloc[0] == base.energy_j
    # skip ratios are priced exactly per value: the result is not linear in the skip ratio
    sub = df[(df.precision == "fp32") & (df.psg_msb_bits == 4) & (df.grad_bits == 32) & (df.psg_fallback == 0)
             & (df.smd == 0)].sort_values("slu_skip")
    assert len(sub) == 3


def test_default_gradient_width_follows_the_precision():
    spec = SweepSpec("resnet20_cifar10", precision=("fp32", "int8", "fp16"), psg=True, slu=True,
                     slu_skip=(0.5,), psg_fallback=(0.2,), smd=(0.1,))
    df = evaluate(spec, precompute(spec), np.arange(spec.n_configs))
    assert list(df.grad_bits) == [32, 8, 16]
    w = load_workload(spec.workload)
    for _, row in df.iterrows():
        e = one_at_a_time(spec, row, w, grad_from_precision=True)
        assert row.energy_j == pytest.approx(e.energy_j, rel=1e-12)


def test_seeded_smd_matches_single_estimate():
    spec = SweepSpec("resnet20_cifar10", smd=(0.3, 0.6), seed=11)
    df = evaluate(spec, precompute(spec), np.arange(spec.n_configs))
    w = load_workload(spec.workload)
    for row in df.itertuples():
        wt, plan = build(w, [SMD(row.smd, seed=11)])
        assert row.iterations_executed == plan.iterations_executed
        assert row.energy_j == pytest.approx(estimate_plan(plan, wt, spec.profile).energy_j, rel=1e-12)


def dataset(out):
    return pd.read_parquet(out / DATASET)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The uninterrupted sweep's table (3 parts of 97, 19 and 100 rows... in id order)."""
    out = tmp_path_factory.mktemp("full")
    res = run_sweep(SPEC, out, quiet=True, csv=True)
    assert res.n_configs == SPEC.n_configs == 216 and res.n_parts == 3 and res.recomputed == []
    df = dataset(out)
    assert list(df.config_id) == list(range(SPEC.n_configs))
    assert len(pd.read_csv(out / "sweep.csv")) == SPEC.n_configs
    pd.testing.assert_frame_equal(df, evaluate(SPEC, precompute(SPEC), np.arange(SPEC.n_configs)),
                                  check_categorical=False)
    return df


def test_resume_after_kill_gives_the_uninterrupted_dataset(tmp_path, full):
    assert run_sweep(SPEC, tmp_path, quiet=True, plot=False, _stop_after_chunks=2) is None
    parts = sorted((tmp_path / DATASET).glob("*.parquet"))
    assert len(parts) == 2
    mtimes = {p: p.stat().st_mtime_ns for p in parts}
    res = run_sweep(SPEC, tmp_path, resume=True, quiet=True)
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items())  # verified parts are not recomputed
    assert res.recomputed == [] and (tmp_path / "saving.png").stat().st_size > 1000
    assert not (tmp_path / "sweep.csv").exists()  # CSV only on request
    pd.testing.assert_frame_equal(dataset(tmp_path), full)
    assert json.loads((tmp_path / "manifest.json").read_text())["complete"] is True


def _truncate(out):
    p = part_path(out, 0)
    p.write_bytes(p.read_bytes()[:200])


def _garbage(out):
    part_path(out, 0).write_bytes(b"PAR1 not a parquet file" * 10)


def _other_chunks_rows(out):
    part_path(out, 0).write_bytes(part_path(out, 1).read_bytes())


def _deleted(out):
    part_path(out, 0).unlink()


def _empty(out):
    part_path(out, 0).write_bytes(b"")


@pytest.mark.parametrize("corrupt,why", [(_truncate, "checksum"), (_garbage, "checksum"),
                                         (_other_chunks_rows, "checksum"), (_deleted, "missing"),
                                         (_empty, "checksum")])
def test_resume_recomputes_corrupted_parts_without_losing_or_duplicating_rows(tmp_path, full, capsys, corrupt, why):
    run_sweep(SPEC, tmp_path, quiet=True, plot=False, _stop_after_chunks=2)  # killed after parts 0 and 1
    corrupt(tmp_path)
    (tmp_path / DATASET / ".part-00002.parquet.tmpXYZ").write_bytes(b"half a write")  # killed mid-write
    (tmp_path / ".manifest.json.tmpXYZ").write_text("{")
    capsys.readouterr()
    res = run_sweep(SPEC, tmp_path, resume=True, quiet=True, plot=False)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "recomputing 1 part(s) that failed verification: part-00000" in err[0] \
        and why in err[0], err
    assert res.recomputed == [0]
    df = dataset(tmp_path)
    assert len(df) == SPEC.n_configs and df.config_id.is_unique  # 0 rows lost or duplicated
    pd.testing.assert_frame_equal(df, full)
    assert sorted(f.name for f in (tmp_path / DATASET).iterdir()) == [f"part-0000{k}.parquet" for k in range(3)]
    assert sorted(f.name for f in tmp_path.iterdir()) == [".sweep.lock", "manifest.json", "sweep.parquet"]


def test_a_consistent_forgery_of_another_chunks_rows_fails_on_the_id_range(tmp_path, full, capsys):
    """Part 0 replaced by part 1 AND its manifest checksum updated: the id range still gives it away."""
    import hashlib

    run_sweep(SPEC, tmp_path, quiet=True, plot=False)
    _other_chunks_rows(tmp_path)
    m = json.loads((tmp_path / "manifest.json").read_text())
    m["parts"][0]["sha256"] = hashlib.sha256(part_path(tmp_path, 0).read_bytes()).hexdigest()
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    capsys.readouterr()
    run_sweep(SPEC, tmp_path, resume=True, quiet=True, plot=False)
    assert "part-00000 (wrong rows)" in capsys.readouterr().err
    pd.testing.assert_frame_equal(dataset(tmp_path), full)


@pytest.mark.parametrize("manifest", ["[1, 2]", '{"chunks_done": ["x"]}', "not json {", '{"format": 3}'])
def test_a_corrupt_manifest_is_one_clear_error(tmp_path, manifest):
    run_sweep(SPEC, tmp_path, quiet=True, plot=False, _stop_after_chunks=1)
    (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(E2simError, match="corrupt manifest .*--force"):
        run_sweep(SPEC, tmp_path, resume=True, quiet=True)


def test_manifest_chunk_records_outside_the_sweep_are_corrupt(tmp_path):
    run_sweep(SPEC, tmp_path, quiet=True, plot=False, _stop_after_chunks=1)
    m = json.loads((tmp_path / "manifest.json").read_text())
    m["parts"].append(dict(m["parts"][0], chunk=7))
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(E2simError, match="chunk records do not fit"):
        run_sweep(SPEC, tmp_path, resume=True, quiet=True)


def test_outputs_are_never_silently_replaced(tmp_path, full):
    run_sweep(SPEC, tmp_path, quiet=True, plot=False, _stop_after_chunks=1)
    with pytest.raises(E2simError, match="already holds sweep outputs.*--resume.*--force"):
        run_sweep(SPEC, tmp_path, quiet=True)
    other = SweepSpec("resnet20_cifar10", smd=(0.1,))
    with pytest.raises(E2simError, match="other settings"):
        run_sweep(other, tmp_path, resume=True, quiet=True)
    with pytest.raises(E2simError, match="give one"):
        run_sweep(SPEC, tmp_path, resume=True, force=True, quiet=True)
    (tmp_path / DATASET / "mine.parquet").write_bytes(b"x")
    with pytest.raises(E2simError, match="mine.parquet: not a part of this sweep"):
        run_sweep(SPEC, tmp_path, resume=True, quiet=True)
    with pytest.raises(E2simError, match="files a sweep did not write"):
        run_sweep(other, tmp_path, force=True, quiet=True)
    (tmp_path / DATASET / "mine.parquet").unlink()
    run_sweep(other, tmp_path, force=True, quiet=True, plot=False)  # replaces the other sweep entirely
    assert len(dataset(tmp_path)) == 1


def test_dask_executor_gives_the_local_dataset(tmp_path, full):
    pytest.importorskip("dask")
    run_sweep(SPEC, tmp_path, executor="dask", quiet=True, plot=False)
    pd.testing.assert_frame_equal(dataset(tmp_path), full)


@pytest.mark.slow
def test_dask_executor_runs_on_an_active_distributed_client(tmp_path, full):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as client:
        run_sweep(SPEC, tmp_path, executor="dask", quiet=True, plot=False)
        assert any(client.run(lambda: 1).values())  # the client was up and is the one dask.compute used
    pd.testing.assert_frame_equal(dataset(tmp_path), full)


def test_dask_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)  # import dask -> ImportError, as without the package
    with pytest.raises(E2simError, match="--executor dask: dask is not installed"):
        run_sweep(SPEC, tmp_path, executor="dask", quiet=True)
    assert not tmp_path.joinpath("manifest.json").exists()  # refused before any work


def test_parse_values_sizes_and_budget():
    assert parse_values("0:0.9:0.1", "--smd") == tuple(round(0.1 * i, 12) for i in range(10))
    assert parse_values("0.2, 0.5", "--smd") == (0.2, 0.5)
    assert axis_size("0:0.9:0.1", "--smd") == 10 and axis_size("0.1,0.2,0.3", "--smd") == 3
    assert axis_size("0:0.9:1e-300", "--smd") == pytest.approx(9e299)  # counted, not materialised
    assert axis_size("0:1e308:1e-308", "--smd") == float("inf")
    for bad, msg in [("", "empty list"), (" , ", "empty list"), ("0:1", "START:STOP:STEP"),
                     ("1:0:0.1", "empty range"), ("0:1:0", "empty range"), ("a,b", "expected numbers"),
                     ("nan:1:0.1", "finite"), ("0:1:inf", "finite"), ("0:inf:1", "finite"),
                     ("0:0.9:1e-7", "finer than the 1e-06 resolution")]:
        with pytest.raises(E2simError, match=msg):
            parse_values(bad, "--smd")
    assert check_budget({"smd": 10, "slu_skip": 3}, 30) == 30
    with pytest.raises(E2simError, match=r"the grid has 9e\+299 configurations \(9e\+299 smd\), above "
                                         r"--max-configs 10,000,000; .*raise --max-configs"):
        check_budget({"precision": 1, "smd": axis_size("0:0.9:1e-300", "--smd")})
    with pytest.raises(E2simError, match=r"the grid has 31 configurations \(31 smd\), above --max-configs 30"):
        check_budget({"smd": 31}, 30)


@pytest.mark.parametrize("axis,values,msg", [
    ("precision", ("fp32", "fp32"), "--precision: fp32 is listed twice"),
    ("grad_bits", (16, 16), "--grad-bits: 16 is listed twice"),
    ("smd", (0.1, 0.1), "--smd: 0.1 is listed twice"),
    ("smd", (0.0, -0.0), "--smd: -0 is listed twice"),
    ("psg_fallback", (float("nan"),), "--psg-fallback: values must be finite numbers"),
    ("psg_msb_bits", (9,), "--psg-msb-bits: the predictor's input MSB part is at most the 8-bit"),
])
def test_spec_refuses_duplicates_and_non_finite_values(axis, values, msg):
    with pytest.raises(E2simError, match=msg):
        SweepSpec("resnet20_cifar10", psg=True, **{axis: values})


def sweep_cli(tmp_path, *args):
    return invoke(["sweep", "--workload", "resnet20_cifar10", "--out", str(tmp_path / "o"), "--quiet", *args])


@pytest.mark.parametrize("args,msg", [
    (["--smd", "0:1:0.5"], "--smd: drop rate must be in [0, 1)"),
    (["--smd", "-0.1"], "--smd: drop rate"),
    (["--grad-bits", "0,8"], "--grad-bits: bit-width must be an integer in 1..32"),
    (["--psg-msb-bits", "33"], "--psg-msb-bits"),
    (["--psg-msb-bits", "2.5"], "must be integers"),
    (["--slu-skip", ","], "--slu-skip: empty list"),
    (["--psg-fallback", "0:1.5:0.5"], "--psg-fallback: fallback fraction"),
    (["--precision", "fp32,bf3"], "--precision: unknown precision"),
    (["--precision", "fp32,fp32"], "--precision: fp32 is listed twice"),
    (["--grad-bits", "16,16"], "--grad-bits: 16 is listed twice"),
    (["--smd", "0.1,0.1"], "--smd: 0.1 is listed twice"),
    (["--psg-fallback", "nan:1:0.1"], "--psg-fallback: range bounds must be finite"),
    (["--psg-msb-bits", "0:1e308:1e-308"], "the grid has inf configurations"),
    (["--smd", "0:1:inf"], "--smd: range bounds must be finite"),
    (["--smd", "0:0.9:1e-300"], "the grid has 9e+299 configurations (9e+299 smd), above --max-configs 10,000,000"),
    (["--smd", "0:0.9:1e-9"], "the grid has 900,000,001 configurations"),
    (["--smd", "0:0.9:1e-7"], "--smd: step 1e-07 is finer than the 1e-06 resolution"),
    (["--smd", "0:0.9:0.1", "--max-configs", "9"], "the grid has 10 configurations (10 smd), above --max-configs 9"),
    (["--smd", "0:0.9:0.1", "--chunk-size", "1", "--slu-skip", "0:1:0.001", "--max-configs", "100000"],
     "make 10,010 parts (at most 10,000); use --chunk-size 2 or more"),
    (["--slu-skip", "0:1:1e-5"], "discrete settings"),
    (["--seed", "-1"], "--seed"),
    (["--smd", "0:5:1e-6"], "--smd: drop rate must be in [0, 1), got 5"),  # refused before 5M values exist
])
def test_cli_bad_grids_one_line_exit_2(tmp_path, args, msg):
    r = sweep_cli(tmp_path, *args)
    assert r.code == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.describe()
    assert not r.warnings, r.describe()
    assert not (tmp_path / "o").exists()  # refused before the run folder is made


@pytest.mark.parametrize("command", ["sweep", "estimate"])
def test_a_negative_smd_seed_is_one_line_exit_2(tmp_path, command):
    out = ["--out", str(tmp_path / "o")] if command == "sweep" else []
    r = invoke([command, *out, "--workload", "resnet20_cifar10", "--smd", "0.5", "--seed", "-1"])
    assert r.code == 2 and len(r.stderr.splitlines()) == 1 and "--seed" in r.stderr, r.describe()
    with pytest.raises(E2simError, match="--seed: must be an integer in 0..2"):
        SMD(0.5, seed=-1)


def test_cli_writes_the_dataset_and_a_summary(tmp_path):
    r = sweep_cli(tmp_path, "--smd", "0:0.5:0.25", "--precision", "fp32,int8", "--csv")
    assert r.code == 0 and r.stderr == "", r.describe()
    out = json.loads(r.stdout)
    assert out["configurations"] == 6 and out["parts"] == 1 and out["recomputed_parts"] == []
    assert 0 < out["output_bytes"] and out["estimated_output_bytes"] >= 6 * 8 * 15
    df = dataset(tmp_path / "o")
    assert list(df.precision.astype(str)) == ["fp32"] * 3 + ["int8"] * 3
    assert list(pd.read_csv(tmp_path / "o" / "sweep.csv").smd) == [0, 0.25, 0.5] * 2
    again = sweep_cli(tmp_path, "--smd", "0:0.5:0.25", "--precision", "fp32,int8")
    assert again.code == 2 and "--force" in again.stderr


@pytest.mark.parametrize("spec,axes", [
    (SPEC, ["slu_skip", "psg_fallback"]),  # ties (3 values each) go to the first in AXES order
    (SweepSpec("resnet20_cifar10", smd=(0.0, 0.3, 0.6, 0.9)), ["smd"]),
    (SweepSpec("resnet20_cifar10", precision=("fp32", "int8", "int16")), ["precision"]),
    (SweepSpec("resnet20_cifar10"), []),
    (SweepSpec("resnet20_cifar10", precision=("int8",), psg=True), []),  # grad bits from the precision
])
def test_plot_shows_the_grid_savings_readably(tmp_path, spec, axes):
    from e2sim.sweep_plot import plot_saving

    tables = precompute(spec)
    assert plotted_axes(spec) == axes
    picks, saving = saving_grid(spec, tables, axes)
    df = evaluate(spec, tables, np.arange(spec.n_configs))
    first = {a: getattr(spec, a)[0] for a in ("precision", "psg_msb_bits", "grad_bits", "slu_skip",
                                               "psg_fallback", "smd")}
    sel = df
    for a, v in first.items():  # the other settings held at their first value
        if a not in axes and spec.active(a) and len(getattr(spec, a)) > 1:
            sel = sel[sel[a].astype(str) == str(v)] if a == "precision" else sel[sel[a] == v]
    assert saving.size == len(sel) and np.allclose(np.sort(saving.reshape(-1)), np.sort(sel.saving * 100))
    with plotstyle.captured() as figs:
        plot_saving(spec, tables, tmp_path / "s.png")
    assert plotstyle.problems(figs[0]) == []
    t = figs[0].get_suptitle().replace("\n", " ")
    assert t.startswith("resnet20_cifar10 · zedboard · energy saving vs the fp32 baseline")
    if spec.psg and len(spec.grad_bits) == 1:
        assert "PSG grad bits 8" in t
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_picks_a_bounded_slice_of_long_axes():
    spec = SweepSpec("resnet20_cifar10", smd=parse_values("0:0.9999:1e-4", "--smd"))
    picks, saving = saving_grid(spec, precompute(spec), ["smd"])
    assert list(picks[0]) == list(range(0, 10_000, 167))  # every 167th of 10,000: 60 cells


def test_progress_bar_shows_the_size_bounds_on_a_terminal(tmp_path, monkeypatch, capsys):
    from e2sim import progress

    monkeypatch.setattr(progress, "enabled", lambda quiet=False: not quiet)  # as if stderr were a terminal
    spec = SweepSpec("resnet20_cifar10", smd=(0.0, 0.5), chunk_size=1)
    run_sweep(spec, tmp_path / "a", plot=False)
    err = capsys.readouterr().err
    assert "sweep (memory <= 484 B, output <= 242 B):" in err and "0/2" in err and "config/s" in err
    run_sweep(spec, tmp_path / "b", plot=False, quiet=True)
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_a_killed_cli_sweep_resumes_without_losing_or_duplicating_rows(tmp_path):
    """A real process killed (SIGKILL) mid-run, a finished part then damaged, then --resume."""
    import os
    import signal
    import subprocess
    import time

    out = tmp_path / "o"
    args = [sys.executable, "-m", "e2sim", "sweep", "--workload", "resnet20_cifar10", "--out", str(out),
            "--smd", "0:0.99:0.01", "--psg-fallback", "0:1:0.01", "--slu-skip", "0,0.3,0.6,0.9",
            "--chunk-size", "100", "--no-plot", "--quiet"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob(f"{DATASET}/part-*.parquet"))) < 5:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n = 100 * 101 * 4
    assert len(list((out / DATASET).glob("part-*.parquet"))) < n // 100  # killed before the end
    listed = json.loads((out / "manifest.json").read_text())["parts"] if (out / "manifest.json").exists() else []
    part_path(out, 3).write_bytes(part_path(out, 3).read_bytes()[:100])  # and a part damaged
    r = subprocess.run(args + ["--resume"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # A part the manifest listed is verified and recomputed with a note; an unlisted one is recomputed anyway.
    note = "e2sim: note: recomputing 1 part(s) that failed verification: part-00003 (checksum mismatch)"
    assert r.stderr.splitlines() == ([note] if any(p["chunk"] == 3 for p in listed) else []), r.stderr
    df = dataset(out)
    assert len(df) == n and list(df.config_id) == list(range(n))
    spec = SweepSpec("resnet20_cifar10", smd=parse_values("0:0.99:0.01", "--smd"), psg=True, slu=True,
                     psg_fallback=parse_values("0:1:0.01", "--psg-fallback"), slu_skip=(0.0, 0.3, 0.6, 0.9))
    expect = evaluate(spec, precompute(spec), np.arange(n))
    pd.testing.assert_frame_equal(df, expect, check_categorical=False)


def test_two_sweeps_never_write_into_one_folder_at_once(tmp_path):
    from e2sim.sweep_run import _lock

    held = _lock(tmp_path)  # as another process's run would hold it
    try:
        with pytest.raises(E2simError, match="another sweep is writing into"):
            run_sweep(SPEC, tmp_path, quiet=True, plot=False)
    finally:
        held.close()
    assert run_sweep(SPEC, tmp_path, quiet=True, plot=False).n_configs == SPEC.n_configs
