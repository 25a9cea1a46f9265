"""The estimate with its uncertainty band: ``e2sim.estimate`` of ResNet-110 / CIFAR-100 (whole training run,
fp32, workload loaded) on the calibrated ZedBoard profile, ``to_dict()`` included (energy and time bands from
the profile's 200-replicate bootstrap), against the same estimate and ``to_dict()`` on the uncalibrated prior
profile (no band) as the peer, timed round-robin in the same run. Target: <= 10 ms with the band.

    python benchmarks/bench_band.py [--repeats 41]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from e2sim.estimate import estimate  # noqa: E402
from e2sim.profile import load_profile  # noqa: E402
from e2sim.workload_files import load_workload  # noqa: E402
from timing import interleaved_medians  # noqa: E402


def cpu_ms(fn, n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=41)
    a = ap.parse_args()
    w = load_workload("resnet110_cifar100")
    cal = load_profile("zedboard")
    prior = load_profile(str(ROOT / "hardware_profiles" / "priors" / "zedboard.yaml"))
    d = estimate(w, cal, "fp32").to_dict()
    assert d["energy_j_low"] <= d["energy_j"] <= d["energy_j_high"]
    fns = {"with_band": lambda: estimate(w, cal, "fp32").to_dict(),
           "no_band_peer": lambda: estimate(w, prior, "fp32").to_dict(),
           "band_only": (lambda e=estimate(w, cal, "fp32"): e.band())}
    med = interleaved_medians(fns, a.repeats)
    out = {"machine": platform.machine(), "python": platform.python_version(), "load_1min": os.getloadavg()[0],
           "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
           **{f"{k}_ms": round(v * 1e3, 3) for k, v in med.items()},
           "with_band_cpu_ms": round(cpu_ms(fns["with_band"], a.repeats), 3),
           "no_band_peer_cpu_ms": round(cpu_ms(fns["no_band_peer"], a.repeats), 3),
           "ratio_with_band_over_peer": round(med["with_band"] / med["no_band_peer"], 3)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
