"""PSG weight-gradient rule vs a torch float64 transcription of the official rule on the official codes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from e2sim.kernels.psg import psg_weight_grad, quantize_activation, quantize_output_grad
from e2sim.kernels.quantize import msb_split


def official_psg(x, gy, w_shape, stride, padding, groups, bits, msb_bits, grad_bits, threshold, x_signed=False):
    """conv_efficient.py + predictive.py backward in float64 on the same codes (fallback at-or-below tau)."""
    xq, dx = quantize_activation(x, bits, x_signed)
    xm = msb_split(xq, bits, msb_bits, x_signed)
    gq, dg = quantize_output_grad(gy, grad_bits)
    t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    # the official dequantised tensors are codes times steps; summing the integer codes in float64 is exact
    # (all partial sums are integers far below 2**53), and the step product is applied once, as in e2sim
    g_msb = torch.nn.grad.conv2d_weight(t(xm), w_shape, t(gq), stride, padding, groups=groups) \
        * (float(dx[0]) * float(dg[0]))
    g_q = torch.nn.grad.conv2d_weight(t(xq), w_shape, t(gy), stride, padding, groups=groups) * float(dx[0])
    tau = threshold if threshold >= 0 else -threshold * g_msb.abs().max().item()
    keep = g_msb.abs() > tau
    return torch.where(keep, g_msb, g_q).sign().numpy().astype(np.int8), g_msb.numpy(), (~keep).numpy(), g_q.numpy()


def layer_data(seed, n=6, ci=4, co=5, h=9, w=9, stride=1, padding=1, k=3):
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal((n, ci, h, w)), 0).astype(np.float32)
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    gy = (rng.standard_normal((n, co, oh, ow)) * 1e-3).astype(np.float32)
    return x, gy


@pytest.mark.slow
@pytest.mark.parametrize("stride,padding,groups", [(1, 1, 1), (2, 1, 1), (1, 0, 2)])
@pytest.mark.parametrize("threshold", [5e-5, -0.2])
def test_matches_official_rule(stride, padding, groups, threshold):
    x, gy = layer_data(stride + groups, ci=4, co=6, stride=stride, padding=padding)
    w_shape = (6, 4 // groups, 3, 3)
    r = psg_weight_grad(x, gy, w_shape, stride=stride, padding=padding, groups=groups, threshold=threshold)
    sign, g_msb, fb, g_q = official_psg(x, gy, w_shape, stride, padding, groups, 8, 4, 16, threshold)
    np.testing.assert_array_equal(r.predicted, g_msb)
    np.testing.assert_array_equal(r.fallback, fb)
    assert 0 < fb.mean() < 1 or threshold > 0
    np.testing.assert_allclose(r.full[fb], g_q[fb], rtol=1e-9)
    assert np.isnan(r.full[~fb]).all()
    np.testing.assert_array_equal(r.sign, sign)


def test_threshold_zero_and_infinite():
    x, gy = layer_data(3)
    x[:, 1] = 0.0  # an all-zero input channel: its predicted gradients are exactly zero
    w_shape = (5, 4, 3, 3)
    r0 = psg_weight_grad(x, gy, w_shape, padding=1, threshold=0.0)
    assert r0.tau == 0.0
    np.testing.assert_array_equal(r0.fallback, r0.predicted == 0)
    assert r0.fallback[:, 1].all() and r0.fallback.sum() == r0.fallback[:, 1].size + (r0.predicted[:, [0, 2, 3]] == 0).sum()
    ri = psg_weight_grad(x, gy, w_shape, padding=1, threshold=np.inf)
    assert ri.fallback.all()
    np.testing.assert_array_equal(ri.sign, np.sign(ri.full).astype(np.int8))
    # relative: tau = |t| * max|g_msb|; at t = -1 every entry is at or below the max
    assert psg_weight_grad(x, gy, w_shape, padding=1, threshold=-1.0).fallback.all()
    rr = psg_weight_grad(x, gy, w_shape, padding=1, threshold=-0.5)
    assert rr.tau == pytest.approx(0.5 * np.abs(rr.predicted).max(), rel=1e-15)


def test_full_width_msb_agrees_everywhere():
    x, gy = layer_data(4)
    r = psg_weight_grad(x, gy, (5, 4, 3, 3), padding=1, msb_bits=8, grad_msb_bits=32, threshold=-0.3)
    full = psg_weight_grad(x, gy, (5, 4, 3, 3), padding=1, msb_bits=8, grad_msb_bits=32, threshold=np.inf)
    np.testing.assert_array_equal(r.predicted, full.full)
    np.testing.assert_array_equal(r.sign, full.sign)


def test_agreement_falls_as_msb_bits_shrink():
    rng = np.random.default_rng(11)
    # correlated input and gradient so that the true gradient is mostly far from zero
    x = np.maximum(rng.standard_normal((16, 4, 12, 12)) + 0.3, 0).astype(np.float32)
    gy = (rng.standard_normal((16, 4, 12, 12)) * 1e-3 + 2e-4 * (x[:, ::-1] - 0.5)).astype(np.float32)
    ref = psg_weight_grad(x, gy, (4, 4, 3, 3), padding=1, threshold=np.inf).sign
    agree = [(psg_weight_grad(x, gy, (4, 4, 3, 3), padding=1, msb_bits=m, threshold=0.0).sign == ref).mean()
             for m in (8, 6, 4, 3, 2)]
    assert agree[0] > 0.99
    assert all(b <= a + 0.02 for a, b in zip(agree, agree[1:]))
    assert agree[-1] < agree[0]


def test_bad_input():
    x, gy = layer_data(1)
    with pytest.raises(ValueError, match="grad_msb_bits"):
        psg_weight_grad(x, gy, (5, 4, 3, 3), padding=1, grad_msb_bits=20)
    with pytest.raises(ValueError, match="gy shape"):
        psg_weight_grad(x, gy[:, :3], (5, 4, 3, 3), padding=1)
    with pytest.raises(ValueError, match="NaN"):
        psg_weight_grad(x, gy, (5, 4, 3, 3), padding=1, threshold=float("nan"))


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), groups=st.integers(1, 2), h=st.integers(3, 8), stride=st.integers(1, 2),
       padding=st.integers(0, 2), bits=st.integers(3, 16), drop=st.integers(0, 6), grad_bits=st.integers(2, 16),
       rel=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_property_official_rule(n, c, groups, h, stride, padding, bits, drop, grad_bits, rel, seed):
    ci = co = c * groups
    x, gy = layer_data(seed, n=n, ci=ci, co=co, h=h, w=h, stride=stride, padding=padding)
    w_shape = (co, c, 3, 3)
    msb = max(2, bits - drop)
    r = psg_weight_grad(x, gy, w_shape, stride=stride, padding=padding, groups=groups, bits=bits, msb_bits=msb,
                        grad_msb_bits=grad_bits, threshold=-rel)
    sign, g_msb, fb, _ = official_psg(x, gy, w_shape, stride, padding, groups, bits, msb, grad_bits, -rel)
    np.testing.assert_array_equal(r.predicted, g_msb)
    # where float64 rounding of the oracle could flip a comparison at tau exactly, skip those entries
    edge = np.isclose(np.abs(g_msb), r.tau, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(r.fallback[~edge], fb[~edge])
    np.testing.assert_array_equal(r.sign[~edge], sign[~edge])


@pytest.mark.slow
@pytest.mark.parametrize("x_signed", [False, True])
def test_top_level_clamp_and_signed_inputs(x_signed):
    """Inputs at the top of the range round to the clamped MSB level 2**b - 1 (not a multiple of 16): the
    fast path's 16*k - e split must handle them; signed inputs (the stem) centre the codes."""
    rng = np.random.default_rng(7)
    x = rng.uniform(-1 if x_signed else 0, 1, (4, 3, 8, 8)).astype(np.float32)
    x[:2] *= 2.0  # samples above the batch-mean range saturate
    gy = (rng.standard_normal((4, 5, 8, 8)) * 1e-3).astype(np.float32)
    xq, _ = quantize_activation(x, 8, x_signed)
    top = 127 if x_signed else 255
    assert (msb_split(xq, 8, 4, x_signed) == top).mean() > 0.05
    r = psg_weight_grad(x, gy, (5, 3, 3, 3), padding=1, threshold=-0.1, x_signed=x_signed)
    sign, g_msb, fb, _ = official_psg(x, gy, (5, 3, 3, 3), 1, 1, 1, 8, 4, 16, -0.1, x_signed=x_signed)
    np.testing.assert_array_equal(r.predicted, g_msb)
    np.testing.assert_array_equal(r.fallback, fb)
    np.testing.assert_array_equal(r.sign, sign)


def test_entries_in_any_order():
    from e2sim.kernels.conv import _geometry
    from e2sim.kernels.psg import wgrad_entries

    x, gy = layer_data(9)
    xq, _ = quantize_activation(x, 8)
    geom = _geometry(x.shape, (5, 4, 3, 3), 1, 1, 1)
    every = np.argwhere(np.ones((5, 4, 3, 3), bool))
    want = torch.nn.grad.conv2d_weight(torch.from_numpy(xq.astype(np.float64)), (5, 4, 3, 3),
                                       torch.from_numpy(gy.astype(np.float64)), 1, 1).numpy().reshape(-1)
    perm = np.random.default_rng(0).permutation(len(every))
    np.testing.assert_allclose(wgrad_entries(xq, gy, geom, every[perm]), want[perm], rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("k,stride,padding,groups", [(3, 1, 1, 1), (3, 2, 1, 1), (1, 2, 0, 1), (5, 1, 2, 2),
                                                   (3, 3, 0, 1), (2, 2, 1, 2)])
def test_direct_entries_equal_the_float64_weight_gradient(k, stride, padding, groups):
    """wgrad_entries_direct (no padded copy: the bounds skip the padding) on any geometry, every entry."""
    from e2sim.kernels.conv import _geometry
    from e2sim.kernels.psg import wgrad_entries, wgrad_entries_direct

    x, gy = layer_data(k + stride, ci=4, co=6, h=9, w=8, stride=stride, padding=padding, k=k)
    gy = gy[..., :(8 + 2 * padding - k) // stride + 1].copy()
    xq, _ = quantize_activation(x, 8)
    w_shape = (6, 4 // groups, k, k)
    geom = _geometry(x.shape, w_shape, stride, padding, groups)
    every = np.argwhere(np.ones(w_shape, bool))
    want = torch.nn.grad.conv2d_weight(torch.from_numpy(xq.astype(np.float64)), w_shape,
                                       torch.from_numpy(gy.astype(np.float64)), stride, padding,
                                       groups=groups).numpy().reshape(-1)
    np.testing.assert_allclose(wgrad_entries_direct(xq, gy, geom, every), want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(wgrad_entries(xq, gy, geom, every), want, rtol=1e-12, atol=1e-15)
    assert wgrad_entries_direct(xq, gy, geom, every[:0]).shape == (0,)


@pytest.mark.slow
@pytest.mark.parametrize("msb_bits", [14, 15, 16])
def test_wide_msb_digits_on_the_stride1_path(msb_bits):
    """16-bit inputs with 15-16 MSB bits give digits beyond int16: they must still match the official rule."""
    x, gy = layer_data(3, ci=3, co=4)
    r = psg_weight_grad(x, gy, (4, 3, 3, 3), padding=1, bits=16, msb_bits=msb_bits, threshold=-0.1)
    sign, g_msb, fb, _ = official_psg(x, gy, (4, 3, 3, 3), 1, 1, 1, 16, msb_bits, 16, -0.1)
    np.testing.assert_array_equal(r.predicted, g_msb)
    np.testing.assert_array_equal(r.sign, sign)
