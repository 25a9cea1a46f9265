"""Energy as activity x unit cost: every energy in e2sim is linear in the profile's linear constants.

``activity_matrix`` returns, per plan item, the coefficient of each linear constant of the profile (in SI:
the constant's value in J, J/bit or W multiplies it), so that an item's energy is ``activity @ values`` and
the component energies (mac, sram, dram, static) are sums over groups of constants. Calibration fits the
constants by non-negative least squares on these coefficients; the band and the sensitivities follow from
the same linearity. The constants and their order come from ``HardwareProfile.linear_constants``.

ASIC profiles (``compute``): integer MAC ``int_mult_pj_per_bit2 * a * b + int_add_pj_per_bit * max(a, b)``;
floating point ``mac_fp16_pj`` when both operands are at most 16 bits, else ``mac_fp32_pj``. Element
operations cost one add at the item's first-operand width.

FPGA profiles (``fpga``, see e2sim/profile.py): a MAC costs ``dsp_per_pe / rate * toggle`` DSP
slice-cycles (rate: MACs per PE per cycle at that width; toggle: XPE's factor, 0.8 up to 12 bits, 0.86 up
to 18, 1 above and for packed int8 pairs, whose packed operand fills the 27-bit port); float MACs add
``fp*_mac_lut_count`` LUT operations. Element operations: integer ``a`` LUT operations (carry-chain adder),
float ``fp*_add_dsp_count`` slice-cycles and ``fp*_add_lut_count`` LUT operations. The array's clock tree
costs ``clock_pj_per_dsp_cycle`` for every DSP of the array on every cycle (stalls included). All of this
is the ``mac`` component.

Both: SRAM (BRAM) bits read / written per buffer x per-bit energy; DRAM bits x per-bit energy; static:
each static power x time.
"""
from __future__ import annotations

import numpy as np

from .cost import BUFFERS, ItemCosts, macs_per_pe_per_cycle
from .plan import Plan
from .profile import HardwareProfile

COMPONENTS = ("mac", "sram", "dram", "static")


def constants_of(profile: HardwareProfile) -> tuple[str, ...]:
    return tuple(profile.linear_constants())


def component_of(profile: HardwareProfile) -> np.ndarray:
    """Component of each linear constant, in ``constants_of`` order."""
    out = []
    for name in constants_of(profile):
        if name.startswith(("compute.", "fpga.energy.")):
            out.append("mac")
        elif name.startswith("buffers."):
            out.append("sram")
        elif name.startswith("dram."):
            out.append("dram")
        else:
            out.append("static")
    return np.array(out, dtype=object)


def _toggle(profile: HardwareProfile, a, b, flt, rate) -> np.ndarray:
    u = profile.fpga.units
    wide = np.maximum(a, b)
    eff = np.where(flt, np.where(wide <= 16, 11, 24), wide)  # float: significand width (fp16 11, fp32 24)
    t = np.where(eff <= 12, u.int12_toggle_fraction.value, np.where(eff <= 18, u.int18_toggle_fraction.value, 1.0))
    return np.where(~flt & (rate > 1), 1.0, t)  # packed pairs fill the 27-bit port


def activity_matrix(plan: Plan, costs: ItemCosts, time_s: np.ndarray, profile: HardwareProfile) -> np.ndarray:
    """[items, constants] coefficients for one executed iteration (see module doc)."""
    n = plan.n_items
    a, b = plan.a_bits.astype(float), plan.b_bits.astype(float)
    flt = plan.is_float.astype(bool)
    macs, ops = costs.macs, costs.elem_ops
    nconst = len(profile.linear_constants())
    act = np.zeros((n, nconst))
    if profile.fpga is None:
        narrow = np.maximum(a, b) <= 16
        act[:, 0] = np.where(flt, 0.0, macs * a * b)
        act[:, 1] = np.where(flt, 0.0, macs * np.maximum(a, b) + ops * a)
        act[:, 2] = np.where(flt & narrow, macs, 0.0)
        act[:, 3] = np.where(flt & ~narrow, macs, 0.0)
        act[:, 4] = np.where(flt & (a <= 16), ops, 0.0)
        act[:, 5] = np.where(flt & (a > 16), ops, 0.0)
        k = 6
    else:
        u = profile.fpga.units
        dsp_pe = u.dsp_per_pe_count.value
        rate = macs_per_pe_per_cycle(profile, plan.a_bits, plan.b_bits, flt)
        half = a <= 16
        mac_luts = np.where(flt, np.where(np.maximum(a, b) <= 16, u.fp16_mac_lut_count.value,
                                          u.fp32_mac_lut_count.value), 0.0)
        add_dsp = np.where(flt, np.where(half, u.fp16_add_dsp_count.value, u.fp32_add_dsp_count.value), 0.0)
        add_luts = np.where(flt, np.where(half, u.fp16_add_lut_count.value, u.fp32_add_lut_count.value), a)
        add_toggle = np.where(half, u.int12_toggle_fraction.value, 1.0)
        act[:, 0] = macs * dsp_pe / rate * _toggle(profile, a, b, flt, rate) + ops * add_dsp * add_toggle
        act[:, 1] = macs * mac_luts + ops * add_luts
        pe = profile.array.rows_count.value * profile.array.cols_count.value * dsp_pe
        act[:, 2] = time_s * profile.array.clock_hz.value * pe
        k = 3
    for i in range(len(BUFFERS)):
        act[:, k + 2 * i] = costs.sram_read_bits[:, i]
        act[:, k + 1 + 2 * i] = costs.sram_write_bits[:, i]
    k += 2 * len(BUFFERS)
    act[:, k] = costs.dram_read_bits
    act[:, k + 1] = costs.dram_write_bits
    act[:, k + 2:] = time_s[:, None]
    return act


def component_energy(act: np.ndarray, values: np.ndarray, components: np.ndarray) -> np.ndarray:
    """[items, components] energy in J from activities and constant values (SI)."""
    e = act * values
    return np.stack([e[:, components == comp].sum(1) for comp in COMPONENTS], axis=1)
