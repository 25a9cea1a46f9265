"""Exact per-layer, per-pass training counts: MACs, element operations, tensor elements read and written.

Everything is a numpy array over layers x passes (x tensors), split into a part that scales with the
number of samples that run the layer (``*_sample``: activations and their gradients) and a part paid once
per iteration whatever the batch (``*_fixed``: weights, weight gradients, optimizer state, the update).
Techniques rescale the per-sample part (selective layer update skips samples, SMD skips iterations); the
hardware stage prices the totals.

Counting rules (per sample unless said otherwise; e = elements of the layer's output; every count is
per step times the layer's ``steps``):
- conv / linear: fwd MACs = Cout*Ho*Wo*(Cin/groups)*kh*kw (dilation changes no MAC); bwd_input the same
  (zero where the input needs no gradient, e.g. the first layer); bwd_weight the same (zero where the
  weights are frozen). Bias: e element ops forward (add) and e in bwd_weight (reduction of grad_output).
- conv_transpose: MACs = Cin*Hin*Win*(Cout/groups)*kh*kw in each pass (torch's count).
- matmul (A (batch, M, K) @ B (batch, K, N), both activations): batch*M*N*K in fwd; bwd_input = dA
  where A needs a gradient, bwd_weight = dB where B does (B plays the GEMM's weight role but is per
  sample and has no update).
- lstm / gru (torch layout, G = 4 / 3 gates): G*H*(I+H) MACs per step forward and weight gradient; the
  input gradient is G*H*I per step where the input needs it plus G*H*H per step whose previous hidden
  state needs it (all steps but the first unless ``state_needs_grad``). Element ops per step: 16H (lstm)
  / 17H (gru) forward and the same backward (``RNN_ELEM_OPS``).
- mul (n inputs): (n-1)*e ops forward, n*(n-1)*e backward (each input's gradient multiplies grad_output
  by the other inputs); broadcast inputs are counted at the output's size.
- batchnorm (training mode): 5 element ops per element forward (mean, variance, normalise, scale, shift;
  fvcore's training-mode count); backward split in bwd_weight 4/elem (recompute x_hat: 2, sum(dy*x_hat)
  and sum(dy): 2) and bwd_input 4/elem (dx = gamma*inv_std*(dy - dbeta/N - x_hat*dgamma/N)).
- relu: 1 op/elem forward (max), 1 backward (mask). sigmoid: 1 forward, 3 backward (dy*s*(1-s)).
- add (n inputs): (n-1)*e ops forward; backward delivers grad_output to each of the n inputs (written
  n*e) and pays the (n-1)*e accumulation of the branch gradients where the residual fork re-joins.
- maxpool: e*(kh*kw-1) comparisons forward, e scatter ops backward; avgpool: e*kh*kw forward (adds and
  scale), in-elements backward (broadcast and scale).
- update (per iteration, not per sample): torch.optim.SGD with momentum and weight decay costs 3 ops per
  parameter (g += wd*w; v = m*v + g; w -= lr*v), reads weight, gradient and momentum, writes weight and
  momentum. Layers whose weights belong to another layer (a shared gate LSTM) have no update of their own.
"""
from __future__ import annotations

from dataclasses import field

import numpy as np

from .errors import E2simError
from .records import Record, record
from .workload import GEMM_KINDS, MAX_BATCH, RNN_GATES, Workload

PASSES = ("fwd", "bwd_input", "bwd_weight", "update")
TENSORS = ("input", "weight", "output", "grad_output", "grad_input", "grad_weight", "state")
P = {p: i for i, p in enumerate(PASSES)}
T = {t: i for i, t in enumerate(TENSORS)}
UPDATE_OPS_PER_PARAM = 3
# Element operations of one lstm / gru step per hidden unit, forward (the same again backward).
# LSTM: 8H bias adds, 5H sigmoid/tanh, 3H cell products and sum. GRU: 6H bias adds, 2H r/z sums,
# 2H for n = tanh(x_n + r * h_n), 3H sigmoid/tanh, 4H for h' = (1 - z) * n + z * h.
RNN_ELEM_OPS = {"lstm": 16, "gru": 17}


@record
class Counts(Record):
    """Counts for one training iteration of ``batch_size`` samples. Arrays are int64."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    blocks: tuple[str | None, ...]
    roles: tuple[str, ...]
    batch_size: int
    macs_sample: np.ndarray  # [L, P]
    macs_fixed: np.ndarray  # [L, P]
    ops_sample: np.ndarray  # [L, P] element operations (non-MAC)
    ops_fixed: np.ndarray  # [L, P]
    reads_sample: np.ndarray  # [L, P, T] elements
    reads_fixed: np.ndarray
    writes_sample: np.ndarray
    writes_fixed: np.ndarray
    params: np.ndarray = field(repr=False)  # [L] trainable parameters owned by the layer

    @property
    def macs(self) -> np.ndarray:
        return self.macs_sample * self.batch_size + self.macs_fixed

    @property
    def elem_ops(self) -> np.ndarray:
        return self.ops_sample * self.batch_size + self.ops_fixed

    @property
    def reads(self) -> np.ndarray:
        return self.reads_sample * self.batch_size + self.reads_fixed

    @property
    def writes(self) -> np.ndarray:
        return self.writes_sample * self.batch_size + self.writes_fixed

    def with_batch(self, batch_size: int) -> Counts:
        from dataclasses import replace

        return replace(self, batch_size=int(batch_size))

    def to_frame(self):
        """Tidy table: one row per layer x pass, element counts per tensor with units in the names."""
        import pandas as pd

        nl, npass = len(self.names), len(PASSES)
        cols = {
            "layer": np.repeat(self.names, npass),
            "kind": np.repeat(self.kinds, npass),
            "block": np.repeat(np.array(self.blocks, dtype=object), npass),
            "role": np.repeat(self.roles, npass),
            "pass": np.tile(PASSES, nl),
            "macs": self.macs.reshape(-1),
            "elem_ops": self.elem_ops.reshape(-1),
        }
        reads, writes = self.reads.reshape(-1, len(TENSORS)), self.writes.reshape(-1, len(TENSORS))
        for t, name in enumerate(TENSORS):
            cols[f"{name}_read_elems"] = reads[:, t]
        for t, name in enumerate(TENSORS):
            cols[f"{name}_write_elems"] = writes[:, t]
        df = pd.DataFrame(cols)
        # Drop tensor columns that are zero everywhere would change the schema per workload; keep all.
        return df


def count(workload: Workload, batch_size: int | None = None) -> Counts:
    """Per-layer, per-pass counts of one training iteration (default batch: the workload's)."""
    if batch_size is not None and not 1 <= batch_size <= MAX_BATCH:
        raise E2simError(f"batch size {batch_size}: must be in [1, {MAX_BATCH}]")
    layers = workload.layers
    nl, npass, nt = len(layers), len(PASSES), len(TENSORS)
    ms = np.zeros((nl, npass), np.int64)
    mf = np.zeros((nl, npass), np.int64)
    os_ = np.zeros((nl, npass), np.int64)
    of = np.zeros((nl, npass), np.int64)
    rs = np.zeros((nl, npass, nt), np.int64)
    rf = np.zeros((nl, npass, nt), np.int64)
    ws = np.zeros((nl, npass, nt), np.int64)
    wf = np.zeros((nl, npass, nt), np.int64)
    params = np.zeros(nl, np.int64)

    for i, L in enumerate(layers):
        try:
            _count_layer(i, L, ms, mf, os_, of, rs, rf, ws, wf, params)
        except OverflowError:
            raise E2simError(f"layers.{i} ({L.name}): counts exceed int64") from None

    batch = int(batch_size if batch_size is not None else workload.batch_size)
    # Counts of one iteration must fit int64; numpy would wrap around silently.
    biggest = max(int(a.max(initial=0)) for a in (ms, os_, rs, ws)) * batch + max(
        int(a.max(initial=0)) for a in (mf, of, rf, wf))
    if biggest >= 2**62:
        raise E2simError(f"workload {workload.name!r}: counts of one iteration at batch {batch} exceed int64")
    return Counts(
        names=tuple(L.name for L in layers),
        kinds=tuple(L.kind for L in layers),
        blocks=tuple(L.block for L in layers),
        roles=tuple(L.role for L in layers),
        batch_size=batch,
        macs_sample=ms, macs_fixed=mf, ops_sample=os_, ops_fixed=of,
        reads_sample=rs, reads_fixed=rf, writes_sample=ws, writes_fixed=wf, params=params,
    )



_FWD, _BI, _BW, _UP = (P[p] for p in PASSES)
_TI, _TW, _TO, _TGO, _TGI, _TGW, _TST = (T[t] for t in TENSORS)


def _count_layer(i, L, ms, mf, os_, of, rs, rf, ws, wf, params) -> None:
    """Fill row i of the count arrays for layer L (rules in the module docstring)."""
    fwd, bi, bw, up = _FWD, _BI, _BW, _UP
    ti, tw, to, tgo, tgi, tgw, tst = _TI, _TW, _TO, _TGO, _TGI, _TGW, _TST
    cin, hin, win = L.in_shape
    cout, hout, wout = L.out_shape
    steps = L.steps
    e_in, e_out = cin * hin * win * steps, cout * hout * wout * steps
    k = L.kind
    owns = L.weights_from is None
    w = L.weight_elems
    params[i] = w if owns else 0
    gin = L.needs_input_grad
    gw = L.needs_weight_grad
    n_in = L.n_inputs if k in ("add", "mul") else 1

    # Forward: every layer reads its input(s) and writes its output.
    rs[i, fwd, ti] = e_in * n_in
    ws[i, fwd, to] = e_out
    if gin:
        ws[i, bi, tgi] = e_in * n_in
        rs[i, bi, tgo] = e_out

    if k in GEMM_KINDS:
        mac_bi = None
        if k == "conv":
            mac = e_out * (cin // L.groups) * L.kernel[0] * L.kernel[1]
        elif k == "conv_transpose":
            mac = e_in * (cout // L.groups) * L.kernel[0] * L.kernel[1]
        elif k == "linear":
            mac = cin * cout * steps
        elif k == "matmul":
            mac = cin * hin * win * wout * steps  # batch * M * K * N
        else:
            g, h = RNN_GATES[k], L.hidden or cout
            mac = g * h * (cin + h) * steps
            # Input gradient: through W_ih at every step where the input needs it; through W_hh wherever
            # the previous hidden state does (every step but the first unless the initial state needs it).
            rec_steps = steps - 1 + L.state_needs_grad if (gin or gw or L.state_needs_grad) else 0
            mac_bi = g * h * (cin * steps * gin + h * rec_steps)
        ms[i, fwd] = mac
        if k == "matmul":  # B is an activation: per sample, read by forward and input gradient
            b_elems = cin * win * wout * steps
            rs[i, fwd, tw] = b_elems
        else:
            rf[i, fwd, tw] = w
        if gw:
            ms[i, bw] = mac
            rs[i, bw, ti] = e_in
            rs[i, bw, tgo] = e_out
            if k == "matmul":
                ws[i, bw, tgw] = b_elems
            else:
                wf[i, bw, tgw] = w
        mac_bi = (mac if gin else 0) if mac_bi is None else mac_bi
        if mac_bi:
            ms[i, bi] = mac_bi
            if k == "matmul":
                rs[i, bi, tw] = b_elems
            else:
                rf[i, bi, tw] = w
        if k in RNN_GATES:
            h = L.hidden or cout
            per_step = RNN_ELEM_OPS[k] * h * steps
            os_[i, fwd] = per_step
            os_[i, bi if mac_bi else bw] = per_step
        elif L.bias:
            os_[i, fwd] = e_out
            if gw:
                os_[i, bw] = e_out
    elif k == "batchnorm":
        os_[i, fwd] = 5 * e_out
        rf[i, fwd, tw] = w
        os_[i, bw] = 4 * e_out
        rs[i, bw, ti] = e_in
        rs[i, bw, tgo] = e_out
        wf[i, bw, tgw] = w
        if gin:
            os_[i, bi] = 4 * e_out
            rs[i, bi, ti] = e_in
            rf[i, bi, tw] = w
    elif k == "relu":
        os_[i, fwd] = e_out
        if gin:
            os_[i, bi] = e_out
            rs[i, bi, to] = e_out
    elif k == "sigmoid":
        os_[i, fwd] = e_out
        if gin:
            os_[i, bi] = 3 * e_out
            rs[i, bi, to] = e_out
    elif k == "add":
        os_[i, fwd] = (n_in - 1) * e_out
        if gin:
            os_[i, bi] = (n_in - 1) * e_out
    elif k == "mul":
        os_[i, fwd] = (n_in - 1) * e_out
        if gin:
            os_[i, bi] = n_in * (n_in - 1) * e_out
            rs[i, bi, ti] = e_in * n_in
    elif k == "maxpool":
        os_[i, fwd] = e_out * (L.kernel[0] * L.kernel[1] - 1)
        if gin:
            os_[i, bi] = e_out
    elif k == "avgpool":
        os_[i, fwd] = e_out * L.kernel[0] * L.kernel[1]
        if gin:
            os_[i, bi] = e_in
    else:  # pragma: no cover - LayerKind is a closed Literal
        raise AssertionError(k)

    if owns and w and gw:
        of[i, up] = UPDATE_OPS_PER_PARAM * w
        rf[i, up, tw] = w
        rf[i, up, tgw] = w
        rf[i, up, tst] = w
        wf[i, up, tw] = w
        wf[i, up, tst] = w
