"""Regenerate the SCALE-Sim 3.0.0 golden reports that tests/test_mapping_scalesim.py compares against.

Run from the repository root with e2sim's Python (it writes the topologies with e2sim, then runs
SCALE-Sim in its own venv, one subprocess per run, through its in-process API without traces):

    python3 -m venv /work/.venv-scalesim
    /work/.venv-scalesim/bin/pip install scalesim==3.0.0 "numpy<2.4"
    python validation/scalesim/regenerate.py [--only RUN ...] [--scalesim-python PATH]

Each run writes validation/scalesim/golden/<run>/{topology.csv, scalesim.cfg, COMPUTE_REPORT.csv,
DETAILED_ACCESS_REPORT.csv, run.json}. ResNet-110 runs take 1-2 minutes each: run them in the background.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from e2sim.topology import from_workload  # noqa: E402
from e2sim.workload import load_workload  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"
SCALESIM_PY = "/work/.venv-scalesim/bin/python"

# name: (workload, dataflow, rows, cols, sram_kb for ifmap/filter/ofmap)
# 512 KB buffers hold every operand; 64 KB puts the 36,864-word stage-3 filters above SCALE-Sim's
# half-buffer re-fetch cliff (window 50 * floor(65536 / 100) = 32,750 words).
RUNS: dict[str, tuple[str, str, int, int, int]] = {}
for _df in ("os", "ws", "is"):
    RUNS[f"resnet20_{_df}_16x16_512kb"] = ("resnet20_cifar10", _df, 16, 16, 512)
    RUNS[f"resnet20_{_df}_16x16_64kb"] = ("resnet20_cifar10", _df, 16, 16, 64)
    RUNS[f"resnet20_{_df}_14x16_512kb"] = ("resnet20_cifar10", _df, 14, 16, 512)
    RUNS[f"resnet20_{_df}_8x32_64kb"] = ("resnet20_cifar10", _df, 8, 32, 64)
    RUNS[f"resnet110_{_df}_16x16_512kb"] = ("resnet110_cifar10", _df, 16, 16, 512)
    RUNS[f"resnet110_{_df}_14x16_64kb"] = ("resnet110_cifar10", _df, 14, 16, 64)

CONFIG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : {kb}
FilterSramSzkB : {kb}
OfmapSramSzkB : {kb}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : 10
Dataflow : {df}
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : 10
IfmapSRAMBankNum : 10
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : 10
FilterSRAMBankNum : 10
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : CALC
UseRamulatorTrace : False
"""

# Runs in the SCALE-Sim venv. The layout file is mandatory even without custom layouts (scalesim.md §7.6);
# the topology itself parses as one.
CHILD = """
import sys, time
t0 = time.perf_counter()
from scalesim.scale_sim import scalesim
cfg, topo, out = sys.argv[1:4]
s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=topo)
s.run_scale(top_path=out)
print(time.perf_counter() - t0)
"""


def run_one(name: str, spec, scalesim_python: str) -> dict:
    workload, df, rows, cols, kb = spec
    out = GOLDEN / name
    out.mkdir(parents=True, exist_ok=True)
    topo = out / "topology.csv"
    topo.write_text(from_workload(load_workload(workload)).to_csv())
    cfg = out / "scalesim.cfg"
    cfg.write_text(CONFIG.format(name=name, rows=rows, cols=cols, kb=kb, df=df))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = subprocess.run([scalesim_python, "-c", CHILD, str(cfg), str(topo), tmp],
                             capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(f"{name}: scalesim failed:\n{res.stderr[-2000:]}")
        for rep in ("COMPUTE_REPORT.csv", "DETAILED_ACCESS_REPORT.csv"):
            (out / rep).write_text((Path(tmp) / name / rep).read_text())
    meta = {"run": name, "workload": workload, "dataflow": df, "array_rows": rows, "array_cols": cols,
            "sram_kb": [kb, kb, kb], "interface_bandwidth": "CALC", "scalesim": "3.0.0",
            "wall_s": round(wall, 2)}
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="run names (default: all)")
    ap.add_argument("--scalesim-python", default=SCALESIM_PY)
    args = ap.parse_args()
    names = args.only or list(RUNS)
    for name in names:
        if name not in RUNS:
            raise SystemExit(f"unknown run {name!r} (known: {', '.join(RUNS)})")
        meta = run_one(name, RUNS[name], args.scalesim_python)
        print(f"{name}: {meta['wall_s']} s", flush=True)


if __name__ == "__main__":
    main()
