"""Integer conv kernels vs an exact int64 NumPy reference and torch float64 convolution."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from e2sim.kernels.conv import (
    code_bound,
    conv2d_forward,
    conv2d_input_grad,
    conv2d_weight_grad,
    int32_terms,
)


def ref_forward(x, w, stride, padding, groups):
    """Direct int64 definition: y[n,o,i,j] = sum x[n, g*Cig+c, i*s-p+kh, j*s-p+kw] * w[o,c,kh,kw]."""
    n, ci, h, wd = x.shape
    co, cig, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    cog = co // groups
    y = np.zeros((n, co, oh, ow), np.int64)
    for o in range(co):
        c0 = (o // cog) * cig
        for a in range(kh):
            for b in range(kw):
                patch = xp[:, c0:c0 + cig, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw]
                y[:, o] += np.einsum("ncij,c->nij", patch, w[o, :, a, b].astype(np.int64))
    return y


def ref_weight_grad(x, gy, w_shape, stride, padding, groups):
    co, cig, kh, kw = w_shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    _, _, oh, ow = gy.shape
    cog = co // groups
    dw = np.zeros(w_shape, np.int64)
    for o in range(co):
        c0 = (o // cog) * cig
        for a in range(kh):
            for b in range(kw):
                patch = xp[:, c0:c0 + cig, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw]
                dw[o, :, a, b] = np.einsum("ncij,nij->c", patch, gy[:, o].astype(np.int64))
    return dw


def ref_input_grad(gy, w, x_shape, stride, padding, groups):
    n, ci, h, wd = x_shape
    co, cig, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    _, _, oh, ow = gy.shape
    cog = co // groups
    hp, wp = max(h + 2 * ph, (oh - 1) * sh + kh), max(wd + 2 * pw, (ow - 1) * sw + kw)
    dxp = np.zeros((n, ci, hp, wp), np.int64)
    for o in range(co):
        c0 = (o // cog) * cig
        for a in range(kh):
            for b in range(kw):
                dxp[:, c0:c0 + cig, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw] += np.einsum(
                    "nij,c->ncij", gy[:, o].astype(np.int64), w[o, :, a, b].astype(np.int64))
    return dxp[:, :, ph:ph + h, pw:pw + wd]


def rand_codes(rng, shape, bits, signed):
    b = code_bound(bits, signed)
    lo = -b if signed else 0
    hi = b - 1 if signed else b
    # include the extreme codes so the overflow bounds are exercised
    c = rng.integers(lo, hi + 1, size=shape)
    c.reshape(-1)[:2] = [lo, hi][: c.size]
    return c.astype(np.int16 if bits <= 15 or signed else np.int32)


def torch_f64(x, w, stride, padding, groups):
    return torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.astype(np.float64))


@pytest.mark.slow
@pytest.mark.parametrize("stride,padding,groups", [((1, 1), (1, 1), 1), ((2, 2), (1, 1), 1), ((1, 2), (0, 1), 2),
                                                   ((2, 1), (2, 0), 4)])
def test_against_int64_reference_and_torch(stride, padding, groups):
    rng = np.random.default_rng(sum(stride) * 10 + groups)
    x = rand_codes(rng, (3, 8, 7, 9), 8, False)
    w = rand_codes(rng, (4, 8 // groups, 3, 3), 8, True)
    y = conv2d_forward(x, w, x_bits=8, x_signed=False, w_bits=8, stride=stride, padding=padding, groups=groups)
    want = ref_forward(x, w, stride, padding, groups)
    np.testing.assert_array_equal(y.values, want)
    xt, wt = torch_f64(x, w, stride, padding, groups)
    np.testing.assert_array_equal(y.values, F.conv2d(xt, wt, stride=stride, padding=padding, groups=groups).numpy())
    gy = rand_codes(rng, want.shape, 16, True)
    dw = conv2d_weight_grad(x, gy, w.shape, x_bits=8, x_signed=False, g_bits=16, stride=stride, padding=padding,
                            groups=groups)
    np.testing.assert_array_equal(dw.values, ref_weight_grad(x, gy, w.shape, stride, padding, groups))
    gt = torch.from_numpy(gy.astype(np.float64))
    np.testing.assert_array_equal(dw.values, torch.nn.grad.conv2d_weight(xt, w.shape, gt, stride, padding,
                                                                         groups=groups).numpy())
    dx = conv2d_input_grad(gy, w, x.shape, g_bits=16, w_bits=8, stride=stride, padding=padding, groups=groups)
    np.testing.assert_array_equal(dx.values, ref_input_grad(gy, w, x.shape, stride, padding, groups))
    np.testing.assert_array_equal(dx.values, torch.nn.grad.conv2d_input(x.shape, wt, gt, stride, padding,
                                                                        groups=groups).numpy())


def test_accumulator_width_follows_bounds():
    rng = np.random.default_rng(0)
    x = rand_codes(rng, (2, 4, 6, 6), 8, False)
    w = rand_codes(rng, (4, 4, 3, 3), 8, True)
    # K = 36 products of <= 255*128: int32 is provably safe
    assert conv2d_forward(x, w, x_bits=8, x_signed=False, w_bits=8, padding=1).values.dtype == np.int32
    x16 = rand_codes(rng, (2, 64, 4, 4), 16, True)
    w16 = rand_codes(rng, (2, 64, 3, 3), 16, True)
    # K = 576 products of 2^30: needs int64, and the result really exceeds int32
    y = conv2d_forward(x16, w16, x_bits=16, x_signed=True, w_bits=16, padding=1)
    assert y.values.dtype == np.int64
    np.testing.assert_array_equal(y.values, ref_forward(x16, w16, (1, 1), (1, 1), 1))
    # worst case: every product at the bound; exact in the int32-chunked weight gradient
    xm = np.full((3, 2, 20, 20), 255, np.uint8)
    gm = np.full((3, 2, 20, 20), -32768, np.int16)
    dw = conv2d_weight_grad(xm, gm, (2, 2, 1, 1), x_bits=8, x_signed=False, g_bits=16)
    assert int32_terms(255, 32768) < 400  # one sample plane needs two int32 partials
    assert np.all(dw.values == 3 * 400 * 255 * -32768)


def test_scales_and_dequantised_values():
    rng = np.random.default_rng(5)
    x = rand_codes(rng, (2, 3, 5, 5), 8, False)
    w = rand_codes(rng, (4, 3, 3, 3), 8, True)
    xs, ws = 0.01, np.array([0.1, 0.2, 0.3, 0.4])
    y = conv2d_forward(x, w, x_bits=8, x_signed=False, w_bits=8, padding=1, x_scale=xs, w_scale=ws)
    xt = torch.from_numpy(x * xs)
    wt = torch.from_numpy(w * ws[:, None, None, None])
    np.testing.assert_allclose(y.values * y.scale, F.conv2d(xt, wt, padding=1).numpy(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="per-tensor weight scale"):
        conv2d_input_grad(y.values.astype(np.int16) % 100, w, x.shape, g_bits=16, w_bits=8, padding=1, w_scale=ws)


def test_bad_input():
    x = np.zeros((1, 4, 5, 5), np.int16)
    w = np.zeros((2, 4, 3, 3), np.int8)
    with pytest.raises(ValueError, match="groups"):
        conv2d_forward(x, w, x_bits=8, x_signed=False, w_bits=8, groups=3)
    with pytest.raises(ValueError, match="integer codes"):
        conv2d_forward(x.astype(np.float32), w, x_bits=8, x_signed=False, w_bits=8)
    with pytest.raises(ValueError, match="beyond the bound"):
        conv2d_forward(x + 300, w, x_bits=8, x_signed=False, w_bits=8)
    with pytest.raises(ValueError, match="does not fit"):
        conv2d_forward(x[:, :, :2, :2], w, x_bits=8, x_signed=False, w_bits=8)
    with pytest.raises(ValueError, match="gy shape"):
        conv2d_weight_grad(x, np.zeros((1, 2, 5, 5), np.int16), w.shape, x_bits=8, x_signed=False, g_bits=16)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3), cig=st.integers(1, 3), cog=st.integers(1, 3), groups=st.integers(1, 3),
    h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 3), kw=st.integers(1, 3),
    sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
    xb=st.integers(2, 16), wb=st.integers(2, 16), gb=st.integers(2, 16), x_signed=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_property_all_passes_exact(n, cig, cog, groups, h, w, kh, kw, sh, sw, ph, pw, xb, wb, gb, x_signed, seed):
    if h + 2 * ph < kh or w + 2 * pw < kw:
        return
    rng = np.random.default_rng(seed)
    stride, padding = (sh, sw), (ph, pw)
    x = rand_codes(rng, (n, cig * groups, h, w), xb, x_signed)
    wt = rand_codes(rng, (cog * groups, cig, kh, kw), wb, True)
    y = conv2d_forward(x, wt, x_bits=xb, x_signed=x_signed, w_bits=wb, stride=stride, padding=padding, groups=groups)
    np.testing.assert_array_equal(y.values, ref_forward(x, wt, stride, padding, groups))
    gy = rand_codes(rng, y.values.shape, gb, True)
    dw = conv2d_weight_grad(x, gy, wt.shape, x_bits=xb, x_signed=x_signed, g_bits=gb, stride=stride, padding=padding,
                            groups=groups)
    np.testing.assert_array_equal(dw.values, ref_weight_grad(x, gy, wt.shape, stride, padding, groups))
    dx = conv2d_input_grad(gy, wt, x.shape, g_bits=gb, w_bits=wb, stride=stride, padding=padding, groups=groups)
    np.testing.assert_array_equal(dx.values, ref_input_grad(gy, wt, x.shape, stride, padding, groups))


def test_reused_workspaces_do_not_leak_between_geometries():
    # same buffer sizes, different padding: stale interior values must not show up as padding
    rng = np.random.default_rng(8)
    for h, p in ((8, 1), (6, 2), (8, 1)):
        x = rand_codes(rng, (2, 3, h, h), 8, False)
        w_shape = (4, 3, 3, 3)
        oh = h + 2 * p - 2
        gy = rand_codes(rng, (2, 4, oh, oh), 16, True)
        dw = conv2d_weight_grad(x, gy, w_shape, x_bits=8, x_signed=False, g_bits=16, padding=p)
        np.testing.assert_array_equal(dw.values, ref_weight_grad(x, gy, w_shape, (1, 1), (p, p), 1))
