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

from .conv import (
    _geometry,
    _pad,
    _wgrad_cm_kernel,
    cm_block,
    cm_grad_at,
    cm_input_at,
    cm_layout,
    code_bound,
    grad_cm,
    input_cm,
    int32_terms,
    wgrad_codes,
    workspace,
)
from .quantize import (
    code_of,
    max_abs_range,
    msb_digit,
    msb_split,
    quantize,
    quantize_values,
    quantizer_constants,
)

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


def quantize_activation_values(x: np.ndarray, bits: int, signed: bool = False):
    """``quantize_activation`` plus the represented float32 values, from the same pass: (codes, delta, values)."""
    return quantize_values(x, max_abs_range(x, "sample_mean"), bits, signed)


def quantize_output_grad(gy: np.ndarray, bits: int, dtype=None):
    """Output gradient of the predictor: signed, per-tensor max-abs range (reduce_type 'extreme'); codes of
    ``dtype`` if given (e.g. float32 for torch)."""
    return quantize(gy, max_abs_range(gy, "tensor"), bits, True, dtype)


@njit(cache=True, inline="always", fastmath={"reassoc", "contract"})
def _dot_f64(a, b):
    # products of integer codes and fp32 values are exact in float64; reassociation (for SIMD) only changes
    # the float64 rounding of the sum
    s = 0.0
    for j in range(b.size):
        s += np.float64(a[j]) * np.float64(b[j])
    return s


@njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def _entries_strided(xp, gy, sh, sw, cig, cog, entries, out):
    n_n, _, oh_n, ow_n = gy.shape
    for e in prange(entries.shape[0]):
        co, c, kh, kw = entries[e, 0], entries[e, 1], entries[e, 2], entries[e, 3]
        ci = (co // cog) * cig + c
        acc = 0.0
        for n in range(n_n):
            for oh in range(oh_n):
                acc += _dot_f64(xp[n, ci, oh * sh + kh, kw:kw + (ow_n - 1) * sw + 1:sw], gy[n, co, oh])
        out[e] = acc


@njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def _entries_direct(xq, gy, sh, sw, ph, pw, cig, cog, entries, out):
    """_entries_strided on the unpadded input: each entry's sum runs over the output rows and columns whose
    tap falls inside the input (the padding contributes zeros), so no padded copy is made."""
    n_n, _, h_n, w_n = xq.shape
    _, _, oh_n, ow_n = gy.shape
    for e in prange(entries.shape[0]):
        co, c, kh, kw = entries[e, 0], entries[e, 1], entries[e, 2], entries[e, 3]
        ci = (co // cog) * cig + c
        # output positions o with 0 <= o * s + k - p < size
        oh0, ow0 = max(0, -((kh - ph) // sh)), max(0, -((kw - pw) // sw))
        oh1, ow1 = min(oh_n, (h_n - 1 + ph - kh) // sh + 1), min(ow_n, (w_n - 1 + pw - kw) // sw + 1)
        acc = 0.0
        if ow1 > ow0:
            iw0 = ow0 * sw + kw - pw
            iw1 = (ow1 - 1) * sw + kw - pw + 1
            for n in range(n_n):
                for oh in range(oh0, oh1):
                    acc += _dot_f64(xq[n, ci, oh * sh + kh - ph, iw0:iw1:sw], gy[n, co, oh, ow0:ow1])
        out[e] = acc


def wgrad_entries_direct(x_codes: np.ndarray, gy: np.ndarray, geom, entries: np.ndarray) -> np.ndarray:
    """``wgrad_entries`` straight from the NCHW arrays, without the layout copies: cheaper for a few entries
    (a small fallback set), slower per entry. Same float64 sums up to their rounding (summation order)."""
    out = np.empty(entries.shape[0], dtype=np.float64)
    if entries.shape[0]:
        _entries_direct(np.ascontiguousarray(x_codes), np.ascontiguousarray(gy, dtype=np.float32), geom.sh,
                        geom.sw, geom.ph, geom.pw, geom.ci // geom.groups, geom.co // geom.groups,
                        np.ascontiguousarray(entries, dtype=np.int64), out)
    return out


@njit(cache=True, parallel=True)  # channels write disjoint rows of every output
def _digits_to_cm(xq, zero_code, shift, d_off, q_e, ph, pw, wp, row, d_out, q_out, e_j, e_n):
    """MSB part of the input codes as ``2**shift * d - e`` (d small; e = 1 where the official clamp turns the
    top level 2**b into 2**b - 1, i.e. for the uncentred codes q >= ``q_e``: rounding is monotone), d written
    into the channel-major layout, the (rare) e positions listed per channel (``e_n[c]`` of them; only the
    first ``e_j.shape[1]`` are stored in ``e_j[c]``).
    The full codes go into ``q_out`` (same layout) in the same pass, for the fallback entries."""
    n_n, c_n, h_n, w_n = xq.shape
    cap = e_j.shape[1]
    for c in prange(c_n):
        cnt = 0
        for i in range(h_n):  # sample innermost: the writes of a channel advance through the layout in order
            for n in range(n_n):
                base = cm_input_at(n, i, ph, pw, wp, row)
                hits = 0
                src, dd, qq = xq[n, c, i], d_out[c, base:base + w_n], q_out[c, base:base + w_n]
                for j in range(w_n):  # branch-free on 1-D slices (no wrap-around checks): vectorisable
                    v = src[j]
                    qq[j] = v
                    dd[j] = msb_digit(v, shift, zero_code) - d_off  # = d_lut[q]
                    hits += np.int32(v) + zero_code >= q_e  # a count (not a flag) vectorises
                if hits:
                    for j in range(w_n):
                        if np.int32(xq[n, c, i, j]) + zero_code >= q_e:
                            if cnt < cap:
                                e_j[c, cnt] = base + j
                            cnt += 1
        e_n[c] = cnt


def _digits_fit_int16(msb_bits, x_signed) -> bool:
    """The stride-1 fast path stores MSB digits as int8/int16: up to 2**msb_bits (unsigned) or
    2**(msb_bits-1) (signed) in magnitude. Wider digits (15-16-bit MSBs) take the generic path."""
    return (2 ** (msb_bits - 1) if x_signed else 2**msb_bits) <= np.iinfo(np.int16).max


def _digit_tables(bits, msb_bits, x_signed):
    """d and e per uncentred code q: MSB code (centred) == 2**shift * d[q] - e[q] (see quantize.msb_split)."""
    shift = bits - msb_bits
    q = np.arange(2**bits)
    k = np.rint(q / 2.0**shift).astype(np.int64)  # exact halves: rint rounds them to even, like the official
    e = (k == 2**msb_bits) & (shift > 0)
    d = k - (2 ** (msb_bits - 1) if x_signed else 0)
    return d.astype(np.int8 if msb_bits <= 6 else np.int16), e.astype(np.uint8)


@njit(cache=True, parallel=True)  # output channels write disjoint rows
def _quantize_grad_to_cm(gy, lo, delta, qmax, zero_code, wp, row, out, f_out):
    """The output-gradient quantizer (same formula as quantize.quantize) written into the channel-major layout;
    the fp32 gradient itself into ``f_out`` (same layout) in the same pass, for the fallback entries. Reads
    go plane by plane (prefetch-friendly); one channel's outputs stay in L2 while its rows are scattered."""
    n_n, co_n, oh_n, ow_n = gy.shape
    for co in prange(co_n):
        for n in range(n_n):
            for i in range(oh_n):
                base = cm_grad_at(n, i, wp, row)
                src, ff, oo = gy[n, co, i], f_out[co, base:base + ow_n], out[co, base:base + ow_n]
                for j in range(ow_n):  # 1-D slices: no wrap-around checks
                    v = src[j]
                    ff[j] = v
                    oo[j] = code_of(v, lo, delta, qmax, zero_code)


@njit(cache=True)  # serial: a few hundred corrections, less than a thread hand-off
def _msb_prediction(main, shift, e_c, e_j, gcm, row, cig, cog, scale):
    """The predicted gradient ``(2**shift * main - corr) * scale`` (float64), ``corr`` the sum of the output
    gradient over the few e = 1 input positions (channel ``e_c[t]``, layout index ``e_j[t]``) per weight
    entry: exact in int64 up to the final scaling."""
    length = gcm.shape[1]
    _, _, kh_n, kw_n = main.shape
    ints = main << shift
    for t in range(e_c.size):
        grp = e_c[t] // cig
        c = e_c[t] - grp * cig
        for co in range(grp * cog, (grp + 1) * cog):
            for kh in range(kh_n):
                for kw in range(kw_n):
                    j = e_j[t] - (kh * row + kw)
                    if 0 <= j < length:
                        ints[co, c, kh, kw] -= gcm[co, j]
    out = np.empty(main.shape, np.float64)
    o, f = out.reshape(-1), ints.reshape(-1)
    for i in range(f.size):
        o[i] = np.float64(f[i]) * scale
    return out


@njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def _entries_cm(qcm, fcm, row, cig, cog, entries, starts, out):
    """Listed weight-gradient entries (sorted by output channel; ``starts[co]`` = first entry of co) on the
    channel-major layout: per block, output channel co's gradient is converted to float64 into an L1-sized
    buffer once, and its entries take turns on it."""
    co_n, length = fcm.shape
    block = 2048
    for co in prange(co_n):
        e0, e1 = starts[co], starts[co + 1]
        if e0 == e1:
            continue
        for e in range(e0, e1):
            out[e] = 0.0
        c0 = (co // cog) * cig
        buf = np.empty(block, np.float64)
        for j0 in range(0, length, block):
            j1 = min(j0 + block, length)
            grow, src = buf[:j1 - j0], fcm[co, j0:j1]
            for j in range(j1 - j0):
                grow[j] = np.float64(src[j])
            for e in range(e0, e1):
                off = entries[e, 2] * row + entries[e, 3] + j0
                out[e] += _dot_f64(qcm[c0 + entries[e, 1], off:off + j1 - j0], grow)


def _predict_stride1(xq, x_scale, gy, geom, bits, msb_bits, x_signed, grad_bits):
    """MSB prediction for stride 1, exact in integers up to the final scaling: (the predicted gradient, the
    full input codes and the fp32 gradient in the channel-major layout, for the fallback entries)."""
    lay = cm_layout(geom)
    shift = bits - msb_bits
    zero_code = 2 ** (bits - 1) if x_signed else 0
    d_lut, e_lut = _digit_tables(bits, msb_bits, x_signed)
    q_e = int(np.argmax(e_lut)) if e_lut.any() else 2**bits  # e = 1 exactly for q >= q_e (monotone rounding)
    assert (e_lut == (np.arange(2**bits) >= q_e)).all()
    d = workspace("psg_digits", geom, (geom.ci, lay.length + lay.tail), d_lut.dtype)
    qcm = workspace("input_cm", geom, (geom.ci, lay.length + lay.tail), xq.dtype)
    fcm = workspace("grad_cm", geom, (geom.co, lay.length), np.float32)
    cap = 256
    e_n = np.empty(geom.ci, np.int64)
    while True:
        e_jc = np.empty((geom.ci, cap), np.int64)
        _digits_to_cm(xq, zero_code, shift, 2 ** (msb_bits - 1) if x_signed else 0, q_e, geom.ph, geom.pw,
                      lay.wp, lay.row, d, qcm, e_jc, e_n)
        if e_n.max() <= cap:
            break
        cap = int(e_n.max())
    listed = np.arange(cap) < e_n[:, None]
    e_c, e_j = np.repeat(np.arange(geom.ci), e_n), e_jc[listed]
    lo, delta, qmax, gzero = quantizer_constants(max_abs_range(gy, "tensor")[0], grad_bits, True)
    g = workspace("psg_grad_codes", geom, (geom.co, lay.length), np.int16)
    if delta > 0:
        _quantize_grad_to_cm(gy, lo, delta, qmax, gzero, lay.wp, lay.row, g, fcm)
    else:
        g[:] = 0  # an all-zero gradient has all-zero codes
        fcm[:] = 0
    cig, cog = geom.ci // geom.groups, geom.co // geom.groups
    main = np.empty((geom.co, cig, geom.kh, geom.kw), dtype=np.int64)
    terms = int32_terms(2 ** (msb_bits - 1) if x_signed else 2**msb_bits, code_bound(grad_bits, True))
    _wgrad_cm_kernel(d, g, lay.row, geom.kh, geom.kw, cig, cog, cm_block(terms, True), main)
    predicted = _msb_prediction(main, shift, e_c, e_j, g, lay.row, cig, cog, np.float64(x_scale) * np.float64(delta))
    return predicted, qcm, fcm


def _entries_from_cm(qcm, fcm, geom, entries):
    """wgrad_entries for stride 1 from the channel-major layouts of the codes and the fp32 gradient."""
    out = np.empty(entries.shape[0], dtype=np.float64)
    if entries.shape[0] == 0:
        return out
    order = np.argsort(entries[:, 0], kind="stable")  # group by output channel (argwhere already is)
    ent = np.ascontiguousarray(entries[order])
    starts = np.searchsorted(ent[:, 0], np.arange(geom.co + 1))
    res = np.empty_like(out)
    _entries_cm(qcm, fcm, cm_layout(geom).row, geom.ci // geom.groups, geom.co // geom.groups, ent, starts, res)
    out[order] = res
    return out


def wgrad_entries(x_codes: np.ndarray, gy: np.ndarray, geom, entries: np.ndarray) -> np.ndarray:
    """Weight-gradient sums sum(x_codes * gy) for the listed (co, c, kh, kw) entries only, float64."""
    cig, cog = geom.ci // geom.groups, geom.co // geom.groups
    out = np.empty(entries.shape[0], dtype=np.float64)
    if entries.shape[0] == 0:
        return out
    gy = np.ascontiguousarray(gy, dtype=np.float32)
    if geom.sh == 1 and geom.sw == 1:
        lay = cm_layout(geom)
        return _entries_from_cm(input_cm(x_codes, geom, lay, x_codes.dtype), grad_cm(gy, geom, lay, np.float32),
                                geom, entries)
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
    return psg_from_codes(xq, float(dx[0]), gy, geom, bits=bits, msb_bits=msb_bits, x_signed=x_signed,
                          grad_msb_bits=grad_msb_bits, threshold=threshold)


def psg_from_codes(xq, x_scale, gy, geom, *, bits, msb_bits, x_signed, grad_msb_bits, threshold) -> PsgResult:
    """PSG from the forward pass's ``bits``-bit input codes ``xq`` (scale ``x_scale``) and the fp32 output
    gradient ``gy``: what the backward pass of a PSG layer computes (``geom`` from conv._geometry)."""
    w_shape = (geom.co, geom.ci // geom.groups, geom.kh, geom.kw)
    if grad_msb_bits == FP32:
        xm = msb_split(xq, bits, msb_bits, x_signed)
        every = np.argwhere(np.ones(w_shape, dtype=bool))
        predicted = wgrad_entries(xm, gy, geom, every).reshape(w_shape) * np.float64(x_scale)
    elif geom.sh == 1 and geom.sw == 1 and _digits_fit_int16(msb_bits, x_signed):
        predicted, qcm, fcm = _predict_stride1(xq, x_scale, gy, geom, bits, msb_bits, x_signed, grad_msb_bits)
    else:
        xm = msb_split(xq, bits, msb_bits, x_signed)
        gq, dg = quantize_output_grad(gy, grad_msb_bits)
        terms = int32_terms(code_bound(bits, x_signed), code_bound(grad_msb_bits, True))
        predicted = wgrad_codes(xm, gq, geom, terms) * (np.float64(x_scale) * np.float64(dg[0]))
    tau, fallback, entries = _select_fallback(predicted, float(threshold))
    if grad_msb_bits != FP32 and geom.sh == 1 and geom.sw == 1 and _digits_fit_int16(msb_bits, x_signed):
        # the layouts the prediction wrote
        sums = _entries_from_cm(qcm, fcm, geom, entries)
    else:
        sums = wgrad_entries(xq, gy, geom, entries)
    full, sign = _combine(predicted, fallback, sums, np.float64(x_scale))
    return PsgResult(sign, predicted, fallback, full, tau)


@njit(cache=True)
def _select_fallback(predicted, threshold):
    """The absolute threshold tau (``threshold``, or ``-threshold`` times max|predicted| when negative), the
    fallback mask ``|predicted| <= tau`` and its entries as (co, c, kh, kw) rows in C order (np.argwhere's):
    one compiled pass instead of a string of small NumPy calls."""
    flat = predicted.reshape(-1)
    tau = threshold
    if threshold < 0:
        top = 0.0
        for v in flat:
            top = max(top, abs(v))
        tau = -threshold * top
    mask = np.empty(predicted.shape, np.bool_)
    mflat = mask.reshape(-1)
    count = 0
    for i in range(flat.size):
        mflat[i] = abs(flat[i]) <= tau
        count += mflat[i]
    _, c_n, kh_n, kw_n = predicted.shape
    entries = np.empty((count, 4), np.int64)
    e = 0
    for i in range(flat.size):
        if mflat[i]:
            entries[e, 0] = i // (c_n * kh_n * kw_n)
            entries[e, 1] = i // (kh_n * kw_n) % c_n
            entries[e, 2] = i // kw_n % kh_n
            entries[e, 3] = i % kw_n
            e += 1
    return tau, mask, entries


@njit(cache=True)
def _combine(predicted, fallback, sums, x_scale):
    """``full`` (the fallback sums times the input scale, NaN elsewhere) and the sign: of ``full`` on the
    fallback entries, of ``predicted`` elsewhere."""
    full = np.full(predicted.shape, np.nan)
    sign = np.empty(predicted.shape, np.int8)
    f, p, m, s = full.reshape(-1), predicted.reshape(-1), fallback.reshape(-1), sign.reshape(-1)
    e = 0
    for i in range(p.size):
        if m[i]:
            f[i] = sums[e] * x_scale
            s[i] = np.int8(np.sign(f[i]))
            e += 1
        else:
            s[i] = np.int8(np.sign(p[i]))
    return full, sign
