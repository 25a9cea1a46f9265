"""The int16 multiply-add tiles (kernels/simd.py) and the tile dispatch of conv.py: exact against int64 NumPy
sums, including the scalar remainder and the non-int16 fallback; on an AVX2 host the tile compiles to
vpmaddwd (the reason it exists)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import binding as llvm
from numba import njit

from e2sim.kernels.conv import _tile3x1, _tile3x3, int32_terms
from e2sim.kernels.simd import LANES, madd16_1x3, madd16_3x3


@njit
def _call_3x3(x, xi, g, g0, g1, g2, steps):
    return madd16_3x3(x, xi, g, g0, g1, g2, steps)


@njit
def _call_1x3(x, xi, g, g0, g1, g2, steps):
    return madd16_1x3(x, xi, g, g0, g1, g2, steps)


@njit
def _tiles(x, xi, g, g0, g1, g2, m):
    return _tile3x3(x, xi, g, g0, g1, g2, m), _tile3x1(x, xi, g, g0, g1, g2, m)


def _want(x, xi, g, rows, m, taps):
    x64, g64 = x.astype(np.int64), g.astype(np.int64)
    return tuple(int(x64[xi + i:xi + i + m] @ g64[gk:gk + m]) for gk in rows for i in range(taps))


def _operands(rng, n_x, n_g, x_bound, dtype=np.int16):
    x = rng.integers(-x_bound, x_bound + 1, size=n_x).astype(dtype)
    g = rng.integers(-32768, 32768, size=n_g).astype(dtype)
    return x, g


def test_intrinsics_equal_int64_sums_at_the_extremes():
    rng = np.random.default_rng(0)
    x, g = _operands(rng, 34000, 66000, 16)
    # |x| <= 16, |g| <= 32768: an int32 sum holds 4095 products (int32_terms), so each lane (1/8 of the
    # products) holds 8 * 4095 terms; the total (up to 2**34 here) comes back exact in int64
    x[:20000] = 16
    g[:] = -32768
    steps = 8 * int32_terms(16, 32768) // LANES
    assert LANES * steps * 16 * 32768 > 2**33
    for xi, rows in ((0, (0, 32768, 32768)), (3, (17, 33001, 2)), (1001, (32600, 33, 33000))):
        got = _call_3x3(x, xi, g, *rows, steps)
        assert got == _want(x, xi, g, rows, LANES * steps, 3)
        got1 = _call_1x3(x, xi, g, *rows, steps)
        assert got1 == _want(x, xi, g, rows, LANES * steps, 1)
    assert _call_3x3(x, 5, g, 7, 9, 11, 0) == (0,) * 9  # no steps: nothing read
    x8 = x.astype(np.int8)  # int8 digits: sign-extending loads, same sums
    assert _call_3x3(x8, 3, g, 17, 33001, 2, steps) == _want(x8, 3, g, (17, 33001, 2), LANES * steps, 3)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 257), xi=st.integers(0, 40), rows=st.tuples(*[st.integers(0, 40)] * 3),
       x_int8=st.booleans(), seed=st.integers(0, 2**31))
def test_tiles_with_remainders_equal_int64_sums(m, xi, rows, x_int8, seed):
    rng = np.random.default_rng(seed)
    # 8-bit codes (int16) or int8 digits against 16-bit gradient codes: <= 257 terms fit int32
    x, g = _operands(rng, 400, 400, 255)
    if x_int8:
        x = (x // 2).astype(np.int8)
    tile3, tile1 = _tiles(x, xi, g, *rows, m)
    assert tuple(int(v) for v in tile3) == _want(x, xi, g, rows, m, 3)
    assert tuple(int(v) for v in tile1) == _want(x, xi, g, rows, m, 1)
    # int32 operands take the scalar loops: same sums
    t3, t1 = _tiles(x.astype(np.int32), xi, g.astype(np.int32), *rows, m)
    assert (tuple(t3), tuple(t1)) == (tuple(tile3), tuple(tile1))


def test_intrinsic_rejects_other_dtypes():
    x = np.zeros(64, np.int32)
    with pytest.raises(Exception, match="(?i)madd16_3x3|typing|resolution"):
        _call_3x3(x, 0, x, 0, 0, 0, 1)


@pytest.mark.skipif("avx2" not in llvm.get_host_cpu_features().flatten(), reason="needs an AVX2 host")
def test_tile_compiles_to_vpmaddwd_on_avx2():
    x = np.zeros(64, np.int16)
    _call_3x3(x, 0, x, 0, 16, 32, 2)
    asm = _call_3x3.inspect_asm(_call_3x3.signatures[0])
    assert "vpmaddwd" in asm and "vpmulld" not in asm
