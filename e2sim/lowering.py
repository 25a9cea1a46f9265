"""Lowering: the items of a Plan become GEMMs (M, N, K) and element-wise (vector) work.

Per group g of a convolution (cin_g = Cin/g, cout_g = Cout/g, kk = kh*kw, P = Ho*Wo, S = samples):
- forward:        M = S*P,      N = cout_g,     K = cin_g*kk   (im2col; A = input windows, B = weights)
- input gradient: M = S*P,      N = cin_g*kk,   K = cout_g     (W^T x dY into a column buffer, then col2im:
                                                                the transposed conv without zero insertion,
                                                                so MACs equal the forward's at any stride)
- weight gradient: M = cin_g*kk, N = cout_g,    K = S*P        (A = input windows^T, B = dY)
linear: forward (S, out, in), input gradient (S, in, out), weight gradient (in, out, S); an LSTM step is a
linear layer on the concatenated [x, h] (in = I + H, out = 4H). A grouped or depthwise conv is ``groups``
identical GEMMs (``count``). The batch is folded into M (forward, input gradient) or K (weight gradient):
SCALE-Sim itself has batch 1. ``samples`` may be fractional (SLU's expected samples); the dimensions are
then fractional too and the fold counts round them up.

The A operand's distinct elements (``a_unique``) follow SCALE-Sim's padded-input convention: the input is
stored padded to (E-1)*s + R rows (what SCALE-Sim's topology takes), and only the rows a window touches
are fetched (E*R when R < s, as for a 1x1 stride-2 projection).

Everything else (batchnorm, relu, add, pooling, biases, the weight update) is element-wise work on the
vector path; see ``estimate``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .counts import PASSES, TENSORS
from .plan import Plan
from .workload import Workload

FWD, BWD_IN, BWD_W, UPD = (PASSES.index(p) for p in PASSES)
# The tensor a pass writes (its GEMM's C operand).
OUT_TENSOR = np.array([TENSORS.index("output"), TENSORS.index("grad_input"),
                       TENSORS.index("grad_weight"), TENSORS.index("weight")])
KIND_CONV, KIND_LINEAR, KIND_LSTM, KIND_OTHER = 0, 1, 2, 3


@dataclass(frozen=True)
class Geometry:
    """Per-layer shape arrays (length L) used by the lowering."""

    kind: np.ndarray
    cin: np.ndarray
    cout: np.ndarray
    hout: np.ndarray
    wout: np.ndarray
    kk: np.ndarray
    groups: np.ndarray
    touched_hw: np.ndarray  # padded-input pixels the windows touch, per channel


def _touched(e: int, r: int, s: int) -> int:
    return e * r if r < s else (e - 1) * s + r


def geometry(workload: Workload) -> Geometry:
    rows = []
    for L in workload.layers:
        cin, _, _ = L.in_shape
        cout, ho, wo = L.out_shape
        kind = {"conv": KIND_CONV, "linear": KIND_LINEAR, "lstm": KIND_LSTM}.get(L.kind, KIND_OTHER)
        if L.kind == "lstm":
            h = L.hidden or cout
            cin, cout = cin + h, 4 * h
        th = _touched(ho, L.kernel[0], L.stride[0]) * _touched(wo, L.kernel[1], L.stride[1])
        rows.append((kind, cin, cout, ho, wo, L.kernel[0] * L.kernel[1], L.groups, th))
    a = np.array(rows, dtype=np.int64).T
    return Geometry(*(a[i] for i in range(8)))


@dataclass(frozen=True)
class Gemms:
    """The GEMMs of a plan: one row per plan item that has MACs (``item`` indexes the plan)."""

    item: np.ndarray
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    count: np.ndarray  # identical GEMMs (groups)
    a_unique: np.ndarray  # distinct elements of A per GEMM
    a_bits: np.ndarray
    b_bits: np.ndarray
    c_bits: np.ndarray
    is_float: np.ndarray

    @property
    def macs(self) -> np.ndarray:
        return self.count * self.m * self.n * self.k


def lower(plan: Plan, geo: Geometry) -> Gemms:
    c = plan.counts
    li, pi = plan.layer, plan.pass_
    has_macs = (c.macs_sample[li, pi] + c.macs_fixed[li, pi]) > 0
    idx = np.nonzero(has_macs)[0]
    li, pi = li[idx], pi[idx]
    s = plan.samples[idx]
    kind = geo.kind[li]
    g = geo.groups[li]
    cin_g, cout_g = geo.cin[li] // g, geo.cout[li] // g
    conv = kind == KIND_CONV
    kk = np.where(conv, geo.kk[li], 1)
    pix = np.where(conv, geo.hout[li] * geo.wout[li], 1)
    rows_act = s * pix  # activation rows: samples x output pixels
    red = cin_g * kk  # forward reduction length
    fwd, bi = pi == FWD, pi == BWD_IN
    m = np.where(fwd | bi, rows_act, red)
    n = np.where(bi, red, cout_g)
    k = np.where(fwd, red, np.where(bi, cout_g, rows_act))
    # Distinct elements of A: the (padded, touched) input for forward and weight gradient, dY for bwd_input.
    in_elems = np.where(conv, s * cin_g * geo.touched_hw[li], s * cin_g)
    a_unique = np.where(bi, m * k, in_elems)
    c_bits = plan.tensor_bits[idx, OUT_TENSOR[pi]]
    return Gemms(item=idx, m=m.astype(float), n=n.astype(float), k=k.astype(float), count=g.astype(float),
                 a_unique=a_unique.astype(float), a_bits=plan.a_bits[idx], b_bits=plan.b_bits[idx],
                 c_bits=c_bits, is_float=plan.is_float[idx])
