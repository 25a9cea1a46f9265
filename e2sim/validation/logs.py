"""Power-log readers: PYNQ DataRecorder CSV, INA219/INA226 logger CSV, USB power-meter (pyummeter) CSV and
generic CSV, all into one canonical long table (one row per sample per rail):

    timestamp_s  float  seconds since the earliest sample of the log
    rail         str    the measured supply rail ("5V", "bus", "usb", ...)
    voltage_V    float  rail voltage (NaN where the log has none)
    current_A    float  rail current (NaN where the log has none)
    power_W      float  rail power; V x I where the log gives no power column
    mark         int    window label (PYNQ ``Mark``, a mapped ``mark`` column, or 0 for the whole log)

Every bad input is an E2simError that names the file and the column or row, never a silent repair:
non-numeric values and NaN, negative current/power/voltage (``allow_negative`` keeps them, for sensors
whose offset reads slightly below zero at idle), unsorted timestamps (``sort`` sorts them instead),
duplicated timestamps, gaps longer than ``max_gap_s`` (default: 10 x the rail's median sampling
interval), missing columns and unknown units.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import read_text
from ..errors import E2simError
from .units import DATETIME_UNIT, header_unit, si_factor

CANONICAL = ("timestamp_s", "rail", "voltage_V", "current_A", "power_W", "mark")
LOG_FORMATS = ("pynq", "ina", "usb", "csv")
GAP_FACTOR = 10.0  # default gap bound, in median sampling intervals: 10 x survives a jittery polling thread
ROLES = ("time", "power", "voltage", "current", "rail", "mark")
MAX_MARK = 2**31
MAX_SI = {"time": 1e10, "power": 1e6, "voltage": 1e6, "current": 1e6}  # s (~300 years), W, V, A


@dataclass(frozen=True)
class LogChecks:
    """How strictly a log is checked. Defaults fail on every defect; each option relaxes one, as named."""

    max_gap_s: float | None = None  # None: GAP_FACTOR x the rail's median sampling interval
    sort: bool = False  # sort unsorted timestamps instead of failing
    allow_negative: bool = False  # keep negative current/power/voltage readings instead of failing


# ---------------------------------------------------------------------------------------------- helpers
def _read_table(path: Path, sep: str) -> pd.DataFrame:
    """CSV with '#' comment lines (e.g. '# synthetic: ...') skipped; all cells read as strings."""
    lines = [ln for ln in read_text(path).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise E2simError(f"{path}: empty log (no header line)")
    try:
        df = pd.read_csv(io.StringIO("\n".join(lines)), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise E2simError(f"{path}: cannot parse as {sep!r}-separated CSV: {str(exc).splitlines()[0]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise E2simError(f"{path}: log has a header but no samples")
    return df


def _missing(path: Path, what: str, df: pd.DataFrame) -> E2simError:
    return E2simError(f"{path}: missing column {what} (columns: {', '.join(map(str, df.columns))})")


def _bad_row(path: Path, column: str, mask: np.ndarray, df: pd.DataFrame, problem: str, hint: str = "") -> E2simError:
    i = int(np.flatnonzero(mask)[0])
    return E2simError(
        f"{path}: column {column!r}: {problem} at data row {i + 1} (value {df[column].iloc[i]!r}); "
        f"{int(mask.sum())} such row(s){hint}"
    )


def _numeric(path: Path, df: pd.DataFrame, column: str, quantity: str, unit: str | None, checks: LogChecks) -> np.ndarray:
    """One column converted to SI floats; non-numeric, NaN and (for V/I/P) negative values are errors."""
    try:
        factor = si_factor(quantity, unit, column)
    except E2simError as exc:
        raise E2simError(f"{path}: {exc}") from None
    raw = df[column].str.strip()
    vals = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    nan_text = raw.str.lower().isin(["", "nan", "na", "n/a", "null", "none"]).to_numpy()
    bad = np.isnan(vals) & ~nan_text
    if bad.any():
        raise _bad_row(path, column, bad, df, "not a number")
    if np.isnan(vals).any():
        raise _bad_row(path, column, np.isnan(vals), df, "missing value (NaN)")
    if not np.isfinite(vals).all():
        raise _bad_row(path, column, ~np.isfinite(vals), df, "infinite value")
    if quantity != "time" and not checks.allow_negative and (vals < 0).any():
        raise _bad_row(path, column, vals < 0, df, f"negative {quantity}", "; --allow-negative keeps them")
    si = vals * factor
    # Physical bounds (SI) so that the integration's products stay finite: no board log reaches them.
    big = np.abs(si) > MAX_SI[quantity]
    if big.any():
        raise _bad_row(path, column, big, df, f"{quantity} beyond {MAX_SI[quantity]:g} (SI units)")
    return si


def _timestamps(path: Path, df: pd.DataFrame, column: str, unit: str | None, checks: LogChecks) -> np.ndarray:
    """Seconds: since the earliest sample for calendar timestamps, the log's own zero for numeric ones."""
    if unit == DATETIME_UNIT:
        raw = df[column].str.strip()
        empty = (raw == "").to_numpy()
        if empty.any():
            raise _bad_row(path, column, empty, df, "missing timestamp")
        ts = pd.to_datetime(raw, errors="coerce", format="mixed")
        bad = ts.isna().to_numpy()
        if bad.any():
            raise _bad_row(path, column, bad, df, "not a date/time")
        if getattr(ts.dt, "tz", None) is not None:
            ts = ts.dt.tz_convert(None)
        # relative to the earliest sample in exact integer time first: epoch seconds as float64 lose ~0.1 us
        return ((ts - ts.min()) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
    return _numeric(path, df, column, "time", unit, checks)


def _check_rail_times(path: Path, t: np.ndarray, rail: str, checks: LogChecks) -> np.ndarray:
    """Order of one rail's samples after the timestamp checks (identity unless ``checks.sort``)."""
    order = np.arange(len(t))
    d = np.diff(t)
    if (d < 0).any():
        if not checks.sort:
            i = int(np.flatnonzero(d < 0)[0])
            raise E2simError(
                f"{path}: rail {rail!r}: timestamps not increasing at data row {i + 2} "
                f"({t[i + 1]:.6g} s after {t[i]:.6g} s); pass --sort to sort them"
            )
        order = np.argsort(t, kind="stable")
        d = np.diff(t[order])
    if (d == 0).any():
        i = int(np.flatnonzero(d == 0)[0])
        raise E2simError(
            f"{path}: rail {rail!r}: duplicated timestamp {t[order][i]:.9g} s "
            f"({int((d == 0).sum())} duplicate(s)); a sample time must be unique"
        )
    if len(d):
        bound = checks.max_gap_s if checks.max_gap_s is not None else GAP_FACTOR * float(np.median(d))
        if (d > bound).any():
            i = int(np.argmax(d))
            ts = t[order]
            raise E2simError(
                f"{path}: rail {rail!r}: gap of {d[i]:.6g} s between samples at {ts[i]:.6g} s and "
                f"{ts[i + 1]:.6g} s exceeds the bound {bound:.6g} s (set --max-gap-s to accept it)"
            )
    return order


def _marks(path: Path, df: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.zeros(len(df), dtype=np.int64)
    vals = pd.to_numeric(df[column].str.strip(), errors="coerce").to_numpy(dtype=float)
    # A mark is a label: an integer of at most 2^31 (a float beyond int64 would wrap in the cast).
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(vals) | (vals != np.round(vals)) | (np.abs(vals) > MAX_MARK)
    if bad.any():
        raise _bad_row(path, column, bad, df, "mark is not an integer", " (a mark is an integer within +-2^31)")
    return vals.astype(np.int64)


def _rail_frame(t, rail, v, i, p, mark) -> pd.DataFrame:
    n = len(t)
    nan = np.full(n, np.nan)
    v = nan if v is None else v
    i = nan if i is None else i
    if p is None:
        if np.isnan(v).all() or np.isnan(i).all():
            raise ValueError("a rail needs power, or voltage and current")  # callers check first
        p = v * i
    return pd.DataFrame({"timestamp_s": t, "rail": rail, "voltage_V": v, "current_A": i, "power_W": p, "mark": mark})


def _finish(path: Path, rails: list[pd.DataFrame], checks: LogChecks) -> pd.DataFrame:
    """Per-rail timestamp checks, then one canonical table with times relative to the earliest sample."""
    parts = []
    for fr in rails:
        order = _check_rail_times(path, fr["timestamp_s"].to_numpy(), str(fr["rail"].iloc[0]), checks)
        parts.append(fr.iloc[order])
    out = pd.concat(parts, ignore_index=True)
    out["timestamp_s"] = out["timestamp_s"] - out["timestamp_s"].min()
    out["mark"] = out["mark"].astype(np.int64)
    return out.loc[:, list(CANONICAL)]


# ---------------------------------------------------------------------------------------------- readers
_PYNQ_COL = re.compile(r"^(?P<rail>.+)_(?P<kind>power|voltage|current|temperature)$")
_PYNQ_UNITS = {"power": "W", "voltage": "V", "current": "A"}


def read_pynq(path: Path, checks: LogChecks) -> pd.DataFrame:
    """``DataRecorder.frame.to_csv()``: first column the timestamp index, ``Mark``, then
    ``<rail>_power|voltage|current`` in W, V, A (``_temperature`` columns are ignored). Wide -> long."""
    df = _read_table(path, ",")
    if df.columns[0].startswith("Unnamed:"):  # to_csv() of an unnamed DatetimeIndex leaves the header empty
        df = df.rename(columns={df.columns[0]: "index"})
    tcol = df.columns[0]
    if "Mark" not in df.columns:
        raise _missing(path, "'Mark'", df)
    sensors: dict[str, dict[str, str]] = {}
    for c in df.columns[1:]:
        if c == "Mark":
            continue
        m = _PYNQ_COL.match(c)
        if m is None:
            raise E2simError(f"{path}: unexpected column {c!r}: a PYNQ DataRecorder column is <rail>_power|voltage|current")
        if m.group("kind") != "temperature":
            sensors.setdefault(m.group("rail"), {})[m.group("kind")] = c
    if not sensors:
        raise _missing(path, "<rail>_power (or <rail>_voltage and <rail>_current)", df)
    numeric_t = pd.to_numeric(df[tcol].str.strip(), errors="coerce").notna().all()
    t = _timestamps(path, df, tcol, "s" if numeric_t else DATETIME_UNIT, checks)
    mark = _marks(path, df, "Mark")
    rails = []
    for rail, cols in sensors.items():
        if "power" not in cols and not {"voltage", "current"} <= cols.keys():
            raise _missing(path, f"'{rail}_power' (or '{rail}_voltage' and '{rail}_current')", df)
        q = {k: _numeric(path, df, c, k, _PYNQ_UNITS[k], checks) for k, c in cols.items()}
        rails.append(_rail_frame(t, rail, q.get("voltage"), q.get("current"), q.get("power"), mark))
    return _finish(path, rails, checks)


def _find(df: pd.DataFrame, *prefixes: str) -> str | None:
    """First column whose name (unit stripped, lower case) starts with one of ``prefixes``, in order."""
    for pre in prefixes:
        for c in df.columns:
            if re.split(r"[\[(]", c, maxsplit=1)[0].strip().lower().startswith(pre):
                return c
    return None


def read_ina(path: Path, checks: LogChecks, rail: str = "bus") -> pd.DataFrame:
    """INA219/INA226 logger CSV, e.g. ``Timestamp[ms],BusV[V],ShuntV[mV],LoadV[V],Current[mA]``; units
    from the headers. voltage_V is the bus voltage (the load side of the shunt, which the INA's own power
    register uses); a ``Power[..]`` column, if any, is taken as is, else power = bus voltage x current."""
    df = _read_table(path, ",")
    tcol, icol, vcol, pcol = _find(df, "timestamp", "time"), _find(df, "current"), _find(df, "busv", "bus"), _find(df, "power")
    for what, col in (("Timestamp[unit]", tcol), ("Current[unit]", icol), ("BusV[unit]", vcol)):
        if col is None:
            raise _missing(path, what, df)
    t = _timestamps(path, df, tcol, header_unit(tcol), checks)
    i = _numeric(path, df, icol, "current", header_unit(icol), checks)
    v = _numeric(path, df, vcol, "voltage", header_unit(vcol), checks)
    p = _numeric(path, df, pcol, "power", header_unit(pcol), checks) if pcol else None
    return _finish(path, [_rail_frame(t, rail, v, i, p, _marks(path, df, None))], checks)


_USB_COLS = {"voltage": "Voltage", "current": "Intensity", "power": "Power"}  # name prefixes; units from headers


def read_usb(path: Path, checks: LogChecks, rail: str = "usb") -> pd.DataFrame:
    """pyummeter CSV (RDTech UM24C/UM25C/UM34C), ';'-separated: ``Date;Voltage (V);Intensity (A);Power (W);...``.
    The meter's record/capacity/energy counters and other columns are not used (they are meter state)."""
    df = _read_table(path, ";")
    cols = {k: _find(df, pre.lower()) for k, pre in _USB_COLS.items()}
    for k, c in [("time", "Date" if "Date" in df.columns else None), *cols.items()]:
        if c is None:
            raise _missing(path, f"'{_USB_COLS.get(k, 'Date')} (unit)'" if k != "time" else "'Date'", df)
    t = _timestamps(path, df, "Date", DATETIME_UNIT, checks)
    q = {k: _numeric(path, df, c, k, header_unit(c), checks) for k, c in cols.items()}
    return _finish(path, [_rail_frame(t, rail, q["voltage"], q["current"], q["power"], _marks(path, df, None))], checks)


def parse_column_map(spec: str | None) -> dict[str, tuple[str, str | None]]:
    """``time=t_s,power=P:mW`` -> {role: (column, unit or None)}; roles: time, power, voltage, current,
    rail, mark. A unit after ':' overrides the header's; ``time=Date:datetime`` reads calendar times."""
    if not spec:
        return {}
    out: dict[str, tuple[str, str | None]] = {}
    for item in spec.split(","):
        role, sep, rest = item.partition("=")
        role = role.strip()
        if not sep or not rest.strip():
            raise E2simError(f"--column-map: {item!r} is not ROLE=COLUMN[:UNIT]")
        if role not in ROLES:
            raise E2simError(f"--column-map: unknown role {role!r} (roles: {', '.join(ROLES)})")
        if role in out:
            raise E2simError(f"--column-map: role {role!r} given twice")
        col, _, unit = rest.partition(":")
        out[role] = (col.strip(), unit.strip() or None)
    return out


def read_generic(path: Path, checks: LogChecks, column_map: dict[str, tuple[str, str | None]] | None = None,
                 rail: str = "total") -> pd.DataFrame:
    """Any CSV (',' or ';') with a time column and power or voltage+current columns. Without a column map,
    columns are found by name (time/timestamp/t, power/p, voltage/v, current/i, rail, mark; unit in
    brackets or a _unit suffix stripped). Units come from the map, else from the header."""
    header = next((ln for ln in read_text(path).splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    df = _read_table(path, ";" if header.count(";") > header.count(",") else ",")
    cmap = dict(column_map or {})
    if not cmap:
        names = {"time": ("time", "timestamp", "t"), "power": ("power", "p"), "voltage": ("voltage", "v"),
                 "current": ("current", "i"), "rail": ("rail",), "mark": ("mark",)}
        for c in df.columns:
            base = re.split(r"[\[(]", c, maxsplit=1)[0].strip()
            suffix = header_unit(c)
            if suffix and base == c and c.endswith("_" + suffix):
                base = c[: -len(suffix) - 1]
            for role, keys in names.items():
                if base.lower() in keys and role not in cmap:
                    cmap[role] = (c, None)
    for role, (col, _) in cmap.items():
        if col not in df.columns:
            raise _missing(path, f"{col!r} (mapped to {role})", df)
    if "time" not in cmap:
        raise _missing(path, "for time (map it with --column-map time=COLUMN)", df)
    if "power" not in cmap and not {"voltage", "current"} <= cmap.keys():
        raise _missing(path, "for power, or for voltage and current (map with --column-map)", df)

    def unit(role: str) -> str | None:
        col, u = cmap[role]
        return u if u is not None else header_unit(col)

    t = _timestamps(path, df, cmap["time"][0], unit("time"), checks)
    q = {r: _numeric(path, df, cmap[r][0], r, unit(r), checks) for r in ("power", "voltage", "current") if r in cmap}
    mark = _marks(path, df, cmap["mark"][0] if "mark" in cmap else None)
    rail_col = df[cmap["rail"][0]].str.strip().to_numpy() if "rail" in cmap else np.full(len(df), rail, dtype=object)
    if (rail_col == "").any():
        raise _bad_row(path, cmap["rail"][0], rail_col == "", df, "empty rail name")
    frames = []
    for name in pd.unique(rail_col):
        sel = rail_col == name
        frames.append(_rail_frame(t[sel], str(name), q["voltage"][sel] if "voltage" in q else None,
                                  q["current"][sel] if "current" in q else None,
                                  q["power"][sel] if "power" in q else None, mark[sel]))
    return _finish(path, frames, checks)


def read_log(path: str | Path, fmt: str, *, column_map: str | dict | None = None, rail: str | None = None,
             checks: LogChecks = LogChecks()) -> pd.DataFrame:
    """Read a power log of format ``fmt`` (pynq, ina, usb, csv) into the canonical table."""
    path = Path(path)
    if fmt not in LOG_FORMATS:
        raise E2simError(f"unknown log format {fmt!r} (formats: {', '.join(LOG_FORMATS)})")
    if column_map and fmt != "csv":
        raise E2simError("--column-map applies to --format csv only")
    if checks.max_gap_s is not None and not checks.max_gap_s > 0:
        raise E2simError(f"--max-gap-s must be > 0, got {checks.max_gap_s}")
    if fmt == "pynq":
        return read_pynq(path, checks)
    if fmt == "ina":
        return read_ina(path, checks, rail or "bus")
    if fmt == "usb":
        return read_usb(path, checks, rail or "usb")
    cmap = parse_column_map(column_map) if isinstance(column_map, str) else column_map
    return read_generic(path, checks, cmap, rail or "total")
