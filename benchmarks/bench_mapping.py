"""Hardware-mapping speed: e2sim's cycle model vs SCALE-Sim 3.0.0, the in-process estimate, the CLI.

    python benchmarks/bench_mapping.py [--dataflow os] [--scalesim-runs 1] [--scalesim-python PATH]

1. Whole ResNet-20 (e2sim's forward convs incl. the 1x1 projections, plus the FC), 16x16 array, 512 KB
   buffers, CALC mode: SCALE-Sim's in-process API (no traces) in its own venv, timed inside the child
   (import excluded), against e2sim's ``topology_cycles`` on the same topology and settings. The child's
   report is checked to equal e2sim's cycles, so both compute the same numbers.
2. ``e2sim.estimate`` of ResNet-110 / CIFAR-100 (whole training run, fp32, ZedBoard), workload loaded.
3. The ``e2sim estimate`` command end to end (process start to exit).
Medians of several runs; SCALE-Sim takes seconds per run, so its run count is small (--scalesim-runs).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "validation" / "scalesim"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import regenerate  # noqa: E402

from e2sim.cycles import topology_cycles  # noqa: E402
from e2sim.estimate import estimate  # noqa: E402
from e2sim.topology import from_workload  # noqa: E402
from e2sim.workload import load_workload  # noqa: E402


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataflow", default="os", choices=("os", "ws", "is"))
    ap.add_argument("--scalesim-runs", type=int, default=1)
    ap.add_argument("--scalesim-python", default=regenerate.SCALESIM_PY)
    args = ap.parse_args()

    topo = from_workload(load_workload("resnet20_cifar10"))
    kw = dict(rows=16, cols=16, dataflow=args.dataflow, sram_kb=(512, 512, 512), compat=True)
    ours = topology_cycles(topo, **kw)
    t_e2 = median_time(lambda: topology_cycles(topo, **kw), 200)

    sc_times = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "topology.csv").write_text(topo.to_csv())
        (t / "scalesim.cfg").write_text(regenerate.CONFIG.format(name="bench", rows=16, cols=16, kb=512,
                                                                 df=args.dataflow))
        child = regenerate.CHILD.replace("t0 = time.perf_counter()\n", "").replace(
            "s = scalesim(", "t0 = time.perf_counter()\ns = scalesim(")
        for _ in range(args.scalesim_runs):
            r = subprocess.run([args.scalesim_python, "-c", child, str(t / "scalesim.cfg"), str(t / "topology.csv"),
                                str(t / "out")], capture_output=True, text=True, check=True)
            sc_times.append(float(r.stdout.strip().splitlines()[-1]))
        rep = pd.read_csv(t / "out" / "bench" / "COMPUTE_REPORT.csv", skipinitialspace=True)
    assert np.array_equal(rep["Total Cycles"].to_numpy(), ours["total_cycles"]), "cycle counts differ"
    t_sc = statistics.median(sc_times)

    w = load_workload("resnet110_cifar100")
    estimate(w, "zedboard", "fp32")
    t_est = median_time(lambda: estimate(w, "zedboard", "fp32"), 100)
    t_est_load = median_time(lambda: estimate("resnet110_cifar100", "zedboard", "fp32"), 20)

    cli = [sys.executable, "-m", "e2sim", "estimate", "--workload", "resnet110_cifar100", "--format", "json"]
    t_cli = median_time(lambda: subprocess.run(cli, cwd=ROOT, capture_output=True, check=True), 5)

    out = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "resnet20_layers": len(topo.names), "dataflow": args.dataflow,
        "scalesim_s": round(t_sc, 3), "scalesim_runs": len(sc_times),
        "e2sim_cycle_model_s": t_e2, "speedup": round(t_sc / t_e2),
        "estimate_resnet110_cifar100_ms": round(t_est * 1e3, 3),
        "estimate_incl_workload_load_ms": round(t_est_load * 1e3, 2),
        "cli_estimate_s": round(t_cli, 3),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
