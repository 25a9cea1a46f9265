"""Sweep throughput on ResNet-74 / ZedBoard, against the named peer (one configuration at a time through the
same stages: techniques.build + estimate_plan), all measured in the same run, round-robin
(timing.interleaved_wall_cpu) so every figure sees the same machine speed.

- core: ``precompute`` + ``evaluate_columns`` of every configuration (the numbers each Parquet part holds);
- on a shared machine the wall time moves with the other jobs' load, so each figure is also given in CPU
  seconds of this process (``time.process_time``, all its threads), which the load moves far less;
- end to end: ``run_sweep`` into a fresh folder: the Parquet dataset (snappy parts, SHA-256 of each), the
  manifest and saving.png (no CSV: it is written only on request), on the 105k grid and on a 2.1M grid
  (the same axes with 1,000 SMD rates), where the fixed costs (pricing, the plot) are spread over more rows.

    python benchmarks/run.py sweep      (or: python benchmarks/bench_sweep.py [--repeats 7] [--peer-samples 10])
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time

import numpy as np
from timing import interleaved_wall_cpu

from e2sim.estimate import estimate_plan
from e2sim.sweep import SweepSpec, evaluate_columns, parse_values, precompute
from e2sim.sweep_run import run_sweep
from e2sim.techniques import PSG, SLU, SMD, PSGBits, Techniques, build
from e2sim.workload_files import load_workload

AXES = dict(
    psg=True, slu=True,
    slu_skip=parse_values("0:0.9:0.1", "--slu-skip"),    # 10 skip ratios
    psg_fallback=parse_values("0:1:0.05", "--psg-fallback"),  # 21 fallback fractions
    psg_msb_bits=(2, 3, 4, 5, 6), grad_bits=(16, 32),    # 10 bit configurations
)
SPEC = SweepSpec("resnet74_cifar10", smd=parse_values("0:0.98:0.02", "--smd"), **AXES)  # 50 drop rates
BIG = SweepSpec("resnet74_cifar10", smd=parse_values("0:0.999:0.001", "--smd"), **AXES)  # 1,000 drop rates


def core() -> None:
    evaluate_columns(SPEC, precompute(SPEC), np.arange(SPEC.n_configs))


def end_to_end(spec: SweepSpec, plot: bool = True):
    def run() -> None:
        d = tempfile.mkdtemp(prefix="bench_sweep_")
        try:
            run_sweep(spec, d, quiet=True, plot=plot)
        finally:
            shutil.rmtree(d)

    return run


def peer(n: int):
    """n configurations, one at a time."""
    w = load_workload(SPEC.workload)

    def run() -> None:
        rng = np.random.default_rng(0)
        for _ in range(n):
            msb, grad = int(rng.choice(SPEC.psg_msb_bits)), int(rng.choice(SPEC.grad_bits))
            ts = Techniques(smd=SMD(float(rng.choice(SPEC.smd))), slu=SLU(float(rng.choice(SPEC.slu_skip))),
                            psg=PSG(PSGBits(msb_act=msb, grad=grad, msb_grad=min(16, grad)),
                                    fallback=float(rng.choice(SPEC.psg_fallback))))
            wt, plan = build(w, ts)
            estimate_plan(plan, wt, SPEC.profile).energy_j

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--peer-samples", type=int, default=10)
    a = ap.parse_args()
    tb = precompute(SPEC)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"grid: {SPEC.n_configs:,} configurations (ResNet-74 / cifar10 on zedboard; 50 SMD x 10 SLU x 21 PSG "
          f"fallback x 5 MSB x 2 grad bits; {tb.n_unique_items:,} distinct priced items); big grid: "
          f"{BIG.n_configs:,} (1,000 SMD)")
    print(f"medians of {a.repeats} rounds (big grid and peer every 2nd round)")
    load0 = os.getloadavg()[0]
    both = interleaved_wall_cpu({"core": core, "e2e": end_to_end(SPEC), "e2e_noplot": end_to_end(SPEC, False),
                                 "e2e_big": end_to_end(BIG), "peer": peer(a.peer_samples)}, a.repeats,
                                every={"e2e_big": 2, "peer": 2})
    n, nb = SPEC.n_configs, BIG.n_configs
    for clock, k in (("wall", 0), ("CPU", 1)):
        t = {name: v[k] for name, v in both.items()}
        report(clock, t, n, nb, t["peer"] / a.peer_samples)
    print(f"load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


def report(clock: str, t: dict, n: int, nb: int, p: float) -> None:
    print(f"-- {clock} seconds")
    print(f"core (precompute + evaluate_columns): {t['core']:.3f} s = {n / t['core']:,.0f} configs/s")
    print(f"peer, one configuration at a time (build + estimate_plan): {p * 1e3:.1f} ms/config = "
          f"{1 / p:,.1f} configs/s; core speed-up {p * n / t['core']:,.0f}x")
    print(f"end to end run_sweep (Parquet dataset + manifest + saving.png), {n:,}: {t['e2e']:.2f} s = "
          f"{n / t['e2e']:,.0f} configs/s ({p * n / t['e2e']:,.0f}x peer)")
    print(f"  the same without the plot (--no-plot: dataset + manifest): {t['e2e_noplot']:.2f} s = "
          f"{n / t['e2e_noplot']:,.0f} configs/s")
    print(f"end to end run_sweep, {nb:,}: {t['e2e_big']:.2f} s = {nb / t['e2e_big']:,.0f} configs/s "
          f"({p * nb / t['e2e_big']:,.0f}x peer)")


if __name__ == "__main__":
    main()
