"""PSG (predictive sign gradient) weight gradient of a conv layer, as in E2-Train's official code
(``models/predictive.py`` EfficientPredictiveWeightQuantFunction.backward and ``models/conv_efficient.py``):

* predicted gradient ``g_msb`` = conv2d_weight(MSB part of the ``bits``-bit input, output gradient quantized
  to ``grad_msb_bits`` with a per-tensor max-abs range). Computed exactly on integer codes. (The weight's MSB
  part does not enter the weight gradient: it only feeds the predictor's forward output.)
* threshold ``tau`` = ``threshold`` if >= 0, else ``|threshold| * max|g_msb|`` (per layer and step).
* fallback where ``|g_msb| <= tau``: there the full-precision gradient ``g_q`` = conv2d_weight(``bits``-bit input,
  fp32 output gradient) is used; it is computed only for those entries (exact products, float64 sums).
* the update direction is ``sign(g_msb)`` outside the fallback and ``sign(g_q)`` inside.

The official keeps ``g_msb`` where ``|g_msb| >= tau``; here an entry exactly at the threshold falls back (so a
zero threshold sends exactly the zero predictions to the full gradient, whose sign is informative). The two
rules differ only on entries exactly equal to ``tau``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .conv import _geometry, _pad, code_bound, int32_terms, wgrad_codes
from .quantize import max_abs_range, msb_split, quantize

FP32 = 32  # grad_msb_bits value meaning "not quantized" (the official num_bits_grad >= 32 convention)


class PsgResult(NamedTuple):
    sign: np.ndarray        # int8 in {-1, 0, 1}, weight shape: the PSG update direction
    predicted: np.ndarray   # float64 g_msb (exact integer sum times its scale)
    fallback: np.ndarray    # bool: entries that used the full-precision gradient
    full: np.ndarray        # float64 g_q where fallback (NaN elsewhere: not computed)
    tau: float              # the absolute threshold applied


def quantize_activation(x: np.ndarray, bits: int, signed: bool = False):
    """Input of a PSG conv: per-sample max-abs range averaged over the batch (official activations)."""
    return quantize(x, max_abs_range(x, "sample_mean"), bits, signed)


def quantize_output_grad(gy: np.ndarray, bits: int):
    """Output gradient of the predictor: signed, per-tensor max-abs range (reduce_type 'extreme')."""
    return quantize(gy, max_abs_range(gy, "tensor"), bits, True)


@njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def _entries_s1(xf, gf, wp, kw_n, cig, cog, entries, out):
    """Stride-1 weight-gradient entries (co, c, kh, kw) listed in ``entries``, float64 sums (the products of
    integer codes and fp32 values are exact in float64; reassociation only changes float64 rounding)."""
    n_n, _, length = gf.shape
    for e in prange(entries.shape[0]):
        co, c, kh, kw = entries[e, 0], entries[e, 1], entries[e, 2], entries[e, 3]
        ci = (co // cog) * cig + c
        off = kh * wp + kw
        acc = 0.0
        for n in range(n_n):
            xrow = xf[n, ci]
            grow = gf[n, co]
            for j in range(length):
                acc += np.float64(xrow[off + j]) * np.float64(grow[j])
        out[e] = acc


@njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def _entries_strided(xp, gy, sh, sw, cig, cog, entries, out):
    n_n, _, oh_n, ow_n = gy.shape
    for e in prange(entries.shape[0]):
        co, c, kh, kw = entries[e, 0], entries[e, 1], entries[e, 2], entries[e, 3]
        ci = (co // cog) * cig + c
        acc = 0.0
        for n in range(n_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    acc += np.float64(xp[n, ci, oh * sh + kh, ow * sw + kw]) * np.float64(gy[n, co, oh, ow])
        out[e] = acc


def wgrad_entries(x_codes: np.ndarray, gy: np.ndarray, geom, entries: np.ndarray) -> np.ndarray:
    """Weight-gradient sums sum(x_codes * gy) for the listed (co, c, kh, kw) entries only, float64."""
    cig, cog = geom.ci // geom.groups, geom.co // geom.groups
    out = np.empty(entries.shape[0], dtype=np.float64)
    if entries.shape[0] == 0:
        return out
    gy = np.ascontiguousarray(gy, dtype=np.float32)
    if geom.sh == 1 and geom.sw == 1:
        wp = geom.w + 2 * geom.pw
        xf = _pad(x_codes, geom, extra_h=1).reshape(geom.n, geom.ci, -1)
        gw = np.zeros((geom.n, geom.co, geom.oh, wp), dtype=np.float32)
        gw[:, :, :, : geom.ow] = gy
        _entries_s1(xf, gw.reshape(geom.n, geom.co, -1), wp, geom.kw, cig, cog, entries, out)
    else:
        _entries_strided(_pad(x_codes, geom), gy, geom.sh, geom.sw, cig, cog, entries, out)
    return out


def psg_weight_grad(x, gy, w_shape, *, stride=1, padding=0, groups=1, bits=8, msb_bits=4, grad_msb_bits=16,
                    threshold=5e-5, x_signed=False) -> PsgResult:
    """The PSG weight-gradient direction of one conv layer from its fp32 input ``x`` and output gradient ``gy``.

    ``grad_msb_bits=32`` predicts with the unquantized output gradient (then, with ``msb_bits == bits``, the
    prediction *is* the full-precision gradient).
    """
    if not (grad_msb_bits == FP32 or 2 <= grad_msb_bits <= 16):
        raise ValueError(f"grad_msb_bits must be in [2, 16] or {FP32} (unquantized), got {grad_msb_bits}")
    if np.isnan(threshold):
        raise ValueError("threshold must be a number, got NaN")
    x = np.ascontiguousarray(x, dtype=np.float32)
    gy = np.ascontiguousarray(gy, dtype=np.float32)
    geom = _geometry(x.shape, tuple(w_shape), stride, padding, groups)
    if gy.shape != (geom.n, geom.co, geom.oh, geom.ow):
        raise ValueError(f"gy shape {gy.shape} does not match the conv output {(geom.n, geom.co, geom.oh, geom.ow)}")
    xq, dx = quantize_activation(x, bits, x_signed)
    xm = msb_split(xq, bits, msb_bits, x_signed)
    if grad_msb_bits == FP32:
        every = np.argwhere(np.ones(tuple(w_shape), dtype=bool))
        predicted = wgrad_entries(xm, gy, geom, every).reshape(w_shape) * np.float64(dx[0])
    else:
        gq, dg = quantize_output_grad(gy, grad_msb_bits)
        terms = int32_terms(code_bound(bits, x_signed), code_bound(grad_msb_bits, True))
        predicted = wgrad_codes(xm, gq, geom, terms) * (np.float64(dx[0]) * np.float64(dg[0]))
    mag = np.abs(predicted)
    tau = float(threshold) if threshold >= 0 else float(-threshold * mag.max())
    fallback = mag <= tau
    entries = np.argwhere(fallback)
    full = np.full(predicted.shape, np.nan)
    full[fallback] = wgrad_entries(xq, gy, geom, entries) * np.float64(dx[0])
    sign = np.where(fallback, np.sign(np.nan_to_num(full)), np.sign(predicted)).astype(np.int8)
    return PsgResult(sign, predicted, fallback, full, tau)
