"""Sweeps: the vectorised grid equals one-at-a-time estimates; chunked runs resume exactly; bad ranges
give one-line errors (exit 2)."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from e2sim.errors import E2simError
from e2sim.estimate import estimate_plan
from e2sim.savings import estimate_baseline
from e2sim.sweep import SweepSpec, evaluate, pareto_mask, parse_values, precompute, run_sweep
from e2sim.techniques import PSG, SLU, SMD, PSGBits, Techniques, build
from e2sim.workload import load_workload

SPEC = SweepSpec("resnet20_cifar10", precision=("fp32", "int8"), psg=True, psg_msb_bits=(2, 4),
                 grad_bits=(8, 32), slu=True, slu_skip=(0.0, 0.37, 0.9), psg_fallback=(0.0, 0.15, 1.0),
                 smd=(0.0, 0.5, 0.9), chunk_size=97)


def one_at_a_time(spec, row, w):
    msb, grad = int(row.psg_msb_bits), int(row.grad_bits)
    t = Techniques(smd=SMD(row.smd), slu=SLU(row.slu_skip),
                   psg=PSG(PSGBits(msb_act=msb, grad=grad, msb_grad=min(16, grad)), fallback=row.psg_fallback))
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


def test_seeded_smd_matches_single_estimate():
    spec = SweepSpec("resnet20_cifar10", smd=(0.3, 0.6), seed=11)
    df = evaluate(spec, precompute(spec), np.arange(spec.n_configs))
    w = load_workload(spec.workload)
    for row in df.itertuples():
        wt, plan = build(w, [SMD(row.smd, seed=11)])
        assert row.iterations_executed == plan.iterations_executed
        assert row.energy_j == pytest.approx(estimate_plan(plan, wt, spec.profile).energy_j, rel=1e-12)


def test_resume_after_kill_gives_the_uninterrupted_table(tmp_path):
    full = run_sweep(SPEC, tmp_path / "a", progress=False)
    assert run_sweep(SPEC, tmp_path / "b", progress=False, _stop_after_chunks=2) is None
    parts = sorted((tmp_path / "b" / "parts").glob("*.parquet"))
    assert len(parts) == 2
    mtimes = {p: p.stat().st_mtime_ns for p in parts}
    resumed = run_sweep(SPEC, tmp_path / "b", resume=True, progress=False)
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items())  # finished chunks not recomputed
    pd.testing.assert_frame_equal(resumed, full)
    on_disk = pd.read_parquet(tmp_path / "b" / "sweep.parquet")
    pd.testing.assert_frame_equal(on_disk, full)
    assert on_disk.config_id.is_unique and len(on_disk) == SPEC.n_configs
    assert (tmp_path / "b" / "tradeoff.png").stat().st_size > 1000
    csv = pd.read_csv(tmp_path / "b" / "sweep.csv")
    assert len(csv) == SPEC.n_configs


def test_resume_after_losing_the_last_part(tmp_path):
    full = run_sweep(SPEC, tmp_path / "a", progress=False)
    run_sweep(SPEC, tmp_path / "b", progress=False, _stop_after_chunks=3)
    sorted((tmp_path / "b" / "parts").glob("*.parquet"))[-1].unlink()  # killed mid-write of chunk 3
    pd.testing.assert_frame_equal(run_sweep(SPEC, tmp_path / "b", resume=True, progress=False), full)


def test_existing_sweep_needs_resume_and_same_settings(tmp_path):
    run_sweep(SPEC, tmp_path, progress=False, _stop_after_chunks=1)
    with pytest.raises(E2simError, match="already holds a sweep"):
        run_sweep(SPEC, tmp_path, progress=False)
    other = SweepSpec("resnet20_cifar10", smd=(0.1,))
    with pytest.raises(E2simError, match="other settings"):
        run_sweep(other, tmp_path, resume=True, progress=False)


def test_parse_values_and_pareto():
    assert parse_values("0:0.9:0.1", "--smd") == tuple(round(0.1 * i, 12) for i in range(10))
    assert parse_values("0.2, 0.5", "--smd") == (0.2, 0.5)
    for bad, msg in [("", "empty list"), (" , ", "empty list"), ("0:1", "START:STOP:STEP"),
                     ("1:0:0.1", "empty range"), ("0:1:0", "empty range"), ("a,b", "expected numbers")]:
        with pytest.raises(E2simError, match=msg):
            parse_values(bad, "--smd")
    e = np.array([1.0, 2.0, 3.0, 1.5, 2.5])
    t = np.array([5.0, 3.0, 1.0, 6.0, 3.5])
    assert list(pareto_mask(e, t)) == [True, True, True, False, False]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "e2sim", "sweep", "--workload", "resnet20_cifar10", *args],
                          capture_output=True, text=True)


@pytest.mark.parametrize("args,msg", [
    (["--smd", "0:1:0.5"], "--smd: drop rate must be in [0, 1)"),
    (["--smd", "-0.1"], "--smd: drop rate"),
    (["--grad-bits", "0,8"], "--grad-bits: bit-width must be an integer in 1..32"),
    (["--psg-msb-bits", "33"], "--psg-msb-bits"),
    (["--psg-msb-bits", "2.5"], "must be integers"),
    (["--slu-skip", ","], "--slu-skip: empty list"),
    (["--psg-fallback", "0:1.5:0.5"], "--psg-fallback: fallback fraction"),
    (["--precision", "fp32,bf3"], "--precision: unknown precision"),
])
def test_cli_invalid_ranges_one_line_exit_2(tmp_path, args, msg):
    r = cli("--out", str(tmp_path / "o"), *args)
    assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_dask_missing_is_a_clear_error(tmp_path):
    pytest.importorskip("pandas")
    try:
        import dask  # noqa: F401
        pytest.skip("dask is installed")
    except ImportError:
        pass
    r = cli("--out", str(tmp_path / "o"), "--executor", "dask")
    assert r.returncode == 2 and "dask is not installed" in r.stderr
