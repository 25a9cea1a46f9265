"""Hardware-mapping speed: e2sim's cycle model vs SCALE-Sim 3.0.0, the in-process estimate, the CLI.

    python benchmarks/bench_mapping.py [--dataflow os] [--scalesim-runs 1] [--scalesim-python PATH]

1. Whole ResNet-20 (e2sim's forward convs incl. the 1x1 projections, plus the FC), 16x16 array, 512 KB
   buffers, CALC mode: SCALE-Sim's in-process API (no traces) in its own venv, timed inside the child
   (import excluded; wall and CPU seconds, CPU being robust to a shared machine), against e2sim's ``topology_cycles`` on the same topology and settings. The child's
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
from e2sim.workload_files import load_workload  # noqa: E402
from timing import median_time  # noqa: E402


def cpu_time(fn, repeat):
    """Mean CPU seconds per call (CPU time is robust to other processes sharing the cores)."""
    t0 = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - t0) / repeat


# The SCALE-Sim child: construct, run, report wall and CPU seconds of the simulation (import excluded).
CHILD = """
import sys, time
from scalesim.scale_sim import scalesim
cfg, topo, out = sys.argv[1:4]
t0, c0 = time.perf_counter(), time.process_time()
s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=topo)
s.run_scale(top_path=out)
print(time.perf_counter() - t0, time.process_time() - c0)
"""


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
    c_e2 = cpu_time(lambda: topology_cycles(topo, **kw), 2000)

    sc_times, sc_cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "topology.csv").write_text(topo.to_csv())
        (t / "scalesim.cfg").write_text(regenerate.CONFIG.format(name="bench", rows=16, cols=16, kb=512,
                                                                 df=args.dataflow))
        for _ in range(args.scalesim_runs):
            r = subprocess.run([args.scalesim_python, "-c", CHILD, str(t / "scalesim.cfg"), str(t / "topology.csv"),
                                str(t / "out")], capture_output=True, text=True, check=True)
            wall, cpu = (float(x) for x in r.stdout.strip().splitlines()[-1].split())
            sc_times.append(wall)
            sc_cpu.append(cpu)
        rep = pd.read_csv(t / "out" / "bench" / "COMPUTE_REPORT.csv", skipinitialspace=True)
    assert np.array_equal(rep["Total Cycles"].to_numpy(), ours["total_cycles"]), "cycle counts differ"
    t_sc, c_sc = statistics.median(sc_times), statistics.median(sc_cpu)

    w = load_workload("resnet110_cifar100")
    estimate(w, "zedboard", "fp32")
    t_est = median_time(lambda: estimate(w, "zedboard", "fp32"), 100)
    c_est = cpu_time(lambda: estimate(w, "zedboard", "fp32"), 100)
    t_est_load = median_time(lambda: estimate("resnet110_cifar100", "zedboard", "fp32"), 20)

    cli = [sys.executable, "-m", "e2sim", "estimate", "--workload", "resnet110_cifar100", "--format", "json"]
    t_cli = median_time(lambda: subprocess.run(cli, cwd=ROOT, capture_output=True, check=True), 5)
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(5):
        subprocess.run(cli, cwd=ROOT, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    c_cli = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / 5

    out = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "resnet20_layers": len(topo.names), "dataflow": args.dataflow,
        "scalesim_wall_s": round(t_sc, 3), "scalesim_cpu_s": round(c_sc, 3), "scalesim_runs": len(sc_times),
        "e2sim_cycle_model_wall_s": t_e2, "e2sim_cycle_model_cpu_s": c_e2,
        "speedup_wall": round(t_sc / t_e2), "speedup_cpu": round(c_sc / c_e2),
        "estimate_resnet110_cifar100_ms": round(t_est * 1e3, 3),
        "estimate_resnet110_cifar100_cpu_ms": round(c_est * 1e3, 3),
        "estimate_incl_workload_load_ms": round(t_est_load * 1e3, 2),
        "cli_estimate_wall_s": round(t_cli, 3), "cli_estimate_cpu_s": round(c_cli, 3),
        "load_average_1min": round(__import__("os").getloadavg()[0], 2),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
