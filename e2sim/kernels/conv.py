"""Integer conv2d on quantizer codes: forward, input gradient and weight gradient, exact.

All sums are exact integer sums. The accumulator width is decided from the operands' bit-widths and the
number of terms K per output: a partial sum of ``n`` products is kept in int32 when
``n * max|a| * max|b| <= 2**31 - 1`` (it then provably cannot overflow); longer sums are split into such
int32 partials that are added into int64, or use int64 products when not even one row fits.

Layout NCHW; weights (Co, Ci/groups, KH, KW). Codes are any integer dtype; the result is int32 when the
whole sum fits, int64 otherwise. The represented value of the result is ``result * scale_a * scale_b``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange
from numba.extending import overload

from .simd import LANES, madd16_1x3, madd16_3x3, simd_operands

INT32_MAX = 2**31 - 1


class IntResult(NamedTuple):
    """An exact integer tensor and the scale that turns it into real values (broadcastable to it)."""

    values: np.ndarray
    scale: np.ndarray


def code_bound(bits: int, signed: bool) -> int:
    """Largest |code| of a centred ``bits``-bit quantizer (see quantize.py)."""
    return 2 ** (bits - 1) if signed else 2**bits - 1


def int32_terms(bound_a: int, bound_b: int) -> int:
    """How many products of |a| <= bound_a and |b| <= bound_b an int32 sum provably holds."""
    return INT32_MAX // max(1, bound_a * bound_b)


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _check_codes(name: str, arr: np.ndarray, bound: int) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer codes, got dtype {arr.dtype}")
    if arr.ndim != 4:
        raise ValueError(f"{name} must be 4-D (NCHW or Co,Ci/groups,KH,KW), got shape {arr.shape}")
    if arr.size and int(np.abs(arr.astype(np.int64, copy=False)).max()) > bound:
        raise ValueError(f"{name} has codes beyond the bound {bound} of its declared bit-width")
    return np.ascontiguousarray(arr)


class _Geom(NamedTuple):
    n: int
    ci: int
    h: int
    w: int
    co: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    groups: int
    oh: int
    ow: int


def _geometry(x_shape, w_shape, stride, padding, groups) -> _Geom:
    n, ci, h, w = x_shape
    co, cig, kh, kw = w_shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    if groups < 1 or ci % groups or co % groups or cig != ci // groups:
        raise ValueError(f"groups={groups} does not fit input channels {ci}, weight shape {tuple(w_shape)}")
    if min(sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got stride {stride}, padding {padding}")
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit input {h}x{w} with padding {padding}")
    return _Geom(n, ci, h, w, co, kh, kw, sh, sw, ph, pw, groups, oh, ow)


def _pad(x: np.ndarray, g: _Geom) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)))


# ----------------------------------------------------------------------------------------------- forward
@njit(cache=True, parallel=True)
def _fwd_kernel(xp, w, sh, sw, groups, oh_n, ow_n, zero, out):
    n_n, _, _, _ = xp.shape
    co_n, cig, kh_n, kw_n = w.shape
    cog = co_n // groups
    for t in prange(n_n * co_n):
        n = t // co_n
        co = t % co_n
        c0 = (co // cog) * cig
        for oh in range(oh_n):
            for ow in range(ow_n):
                acc = zero
                for c in range(cig):
                    for kh in range(kh_n):
                        for kw in range(kw_n):
                            acc += xp[n, c0 + c, oh * sh + kh, ow * sw + kw] * w[co, c, kh, kw]
                out[n, co, oh, ow] = acc


def conv2d_forward(x, w, *, x_bits, x_signed, w_bits, stride=1, padding=0, groups=1, x_scale=1.0, w_scale=1.0):
    """y = conv2d(x, w) on codes. ``w_scale`` may be per output channel: the scale is then (1, Co, 1, 1)."""
    bx, bw = code_bound(x_bits, x_signed), code_bound(w_bits, True)
    x = _check_codes("x", x, bx)
    w = _check_codes("w", w, bw)
    g = _geometry(x.shape, w.shape, stride, padding, groups)
    k = (g.ci // groups) * g.kh * g.kw
    acc = np.int32 if k <= int32_terms(bx, bw) else np.int64
    out = np.empty((g.n, g.co, g.oh, g.ow), dtype=acc)
    _fwd_kernel(_pad(x, g).astype(acc), w.astype(acc), g.sh, g.sw, groups, g.oh, g.ow, acc(0), out)
    ws = np.asarray(w_scale, dtype=np.float64).reshape(-1)
    scale = np.float64(x_scale) * (ws.reshape(1, -1, 1, 1) if ws.size > 1 else ws.reshape(()))
    return IntResult(out, np.asarray(scale))


# ---------------------------------------------------------------------------------------- input gradient
@njit(cache=True, parallel=True)
def _dgrad_kernel(gy, w, sh, sw, groups, out_p):
    n_n, co_n, oh_n, ow_n = gy.shape
    _, cig, kh_n, kw_n = w.shape
    ci_n = out_p.shape[1]
    cog = co_n // groups
    for t in prange(n_n * ci_n):
        n = t // ci_n
        ci = t % ci_n
        grp = ci // cig
        c = ci % cig
        for co in range(grp * cog, (grp + 1) * cog):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    v = gy[n, co, oh, ow]
                    if v == 0:
                        continue
                    for kh in range(kh_n):
                        for kw in range(kw_n):
                            out_p[n, ci, oh * sh + kh, ow * sw + kw] += v * w[co, c, kh, kw]


def conv2d_input_grad(gy, w, x_shape, *, g_bits, w_bits, stride=1, padding=0, groups=1, g_scale=1.0, w_scale=1.0):
    """dL/dx of y = conv2d(x, w) from integer output-gradient codes ``gy`` (signed). ``w_scale`` must be one
    number: a per-channel weight scale cannot be factored out of the sum over output channels."""
    if np.asarray(w_scale).size != 1:
        raise ValueError("the input gradient needs a per-tensor weight scale (one number)")
    bg, bw = code_bound(g_bits, True), code_bound(w_bits, True)
    gy = _check_codes("gy", gy, bg)
    w = _check_codes("w", w, bw)
    g = _geometry(tuple(x_shape), w.shape, stride, padding, groups)
    if gy.shape != (g.n, g.co, g.oh, g.ow):
        raise ValueError(f"gy shape {gy.shape} does not match the conv output {(g.n, g.co, g.oh, g.ow)}")
    k = (g.co // groups) * g.kh * g.kw  # at most this many products land on one input element
    acc = np.int32 if k <= int32_terms(bg, bw) else np.int64
    # the padded buffer must cover every position the strided taps touch
    hp = max(g.h + 2 * g.ph, (g.oh - 1) * g.sh + g.kh)
    wp = max(g.w + 2 * g.pw, (g.ow - 1) * g.sw + g.kw)
    out_p = np.zeros((g.n, g.ci, hp, wp), dtype=acc)
    _dgrad_kernel(gy.astype(acc), w.astype(acc), g.sh, g.sw, groups, out_p)
    out = np.ascontiguousarray(out_p[:, :, g.ph:g.ph + g.h, g.pw:g.pw + g.w])
    return IntResult(out, np.asarray(np.float64(g_scale) * np.float64(np.asarray(w_scale).reshape(()))))


# --------------------------------------------------------------------------------------- weight gradient
@njit(cache=True, inline="always")
def _dot32(a, b):
    """int32 dot product of two equally long 1-D slices. Numba widens int32 arithmetic to int64; truncating
    back is exact because callers only pass slices whose sum provably fits, and it lets LLVM use 16x16->32
    multiply-adds. (1-D slices, not computed indices, so that no wrap-around check blocks vectorisation.)"""
    s = np.int32(0)
    for j in range(b.size):
        s = np.int32(s + np.int32(a[j]) * np.int32(b[j]))
    return s


@njit(cache=True, inline="always")
def _dot32x3x3(a0, a1, a2, b0, b1, b2):
    """Nine int32 dot products: three neighbouring taps (a0, a1, a2) against three output channels' gradients
    (b0, b1, b2), order b major. A register tile: each loaded vector serves three multiply-adds, so the loop
    is bound by the multiplies, not the loads. Same exactness argument as _dot32."""
    s0 = s1 = s2 = t0 = t1 = t2 = u0 = u1 = u2 = np.int32(0)
    for j in range(b0.size):
        x0 = np.int32(a0[j])
        x1 = np.int32(a1[j])
        x2 = np.int32(a2[j])
        p = np.int32(b0[j])
        q = np.int32(b1[j])
        r = np.int32(b2[j])
        s0 = np.int32(s0 + x0 * p)
        s1 = np.int32(s1 + x1 * p)
        s2 = np.int32(s2 + x2 * p)
        t0 = np.int32(t0 + x0 * q)
        t1 = np.int32(t1 + x1 * q)
        t2 = np.int32(t2 + x2 * q)
        u0 = np.int32(u0 + x0 * r)
        u1 = np.int32(u1 + x1 * r)
        u2 = np.int32(u2 + x2 * r)
    return s0, s1, s2, t0, t1, t2, u0, u1, u2


@njit(cache=True, inline="always")
def _dot32x3(a, b0, b1, b2):
    """One tap against three output channels' gradients (taps left over from the groups of three)."""
    s = t = u = np.int32(0)
    for j in range(b0.size):
        x = np.int32(a[j])
        s = np.int32(s + x * np.int32(b0[j]))
        t = np.int32(t + x * np.int32(b1[j]))
        u = np.int32(u + x * np.int32(b2[j]))
    return s, t, u


def _tile3x3(x, xi, g, g0, g1, g2, m):
    """_dot32x3x3 of the taps at flat x indices xi, xi+1, xi+2 against the gradient rows starting at flat g
    indices g0, g1, g2, over m terms; through the vpmaddwd-friendly IR of simd.py when x is int8 or int16 and g int16
    (the last < 16 terms in the scalar loop)."""


def _tile3x1(x, xi, g, g0, g1, g2, m):
    """_dot32x3 of the tap at flat x index xi (see _tile3x3)."""


@njit(cache=True, inline="always")
def _scalar3x3(x, xi, g, g0, g1, g2, m):
    return _dot32x3x3(x[xi:xi + m], x[xi + 1:xi + 1 + m], x[xi + 2:xi + 2 + m], g[g0:g0 + m], g[g1:g1 + m],
                      g[g2:g2 + m])


@njit(cache=True, inline="always")
def _scalar3x1(x, xi, g, g0, g1, g2, m):
    return _dot32x3(x[xi:xi + m], g[g0:g0 + m], g[g1:g1 + m], g[g2:g2 + m])


@overload(_tile3x3, jit_options={"cache": True})
def _tile3x3_impl(x, xi, g, g0, g1, g2, m):
    if not simd_operands(x, g):
        return lambda x, xi, g, g0, g1, g2, m: _scalar3x3(x, xi, g, g0, g1, g2, m)

    def impl(x, xi, g, g0, g1, g2, m):
        steps = m // LANES
        v = madd16_3x3(x, xi, g, g0, g1, g2, steps)
        k = steps * LANES
        if k == m:
            return v
        r = _scalar3x3(x, xi + k, g, g0 + k, g1 + k, g2 + k, m - k)
        return (v[0] + r[0], v[1] + r[1], v[2] + r[2], v[3] + r[3], v[4] + r[4], v[5] + r[5], v[6] + r[6],
                v[7] + r[7], v[8] + r[8])
    return impl


@overload(_tile3x1, jit_options={"cache": True})
def _tile3x1_impl(x, xi, g, g0, g1, g2, m):
    if not simd_operands(x, g):
        return lambda x, xi, g, g0, g1, g2, m: _scalar3x1(x, xi, g, g0, g1, g2, m)

    def impl(x, xi, g, g0, g1, g2, m):
        steps = m // LANES
        v = madd16_1x3(x, xi, g, g0, g1, g2, steps)
        k = steps * LANES
        if k == m:
            return v
        r = _scalar3x1(x, xi + k, g, g0 + k, g1 + k, g2 + k, m - k)
        return v[0] + r[0], v[1] + r[1], v[2] + r[2]
    return impl


@njit(cache=True, inline="always")
def _dot64(a, b):
    s = np.int64(0)
    for j in range(b.size):
        s += np.int64(a[j]) * np.int64(b[j])
    return s


class CmLayout(NamedTuple):
    """Channel-major flattened layout for stride-1 weight gradients, image-row major: for channel c, padded
    image row r of every sample back to back (``wp`` elements per sample, ``row = n * wp`` per image row),
    rows in order. The output gradient is stored on the same grid (``length = oh * row`` elements, zeros in
    the columns ``ow..wp-1``), so for tap (kh, kw) the whole sum over samples and positions is ONE contiguous
    dot product ``x[c, off + j] * g[co, j]`` with ``off = kh * row + kw``. The input rows carry ``tail`` extra
    zeros for the reads past the last row; the top and bottom padding rows are stored as zero rows.

    Neighbouring samples share their column padding when ``pw <= kw - 1`` (every usual conv): ``wp = w + pw``
    holds the left padding only and a read past a row's right edge (padded column ``w + pw + r``, ``r < pw``
    since ``ow - 1 + kw - 1 = w + 2 pw - 1``) lands on column ``r`` of the next sample's row, a left-padding
    zero, which is the value of the padded input there. Every term with a non-zero gradient is a real
    product: the only wasted work is the one padding column per sample row (8x8 pixels: 9 positions summed
    per 8; a sample-major layout would also sum the padding rows, 81 per 64)."""

    wp: int
    row: int
    length: int
    tail: int


def cm_layout(g) -> CmLayout:
    wp = g.w + g.pw if g.pw <= g.kw - 1 else g.w + 2 * g.pw
    row = g.n * wp
    return CmLayout(wp, row, g.oh * row, (g.kh - 1) * row + g.kw)


@njit(cache=True, inline="always")
def cm_input_at(n, i, ph, pw, wp, row):
    """Flat index of input pixel (i, 0) of sample n in the channel-major layout."""
    return (i + ph) * row + n * wp + pw


@njit(cache=True, inline="always")
def cm_grad_at(n, i, wp, row):
    """Flat index of output-gradient pixel (i, 0) of sample n in the channel-major layout."""
    return i * row + n * wp


@njit(cache=True)  # serial: memory-bound, and one thread avoids waiting on a busy sibling
def _input_to_cm(x, ph, pw, wp, row, out):
    n_n, c_n, h_n, w_n = x.shape
    for c in range(c_n):
        for n in range(n_n):
            for i in range(h_n):
                base = cm_input_at(n, i, ph, pw, wp, row)
                for j in range(w_n):
                    out[c, base + j] = x[n, c, i, j]


@njit(cache=True)  # serial: memory-bound, and one thread avoids waiting on a busy sibling
def _grad_to_cm(gy, wp, row, out):
    n_n, co_n, oh_n, ow_n = gy.shape
    for co in range(co_n):
        for n in range(n_n):
            for i in range(oh_n):
                base = cm_grad_at(n, i, wp, row)
                for j in range(ow_n):
                    out[co, base + j] = gy[n, co, i, j]


_WORKSPACE: dict[tuple, np.ndarray] = {}


def workspace(name: str, geom, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A zero-initialised buffer that is reused by later calls with the same name, conv geometry, shape and
    dtype. The layout kernels write exactly the same interior positions of a given geometry on every call,
    so the padding stays zero; reusing the buffer saves the page faults of fresh multi-megabyte allocations
    on every training step. Callers consume the buffer before returning (not thread-safe)."""
    key = (name, tuple(geom), shape, np.dtype(dtype).str)
    buf = _WORKSPACE.get(key)
    if buf is None:
        buf = _WORKSPACE[key] = np.zeros(shape, dtype=dtype)
    return buf


def input_cm(x: np.ndarray, g, lay: CmLayout, dtype, name: str = "input_cm") -> np.ndarray:
    out = workspace(name, g, (g.ci, lay.length + lay.tail), dtype)
    _input_to_cm(x, g.ph, g.pw, lay.wp, lay.row, out)
    return out


def grad_cm(gy: np.ndarray, g, lay: CmLayout, dtype, name: str = "grad_cm") -> np.ndarray:
    out = workspace(name, g, (g.co, lay.length), dtype)
    _grad_to_cm(gy, lay.wp, lay.row, out)
    return out


SIMD_BLOCK = 16128  # int16 tiles: longest block (measured: fewer tile calls beat L1 residency of the block)


def cm_block(terms: int, simd: bool) -> int:
    """Dot-product block length for ``terms`` = products an int32 sum provably holds. The scalar tiles keep a
    whole block in one int32 sum: at most ``terms``, a multiple of 64 for whole vector iterations. The int16
    tiles (``simd``) keep each lane's sum of 1/8 of the products in int32 (simd.py) and their last < 16 terms
    in an int32 scalar loop: up to ``8 * terms`` when ``terms >= 16``."""
    if simd and terms >= LANES:
        return min(8 * terms // LANES * LANES, SIMD_BLOCK)
    return terms if terms < 64 else min(terms // 64 * 64, 8192)


@njit(cache=True, parallel=True)
def _wgrad_cm_kernel(xcm, gcm, row, kh_n, kw_n, cig, cog, block, out):
    """Exact stride-1 weight gradient on the channel-major layout, in blocks of ``block`` terms (cm_block:
    exact partial sums) added into int64. Work items are triples of output channels of one group (a group's
    last one or two channels are repeated to fill the triple and written once); per block, the triple's
    gradient blocks stay in cache while the 3 x 3 register tile (_tile3x3: three taps x three channels) runs
    over every input channel's taps."""
    co_n, length = gcm.shape
    x_len = xcm.shape[1]
    xf, gf = xcm.reshape(-1), gcm.reshape(-1)  # flat, for the tiles' index arguments
    items = (cog + 2) // 3
    for t in prange(co_n // cog * items):
        grp = t // items
        co = grp * cog + 3 * (t % items)
        last = grp * cog + cog - 1
        co1, co2 = min(co + 1, last), min(co + 2, last)
        c0 = grp * cig
        acc = np.zeros((3, cig, kh_n, kw_n), dtype=np.int64)
        for j0 in range(0, length, block):
            m = min(block, length - j0)
            g0, g1, g2 = co * length + j0, co1 * length + j0, co2 * length + j0
            for c in range(cig):
                for kh in range(kh_n):
                    at = (c0 + c) * x_len + kh * row + j0
                    kw = 0
                    while kw + 3 <= kw_n:
                        v = _tile3x3(xf, at + kw, gf, g0, g1, g2, m)
                        for r in range(3):
                            acc[r, c, kh, kw] += v[3 * r]
                            acc[r, c, kh, kw + 1] += v[3 * r + 1]
                            acc[r, c, kh, kw + 2] += v[3 * r + 2]
                        kw += 3
                    for k in range(kw, kw_n):
                        v1 = _tile3x1(xf, at + k, gf, g0, g1, g2, m)
                        for r in range(3):
                            acc[r, c, kh, k] += v1[r]
        out[co] = acc[0]
        out[co1] = acc[1]
        out[co2] = acc[2]


@njit(cache=True, parallel=True)
def _wgrad_strided_kernel(xp, gy, sh, sw, cig, cog, rows, out):
    """Any stride: int32 partials over ``rows`` output rows (0: int64 products throughout)."""
    n_n, co_n, oh_n, ow_n = gy.shape
    _, _, kh_n, kw_n = out.shape
    for co in prange(co_n):
        c0 = (co // cog) * cig
        acc = np.zeros((cig, kh_n, kw_n), dtype=np.int64)
        for n in range(n_n):
            for c in range(cig):
                for kh in range(kh_n):
                    for kw in range(kw_n):
                        if rows == 0:
                            for oh in range(oh_n):
                                xrow = xp[n, c0 + c, oh * sh + kh, kw:kw + (ow_n - 1) * sw + 1:sw]
                                acc[c, kh, kw] += _dot64(xrow, gy[n, co, oh])
                        else:
                            for r0 in range(0, oh_n, rows):
                                s = np.int32(0)
                                for oh in range(r0, min(r0 + rows, oh_n)):
                                    xrow = xp[n, c0 + c, oh * sh + kh, kw:kw + (ow_n - 1) * sw + 1:sw]
                                    s = np.int32(s + _dot32(xrow, gy[n, co, oh]))
                                acc[c, kh, kw] += s
        out[co] = acc


def conv2d_weight_grad(x, gy, w_shape, *, x_bits, x_signed, g_bits, stride=1, padding=0, groups=1,
                       x_scale=1.0, g_scale=1.0):
    """dL/dw of y = conv2d(x, w) from input codes ``x`` and signed output-gradient codes ``gy``."""
    bx, bg = code_bound(x_bits, x_signed), code_bound(g_bits, True)
    x = _check_codes("x", x, bx)
    gy = _check_codes("gy", gy, bg)
    g = _geometry(x.shape, tuple(w_shape), stride, padding, groups)
    if gy.shape != (g.n, g.co, g.oh, g.ow):
        raise ValueError(f"gy shape {gy.shape} does not match the conv output {(g.n, g.co, g.oh, g.ow)}")
    out = wgrad_codes(x, gy, g, int32_terms(bx, bg))
    scale = np.asarray(np.float64(x_scale) * np.float64(g_scale))
    k = g.n * g.oh * g.ow
    if k <= int32_terms(bx, bg):
        out = out.astype(np.int32)
    return IntResult(out, scale)


def wgrad_codes(x: np.ndarray, gy: np.ndarray, g: _Geom, terms: int) -> np.ndarray:
    """The exact int64 weight gradient; ``terms`` = products an int32 partial provably holds."""
    cig, cog = g.ci // g.groups, g.co // g.groups
    out = np.empty((g.co, cig, g.kh, g.kw), dtype=np.int64)
    wdt = np.int16 if max(np.iinfo(x.dtype).max, np.iinfo(gy.dtype).max) <= np.iinfo(np.int16).max else np.int32
    if g.sh == 1 and g.sw == 1 and terms >= 1:
        lay = cm_layout(g)
        _wgrad_cm_kernel(input_cm(x, g, lay, wdt), grad_cm(gy, g, lay, wdt), lay.row, g.kh, g.kw, cig, cog,
                         cm_block(terms, wdt == np.int16), out)
    else:
        rows = terms // g.ow
        _wgrad_strided_kernel(_pad(x, g).astype(wdt, copy=False), gy.astype(wdt, copy=False), g.sh, g.sw, cig,
                              cog, rows, out)
    return out
