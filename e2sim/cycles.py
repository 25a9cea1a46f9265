"""Per-layer cycles, utilisation and access counts of a SCALE-Sim-style topology (batch 1, forward GEMMs).

The columns are SCALE-Sim's COMPUTE_REPORT / DETAILED_ACCESS_REPORT quantities under snake_case names with
units (counts are in words of one element, SCALE-Sim's 1-byte words). ``total_cycles`` equals SCALE-Sim's
"Total Cycles" (with ``stall_cycles`` added when a DRAM bandwidth is given outside compat mode).
"""
from __future__ import annotations

import numpy as np

from .dataflow import DF_CODE, map_gemms, stall_cycles
from .topology import Topology

REPORT_COLUMNS = (
    "total_cycles", "stall_cycles", "overall_util_pct", "mapping_efficiency_pct", "compute_util_pct",
    "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes", "sram_ofmap_reads",
    "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes", "dram_ofmap_reads",
)


def topology_cycles(topo: Topology, rows: int, cols: int, dataflow: str, sram_kb: tuple[int, int, int],
                    dram_words_per_cycle: float | None = None, compat: bool = False) -> dict[str, np.ndarray]:
    m, n, k, a_unique = topo.gemms()
    words = [1024 * kb for kb in sram_kb]  # SCALE-Sim: 1-byte words, KB = 1024 bytes
    mp = map_gemms(m, n, k, DF_CODE[dataflow], rows, cols, a_unique=a_unique,
                   buf_a=words[0], buf_b=words[1], buf_c=words[2], compat=compat)
    if dram_words_per_cycle is None or compat:
        stall = np.zeros_like(mp["compute_cycles"])
    else:
        dram = mp["dram_ifmap_reads"] + mp["dram_filter_reads"] + mp["dram_ofmap_writes"] + mp["dram_ofmap_reads"]
        stall = stall_cycles(mp["compute_cycles"], dram, dram_words_per_cycle)
    out = dict(mp)
    out["stall_cycles"] = stall
    out["total_cycles"] = mp["compute_cycles"] + stall
    return out


def topology_frame(topo: Topology, **kw):
    import pandas as pd

    r = topology_cycles(topo, **kw)
    m, n, k, _ = topo.gemms()
    cols = {"layer_id": np.arange(len(topo.names)), "layer": list(topo.names),
            "gemm_m": m, "gemm_n": n, "gemm_k": k, "macs": r["macs"]}
    for c in REPORT_COLUMNS:
        cols[c] = r[c]
    cols["dram_exact"] = np.broadcast_to(r["dram_exact"], r["macs"].shape)
    df = pd.DataFrame(cols)
    for c in df.columns:
        if c.endswith(("_reads", "_writes", "_cycles")) or c in ("macs", "gemm_m", "gemm_n", "gemm_k"):
            if np.all(np.mod(df[c], 1) == 0):
                df[c] = df[c].astype(np.int64)
    return df
