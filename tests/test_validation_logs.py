"""Power-log readers: hand-written files of each format, their malformed variants, and random corrupt logs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e2sim.errors import E2simError
from e2sim.validation.integrate import window_energy
from e2sim.validation.logs import CANONICAL, LogChecks, parse_column_map, read_log
from e2sim.validation.units import UNITS, header_unit

DATA = Path(__file__).parent / "data" / "logs"


def variant(tmp_path: Path, name: str, old: str, new: str, count: int = 1) -> Path:
    """A malformed copy of fixture ``name`` with ``old`` replaced by ``new`` (which must occur)."""
    text = (DATA / name).read_text(encoding="utf-8")
    assert old in text, old
    p = tmp_path / name
    p.write_text(text.replace(old, new, count), encoding="utf-8")
    return p


# ---------------------------------------------------------------------------------------------- PYNQ
def test_pynq_wide_to_long():
    log = read_log(DATA / "pynq.csv", "pynq")
    assert tuple(log.columns) == CANONICAL
    assert sorted(log["rail"].unique()) == ["5V", "INT"]  # temperature column ignored
    v5 = log[log["rail"] == "5V"]
    np.testing.assert_allclose(v5["timestamp_s"], [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], atol=1e-9)
    np.testing.assert_allclose(v5["power_W"], [2.0, 2.2, 3.0, 3.4, 3.0, 2.0, 2.0])
    np.testing.assert_allclose(v5["current_A"], [0.4, 0.44, 0.6, 0.68, 0.6, 0.4, 0.4])
    assert v5["mark"].tolist() == [0, 0, 1, 1, 1, 2, 2]
    intr = log[log["rail"] == "INT"]
    assert intr["voltage_V"].isna().all() and intr["current_A"].isna().all()


def test_pynq_window_energy_by_hand():
    t = window_energy(read_log(DATA / "pynq.csv", "pynq"), [1])
    e = dict(zip(t["rail"], t["energy_j"]))
    # 5V: 0.1*(3.0+3.4)/2 + 0.1*(3.4+3.0)/2 = 0.64 J; INT: 0.1*(0.9+1.1)/2*2 = 0.2 J
    assert e["5V"] == pytest.approx(0.64)
    assert e["INT"] == pytest.approx(0.2)
    assert e["total"] == pytest.approx(0.84)


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("12:00:00.300,1", "12:00:00.050,1", "not increasing at data row 4"),
        ("12:00:00.300,1", "12:00:00.200,1", "duplicated timestamp"),
        ("12:00:00.600,2", "12:00:09.600,2", "gap of 9"),
        (",3.4,5.0,0.68", ",nan,5.0,0.68", "'5V_power': missing value (NaN) at data row 4"),
        (",3.4,5.0,0.68", ",,5.0,0.68", "'5V_power': missing value (NaN) at data row 4"),
        ("5.0,0.68", "5.0,-0.68", "'5V_current': negative current"),
        (",Mark,", ",Marker,", "missing column 'Mark'"),
        (",3.4,5.0", ",3.4W,5.0", "'5V_power': not a number at data row 4"),
        ("INT_temperature", "INT_temp", "unexpected column 'INT_temp'"),
        ("5V_power,5V_voltage,5V_current", "5V_power,5V_voltage,5V_watts", "unexpected column '5V_watts'"),
        ("12:00:00.400,1", "yesterday,1", "'index': not a date/time at data row 5"),
        (",1,3.4", ",1.5,3.4", "'Mark': mark is not an integer at data row 4"),
    ],
)
def test_pynq_malformed(tmp_path, old, new, message):
    with pytest.raises(E2simError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_log(variant(tmp_path, "pynq.csv", old, new), "pynq")


def test_pynq_rail_without_power_needs_voltage_and_current(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text(",Mark,5V_voltage\n0.0,0,5.0\n0.1,0,5.0\n")
    with pytest.raises(E2simError, match=r"missing column '5V_power' \(or '5V_voltage' and '5V_current'\)"):
        read_log(p, "pynq")


def test_pynq_numeric_index_and_sort_option(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text(",Mark,5V_voltage,5V_current\n10.2,0,5.0,0.2\n10.0,0,5.0,0.1\n10.1,0,5.0,0.3\n")
    with pytest.raises(E2simError, match="pass --sort"):
        read_log(p, "pynq")
    log = read_log(p, "pynq", checks=LogChecks(sort=True))
    np.testing.assert_allclose(log["timestamp_s"], [0, 0.1, 0.2], atol=1e-12)
    np.testing.assert_allclose(log["power_W"], [0.5, 1.5, 1.0])  # V x I, in time order


def test_negative_allowed_is_kept_as_is(tmp_path):
    p = variant(tmp_path, "pynq.csv", "5.0,0.68", "5.0,-0.68")
    log = read_log(p, "pynq", checks=LogChecks(allow_negative=True))
    assert (log["current_A"] == -0.68).sum() == 1


# ---------------------------------------------------------------------------------------------- INA
def test_ina_units_converted():
    log = read_log(DATA / "ina.csv", "ina")
    np.testing.assert_allclose(log["timestamp_s"], [0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(log["current_A"], [0.2, 0.25, 0.3, 0.2])
    np.testing.assert_allclose(log["voltage_V"], [12.0, 12.0, 11.9, 12.0])  # bus voltage, not LoadV
    np.testing.assert_allclose(log["power_W"], [2.4, 3.0, 3.57, 2.4])
    assert set(log["rail"]) == {"bus"} and set(log["mark"]) == {0}
    e = window_energy(log)["energy_j"].item()
    assert e == pytest.approx(0.5 * (2.4 + 3.0) / 2 + 0.5 * (3.0 + 3.57) / 2 + 0.5 * (3.57 + 2.4) / 2)


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("Current[mA]", "Current[furlongs]", "column 'Current[furlongs]': unknown current unit 'furlongs'"),
        ("Current[mA]", "Current", "column 'Current': no unit for its current"),
        ("Timestamp[ms]", "Timestamp[days]", "unknown time unit 'days'"),
        (",Current[mA]", "", "missing column Current"),
        ("BusV[V],", "", "missing column BusV"),
        ("2000,11.9", "1200,11.9", "not increasing at data row 3"),
        ("2000,11.9", "1500,11.9", "duplicated timestamp 1.5 s"),
        ("2500,12.0", "99000,12.0", "gap of 97 s"),
        ("11.903,300.0", "11.903,", "'Current[mA]': missing value"),
        ("11.903,300.0", "11.903,-300.0", "'Current[mA]': negative current at data row 3"),
    ],
)
def test_ina_malformed(tmp_path, old, new, message):
    with pytest.raises(E2simError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_log(variant(tmp_path, "ina.csv", old, new), "ina")


def test_ina_gap_bound_option(tmp_path):
    p = variant(tmp_path, "ina.csv", "2500,12.0", "9000,12.0")
    with pytest.raises(E2simError, match="exceeds the bound 5 s"):  # 10 x median interval of 0.5 s
        read_log(p, "ina")
    log = read_log(p, "ina", checks=LogChecks(max_gap_s=10.0))
    assert log["timestamp_s"].max() == pytest.approx(8.0)


# ---------------------------------------------------------------------------------------------- USB
def test_usb_meter():
    log = read_log(DATA / "usb.csv", "usb")
    np.testing.assert_allclose(log["timestamp_s"], [0, 1, 2, 3])
    np.testing.assert_allclose(log["power_W"], [2.55, 3.06, 4.04, 2.55])  # the meter's own power column
    np.testing.assert_allclose(log["voltage_V"], [5.10, 5.10, 5.05, 5.10])
    assert window_energy(log)["energy_j"].item() == pytest.approx((2.55 + 3.06) / 2 + (3.06 + 4.04) / 2 + (4.04 + 2.55) / 2)


@pytest.mark.parametrize(
    "old,new,message",
    [
        (";Intensity (A);", ";Current (A);", "missing column 'Intensity (unit)'"),
        ("12:00:02;", "12:00:01;", "duplicated timestamp"),
        ("12:00:02;", "12:00:00.5;", "not increasing at data row 3"),
        ("12:00:03;", "13:00:03;", "gap of 3601 s"),
        ("5.05;0.800;4.040", "5.05;0.800;", "'Power (W)': missing value"),
        ("5.05;0.800", "5.05;-0.800", "negative current"),
        ("Power (W)", "Power (hp)", "unknown power unit 'hp'"),
        ("2024-05-01 12:00:01;", ";", "'Date': missing timestamp at data row 2"),
    ],
)
def test_usb_malformed(tmp_path, old, new, message):
    with pytest.raises(E2simError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_log(variant(tmp_path, "usb.csv", old, new), "usb")


# ---------------------------------------------------------------------------------------------- generic CSV
def test_generic_with_column_map():
    log = read_log(DATA / "generic.csv", "csv", column_map="time=t_s,power=P_mW,mark=phase")
    np.testing.assert_allclose(log["power_W"], [1, 1, 3, 5, 3, 1])
    assert log["mark"].tolist() == [0, 0, 1, 1, 1, 2]
    e = window_energy(log, [1])["energy_j"].item()
    assert e == pytest.approx(0.5 * (3 + 5) / 2 * 2)


def test_generic_unit_in_map_overrides_header(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("when;watts;V;I\n0;1;5;0.2\n2;1;5;0.4\n")
    log = read_log(p, "csv", column_map="time=when:ms,voltage=V:V,current=I:A")
    np.testing.assert_allclose(log["timestamp_s"], [0, 0.002])
    np.testing.assert_allclose(log["power_W"], [1.0, 2.0])


def test_generic_autodetects_named_columns(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("time[s],rail,power[W]\n0,a,1\n0,b,2\n1,a,3\n1,b,4\n")
    log = read_log(p, "csv")
    t = window_energy(log)
    assert dict(zip(t["rail"], t["energy_j"])) == pytest.approx({"a": 2.0, "b": 3.0, "total": 5.0})


@pytest.mark.parametrize(
    "spec,message",
    [
        ("time=t_s,power=P_mW:kJ", "unknown power unit 'kJ'"),
        ("time=t_s,power=Watts", "missing column 'Watts' \\(mapped to power\\)"),
        ("time=t_s,voltage=P_mW:V", "missing column for power, or for voltage and current"),
        ("time=t_s,watts=P_mW", "unknown role 'watts'"),
        ("time=t_s,power", "is not ROLE=COLUMN"),
        ("time=t_s,time=P_mW", "role 'time' given twice"),
        ("time=phase,power=P_mW", "column 'phase': no unit for its time"),
    ],
)
def test_generic_bad_column_map(spec, message):
    with pytest.raises(E2simError, match=message):
        read_log(DATA / "generic.csv", "csv", column_map=spec)


def test_generic_without_time_column(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("P[W]\n1\n2\n")
    with pytest.raises(E2simError, match="missing column for time"):
        read_log(p, "csv")


def test_file_level_errors(tmp_path):
    with pytest.raises(E2simError, match="cannot read file"):
        read_log(tmp_path / "absent.csv", "ina")
    (tmp_path / "e.csv").write_text("# only a comment\n")
    with pytest.raises(E2simError, match="empty log"):
        read_log(tmp_path / "e.csv", "csv")
    (tmp_path / "h.csv").write_text("Timestamp[ms],BusV[V],Current[mA]\n")
    with pytest.raises(E2simError, match="header but no samples"):
        read_log(tmp_path / "h.csv", "ina")
    with pytest.raises(E2simError, match="unknown log format 'xml'"):
        read_log(tmp_path / "h.csv", "xml")
    with pytest.raises(E2simError, match="--column-map applies to --format csv only"):
        read_log(DATA / "ina.csv", "ina", column_map="time=a")


def test_header_unit_parsing():
    assert header_unit("Timestamp[ms]") == "ms"
    assert header_unit("Voltage (V)") == "V"
    assert header_unit("P_mW") == "mW"
    assert header_unit("phase") is None
    assert parse_column_map("time=t:ms, power=P") == {"time": ("t", "ms"), "power": ("P", None)}


# ---------------------------------------------------------------------------------------------- corrupt logs
CORRUPTIONS = ("none", "swap", "dup", "nan", "neg", "gap", "unit", "drop", "text")


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(3, 25),
    seed=st.integers(0, 2**31 - 1),
    corruption=st.sampled_from(CORRUPTIONS),
    t_unit=st.sampled_from(sorted(UNITS["time"])),
    p_unit=st.sampled_from(sorted(UNITS["power"])),
)
def test_random_corrupt_logs_integrate_correctly_or_fail_clearly(tmp_path_factory, n, seed, corruption, t_unit, p_unit):
    """Either the reader accepts the file and the energy equals numpy's trapezoid of what the file says,
    or the file is invalid (by an independent check) and the reader raises E2simError."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.5, 1.5, n))  # seconds
    p = rng.uniform(0.1, 5.0, n)  # watts
    cells_t = [repr(float(x)) for x in t / UNITS["time"][t_unit]]
    cells_p = [repr(float(x)) for x in p / UNITS["power"][p_unit]]
    header = [f"time[{t_unit}]", f"power[{p_unit}]"]
    k = int(rng.integers(1, n))
    valid = True
    if corruption == "swap":
        cells_t[k - 1], cells_t[k] = cells_t[k], cells_t[k - 1]
        valid = False
    elif corruption == "dup":
        cells_t[k] = cells_t[k - 1]
        valid = False
    elif corruption == "nan":
        cells_p[k] = rng.choice(["nan", "", "NaN"])
        valid = False
    elif corruption == "neg":
        cells_p[k] = repr(-float(rng.uniform(0.1, 5.0)))
        valid = False
    elif corruption == "gap":
        shift = float(rng.uniform(0, 30.0))
        t[k:] += shift
        cells_t = [repr(float(x)) for x in t / UNITS["time"][t_unit]]
        d = np.diff(t)
        valid = bool(d.max() <= 10 * np.median(d) * (1 + 1e-9))
    elif corruption == "unit":
        header[1] = "power[furlongs]"
        valid = False
    elif corruption == "drop":
        header, cells_p = header[:1], None
        valid = False
    elif corruption == "text":
        cells_p[k] = "1.0.0"
        valid = False
    rows = [",".join(header)] + [
        ",".join([a] if cells_p is None else [a, b]) for a, b in zip(cells_t, cells_p or cells_t)
    ]
    path = tmp_path_factory.mktemp("corrupt") / "log.csv"
    path.write_text("\n".join(rows) + "\n")
    if not valid:
        with pytest.raises(E2simError):
            read_log(path, "csv")
        return
    # parse the cells back independently so the oracle integrates exactly what the file holds
    tt = np.array([float(x) for x in cells_t]) * UNITS["time"][t_unit]
    pp = np.array([float(x) for x in cells_p]) * UNITS["power"][p_unit]
    e = window_energy(read_log(path, "csv"))["energy_j"].item()
    assert e == pytest.approx(np.trapezoid(pp, tt), rel=1e-9)
