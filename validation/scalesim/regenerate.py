"""Regenerate the SCALE-Sim 3.0.0 golden reports that tests/test_mapping_scalesim.py compares against.

Run from the repository root with e2sim's Python (it writes the topologies with e2sim, then runs
SCALE-Sim in its own venv, one subprocess per run, through its in-process API without traces):

    python3 -m venv .venv-scalesim
    .venv-scalesim/bin/pip install scalesim==3.0.0 "numpy<2.4"
    python validation/scalesim/regenerate.py [--only RUN ...] [--scalesim-python PATH]

(--scalesim-python defaults to .venv-scalesim/bin/python in the repository root.)

Each run writes validation/scalesim/golden/<run>/{topology.csv, scalesim.cfg, COMPUTE_REPORT.csv,
DETAILED_ACCESS_REPORT.csv, run.json}. Each run is split into chunks of CHUNK_LAYERS layers, one short
SCALE-Sim process each; ResNet-110 runs still take minutes in all: run them in the background.
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
from e2sim.workload_files import load_workload  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"
SCALESIM_PY = str(ROOT / ".venv-scalesim" / "bin" / "python")  # .venv-* is git-ignored

# name: (workload, dataflow, rows, cols, sram_kb for ifmap/filter/ofmap)
# 512 KB buffers hold every operand; 64 KB puts the 36,864-word stage-3 filters above SCALE-Sim's
# half-buffer re-fetch cliff (window 50 * floor(65536 / 100) = 32,750 words).
RUNS: dict[str, tuple[str, str, int, int, int]] = {
    # ResNet-20: every dataflow; OS on both arrays and both buffer sizes, WS and IS on one each, so that the
    # set covers square (16x16) and non-square (14x16, 8x32) arrays and both buffer sizes.
    "resnet20_os_16x16_512kb": ("resnet20_cifar10", "os", 16, 16, 512),
    "resnet20_os_16x16_64kb": ("resnet20_cifar10", "os", 16, 16, 64),
    "resnet20_os_14x16_512kb": ("resnet20_cifar10", "os", 14, 16, 512),
    "resnet20_os_8x32_64kb": ("resnet20_cifar10", "os", 8, 32, 64),
    "resnet20_ws_16x16_64kb": ("resnet20_cifar10", "ws", 16, 16, 64),
    "resnet20_is_14x16_512kb": ("resnet20_cifar10", "is", 14, 16, 512),
    # ResNet-110 takes 1-2 min per run on SCALE-Sim (far more on a busy machine): one run per dataflow,
    # together covering a square and a non-square array and both buffer sizes.
    "resnet110_os_16x16_512kb": ("resnet110_cifar10", "os", 16, 16, 512),
    "resnet110_ws_14x16_64kb": ("resnet110_cifar10", "ws", 14, 16, 64),
    "resnet110_is_16x16_64kb": ("resnet110_cifar10", "is", 16, 16, 64),
}
# Runs on a literal topology instead of a workload: MobileNet-style depthwise rows (name containing DP), which
# SCALE-Sim expands into one single-channel layer per channel (topology_utils.load_arrays_conv). These run
# in one process each (a DP row's expansion would break the chunked LayerID numbering).
MOBILENET_DP_TOPOLOGY = """\
Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
conv1,18,18,3,3,3,8,1,
conv_dw1_DP,18,18,3,3,8,1,1,
conv_pw1,16,16,1,1,8,16,1,
conv_dw2_DP,17,17,3,3,16,1,2,
conv_pw2,8,8,1,1,16,32,1,
"""
TOPOLOGY_RUNS: dict[str, tuple[str, str, int, int, int]] = {
    # name: (topology text, dataflow, rows, cols, sram_kb)
    "mobilenet_dp_os_16x16_512kb": (MOBILENET_DP_TOPOLOGY, "os", 16, 16, 512),
    "mobilenet_dp_ws_8x8_512kb": (MOBILENET_DP_TOPOLOGY, "ws", 8, 8, 512),
}
# SCALE-Sim simulates layers independently (each starts cold, scalesim.md §7.11), so a topology can be run
# in chunks of layers, each in its own short process, and the reports concatenated.
CHUNK_LAYERS = 12

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


def _run_chunk(name, cfg: Path, topo_csv: str, scalesim_python: str) -> tuple[list[str], list[str]]:
    """Run SCALE-Sim on one topology text; return the data lines of its two reports."""
    with tempfile.TemporaryDirectory() as tmp:
        topo = Path(tmp) / "topology.csv"
        topo.write_text(topo_csv)
        res = subprocess.run([scalesim_python, "-c", CHILD, str(cfg), str(topo), tmp],
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise SystemExit(f"{name}: scalesim failed:\n{res.stderr[-2000:]}")
        return tuple((Path(tmp) / name / rep).read_text().splitlines()
                     for rep in ("COMPUTE_REPORT.csv", "DETAILED_ACCESS_REPORT.csv"))


def run_one(name: str, spec, scalesim_python: str) -> dict:
    workload, df, rows, cols, kb = spec
    out = GOLDEN / name
    out.mkdir(parents=True, exist_ok=True)
    topo_text = from_workload(load_workload(workload)).to_csv()
    (out / "topology.csv").write_text(topo_text)
    cfg = out / "scalesim.cfg"
    cfg.write_text(CONFIG.format(name=name, rows=rows, cols=cols, kb=kb, df=df))
    header, *layers = topo_text.splitlines()
    reports: list[list[str]] = [[], []]
    t0 = time.perf_counter()
    for start in range(0, len(layers), CHUNK_LAYERS):
        chunk = "\n".join([header] + layers[start:start + CHUNK_LAYERS]) + "\n"
        for acc, lines in zip(reports, _run_chunk(name, cfg, chunk, scalesim_python)):
            if not acc:
                acc.append(lines[0])
            for line in lines[1:]:  # renumber LayerID across chunks
                lid, rest = line.split(",", 1)
                acc.append(f"{int(lid) + start},{rest}")
    wall = time.perf_counter() - t0
    for rep, lines in zip(("COMPUTE_REPORT.csv", "DETAILED_ACCESS_REPORT.csv"), reports):
        (out / rep).write_text("\n".join(lines) + "\n")
    meta = {"run": name, "workload": workload, "dataflow": df, "array_rows": rows, "array_cols": cols,
            "sram_kb": [kb, kb, kb], "interface_bandwidth": "CALC", "scalesim": "3.0.0",
            "chunk_layers": CHUNK_LAYERS, "wall_s": round(wall, 2)}
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def run_topology(name: str, spec, scalesim_python: str) -> dict:
    topo_text, df, rows, cols, kb = spec
    out = GOLDEN / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "topology.csv").write_text(topo_text)
    cfg = out / "scalesim.cfg"
    cfg.write_text(CONFIG.format(name=name, rows=rows, cols=cols, kb=kb, df=df))
    t0 = time.perf_counter()
    reports = _run_chunk(name, cfg, topo_text, scalesim_python)
    wall = time.perf_counter() - t0
    for rep, lines in zip(("COMPUTE_REPORT.csv", "DETAILED_ACCESS_REPORT.csv"), reports):
        (out / rep).write_text("\n".join(lines) + "\n")
    meta = {"run": name, "topology": "topology.csv", "dataflow": df, "array_rows": rows, "array_cols": cols,
            "sram_kb": [kb, kb, kb], "interface_bandwidth": "CALC", "scalesim": "3.0.0", "wall_s": round(wall, 2)}
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="run names (default: all)")
    ap.add_argument("--scalesim-python", default=SCALESIM_PY)
    args = ap.parse_args()
    names = args.only or list(RUNS) + list(TOPOLOGY_RUNS)
    for name in names:
        if name in TOPOLOGY_RUNS:
            meta = run_topology(name, TOPOLOGY_RUNS[name], args.scalesim_python)
        elif name in RUNS:
            meta = run_one(name, RUNS[name], args.scalesim_python)
        else:
            raise SystemExit(f"unknown run {name!r} (known: {', '.join([*RUNS, *TOPOLOGY_RUNS])})")
        print(f"{name}: {meta['wall_s']} s", flush=True)


if __name__ == "__main__":
    main()
