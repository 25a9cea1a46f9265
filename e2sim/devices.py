"""The FPGA device table (hardware_profiles/devices/fpga.yaml): one entry per device on a board, with its
node, resources, DRAM bandwidth, dynamic-energy factor relative to 28 nm 7-series, and static power split
(PS, PL static, DDR, board). Profiles name their device (``fpga.device``); published designs name theirs.

Every figure is a ``{value, source}`` pair (``profile.Sourced``), so one constant model, with its bounds,
applies to device figures and profile constants alike.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from .config import load_model
from .errors import E2simError
from .profile import FpgaStatic, Sourced, _Strict as Strict
from .records import Check, record
from .workload import PKG_ROOT

DEVICE_TABLE = PKG_ROOT / "hardware_profiles" / "devices" / "fpga.yaml"
Family = Literal["zynq7000", "zynq_usplus", "kintex_ultrascale", "virtex7", "stratix5", "arria10", "cyclone5"]


@record
class Device(Strict):
    part: Annotated[str, Check(min_length=2)]
    board: Annotated[str, Check(min_length=2)]
    family: Family
    node_nm: Annotated[int, Check(ge=5, le=90)]
    dsp_count: Annotated[int, Check(ge=1)]
    bram_bytes: Annotated[int, Check(ge=1)]
    lut_count: Annotated[int, Check(ge=1)]
    dram_bandwidth_bytes_per_s: Sourced
    dynamic_energy_ratio: Sourced  # per-event dynamic energy relative to 28 nm 7-series at 1.0 V
    static: FpgaStatic  # the same split as a profile's fpga.static


DeviceTable = dict[str, Device]


@lru_cache(maxsize=1)
def device_table() -> dict[str, Device]:
    return load_model(DeviceTable, DEVICE_TABLE)


def device_entry(key: str, where: str = "device") -> Device:
    table = device_table()
    if key not in table:
        raise E2simError(f"{where}: unknown device {key!r} (known: {', '.join(table)})")
    return table[key]
