"""Per-item cycles and memory traffic of a Plan on a hardware profile (one executed iteration).

An item is priced as its GEMM (``lowering`` + ``dataflow``) plus its element-wise work on the vector path:
- Throughput depends on the operand widths: MACs per PE per cycle from the profile (a DSP48E1 packs two
  8-bit MACs sharing one operand, WP486; fp32 needs several DSPs). A packing factor p >= 1 widens the array
  (p MACs per PE share the streamed operand, so N is spread over p*cols columns); p < 1 stretches every cycle
  by 1/p (a multi-DSP MAC).
- Element operations (batchnorm, relu, adds, pooling, biases, the SGD update) run on the array used as a
  vector unit, one operation per PE per cycle at the same width-dependent throughput. Items without a GEMM
  stream their tensors from DRAM through the buffers (reads into the ifmap buffer, writes out of the ofmap
  buffer); a GEMM item's bias add is fused into its output write.
- DRAM transfers overlap compute (double buffering): an item takes max(compute, transfer) cycles; the
  excess is reported as stall cycles. ``compat=True`` (SCALE-Sim's CALC mode) never stalls.
- ``scale`` multiplies all of an item's work; there is no overlap between items (as in SCALE-Sim).
"""
from __future__ import annotations


import numpy as np

from .dataflow import DF_CODE, map_gemms
from .lowering import Geometry, Gemms, lower
from .plan import Plan
from .profile import HardwareProfile
from .records import Record, record

BUFFERS = ("ifmap", "filter", "ofmap")


def macs_per_pe_per_cycle(profile: HardwareProfile, a_bits, b_bits, is_float) -> np.ndarray:
    """Width-dependent throughput: the first integer rule covering both operands, or the fp16/fp32 rate."""
    arr = profile.array
    wide = np.maximum(np.asarray(a_bits), np.asarray(b_bits))
    limits = np.array([r.max_bits for r in arr.int_throughput])
    rates = np.array([r.macs_per_pe_per_cycle.value for r in arr.int_throughput])
    pos = np.minimum(np.searchsorted(limits, wide, side="left"), len(limits) - 1)
    fp = np.where(wide <= 16, arr.fp16_macs_per_pe_per_cycle.value, arr.fp32_macs_per_pe_per_cycle.value)
    return np.where(np.asarray(is_float, bool), fp, rates[pos])


@record
class ItemCosts(Record):
    """Arrays over plan items for one executed iteration (floats; ``scale`` already applied)."""

    macs: np.ndarray
    elem_ops: np.ndarray
    compute_cycles: np.ndarray
    stall_cycles: np.ndarray
    sram_read_bits: np.ndarray  # [N, 3] per buffer (ifmap, filter, ofmap)
    sram_write_bits: np.ndarray  # [N, 3]
    dram_read_bits: np.ndarray
    dram_write_bits: np.ndarray
    gemms: Gemms
    mapping: dict

    @property
    def cycles(self) -> np.ndarray:
        return self.compute_cycles + self.stall_cycles


def item_costs(plan: Plan, geo: Geometry, profile: HardwareProfile, compat: bool = False) -> ItemCosts:
    arr, bufs = profile.array, profile.buffers
    rows, cols = arr.rows_count.value, arr.cols_count.value
    n_items = plan.n_items
    g = lower(plan, geo)

    p = macs_per_pe_per_cycle(profile, g.a_bits, g.b_bits, g.is_float)
    pack, stretch = np.maximum(p, 1.0), np.maximum(1.0 / p, 1.0)
    size_bits = [getattr(bufs, b).size_bytes.value * 8 for b in BUFFERS]
    mp = map_gemms(
        g.m, g.n, g.k, DF_CODE[arr.dataflow.value], rows, cols * pack, a_unique=g.a_unique,
        buf_a=np.floor(size_bits[0] / g.a_bits), buf_b=np.floor(size_bits[1] / g.b_bits),
        buf_c=np.floor(size_bits[2] / g.c_bits), compat=compat,
    )
    cnt = g.count
    a, b, c = g.a_bits, g.b_bits, g.c_bits
    sram_r = np.zeros((n_items, 3))
    sram_w = np.zeros((n_items, 3))
    dram_r = np.zeros(n_items)
    dram_w = np.zeros(n_items)
    compute = np.zeros(n_items)
    macs = np.zeros(n_items)
    it = g.item
    # An item may have several GEMMs (an lstm's input gradient): sum them per item.
    np.add.at(sram_r[:, 0], it, cnt * mp["sram_ifmap_reads"] * a)
    np.add.at(sram_w[:, 0], it, cnt * mp["dram_ifmap_reads"] * a)  # fills from DRAM
    np.add.at(sram_r[:, 1], it, cnt * mp["sram_filter_reads"] * b)
    np.add.at(sram_w[:, 1], it, cnt * mp["dram_filter_reads"] * b)
    np.add.at(sram_w[:, 2], it, cnt * (mp["sram_ofmap_writes"] + mp["dram_ofmap_reads"]) * c)
    np.add.at(sram_r[:, 2], it, cnt * (mp["sram_ofmap_reads"] + mp["dram_ofmap_writes"]) * c)  # psums, drains
    np.add.at(dram_r, it, cnt * (mp["dram_ifmap_reads"] * a + mp["dram_filter_reads"] * b
                                 + mp["dram_ofmap_reads"] * c))
    np.add.at(dram_w, it, cnt * mp["dram_ofmap_writes"] * c)
    np.add.at(compute, it, cnt * mp["compute_cycles"] * stretch)
    np.add.at(macs, it, g.macs)

    # Element-wise work of every item (unscaled here, like the GEMMs); tensors of items without a GEMM
    # stream through the buffers.
    p_vec = macs_per_pe_per_cycle(profile, plan.a_bits, plan.a_bits, plan.is_float)
    compute += np.ceil(plan.unscaled("elem_ops") / (rows * cols * p_vec))
    no_gemm = np.ones(n_items, bool)
    no_gemm[it] = False
    rd = (plan.unscaled("reads") * plan.tensor_bits).sum(1)
    wr = (plan.unscaled("writes") * plan.tensor_bits).sum(1)
    sram_r[no_gemm, 0] += rd[no_gemm]
    sram_w[no_gemm, 0] += rd[no_gemm]
    sram_w[no_gemm, 2] += wr[no_gemm]
    sram_r[no_gemm, 2] += wr[no_gemm]
    dram_r[no_gemm] += rd[no_gemm]
    dram_w[no_gemm] += wr[no_gemm]

    if compat:
        stall = np.zeros(n_items)
    else:
        bits_per_cycle = profile.dram.bandwidth_bytes_per_s.value * 8 / arr.clock_hz.value
        stall = np.maximum(0.0, (dram_r + dram_w) / bits_per_cycle - compute)
    s = plan.scale
    return ItemCosts(
        macs=macs * s, elem_ops=plan.elem_ops, compute_cycles=compute * s, stall_cycles=stall * s,
        sram_read_bits=sram_r * s[:, None], sram_write_bits=sram_w * s[:, None],
        dram_read_bits=dram_r * s, dram_write_bits=dram_w * s, gemms=g, mapping=mp,
    )
