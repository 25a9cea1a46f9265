"""Hardware profiles: a typed, sourced description of an accelerator and its memories.

Every constant is a ``{value, source}`` pair (:class:`Sourced`): a profile whose constant lacks a
source, has an unknown key, a negative energy or a field name without a unit is rejected with the key path
named. Units live in the field names (``clock_hz``, ``read_pj_per_bit``); values are converted to SI by
the energy stage (pJ only appear here).

Energy of one MAC as a function of both operand widths (integer, 2..32 bits):
``mac_pj(a, b) = int_mult_pj_per_bit2 * a * b + int_add_pj_per_bit * max(a, b)``. A multiplier's area and
energy grow with the product of its operand widths and an adder's with its width; Horowitz (ISSCC'14)
gives 0.2 pJ for an 8x8 and 3.1 pJ for a 32x32 multiply (0.0031 and 0.0030 pJ/bit^2) and 0.03 / 0.1 pJ for
8- and 32-bit adds, which this form reproduces within 5 %. Floating point uses the fp16 / fp32 constants
(by the wider operand). The same add constants price the vector unit's element operations.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .config import Int, Real, bundled_or_path, load_model
from .workload import PKG_ROOT

PROFILE_DIR = PKG_ROOT / "hardware_profiles"
Dataflow = Literal["os", "ws", "is"]
DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")

# A field name must end in a unit (or be a count / a dimensionless factor named as such).
_UNIT_SUFFIX = re.compile(
    r"_(hz|w|j|pj|pj_per_bit|pj_per_bit2|bytes|bytes_per_s|bits|per_pe_per_cycle|count|fraction)$"
)


# Physical range of a constant by the unit its name ends in (upper bounds, all values >= 0): far beyond any
# real device, so that only typos and overflow bait (1e308) are refused, and every product the energy stage
# forms (counts below 2^62 times pJ per event, times 1e9 iterations) stays finite. First match wins.
_UNIT_RANGES: tuple[tuple[str, float, str], ...] = (
    ("_fraction", 1.0, ""),
    ("_bytes_per_s", 1e14, "B/s"),  # 100 TB/s
    ("_bytes", 1e13, "B"),
    ("_bits", 1e14, "bit"),
    ("_hz", 1e11, "Hz"),  # 100 GHz
    ("_per_pe_per_cycle", 1e3, "MACs"),
    ("_count", 1e8, ""),
    ("_w", 1e5, "W"),  # 100 kW
    ("_j", 1e12, "J"),
)
_PJ_MAX = 1e6  # pJ per event, per bit or per bit^2 (any *_pj* unit): a microjoule per operation


def constant_range(name: str) -> tuple[float, str]:
    """(upper bound, unit) of a profile constant named ``name``; inf where its unit is unknown."""
    if "_pj" in name:
        return _PJ_MAX, "pJ"
    return next(((hi, unit) for suffix, hi, unit in _UNIT_RANGES if name.endswith(suffix)), (float("inf"), ""))


class _Strict(BaseModel):
    # defer_build: validators are built on first validation, not at import (a profile read from the parse
    # cache is never validated again).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="after")
    def _physical_ranges(self):
        # Every {value, source} constant of every profile section, by its field name's unit.
        for name in type(self).model_fields:
            const = getattr(self, name)
            if isinstance(const, (Sourced, SourcedInt)):
                hi, unit = constant_range(name)
                if not const.value <= hi:
                    unit = f" {unit}" if unit else ""
                    raise ValueError(f"{name}: {const.value:g}{unit} is outside the physical range [0, {hi:g}]")
        return self


class Sourced(_Strict):
    """One constant with where it comes from: a finite number >= 0 (strict: `true` or "2" is no number)."""

    value: Real = Field(ge=0)
    source: str = Field(min_length=8, description="citation, or 'ESTIMATE: ...' with the reasoning")


class SourcedInt(_Strict):
    value: Int = Field(ge=1)
    source: str = Field(min_length=8)


class SourcedDataflow(_Strict):
    value: Dataflow
    source: str = Field(min_length=8)


class ThroughputRule(_Strict):
    """MACs one PE completes per cycle for integer operands of at most ``max_bits`` bits (both)."""

    max_bits: Int = Field(ge=2, le=32)
    macs_per_pe_per_cycle: Sourced


class Array(_Strict):
    rows_count: SourcedInt
    cols_count: SourcedInt
    dataflow: SourcedDataflow
    clock_hz: Sourced
    # Integer throughput by operand width: the first rule whose max_bits covers both operands applies.
    int_throughput: list[ThroughputRule] = Field(min_length=1)
    fp16_macs_per_pe_per_cycle: Sourced
    fp32_macs_per_pe_per_cycle: Sourced

    @model_validator(mode="after")
    def _check(self) -> Array:
        bits = [r.max_bits for r in self.int_throughput]
        if bits != sorted(bits) or len(set(bits)) != len(bits):
            raise ValueError("int_throughput: max_bits must be strictly increasing")
        if bits[-1] != 32:
            raise ValueError("int_throughput: the last rule must cover 32-bit operands (max_bits: 32)")
        for name in ("clock_hz", "fp16_macs_per_pe_per_cycle", "fp32_macs_per_pe_per_cycle"):
            if getattr(self, name).value <= 0:
                raise ValueError(f"{name}: must be positive")
        for i, r in enumerate(self.int_throughput):
            if r.macs_per_pe_per_cycle.value <= 0:
                raise ValueError(f"int_throughput.{i}.macs_per_pe_per_cycle: must be positive")
        return self


class Buffer(_Strict):
    size_bytes: Sourced
    read_pj_per_bit: Sourced
    write_pj_per_bit: Sourced


class Buffers(_Strict):
    ifmap: Buffer
    filter: Buffer
    ofmap: Buffer


class Dram(_Strict):
    bandwidth_bytes_per_s: Sourced
    read_pj_per_bit: Sourced
    write_pj_per_bit: Sourced

    @model_validator(mode="after")
    def _check(self) -> Dram:
        if self.bandwidth_bytes_per_s.value <= 0:
            raise ValueError("bandwidth_bytes_per_s: must be positive")
        return self


class Compute(_Strict):
    int_mult_pj_per_bit2: Sourced
    int_add_pj_per_bit: Sourced
    mac_fp16_pj: Sourced
    mac_fp32_pj: Sourced
    add_fp16_pj: Sourced
    add_fp32_pj: Sourced


class HardwareProfile(_Strict):
    schema_version: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    array: Array
    buffers: Buffers
    dram: Dram
    compute: Compute
    static_power_w: Sourced

    @model_validator(mode="after")
    def _units(self) -> HardwareProfile:
        for sub in (self.array, self.buffers.ifmap, self.buffers.filter, self.buffers.ofmap, self.dram,
                    self.compute):
            for name in type(sub).model_fields:
                if name in ("dataflow", "int_throughput"):
                    continue
                if not _UNIT_SUFFIX.search(name):
                    raise ValueError(f"{name}: field name has no unit suffix")
        return self

    # Linear constants, by dotted path, that calibration may fit (energy is linear in each).
    def linear_constants(self) -> dict[str, float]:
        """Value in SI units (J, J/bit, W) of every constant the energy is linear in."""
        pj = 1e-12
        c, b, d = self.compute, self.buffers, self.dram
        out = {
            "compute.int_mult_pj_per_bit2": c.int_mult_pj_per_bit2.value * pj,
            "compute.int_add_pj_per_bit": c.int_add_pj_per_bit.value * pj,
            "compute.mac_fp16_pj": c.mac_fp16_pj.value * pj,
            "compute.mac_fp32_pj": c.mac_fp32_pj.value * pj,
            "compute.add_fp16_pj": c.add_fp16_pj.value * pj,
            "compute.add_fp32_pj": c.add_fp32_pj.value * pj,
            "dram.read_pj_per_bit": d.read_pj_per_bit.value * pj,
            "dram.write_pj_per_bit": d.write_pj_per_bit.value * pj,
            "static_power_w": self.static_power_w.value,
        }
        for name in ("ifmap", "filter", "ofmap"):
            buf = getattr(b, name)
            out[f"buffers.{name}.read_pj_per_bit"] = buf.read_pj_per_bit.value * pj
            out[f"buffers.{name}.write_pj_per_bit"] = buf.write_pj_per_bit.value * pj
        return out


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
