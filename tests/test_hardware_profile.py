"""Hardware profiles: every constant sourced; unknown keys, negative energies and unit-less keys rejected."""
from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from e2sim.config import validate
from e2sim.errors import E2simError
from e2sim.profile import HardwareProfile, Sourced, bundled_profiles, load_profile
from e2sim.records import validated


def _raw(name="zedboard") -> dict:
    return yaml.safe_load(bundled_profiles()[name].read_text())


def _sourced_paths(node, path=()):
    """Paths of every {value, source} constant in a raw profile mapping."""
    if isinstance(node, dict):
        if set(node) == {"value", "source"}:
            yield path
            return
        for k, v in node.items():
            yield from _sourced_paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _sourced_paths(v, path + (i,))


def _get(node, path):
    for p in path:
        node = node[p]
    return node


ENERGY_PATHS = [p for p in _sourced_paths(_raw()) if str(p[-1]).endswith(("_pj", "_pj_per_bit", "_pj_per_bit2", "_pj_per_slice_cycle", "_pj_per_lut_op", "_pj_per_dsp_cycle", "_w"))]


def test_bundled_profiles_load_and_are_listed():
    assert set(bundled_profiles()) >= {"zedboard", "asic45nm"}
    z = load_profile("zedboard")
    assert z.array.rows_count.value * z.array.cols_count.value <= 220  # XC7Z020 DSP48E1 budget
    assert z.dram.bandwidth_bytes_per_s.value == 3.2e9
    # FPGA per-event energies, static power split (issue 11); the ASIC profile keeps Horowitz's figures.
    assert z.is_fpga and z.compute is None and z.static_power_w is None
    assert set(z.linear_constants()) >= {"fpga.energy.dsp_pj_per_slice_cycle", "fpga.static.ps_w",
                                         "fpga.static.board_w", "dram.read_pj_per_bit"}
    assert "ESTIMATE" in z.fpga.static.board_w.source or "calibrated" in z.fpga.static.board_w.source
    a = load_profile("asic45nm")
    assert a.compute.mac_fp32_pj.value == 4.6 and a.fpga is None


@pytest.mark.parametrize("name", ["zedboard", "asic45nm"])
def test_every_constant_has_a_source(name):
    raw = _raw(name)
    paths = list(_sourced_paths(raw))
    assert len(paths) >= 25
    for p in paths:
        assert len(_get(raw, p)["source"]) >= 8, p
    # No bare numbers anywhere: every number in the file sits inside a {value, source} pair.
    def bare(node, path=()):
        if isinstance(node, dict):
            if set(node) == {"value", "source"}:
                return
            for k, v in node.items():
                if k in ("max_bits", "schema_version", "calibration"):  # calibration: a fit's record (its
                    continue  # method says where every number comes from)
                yield from bare(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from bare(v, path + (i,))
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            yield path
    assert list(bare(raw)) == []


def _reject(raw, fragment):
    with pytest.raises(E2simError) as exc:
        validate(HardwareProfile, raw, "p.yaml")
    assert fragment in str(exc.value), str(exc.value)
    return str(exc.value)


def test_missing_source_rejected_with_key():
    raw = _raw()
    del raw["dram"]["read_pj_per_bit"]["source"]
    _reject(raw, "dram.read_pj_per_bit.source: missing required key")


def test_bare_number_rejected():
    raw = _raw()
    raw["fpga"]["energy"]["dsp_pj_per_slice_cycle"] = 4.6
    _reject(raw, "fpga.energy.dsp_pj_per_slice_cycle")


def test_key_without_unit_rejected():
    raw = _raw()
    raw["array"]["clock"] = raw["array"].pop("clock_hz")
    # The unit-carrying name is required, so the error names it (the unit-less one is an unknown key).
    _reject(raw, "array.clock_hz: missing required key")
    raw = _raw()
    raw["array"]["clock"] = {"value": 1e8, "source": "a source long enough"}
    _reject(raw, "array.clock: unknown key")


def test_load_profile_from_file_names_file_and_key(tmp_path):
    raw = _raw()
    raw["buffers"]["ofmap"]["read_pj_per_bit"]["value"] = -1
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(raw))
    with pytest.raises(E2simError, match=r"bad\.yaml: buffers\.ofmap\.read_pj_per_bit\.value"):
        load_profile(f)


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(path=st.sampled_from(ENERGY_PATHS), value=st.floats(max_value=-1e-9, min_value=-1e6))
def test_negative_energy_rejected_with_key(path, value):
    raw = copy.deepcopy(_raw())
    _get(raw, path)["value"] = value
    _reject(raw, ".".join(str(p) for p in path) + ".value")


SECTIONS = [(), ("array",), ("buffers",), ("buffers", "ifmap"), ("dram",), ("fpga",), ("fpga", "energy"),
            ("fpga", "static", "ps_w"), ("fpga", "units")]


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(section=st.sampled_from(SECTIONS), key=st.from_regex(r"[a-z][a-z_]{2,12}", fullmatch=True))
def test_unknown_key_rejected_with_key(section, key):
    raw = copy.deepcopy(_raw())
    node = _get(raw, section)
    if key in node:
        return
    node[key] = 1
    _reject(raw, ".".join(section + (key,)) + ": unknown key")


def test_sourced_value_model():
    with pytest.raises(ValueError):  # pydantic's ValidationError
        validated(Sourced, {"value": 1.0, "source": ""})
