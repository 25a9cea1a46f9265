"""Explicit unit table for power-log columns: every column's unit is read from its header or given by the
user, converted to SI by a factor from this table, and an unknown unit is an error naming the column."""
from __future__ import annotations

import re

from ..errors import E2simError

# quantity -> unit spelling -> factor to the SI unit (s, W, V, A)
UNITS: dict[str, dict[str, float]] = {
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0},
    "power": {"W": 1.0, "mW": 1e-3, "uW": 1e-6, "µW": 1e-6, "kW": 1e3},
    "voltage": {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "µV": 1e-6, "kV": 1e3},
    "current": {"A": 1.0, "mA": 1e-3, "uA": 1e-6, "µA": 1e-6},
}
# time columns may instead hold calendar timestamps (ISO 8601 or "YYYY-mm-dd HH:MM:SS.ffffff")
DATETIME_UNIT = "datetime"

_BRACKET = re.compile(r"^(?P<name>.*?)\s*[\[(](?P<unit>[^\])]*)[\])]\s*$")


def header_unit(header: str) -> str | None:
    """The unit written in a column header: ``P[mW]``, ``Voltage (V)`` or a ``_mW`` suffix; None if none."""
    m = _BRACKET.match(header.strip())
    if m:
        return m.group("unit").strip()
    if "_" in header:
        suffix = header.rsplit("_", 1)[1]
        if any(suffix in table for table in UNITS.values()):
            return suffix
    return None


def si_factor(quantity: str, unit: str | None, column: str) -> float:
    """Factor converting ``column`` (holding ``quantity`` in ``unit``) to SI; E2simError if unknown."""
    table = UNITS[quantity]
    if unit is None:
        raise E2simError(
            f"column {column!r}: no unit for its {quantity} (write it in the header, e.g. {column}[{next(iter(table))}],"
            f" or in --column-map as {quantity}={column}:{next(iter(table))})"
        )
    if unit not in table:
        raise E2simError(
            f"column {column!r}: unknown {quantity} unit {unit!r} (known: {', '.join(table)})"
        )
    return table[unit]
