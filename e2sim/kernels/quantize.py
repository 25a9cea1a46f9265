"""E2-Train's range-based linear quantizer and MSB split, on integer codes.

Semantics follow the official code (GATECH-EIC/E2Train ``models/quantize.py``, commit 45552a8), evaluated
in float32 like the original tensors:

* range ``M`` = max |x| per tensor, per output channel (weights: flatten dims (1, -1), no reduction), or per
  sample averaged over the batch (activations: ``reduce_dim=0``, ``reduce_type='mean'``); the 16-bit output
  gradient of the PSG predictor uses the per-tensor max (``reduce_type='extreme'``).
* ``min = -M`` if signed else ``0``; step ``delta = (M - min) / 2**bits``;
  ``q = round_half_even(clamp((x - min) / delta, 0, 2**bits - 1))``.
* MSB part of a b-bit code with m MSB bits: ``clamp(round_half_even(q / 2**(b-m)) * 2**(b-m), 0, 2**b - 1)``
  (note the top level is ``2**b - 1``, not a multiple of ``2**(b-m)``: that is the official formula).

Codes returned here are *centred*: a signed quantizer returns ``s = q - 2**(bits-1)`` so that the value is
exactly ``s * delta`` (the official dequantisation ``q * delta - M`` is the same number since
``2**(bits-1) * delta == M``); an unsigned quantizer returns ``q`` with value ``q * delta``.

Deviation: an all-zero tensor (``M == 0``) gives NaN in the official code (0/0); here it gives the code of
value 0 and ``delta == 0``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

MIN_BITS, MAX_BITS = 2, 16
RANGE_MODES = ("tensor", "channel", "sample_mean")


def code_dtype(bits: int, signed: bool) -> np.dtype:
    """Smallest integer dtype that holds every code of a ``bits``-bit quantizer."""
    _check_bits(bits, "bits")
    if signed:
        return np.dtype(np.int8 if bits <= 8 else np.int16)
    return np.dtype(np.uint8 if bits <= 8 else np.uint16)


def _check_bits(bits: int, name: str) -> None:
    if not isinstance(bits, (int, np.integer)) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"{name} must be an integer in [{MIN_BITS}, {MAX_BITS}], got {bits!r}")


@njit(cache=True)
def _abs_bits_max(bits):
    """max of the float32 bit patterns without the sign bit: for non-negative floats the bit pattern is
    monotone in the value, so this is max|x|'s pattern; >= 0x7f800000 exactly when some entry is inf or NaN.
    One vectorisable integer pass instead of isfinite + max + min."""
    m = np.uint32(0)
    for i in range(bits.size):
        m = max(m, bits[i] & np.uint32(0x7FFFFFFF))
    return m


@njit(cache=True, parallel=True)
def _rows_abs_bits_max(bits2):
    """_abs_bits_max of each row of a 2-D view: exact max|x| per row (as its bit pattern), and inf/NaN
    detection, in one pass instead of isfinite + max + min."""
    out = np.empty(bits2.shape[0], np.uint32)
    for i in prange(bits2.shape[0]):
        out[i] = _abs_bits_max(bits2[i])
    return out


@njit(cache=True)
def _rows_abs_bits_max_serial(bits2):
    """_rows_abs_bits_max for small tensors (per-channel weights): no thread hand-off."""
    out = np.empty(bits2.shape[0], np.uint32)
    for i in range(bits2.shape[0]):
        out[i] = _abs_bits_max(bits2[i])
    return out


SMALL = 1 << 16  # elements: below this a parallel call costs more than the pass itself


def max_abs_range(x: np.ndarray, mode: str) -> np.ndarray:
    """The quantizer range ``M`` (float32): shape (1,) for ``tensor`` and ``sample_mean``, (x.shape[0],) for
    ``channel``. ``sample_mean`` averages the per-sample maxima with a float64 sum rounded once to float32
    (torch's float32 mean can differ from it by one ulp)."""
    if mode not in RANGE_MODES:
        raise ValueError(f"range mode must be one of {RANGE_MODES}, got {mode!r}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.size == 0:
        raise ValueError("cannot quantize an empty tensor")
    if mode == "tensor":
        m = np.array([_abs_bits_max(x.reshape(-1).view(np.uint32))], dtype=np.uint32)
        if m[0] >= 0x7F800000:
            raise ValueError("cannot quantize a tensor with NaN or infinite entries")
        return m.view(np.float32)
    rows_max = _rows_abs_bits_max_serial if x.size < SMALL else _rows_abs_bits_max
    bits = rows_max(x.reshape(x.shape[0], -1).view(np.uint32))
    if bits.max() >= 0x7F800000:
        raise ValueError("cannot quantize a tensor with NaN or infinite entries")
    rows = bits.view(np.float32)
    if mode == "channel":
        return rows
    return np.array([rows.astype(np.float64).sum() / rows.size], dtype=np.float32)


@njit(cache=True, inline="always")
def code_of(v, lo, delta, qmax, zero_code):
    """The official formula for one float32 value: round_half_even(clamp((v - lo) / delta, 0, qmax)), centred."""
    t = (v - lo) / delta  # float32 throughout, like the official tensors
    t = min(max(t, np.float32(0.0)), qmax)
    return np.int32(np.rint(t)) - zero_code


@njit(cache=True, parallel=True)
def _quantize_row(x, lo, delta, qmax, zero_code, out):
    for j in prange(x.size):
        out[j] = code_of(x[j], lo, delta, qmax, zero_code)


def quantizer_constants(max_value: float, bits: int, signed: bool):
    """(lo, delta, qmax, zero_code) of the official formula, float32 like the original tensors."""
    m = np.float32(max_value)
    lo = -m if signed else np.float32(0.0)
    delta = np.float32((m - lo) / np.float32(2.0**bits))
    return np.float32(lo), delta, np.float32(2.0**bits - 1.0), 2 ** (bits - 1) if signed else 0


@njit(cache=True, parallel=True)
def _quantize_row_values(x, lo, delta, qmax, zero_code, out, values):
    """_quantize_row that also writes the represented float32 value ``code * delta`` (the dequantized
    tensor) in the same pass."""
    for j in prange(x.size):
        c = code_of(x[j], lo, delta, qmax, zero_code)
        out[j] = c
        values[j] = np.float32(c) * delta


@njit(cache=True)  # serial: for many short rows (per-channel weights) one call beats a parallel call per row
def _quantize_short_rows(x2, lo, delta, qmax, zero_code, out, values):
    for i in range(x2.shape[0]):
        if delta[i] == 0:
            out[i] = 0  # the code of value 0 (the official formula gives NaN: 0/0)
            values[i] = 0
            continue
        for j in range(x2.shape[1]):
            c = code_of(x2[i, j], lo[i], delta[i], qmax, zero_code)
            out[i, j] = c
            values[i, j] = np.float32(c) * delta[i]


SHORT_ROW = 4096  # rows up to this length go through one serial call (a parallel call per row costs more
# than the row itself)


def _quantize_rows(x2, m_rows, bits, signed, out, values):
    if m_rows.size > 1 and x2.shape[1] <= SHORT_ROW:
        lo, delta, qmax, zero_code = quantizer_constants(m_rows, bits, signed)  # elementwise on the rows
        lo = np.broadcast_to(lo, m_rows.shape).astype(np.float32)
        _quantize_short_rows(x2, lo, delta, qmax, zero_code, out, np.empty_like(x2) if values is None else values)
        return
    for i in range(x2.shape[0]):
        lo, delta, qmax, zero_code = quantizer_constants(m_rows[i], bits, signed)
        if delta == 0:
            out[i] = 0  # the code of value 0 (the official formula gives NaN: 0/0)
            if values is not None:
                values[i] = 0
        elif values is None:
            _quantize_row(x2[i], lo, delta, qmax, zero_code, out[i])
        else:
            _quantize_row_values(x2[i], lo, delta, qmax, zero_code, out[i], values[i])


def quantize(x: np.ndarray, max_value: np.ndarray | float, bits: int, signed: bool, dtype=None):
    """Quantize ``x`` with range ``max_value`` (scalar/shape (1,) or one per ``x.shape[0]`` row).

    Returns ``(codes, delta)``: centred integer codes of ``code_dtype(bits, signed)`` (or of ``dtype``, e.g.
    float32 codes for torch) with x's shape, and the float32 step per row (shape (1,) or (x.shape[0],)); the
    represented value is ``codes * delta``.
    """
    codes, delta, _ = _quantize(x, max_value, bits, signed, dtype, False)
    return codes, delta


def quantize_values(x: np.ndarray, max_value: np.ndarray | float, bits: int, signed: bool):
    """``quantize`` plus the represented values ``codes * delta`` (float32, x's shape), from the same pass.
    Returns ``(codes, delta, values)``."""
    return _quantize(x, max_value, bits, signed, None, True)


def _quantize(x, max_value, bits, signed, dtype, with_values):
    _check_bits(bits, "bits")
    x = np.ascontiguousarray(x, dtype=np.float32)
    m = np.atleast_1d(np.asarray(max_value, dtype=np.float32))
    if m.ndim != 1 or m.size not in (1, x.shape[0] if x.ndim else 1):
        raise ValueError(f"max_value must be a scalar or have one entry per row ({x.shape[0]}), got {m.shape}")
    if not (np.isfinite(m).all() and (m >= 0).all() and np.isfinite(2 * m).all()):
        raise ValueError("max_value must be finite, non-negative and small enough that 2*max_value is finite")
    rows = m.size
    x2 = x.reshape(rows, -1)
    codes = np.empty(x2.shape, dtype=code_dtype(bits, signed) if dtype is None else dtype)
    values = np.empty(x2.shape, dtype=np.float32) if with_values else None
    _quantize_rows(x2, m, bits, signed, codes, values)
    lo = -m if signed else np.zeros_like(m)
    delta = ((m - lo) / np.float32(2.0**bits)).astype(np.float32)
    return codes.reshape(x.shape), delta, None if values is None else values.reshape(x.shape)


@njit(cache=True, inline="always")
def msb_digit(code, shift, zero_code):
    """k = round_half_even(q / 2**shift) of the uncentred code q, exactly in integers (0 <= k <= 2**msb_bits):
    floor((q + half) / 2**shift), minus one at an exact half below an even k (q mod 2**(shift+1) == half).
    Branch-free, so that loops over codes vectorise."""
    q = np.int32(code) + zero_code
    half = (np.int32(1) << shift) >> 1
    tie = half if shift > 0 else -1  # no ties when nothing is dropped
    mask = (np.int32(2) << shift) - 1
    return ((q + half) >> shift) - np.int32((q & mask) == tie)


@njit(cache=True, parallel=True)
def _msb_flat(c, shift, qmax, zero_code, out):
    for i in prange(c.size):
        out[i] = min(msb_digit(c[i], shift, zero_code) << shift, qmax) - zero_code


def msb_split(codes: np.ndarray, bits: int, msb_bits: int, signed: bool, dtype=None) -> np.ndarray:
    """The MSB part of ``bits``-bit centred codes at ``msb_bits`` bits, on the same scale (same ``delta``), as
    ``code_dtype(bits, signed)`` or ``dtype`` (e.g. float32 for torch)."""
    _check_bits(bits, "bits")
    _check_bits(msb_bits, "msb_bits")
    if msb_bits > bits:
        raise ValueError(f"msb_bits ({msb_bits}) must not exceed bits ({bits})")
    c = np.ascontiguousarray(codes)
    out = np.empty(c.shape, dtype=code_dtype(bits, signed) if dtype is None else dtype)
    zero_code = 2 ** (bits - 1) if signed else 0
    _msb_flat(c.reshape(-1), bits - msb_bits, 2**bits - 1, zero_code, out.reshape(-1))
    return out
