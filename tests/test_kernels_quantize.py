"""Quantizer and MSB split vs a direct torch transcription of the official E2-Train formula (float32)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from e2sim.kernels.quantize import code_dtype, max_abs_range, msb_split, quantize, quantize_values


def official_codes(x: np.ndarray, m: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """models/quantize.py FPQuantizeFunction, transcribed: float32, clamp then round (half to even)."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    mt = torch.from_numpy(np.asarray(m, dtype=np.float32)).view(-1, *([1] * (xt.dim() - 1)))
    mn = -1.0 * mt if signed else 0.0
    delta = (mt - mn) / 2.0**bits
    q = xt.sub(mn).div(delta).clamp(0.0, 2.0**bits - 1).round()
    if signed:
        q = q - 2 ** (bits - 1)
    return q.numpy().astype(np.int64)


def official_msb(codes: np.ndarray, bits: int, msb_bits: int, signed: bool) -> np.ndarray:
    """EfficientFPQuantizeFunction's msb_output on the (uncentred) code, in float like the original."""
    zero = 2 ** (bits - 1) if signed else 0
    q = torch.from_numpy((codes.astype(np.int64) + zero).astype(np.float32))
    scale = 2.0 ** (bits - msb_bits)
    msb = q.div(scale).round().mul(scale).clamp(0.0, 2.0**bits - 1)
    return msb.numpy().astype(np.int64) - zero


def official_range(x: np.ndarray, mode: str) -> np.ndarray:
    """calculate_qparams: flatten (1,-1) per sample/channel, then mean over dim 0 (activations) or none."""
    xt = torch.from_numpy(x)
    if mode == "tensor":
        return xt.abs().max().reshape(1).numpy()
    rows = xt.abs().flatten(1, -1).max(-1)[0]
    return rows.numpy() if mode == "channel" else rows.mean(0).reshape(1).numpy()


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_codes_match_official_random(bits, signed):
    rng = np.random.default_rng(bits)
    x = (rng.standard_normal((6, 3, 5, 7)) * 3).astype(np.float32)
    m = max_abs_range(x, "channel")
    codes, delta = quantize(x, m, bits, signed)
    assert codes.dtype == code_dtype(bits, signed)
    np.testing.assert_array_equal(codes.astype(np.int64), official_codes(x, m, bits, signed))
    # the centred code times the step is the official dequantised value (exactly, for signed: q*delta - M)
    lo = -m if signed else 0 * m
    want = (official_codes(x, m, bits, signed) + (2 ** (bits - 1) if signed else 0)) * delta[:, None, None, None] \
        + lo[:, None, None, None]
    np.testing.assert_allclose(codes * delta[:, None, None, None].astype(np.float64), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("signed", [True, False])
def test_exact_ties_round_to_even(signed):
    bits = 8
    m = np.array([1.0], dtype=np.float32)
    delta = 2.0 / 256 if signed else 1.0 / 256
    lo = -1.0 if signed else 0.0
    k = np.arange(0, 255)
    x = ((k + 0.5) * delta + lo).astype(np.float32)  # exactly representable half-way points
    assert np.all(((x.astype(np.float64) - lo) / delta) % 1 == 0.5)
    codes, _ = quantize(x, m, bits, signed)
    q = codes.astype(np.int64) + (128 if signed else 0)
    assert np.all(q % 2 == 0)
    np.testing.assert_array_equal(codes, official_codes(x, m, bits, signed))


def test_zeros_and_all_equal():
    z = np.zeros((3, 4), np.float32)
    m = max_abs_range(z, "tensor")
    assert m[0] == 0
    codes, delta = quantize(z, m, 8, True)
    assert delta[0] == 0 and np.all(codes == 0)  # official gives NaN here (0/0): documented deviation
    codes, _ = quantize(z, m, 8, False)
    assert np.all(codes == 0)
    for c in (0.3, -0.3, 7.0):
        x = np.full((2, 5), c, np.float32)
        m = max_abs_range(x, "tensor")
        for signed in (True, False):
            codes, _ = quantize(x, m, 6, signed)
            np.testing.assert_array_equal(codes, official_codes(x, m, 6, signed))
    # all equal positive: the top of the range clamps to the largest code
    assert quantize(np.full(3, 2.0, np.float32), 2.0, 8, True)[0].tolist() == [127] * 3
    assert quantize(np.full(3, -2.0, np.float32), 2.0, 8, True)[0].tolist() == [-128] * 3


@pytest.mark.parametrize("scale", [1e-38, 1e-30, 1e-3, 1e5, 1e30, 1.5e38])
def test_extreme_ranges(scale):
    rng = np.random.default_rng(1)
    x = (rng.uniform(-1, 1, (4, 9)) * scale).astype(np.float32)
    m = max_abs_range(x, "channel")
    for bits in (2, 8, 16):
        for signed in (True, False):
            if signed and not np.isfinite(np.float32(2) * m).all():
                with pytest.raises(ValueError, match="2\\*max_value"):
                    quantize(x, m, bits, signed)
                continue
            np.testing.assert_array_equal(quantize(x, m, bits, signed)[0], official_codes(x, m, bits, signed))


def test_ranges_match_official():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(max_abs_range(x, "tensor"), official_range(x, "tensor"))
    np.testing.assert_array_equal(max_abs_range(x, "channel"), official_range(x, "channel"))
    a, b = max_abs_range(x, "sample_mean")[0], official_range(x, "sample_mean")[0]
    assert abs(a - b) <= np.spacing(b)  # float32 mean: one ulp at most (torch sums in float32)
    want = np.float32(np.abs(x).reshape(16, -1).max(1).astype(np.float64).mean())
    assert a == want


def test_bad_input():
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="bits"):
        quantize(x, 1.0, 1, True)
    with pytest.raises(ValueError, match="bits"):
        quantize(x, 1.0, 17, True)
    for mode in ("tensor", "channel", "sample_mean"):
        for bad in (np.nan, np.inf, -np.inf):
            with pytest.raises(ValueError, match="NaN"):
                max_abs_range(np.array([[1.0, 2.0], [-3.0, bad]], np.float32), mode)
    with pytest.raises(ValueError, match="range mode"):
        max_abs_range(x, "row")
    with pytest.raises(ValueError, match="one entry per row"):
        quantize(np.ones((3, 2), np.float32), np.ones(2, np.float32), 8, True)
    with pytest.raises(ValueError, match="msb_bits"):
        msb_split(np.zeros(3, np.int8), 8, 9, True)


def test_msb_known_values():
    # 8-bit unsigned codes, 4 MSB bits: round(q/16)*16 with ties to even, top level clamped to 255
    q = np.array([0, 7, 8, 9, 24, 40, 247, 248, 255], np.uint8)
    assert msb_split(q, 8, 4, False).tolist() == [0, 0, 0, 16, 32, 32, 240, 255, 255]
    np.testing.assert_array_equal(msb_split(q, 8, 8, False), q)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    bits=st.integers(2, 16),
    msb_drop=st.integers(0, 14),
    signed=st.booleans(),
    exp=st.integers(-30, 30),
    mode=st.sampled_from(["tensor", "channel", "sample_mean"]),
    seed=st.integers(0, 2**31),
)
def test_property_codes_and_msb(shape, bits, msb_drop, signed, exp, mode, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 10.0**exp).astype(np.float32)
    # sprinkle exact zeros and repeated values
    x.reshape(-1)[:: 3] = 0.0
    m = max_abs_range(x, mode)
    codes, _ = quantize(x, m, bits, signed)
    rows = x.reshape(m.size, -1)
    want = official_codes(rows, np.where(m == 0, 1, m), bits, signed)
    want[m == 0] = 0  # the official formula gives NaN (0/0) for a zero range; ours the code of 0
    np.testing.assert_array_equal(codes.astype(np.int64).reshape(rows.shape), want)
    msb_bits = max(2, bits - msb_drop)
    np.testing.assert_array_equal(msb_split(codes, bits, msb_bits, signed), official_msb(codes, bits, msb_bits, signed))
    # the float32 forms the PSG conv hands to torch: the same integers, and the values codes * delta exactly
    codes_v, delta, values = quantize_values(x, m, bits, signed)
    np.testing.assert_array_equal(codes_v, codes)
    d = delta.reshape(-1, *[1] * (x.ndim - 1)) if m.size > 1 else delta[0]
    np.testing.assert_array_equal(values, codes.astype(np.float32) * d)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(quantize(x, m, bits, signed, np.float32)[0], codes.astype(np.float32))
    np.testing.assert_array_equal(msb_split(codes, bits, msb_bits, signed, np.float32),
                                  official_msb(codes, bits, msb_bits, signed).astype(np.float32))
