"""Hardware profiles: a typed, sourced description of an accelerator and its memories.

Every constant is a ``{value, source}`` pair (:class:`Sourced`): a profile whose constant lacks a
source, has an unknown key, a negative energy or a field name without a unit is rejected with the key path
named. Units live in the field names (``clock_hz``, ``read_pj_per_bit``); values are converted to SI by
the energy stage (pJ only appear here).

A profile prices arithmetic one of two ways (exactly one of ``compute`` / ``fpga`` is present):

- ``compute`` (ASIC, e.g. asic45nm): energy of one MAC as a function of both operand widths (integer, 2..32
  bits): ``mac_pj(a, b) = int_mult_pj_per_bit2 * a * b + int_add_pj_per_bit * max(a, b)``. A multiplier's
  area and energy grow with the product of its operand widths and an adder's with its width; Horowitz
  (ISSCC'14) gives 0.2 pJ for an 8x8 and 3.1 pJ for a 32x32 multiply and 0.03 / 0.1 pJ for 8- and 32-bit
  adds, which this form reproduces within 5 %. Floating point uses the fp16 / fp32 constants. Static power
  is one figure, ``static_power_w``.
- ``fpga`` (e.g. zedboard): per-event FPGA energies. A MAC occupies ``dsp_per_pe / rate`` DSP slice-cycles
  (``rate``: the array's MACs per PE per cycle at that width, so packed int8 pairs cost half a slice-cycle
  and a 5-DSP fp32 unit five), each priced at ``dsp_pj_per_slice_cycle`` times XPE's width toggle factor;
  floating-point MACs and adds also toggle LUT/FF fabric (``*_lut_count`` LUTs per operation at
  ``fabric_pj_per_lut_op``); integer element operations cost one LUT per bit (carry-chain adder); every
  clock cycle costs ``clock_pj_per_dsp_cycle`` per DSP of the array (clock tree, routing, pipeline
  registers) whether or not it computes. BRAM (the buffers) and DDR3 (incl. controller and PHY) are priced
  per bit. Static power is split into PS, PL static, DDR and board (regulators, peripherals).
  ``device`` names the FPGA in the device table (``e2sim.devices``).

Every constant is a :class:`Sourced` ``{value, source}`` pair; the energy is linear in the energy and power
constants (``linear_constants``), which calibration fits. ``calibration`` (optional) records a fit: which
rows and constants, the leave-one-out error, and the bootstrap sample the uncertainty band is drawn from.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Annotated, Literal

from .config import bundled_or_path, load_model
from .records import Check, Int, Real, Record, record, validated
from .workload import PKG_ROOT

PROFILE_DIR = PKG_ROOT / "hardware_profiles"
Dataflow = Literal["os", "ws", "is"]
DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")

# A field name must end in a unit (or be a count / a dimensionless factor named as such).
_UNIT_SUFFIX = re.compile(
    r"_(hz|w|j|pj|pj_per_bit|pj_per_bit2|pj_per_slice_cycle|pj_per_lut_op|pj_per_dsp_cycle|bytes|bytes_per_s|bits|per_pe_per_cycle|count|fraction)$"
)


# Physical range of a constant by the unit its name ends in: far beyond any real device, so that only typos
# and overflow bait (1e308, 1e-300) are refused, and every product the energy stage forms (counts below 2^62
# times pJ per event, times 1e9 iterations) and every quotient (cycles / clock, bytes / bandwidth, MACs /
# rate) stays finite. (suffix, low, high, unit); first match wins; the low bound of a rate or a clock is
# what keeps a time finite.
_UNIT_RANGES: tuple[tuple[str, float, float, str], ...] = (
    ("_fraction", 0.0, 1.0, ""),
    ("_bytes_per_s", 1e3, 1e14, "B/s"),  # 1 kB/s .. 100 TB/s
    ("_bytes", 0.0, 1e13, "B"),
    ("_bits", 0.0, 1e14, "bit"),
    ("_hz", 1e3, 1e11, "Hz"),  # 1 kHz .. 100 GHz
    ("_per_pe_per_cycle", 1e-3, 1e3, "MACs"),
    ("_count", 0.0, 1e8, ""),
    ("_w", 0.0, 1e5, "W"),  # 100 kW
    ("_j", 0.0, 1e12, "J"),
)
_PJ_MAX = 1e6  # pJ per event, per bit or per bit^2 (any *_pj* unit): a microjoule per operation


def constant_range(name: str) -> tuple[float, float, str]:
    """(low, high, unit) of a profile constant named ``name``; [0, inf) where its unit is unknown."""
    if "_pj" in name:
        return 0.0, _PJ_MAX, "pJ"
    return next(((lo, hi, unit) for suffix, lo, hi, unit in _UNIT_RANGES if name.endswith(suffix)),
                (0.0, float("inf"), ""))


# A profile section is a record (e2sim.records): an immutable dataclass that pydantic validates when a file
# is parsed; a profile read from the parse cache is used without importing pydantic. Sections with checks of
# their own call this __post_init__ first.
class _Strict(Record):
    def __post_init__(self) -> None:
        # Every {value, source} constant of every profile section, by its field name's unit.
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            const = getattr(self, f.name)
            if isinstance(const, (Sourced, SourcedInt)):
                lo, hi, unit = constant_range(f.name)
                if not lo <= const.value <= hi:
                    unit = f" {unit}" if unit else ""
                    raise ValueError(f"{f.name}: {const.value:g}{unit} is outside the physical range "
                                     f"[{lo:g}, {hi:g}]")


# A citation, or 'ESTIMATE: ...' with the reasoning.
Source = Annotated[str, Check(min_length=8)]


@record
class Sourced(_Strict):
    """One constant with where it comes from: a finite number >= 0 (strict: `true` or "2" is no number)."""

    value: Annotated[Real, Check(ge=0)]
    source: Source


@record
class Positive(Sourced):
    """A constant that must be above zero: a clock, a rate, a bandwidth (a time divides by it)."""

    value: Annotated[Real, Check(gt=0)]


@record
class SourcedInt(_Strict):
    value: Annotated[Int, Check(ge=1)]
    source: Source


@record
class SourcedDataflow(_Strict):
    value: Dataflow
    source: Source


@record
class ThroughputRule(_Strict):
    """MACs one PE completes per cycle for integer operands of at most ``max_bits`` bits (both)."""

    max_bits: Annotated[Int, Check(ge=2, le=32)]
    macs_per_pe_per_cycle: Sourced


@record
class Array(_Strict):
    rows_count: SourcedInt
    cols_count: SourcedInt
    dataflow: SourcedDataflow
    clock_hz: Sourced
    # Integer throughput by operand width: the first rule whose max_bits covers both operands applies.
    int_throughput: Annotated[list[ThroughputRule], Check(min_length=1)]
    fp16_macs_per_pe_per_cycle: Sourced
    fp32_macs_per_pe_per_cycle: Sourced

    def __post_init__(self) -> None:
        super().__post_init__()
        bits = [r.max_bits for r in self.int_throughput]
        if bits != sorted(bits) or len(set(bits)) != len(bits):
            raise ValueError("int_throughput: max_bits must be strictly increasing")
        if bits[-1] != 32:
            raise ValueError("int_throughput: the last rule must cover 32-bit operands (max_bits: 32)")
        # Clocks and rates are positive by their unit's range (_UNIT_RANGES, checked above).


@record
class Buffer(_Strict):
    size_bytes: Sourced
    read_pj_per_bit: Sourced
    write_pj_per_bit: Sourced


@record
class Buffers(_Strict):
    ifmap: Buffer
    filter: Buffer
    ofmap: Buffer


@record
class Dram(_Strict):
    bandwidth_bytes_per_s: Sourced
    read_pj_per_bit: Sourced
    write_pj_per_bit: Sourced


@record
class Compute(_Strict):
    """ASIC arithmetic (see module doc)."""

    int_mult_pj_per_bit2: Sourced
    int_add_pj_per_bit: Sourced
    mac_fp16_pj: Sourced
    mac_fp32_pj: Sourced
    add_fp16_pj: Sourced
    add_fp32_pj: Sourced


@record
class FpgaUnits(_Strict):
    """Structural facts of the FPGA datapath (not fitted)."""

    dsp_per_pe_count: Positive  # DSP slices per PE of the array (1 where a PE is one DSP48E1)
    int12_toggle_fraction: Positive  # XPE DSP toggle factor for <=12-bit operands, relative to 27x18
    int18_toggle_fraction: Positive  # ... for <=18-bit operands
    fp16_mac_lut_count: Sourced  # LUTs toggled per fp16 MAC beyond its DSPs (alignment, normalisation)
    fp32_mac_lut_count: Sourced
    fp16_add_dsp_count: Sourced  # DSP slices of one fp16 adder (element operations)
    fp32_add_dsp_count: Sourced
    fp16_add_lut_count: Sourced
    fp32_add_lut_count: Sourced


@record
class FpgaEnergy(_Strict):
    """Per-event FPGA energies (linear constants)."""

    dsp_pj_per_slice_cycle: Sourced
    fabric_pj_per_lut_op: Sourced
    clock_pj_per_dsp_cycle: Sourced


@record
class FpgaStatic(_Strict):
    """Board static power split (linear constants, W)."""

    ps_w: Sourced
    pl_w: Sourced
    ddr_w: Sourced
    board_w: Sourced


@record
class Fpga(_Strict):
    device: Annotated[str, Check(min_length=1)]  # key of the device table (e2sim/devices.yaml)
    units: FpgaUnits
    energy: FpgaEnergy
    static: FpgaStatic


@record
class Bootstrap(_Strict):
    """Constant vectors (SI, one per bootstrap replicate of the fit) and each replicate's model residual."""

    constants: Annotated[list[str], Check(min_length=1)]
    vectors_si: Annotated[list[list[float]], Check(min_length=2)]
    residual_fractions: Annotated[list[float], Check(min_length=2)]
    # published / predicted time of resampled rows
    time_ratios: Annotated[list[float], Check(min_length=2)]

    def __post_init__(self) -> None:
        import math

        super().__post_init__()

        n = len(self.constants)
        if any(len(v) != n for v in self.vectors_si):
            raise ValueError(f"vectors_si: every vector needs {n} values (one per constant)")
        if len(self.residual_fractions) != len(self.vectors_si):
            raise ValueError("residual_fractions: one per vector")
        vals = [x for v in self.vectors_si for x in v] + self.residual_fractions + self.time_ratios
        if not all(math.isfinite(x) for x in vals) or min(min(v) for v in self.vectors_si) < 0:
            raise ValueError("vectors_si / residual_fractions / time_ratios: values must be finite, vectors >= 0")
        if min(self.residual_fractions) <= -1 or min(self.time_ratios) <= 0:
            raise ValueError("residual_fractions must be > -1 and time_ratios > 0")


@record
class Calibration(_Strict):
    """What a calibrated profile was fitted to (written by validation/published/calibrate_zedboard.py)."""

    method: Annotated[str, Check(min_length=8)]
    rows_fitted: Annotated[list[str], Check(min_length=1)]
    groups_fitted: Annotated[list[str], Check(min_length=1)]  # groups of constants scaled by the fit
    constants_fitted: Annotated[list[str], Check(min_length=1)]
    scales: dict[str, float]  # fitted scale of each group relative to the prior
    loo_median_abs_error_fraction: Annotated[float, Check(ge=0, allow_inf_nan=False)]
    bootstrap: Bootstrap


@record
class HardwareProfile(_Strict):
    name: Annotated[str, Check(min_length=1)]
    description: Annotated[str, Check(min_length=1)]
    array: Array
    buffers: Buffers
    dram: Dram
    schema_version: Literal[1] = 1
    compute: Compute | None = None
    fpga: Fpga | None = None
    static_power_w: Sourced | None = None
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.compute is None) == (self.fpga is None):
            raise ValueError("exactly one of compute (ASIC) and fpga must be given")
        if self.compute is not None and self.static_power_w is None:
            raise ValueError("static_power_w: an ASIC (compute) profile needs it")
        if self.fpga is not None and self.static_power_w is not None:
            raise ValueError("static_power_w: an fpga profile gives static power as fpga.static.{ps,pl,ddr,board}_w")
        if self.calibration is not None:
            unknown = sorted(set(self.calibration.bootstrap.constants) - set(self.linear_constants()))
            if unknown:
                raise ValueError(f"calibration.bootstrap.constants: not linear constants of this profile: {unknown}")
        self._units()

    @property
    def is_fpga(self) -> bool:
        return self.fpga is not None

    @property
    def static_w(self) -> float:
        """Total static power (W)."""
        if self.fpga is None:
            return self.static_power_w.value
        s = self.fpga.static
        return s.ps_w.value + s.pl_w.value + s.ddr_w.value + s.board_w.value

    def _units(self) -> None:
        subs = [self.array, self.buffers.ifmap, self.buffers.filter, self.buffers.ofmap, self.dram]
        if self.compute is not None:
            subs.append(self.compute)
        if self.fpga is not None:
            subs += [self.fpga.units, self.fpga.energy, self.fpga.static]
        for sub in subs:
            for f in dataclasses.fields(sub):
                if f.name in ("dataflow", "int_throughput"):
                    continue
                if not _UNIT_SUFFIX.search(f.name):
                    raise ValueError(f"{f.name}: field name has no unit suffix")

    # Linear constants, by dotted path, that calibration may fit (energy is linear in each).
    def linear_constants(self) -> dict[str, float]:
        """Value in SI units (J, J/bit, W) of every constant the energy is linear in.

        Order: compute constants, buffers, dram, static (the energy stage's column order).
        """
        pj = 1e-12
        b, d = self.buffers, self.dram
        out: dict[str, float] = {}
        if self.compute is not None:
            c = self.compute
            for name in ("int_mult_pj_per_bit2", "int_add_pj_per_bit", "mac_fp16_pj", "mac_fp32_pj",
                         "add_fp16_pj", "add_fp32_pj"):
                out[f"compute.{name}"] = getattr(c, name).value * pj
        else:
            e = self.fpga.energy
            for name in ("dsp_pj_per_slice_cycle", "fabric_pj_per_lut_op", "clock_pj_per_dsp_cycle"):
                out[f"fpga.energy.{name}"] = getattr(e, name).value * pj
        for name in ("ifmap", "filter", "ofmap"):
            buf = getattr(b, name)
            out[f"buffers.{name}.read_pj_per_bit"] = buf.read_pj_per_bit.value * pj
            out[f"buffers.{name}.write_pj_per_bit"] = buf.write_pj_per_bit.value * pj
        out["dram.read_pj_per_bit"] = d.read_pj_per_bit.value * pj
        out["dram.write_pj_per_bit"] = d.write_pj_per_bit.value * pj
        if self.compute is not None:
            out["static_power_w"] = self.static_power_w.value
        else:
            for name in ("ps_w", "pl_w", "ddr_w", "board_w"):
                out[f"fpga.static.{name}"] = getattr(self.fpga.static, name).value
        return out

    def with_constants(self, values_si: dict[str, float], note: str) -> HardwareProfile:
        """A copy with the given linear constants (dotted path -> SI value) replaced; ``note`` goes into
        each replaced constant's source."""
        data = dataclasses.asdict(self)
        for path, v in values_si.items():
            node = data
            *parents, leaf = path.split(".")
            for key in parents:
                node = node[key]
            factor = 1e-12 if "_pj" in leaf else 1.0
            node[leaf] = {"value": v / factor, "source": f"{note}; was {node[leaf]['value']:.6g}"}
        return validated(HardwareProfile, data)


def bundled_profiles() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PROFILE_DIR.glob("*.yaml"))}


_CACHE: dict[str, HardwareProfile] = {}


def load_profile(name_or_path: str | Path | HardwareProfile) -> HardwareProfile:
    """A bundled profile by name (``zedboard``) or a profile YAML file by path."""
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    s = str(name_or_path)
    if s in _CACHE:
        return _CACHE[s]
    bundled = bundled_profiles()
    path = bundled_or_path("profile", s, bundled)
    from .parse_cache import cached_parse

    prof = cached_parse(path, lambda: load_model(HardwareProfile, path))
    if s in bundled:  # files given by path are re-read: the user may be editing them
        _CACHE[s] = prof
    return prof
