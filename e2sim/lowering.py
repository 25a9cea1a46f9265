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


import numpy as np

from .counts import PASSES, TENSORS
from .plan import Plan
from .records import Record, record
from .workload import Workload

FWD, BWD_IN, BWD_W, UPD = (PASSES.index(p) for p in PASSES)
# The tensor a pass writes (its GEMM's C operand).
OUT_TENSOR = np.array([TENSORS.index("output"), TENSORS.index("grad_input"),
                       TENSORS.index("grad_weight"), TENSORS.index("weight")])
# How a GEMM grows with the samples that run it: rows of A (M), the reduction (K), or independent copies.
FOLD_M, FOLD_K, FOLD_COUNT = 0, 1, 2


@record
class Geometry(Record):
    """The GEMM templates of a workload: per (layer, pass) with MACs, one or more GEMMs per sample, sorted by
    (layer, pass). ``m0``/``k0``/``count0`` are per sample along the ``fold`` dimension; ``a_unique0`` is
    per sample unless the fold is ``count`` (then per GEMM)."""

    layer: np.ndarray
    pass_: np.ndarray
    m0: np.ndarray
    n: np.ndarray
    k0: np.ndarray
    count0: np.ndarray
    a_unique0: np.ndarray
    fold: np.ndarray


def _touched(e: int, r: int, s: int) -> int:
    return e * r if r < s else (e - 1) * s + r


def _conv_gemms(cin_g, cout_g, pix, kk, touched):
    """(pass, m, n, k, fold, a_unique) of a conv per group and sample (``pix`` output pixels)."""
    red = cin_g * kk
    return [(FWD, pix, cout_g, red, FOLD_M, cin_g * touched),
            (BWD_IN, pix, red, cout_g, FOLD_M, pix * cout_g),
            (BWD_W, red, cout_g, pix, FOLD_K, cin_g * touched)]


def _layer_gemms(L) -> list[tuple]:
    """GEMM templates (pass, m, n, k, count, fold, a_unique) of one layer; passes the layer lacks are left
    out (the counts stage decides which: no input gradient, frozen weights)."""
    from .counts import RNN_GATES

    cin, hin, win = L.in_shape
    cout, ho, wo = L.out_shape
    st, k = L.steps, L.kind
    g = L.groups
    out: list[tuple] = []
    if k == "conv":
        ek = L.effective_kernel
        touched = _touched(ho, ek[0], L.stride[0]) * _touched(wo, ek[1], L.stride[1])
        out = [(p, m, n, kk, g, f, a * (1 if p == BWD_IN else st))
               for p, m, n, kk, f, a in _conv_gemms(cin // g, cout // g, ho * wo * st,
                                                    L.kernel[0] * L.kernel[1], touched)]
    elif k == "conv_transpose":
        # A transposed conv is the input-gradient GEMM of the conv that maps its output back onto its
        # input (in and out swapped), and vice versa: same MACs, no zero insertion.
        ek = L.effective_kernel
        touched = _touched(hin, ek[0], L.stride[0]) * _touched(win, ek[1], L.stride[1])
        swap = {FWD: BWD_IN, BWD_IN: FWD, BWD_W: BWD_W}
        out = [(swap[p], m, n, kk, g, f, a * (1 if p == BWD_IN else st))
               for p, m, n, kk, f, a in _conv_gemms(cout // g, cin // g, hin * win * st,
                                                    L.kernel[0] * L.kernel[1], touched)]
    elif k == "linear":
        out = [(FWD, st, cout, cin, 1, FOLD_M, st * cin), (BWD_IN, st, cin, cout, 1, FOLD_M, st * cout),
               (BWD_W, cin, cout, st, 1, FOLD_K, cin * st)]
    elif k == "matmul":  # (batch, M, K) @ (batch, K, N): independent products per sample
        bt, m, kk, n = cin, hin, win, wo
        c = bt * st
        out = [(FWD, m, n, kk, c, FOLD_COUNT, m * kk), (BWD_IN, m, kk, n, c, FOLD_COUNT, m * n),
               (BWD_W, kk, n, m, c, FOLD_COUNT, kk * m)]
    elif k in RNN_GATES:
        # One step is a linear layer on [x, h] (in = I + H, out = G*H); the input gradient splits into the
        # W_ih part (steps whose input needs it) and the W_hh part (steps whose previous state needs it).
        h = L.hidden or cout
        gh = RNN_GATES[k] * h
        gin, gw = L.needs_input_grad, L.needs_weight_grad
        rec = st - 1 + L.state_needs_grad if (gin or gw or L.state_needs_grad) else 0
        out = [(FWD, st, gh, cin + h, 1, FOLD_M, st * (cin + h)), (BWD_W, cin + h, gh, st, 1, FOLD_K, st * (cin + h))]
        x_rows = st if gin else 0
        if x_rows == rec:
            out.append((BWD_IN, rec, cin + h, gh, 1, FOLD_M, rec * gh))
        else:
            out += [(BWD_IN, x_rows, cin, gh, 1, FOLD_M, x_rows * gh), (BWD_IN, rec, h, gh, 1, FOLD_M, rec * gh)]
    if k in ("conv", "conv_transpose", "linear", "matmul"):
        out = [t for t in out if not (t[0] == BWD_IN and not L.needs_input_grad)]
    out = [t for t in out if not (t[0] == BWD_W and not L.needs_weight_grad)]
    return [t for t in out if t[1] * t[2] * t[3] * t[4] > 0]


def geometry(workload: Workload) -> Geometry:
    rows = []
    for i, L in enumerate(workload.layers):
        for p, m, n, k, c, f, a in sorted(_layer_gemms(L), key=lambda t: t[0]):
            rows.append((i, p, m, n, k, c, a, f))
    a = np.array(rows, dtype=np.int64).reshape(-1, 8).T
    return Geometry(layer=a[0], pass_=a[1], m0=a[2], n=a[3], k0=a[4], count0=a[5], a_unique0=a[6], fold=a[7])


@record
class Gemms(Record):
    """The GEMMs of a plan: one row per GEMM of a plan item that has MACs (``item`` indexes the plan; an
    item may have several GEMMs, e.g. an lstm's input gradient)."""

    item: np.ndarray
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    count: np.ndarray  # identical GEMMs (groups; products of a matmul)
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
    npass = len(PASSES)
    key_t = geo.layer * npass + geo.pass_
    key_i = li[idx] * npass + pi[idx]
    start = np.searchsorted(key_t, key_i, "left")
    n_per = np.searchsorted(key_t, key_i, "right") - start
    item = np.repeat(idx, n_per)
    first = np.cumsum(n_per) - n_per
    t = np.repeat(start - first, n_per) + np.arange(int(n_per.sum()))
    s = plan.samples[item]
    fold = geo.fold[t]
    m = geo.m0[t] * np.where(fold == FOLD_M, s, 1.0)
    k = geo.k0[t] * np.where(fold == FOLD_K, s, 1.0)
    count = geo.count0[t] * np.where(fold == FOLD_COUNT, s, 1.0)
    a_unique = geo.a_unique0[t] * np.where(fold == FOLD_COUNT, 1.0, s)
    c_bits = plan.tensor_bits[item, OUT_TENSOR[plan.pass_[item]]]
    return Gemms(item=item, m=m, n=geo.n[t].astype(float), k=k, count=count, a_unique=a_unique,
                 a_bits=plan.a_bits[item], b_bits=plan.b_bits[item], c_bits=c_bits, is_float=plan.is_float[item])
