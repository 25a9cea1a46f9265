"""Sweep throughput on ResNet-74 / ZedBoard: the vectorised sweep (precompute + evaluate every
configuration into the tidy table) against the named peer, one configuration at a time through the same
stages (techniques.build + estimate_plan), measured in the same run. Median of several runs.

    python benchmarks/run.py sweep      (or: python -m benchmarks.bench_sweep [--repeats 5] [--peer-samples 20])
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import numpy as np

from e2sim.estimate import estimate_plan
from e2sim.sweep import SweepSpec, evaluate, parse_values, precompute
from e2sim.sweep_run import run_sweep
from e2sim.techniques import PSG, SLU, SMD, PSGBits, Techniques, build
from e2sim.workload import load_workload

SPEC = SweepSpec(
    "resnet74_cifar10", psg=True, slu=True,
    smd=parse_values("0:0.98:0.02", "--smd"),            # 50 drop rates
    slu_skip=parse_values("0:0.9:0.1", "--slu-skip"),    # 10 skip ratios
    psg_fallback=parse_values("0:1:0.05", "--psg-fallback"),  # 21 fallback fractions
    psg_msb_bits=(2, 3, 4, 5, 6), grad_bits=(16, 32),    # 10 bit configurations
)


def vectorised() -> float:
    t = time.perf_counter()
    evaluate(SPEC, precompute(SPEC), np.arange(SPEC.n_configs))
    return time.perf_counter() - t


def peer(n: int) -> float:
    """Seconds per configuration, one at a time."""
    w = load_workload(SPEC.workload)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(n):
        msb, grad = int(rng.choice(SPEC.psg_msb_bits)), int(rng.choice(SPEC.grad_bits))
        ts = Techniques(smd=SMD(float(rng.choice(SPEC.smd))), slu=SLU(float(rng.choice(SPEC.slu_skip))),
                        psg=PSG(PSGBits(msb_act=msb, grad=grad, msb_grad=min(16, grad)),
                                fallback=float(rng.choice(SPEC.psg_fallback))))
        wt, plan = build(w, ts)
        estimate_plan(plan, wt, SPEC.profile).energy_j
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peer-samples", type=int, default=20)
    a = ap.parse_args()
    vectorised()  # warm caches (profile, imports)
    v = statistics.median(vectorised() for _ in range(a.repeats))
    p = statistics.median(peer(a.peer_samples) for _ in range(3))
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        run_sweep(SPEC, d, progress=False)
        e2e = time.perf_counter() - t
    n = SPEC.n_configs
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"configurations: {n} (ResNet-74 / cifar10 on zedboard; SMD x SLU x PSG fallback x MSB x grad bits)")
    print(f"vectorised sweep (precompute + evaluate), median of {a.repeats}: {v:.3f} s = {n / v:,.0f} configs/s")
    print(f"peer, one configuration at a time (build + estimate_plan): {p * 1e3:.1f} ms/config = {1 / p:,.1f} configs/s")
    print(f"speed-up vs peer: {p * n / v:,.0f}x")
    print(f"end to end run_sweep incl. Parquet parts, sweep.parquet, sweep.csv and PNG: {e2e:.2f} s "
          f"= {n / e2e:,.0f} configs/s")


if __name__ == "__main__":
    main()
