"""The estimate, cycles and profiles commands: outputs, bad input (exit 2), no torch/numba on the path."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run([sys.executable, "-m", "e2sim", *args], capture_output=True, text=True, cwd=ROOT)


def test_estimate_json():
    r = run("estimate", "--workload", "resnet20_cifar10", "--profile", "zedboard", "--precision", "int8",
            "--iterations", "10", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["iterations_executed"] == 10 and d["precision"] == "int8" and d["profile"] == "zedboard"
    assert d["energy_j"] == pytest.approx(sum(d["breakdown_j"].values()), rel=1e-12)
    assert d["time_s"] == pytest.approx(d["cycles"] / 1e8)


def test_estimate_csv_is_tidy():
    r = run("estimate", "--workload", "resnet20_cifar10", "--format", "csv", "--iterations", "1")
    df = pd.read_csv(io.StringIO(r.stdout))
    assert list(df.columns) == ["layer", "kind", "pass", "tag", "component", "energy_j"]
    assert set(df["component"]) == {"mac", "sram", "dram", "static"}


def test_cycles_csv_columns_have_no_spaces():
    r = run("cycles", "--workload", "resnet20_cifar10", "--array", "14x16", "--dataflow", "ws", "--format", "csv")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout))
    assert all(c == c.strip() and " " not in c for c in df.columns)
    assert len(df) == 22 and df["total_cycles"].iloc[-1] == 1 * 1 * (1 + 28 + 16 - 2) * 5 - 1


@pytest.mark.slow
def test_cycles_from_topology_and_dram_bw(tmp_path):
    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "c,34,34,3,3,16,16,1,\n")
    base = pd.read_csv(io.StringIO(run("cycles", "--topology", str(topo), "--format", "csv").stdout))
    slow = pd.read_csv(io.StringIO(run("cycles", "--topology", str(topo), "--dram-bw", "0.5", "--format", "csv").stdout))
    assert base["stall_cycles"].iloc[0] == 0 and base["total_cycles"].iloc[0] == 11135
    words = base[["dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes"]].iloc[0].sum()
    assert slow["total_cycles"].iloc[0] == words / 0.5  # transfer-bound: stalls fill the gap


@pytest.mark.parametrize("args,fragment", [
    (("estimate", "--workload", "nope"), "workload"),
    (("estimate", "--workload", "resnet20_cifar10", "--profile", "nope"), "profile"),
    (("estimate", "--workload", "resnet20_cifar10", "--precision", "int4"), "--precision"),
    (("cycles", "--workload", "resnet20_cifar10", "--array", "16"), "--array"),
    (("cycles", "--workload", "resnet20_cifar10", "--sram-kb", "1,2"), "--sram-kb"),
    (("cycles",), "exactly one of --workload and --topology"),
    (("cycles", "--topology", "/nonexistent.csv"), "cannot read topology"),
    (("cycles", "--workload", "resnet20_cifar10", "--dram-bw", "2", "--scalesim-compat"), "--dram-bw"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    r = run(*args)
    assert r.returncode == 2
    assert fragment in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_profiles_lists_bundled():
    r = run("profiles", "--format", "json")
    assert {p["profile"] for p in json.loads(r.stdout)} >= {"zedboard", "asic45nm"}


def test_estimate_path_imports_neither_torch_nor_numba():
    code = ("import sys; from e2sim.cli import main\n"
            "sys.argv = ['e2sim', 'estimate', '--workload', 'resnet110_cifar100', '--format', 'json']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "import e2sim\ne2sim.estimate('resnet20_cifar10', 'zedboard', 'int8').to_frame()\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numba'))\n"
            "sys.stderr.write(repr(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stderr.strip() == "[]", r.stderr
    assert json.loads(r.stdout)["energy_j"] > 0
