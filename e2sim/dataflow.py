"""Cycle-level mapping of GEMMs onto a systolic PE array (output / weight / input stationary).

Pure numpy over arrays of GEMMs (and, by broadcasting, of array shapes and buffer sizes). A GEMM is
``C[M, N] = A[M, K] @ B[K, N]``: for a forward convolution M = output pixels, N = filters, K = window size
(SCALE-Sim's ifmap, filter and ofmap matrices). The closed forms are SCALE-Sim 3.0.0's
(shared/reference/scalesim.md §4); cycles and SRAM reads equal its reports exactly.

Where SCALE-Sim's counting is an artefact, the default (``compat=False``) models the hardware instead:
- OS SRAM ofmap writes: M*N; SCALE-Sim adds a spurious ``AR + AC`` per fold (``systolic_compute_os.py:403``).
- WS / IS partial sums: read back from SRAM before each accumulation ((RF-1)*M*N reads; SCALE-Sim counts
  none) and kept on chip when the output slice that accumulates across row folds fits the ofmap buffer
  (SCALE-Sim writes every partial sum to DRAM).
- DRAM operand reads: an operand that fits its buffer is read once; one that does not is re-read once per
  pass of the loop that re-uses it (OS/WS ifmap: per column fold; OS filter: per row fold; IS filter: per
  column fold; IS ifmap: the im2col stream). SCALE-Sim's set-window model instead starts re-fetching once
  an operand exceeds *half* its buffer (a double-buffering artefact) with counts that depend on address
  order; ``compat=True`` returns the exact footprint below that cliff and flags ``dram_exact=False`` above.
- No phantom ofmap words (SCALE-Sim's write buffer adds up to AC-1 per mid-layer drain).
"""
from __future__ import annotations

import numpy as np

DF_CODE = {"os": 0, "ws": 1, "is": 2}


def _ratio(num, den):
    """num / den, 0 where den is 0 (utilisation of a GEMM with no work)."""
    den = np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _ceil_div(a, b):
    return np.ceil(np.asarray(a, dtype=float) / b)


def map_gemms(m, n, k, dataflow, rows, cols, *, a_unique, buf_a, buf_b, buf_c, compat: bool = False
              ) -> dict[str, np.ndarray]:
    """Per-GEMM folds, cycles, utilisation, SRAM and DRAM element counts (one GEMM instance each).

    ``dataflow``: int codes (DF_CODE); ``a_unique``: distinct elements of A (an im2col matrix repeats its
    input); ``buf_*``: buffer capacity in elements of that operand. All arguments broadcast together.
    """
    m, n, k = (np.asarray(x, dtype=float) for x in (m, n, k))
    df = np.asarray(dataflow)
    ar, ac = np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)
    is_os, is_ws, is_is = df == 0, df == 1, df == 2
    sr = np.where(is_os, m, k)
    sc = np.where(is_is, m, n)
    t = np.where(is_os, k, np.where(is_ws, m, n))
    rf, cf = _ceil_div(sr, ar), _ceil_div(sc, ac)
    folds = rf * cf
    lines = t + ar + ac - 2 + np.where(is_os, 0.0, ar)
    # SCALE-Sim reports the index of the last cycle (rows of the demand matrices - 1); at least one cycle
    # (a 1x1x1 GEMM on a 1x1 array would otherwise take none).
    # An empty GEMM (an item no sample runs, e.g. a fully skipped block) takes no cycle at all.
    pes = ar * ac
    mac = m * n * k
    compute_cycles = np.where(mac > 0, np.maximum(folds * lines - 1, 1.0), 0.0)
    cyc_f = np.where(is_os, t + ar + ac - 2, t + 2 * ar + 2 * ac - 3)
    mapping_eff = _ratio(100.0 * sr * sc, folds * pes)
    compute_util = _ratio(100.0 * sr * sc * t, folds * pes * cyc_f)
    overall_util = _ratio(100.0 * mac, compute_cycles * pes)

    mn, mk, kn = m * n, m * k, k * n
    sram_a = np.where(is_is, mk, cf * mk)
    sram_b = np.where(is_os, rf * kn, np.where(is_ws, kn, cf * kn))
    psum_rounds = np.where(is_os, 1.0, rf)
    sram_c_w = psum_rounds * mn + (folds * (ar + ac) * is_os if compat else 0.0)
    sram_c_r = np.zeros_like(mn) if compat else (psum_rounds - 1) * mn

    a_unique = np.asarray(a_unique, dtype=float)
    b_unique = kn
    if compat:
        # SCALE-Sim's set-window read buffer: 100 sets of floor(size/100) words, 50 active.
        win_a, win_b = 50 * np.floor(np.asarray(buf_a) / 100), 50 * np.floor(np.asarray(buf_b) / 100)
        fit_a, fit_b = a_unique <= win_a, b_unique <= win_b
    else:
        fit_a, fit_b = a_unique <= buf_a, b_unique <= buf_b
    refetch_a = np.where(is_is, mk, np.minimum(sram_a, cf * a_unique))
    refetch_b = np.where(is_os, rf * kn, np.where(is_ws, kn, cf * kn))
    dram_a = np.where(fit_a, a_unique, refetch_a)
    dram_b = np.where(fit_b, b_unique, refetch_b)
    if compat:
        dram_c_w = psum_rounds * mn
        dram_c_r = np.zeros_like(mn)
        exact = fit_a & fit_b
    else:
        slice_c = np.where(is_ws, m * np.minimum(ac, n), np.minimum(ac, m) * n)
        spill = (~is_os) & (slice_c > np.asarray(buf_c))
        dram_c_w = np.where(spill, psum_rounds * mn, mn)
        dram_c_r = np.where(spill, (psum_rounds - 1) * mn, 0.0)
        exact = np.ones(np.shape(mn), bool)
    return {
        "row_folds": rf, "col_folds": cf, "folds": folds, "cycles_per_fold": lines,
        "compute_cycles": compute_cycles, "macs": mac,
        "overall_util_pct": overall_util, "mapping_efficiency_pct": mapping_eff, "compute_util_pct": compute_util,
        "sram_ifmap_reads": sram_a, "sram_filter_reads": sram_b,
        "sram_ofmap_writes": sram_c_w, "sram_ofmap_reads": sram_c_r,
        "dram_ifmap_reads": dram_a, "dram_filter_reads": dram_b,
        "dram_ofmap_writes": dram_c_w, "dram_ofmap_reads": dram_c_r, "dram_exact": exact,
    }


def stall_cycles(compute_cycles, dram_bits, dram_bits_per_cycle):
    """Cycles the array waits for DRAM, with transfers overlapped with compute (double buffering):
    the layer takes max(compute, transfer) cycles."""
    transfer = np.asarray(dram_bits, dtype=float) / dram_bits_per_cycle
    return np.maximum(0.0, transfer - compute_cycles)
