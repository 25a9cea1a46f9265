"""Energy as activity x unit cost: every energy in e2sim is linear in the profile's linear constants.

``activity_matrix`` returns, per plan item, the coefficient of each linear constant (in SI: the constant's
value in J, J/bit or W multiplies it), so that an item's energy is ``activity @ values`` and the
component energies (mac, sram, dram, static) are sums over groups of constants. Calibration fits the
constants by non-negative least squares on these coefficients.

MAC energy (integer): ``int_mult_pj_per_bit2 * a * b + int_add_pj_per_bit * max(a, b)`` per MAC;
floating point: ``mac_fp16_pj`` when both operands are at most 16 bits, else ``mac_fp32_pj``.
Element operations cost one add at the item's first-operand width (``int_add_pj_per_bit * bits``, or
``add_fp16_pj`` / ``add_fp32_pj``). SRAM: bits read / written per buffer x its per-bit energy; DRAM: bits
read / written x per-bit energy; static: static power x time.
"""
from __future__ import annotations

import numpy as np

from .cost import BUFFERS, ItemCosts
from .plan import Plan

COMPONENTS = ("mac", "sram", "dram", "static")
CONSTANTS: tuple[str, ...] = (
    "compute.int_mult_pj_per_bit2", "compute.int_add_pj_per_bit",
    "compute.mac_fp16_pj", "compute.mac_fp32_pj", "compute.add_fp16_pj", "compute.add_fp32_pj",
    *(f"buffers.{b}.{rw}_pj_per_bit" for b in BUFFERS for rw in ("read", "write")),
    "dram.read_pj_per_bit", "dram.write_pj_per_bit", "static_power_w",
)
COMPONENT_OF = np.array(
    ["mac"] * 6 + ["sram"] * 6 + ["dram"] * 2 + ["static"], dtype=object
)


def activity_matrix(plan: Plan, costs: ItemCosts, time_s: np.ndarray) -> np.ndarray:
    """[items, constants] coefficients for one executed iteration (see module doc)."""
    n = plan.n_items
    a, b = plan.a_bits.astype(float), plan.b_bits.astype(float)
    flt = plan.is_float.astype(bool)
    narrow = np.maximum(a, b) <= 16
    macs, ops = costs.macs, costs.elem_ops
    act = np.zeros((n, len(CONSTANTS)))
    act[:, 0] = np.where(flt, 0.0, macs * a * b)
    act[:, 1] = np.where(flt, 0.0, macs * np.maximum(a, b) + ops * a)
    act[:, 2] = np.where(flt & narrow, macs, 0.0)
    act[:, 3] = np.where(flt & ~narrow, macs, 0.0)
    act[:, 4] = np.where(flt & (a <= 16), ops, 0.0)
    act[:, 5] = np.where(flt & (a > 16), ops, 0.0)
    for i in range(len(BUFFERS)):
        act[:, 6 + 2 * i] = costs.sram_read_bits[:, i]
        act[:, 7 + 2 * i] = costs.sram_write_bits[:, i]
    act[:, 12] = costs.dram_read_bits
    act[:, 13] = costs.dram_write_bits
    act[:, 14] = time_s
    return act


def component_energy(act: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[items, components] energy in J from activities and constant values (SI)."""
    e = act * values
    return np.stack([e[:, COMPONENT_OF == comp].sum(1) for comp in COMPONENTS], axis=1)
