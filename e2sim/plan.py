"""The training plan: what one iteration executes, item by item, at which bit-widths.

This is the value that flows between the stages:

    counts --base_plan()--> Plan --techniques (SMD, SLU, PSG, baselines)--> Plan --mapping, energy--> Estimate

A plan has one *item* per piece of work. Without techniques there is exactly one item per (layer, pass).
A technique may rescale items (SLU: fewer samples run a block; PSG: only a fraction of weight-gradient
entries is recomputed at full precision), change their bit-widths, or add items (PSG adds a low-precision
predictor item beside the full-precision weight-gradient item; SLU adds gate layers to the workload).

Per item, the work is: ``scale * (counts_sample[layer, pass] * samples + counts_fixed[layer, pass])``
for MACs, element ops, reads and writes alike. ``samples`` is how many samples of the batch run the item
(the batch size unless SLU skips some); ``scale`` is the fraction of the item's outputs computed (1 unless
PSG recomputes only a fraction). Arrays are columns of equal length N (items).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np

from .counts import PASSES, TENSORS, Counts
from .records import Record, record

Precision = Literal["fp32", "fp16", "int8", "int16"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "int16")


@record
class Plan(Record):
    counts: Counts
    layer: np.ndarray  # int   [N] index into counts.names
    pass_: np.ndarray  # int   [N] index into PASSES
    samples: np.ndarray  # float [N] samples of the batch that run this item
    scale: np.ndarray  # float [N] fraction of the item's work that is done
    a_bits: np.ndarray  # int   [N] MAC/element-op first operand bits (activation or output gradient)
    b_bits: np.ndarray  # int   [N] MAC second operand bits (weight, or output gradient for bwd_weight)
    is_float: np.ndarray  # bool  [N] floating-point arithmetic (else fixed-point integer)
    tensor_bits: np.ndarray  # int [N, T] storage bits of each tensor read or written by the item
    tag: np.ndarray  # str   [N] what the item is: "base", "psg_predict", "psg_fallback", "sign_update", ...
    iterations_scheduled: int
    iterations_executed: float  # SMD makes this smaller than iterations_scheduled
    precision: str = "fp32"
    notes: tuple[str, ...] = ()  # human-readable record of the techniques applied, in order
    inference: bool = False  # forward pass only (a published inference design, e2sim estimate --inference)

    def __post_init__(self) -> None:
        n = len(self.layer)
        for name in ("pass_", "samples", "scale", "a_bits", "b_bits", "is_float", "tag"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"plan column {name} has length {len(getattr(self, name))}, expected {n}")
        if self.tensor_bits.shape != (n, len(TENSORS)):
            raise ValueError("plan tensor_bits must be [items, tensors]")

    @property
    def n_items(self) -> int:
        return len(self.layer)

    def _per_item(self, sample: np.ndarray, fixed: np.ndarray, scaled: bool = True) -> np.ndarray:
        li, pi = self.layer, self.pass_
        s, f = sample[li, pi], fixed[li, pi]
        bshape = (-1,) + (1,) * (s.ndim - 1)
        full = s * self.samples.reshape(bshape) + f
        return self.scale.reshape(bshape) * full if scaled else full

    def unscaled(self, quantity: str) -> np.ndarray:
        """``elem_ops``, ``reads`` or ``writes`` per item as if the whole item ran (scale 1): the mapping
        sizes the work on the hardware from this and applies ``scale`` afterwards."""
        c = self.counts
        parts = {"elem_ops": (c.ops_sample, c.ops_fixed), "reads": (c.reads_sample, c.reads_fixed),
                 "writes": (c.writes_sample, c.writes_fixed), "macs": (c.macs_sample, c.macs_fixed)}
        return self._per_item(*parts[quantity], scaled=False)

    @property
    def macs(self) -> np.ndarray:
        """MACs per item for one executed iteration (float: SLU and PSG fractions make them fractional)."""
        return self._per_item(self.counts.macs_sample, self.counts.macs_fixed)

    @property
    def elem_ops(self) -> np.ndarray:
        return self._per_item(self.counts.ops_sample, self.counts.ops_fixed)

    @property
    def reads(self) -> np.ndarray:
        """[N, T] elements read per item."""
        return self._per_item(self.counts.reads_sample, self.counts.reads_fixed)

    @property
    def writes(self) -> np.ndarray:
        return self._per_item(self.counts.writes_sample, self.counts.writes_fixed)

    def select(self, mask: np.ndarray) -> Plan:
        """A plan with only the items where ``mask`` is true."""
        cols = {k: getattr(self, k)[mask] for k in
                ("layer", "pass_", "samples", "scale", "a_bits", "b_bits", "is_float", "tensor_bits", "tag")}
        return replace(self, **cols)

    def concat(self, other: Plan) -> Plan:
        """Items of ``self`` followed by those of ``other`` (same counts)."""
        if other.counts is not self.counts:
            raise ValueError("can only concatenate plans over the same counts")
        cols = {k: np.concatenate([getattr(self, k), getattr(other, k)]) for k in
                ("layer", "pass_", "samples", "scale", "a_bits", "b_bits", "is_float", "tensor_bits", "tag")}
        return replace(self, **cols)

    def with_notes(self, *notes: str) -> Plan:
        return replace(self, notes=self.notes + notes)


# Bit-widths of each precision preset: (forward activation & weight bits, gradient bits, float?).
# fp32: standard training. int8 / int16: fixed-point operands of that width everywhere (8-bit training in
# the sense of Banner et al. 2018 keeps a 16-bit weight-gradient path; that is a baseline in techniques).
_PRESETS: dict[str, tuple[int, int, bool]] = {
    "fp32": (32, 32, True),
    "fp16": (16, 16, True),
    "int8": (8, 8, False),
    "int16": (16, 16, False),
}


def preset(precision: str) -> tuple[int, int, bool]:
    """(activation and weight bits, gradient bits, floating point?) of a precision preset."""
    if precision not in _PRESETS:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(_PRESETS)})")
    return _PRESETS[precision]


def base_plan(counts: Counts, precision: str = "fp32", iterations: int = 1) -> Plan:
    """One item per (layer, pass) with work, every operand at the preset's width.

    The optimizer state and the master weights of the update pass stay at 32 bits in every preset
    (mixed-precision practice: Micikevicius et al. 2018; Banner et al. 2018 keep fp32 master weights).
    """
    act_bits, grad_bits, is_float = preset(precision)
    nl, npass = counts.macs_sample.shape
    li, pi = np.meshgrid(np.arange(nl), np.arange(npass), indexing="ij")
    li, pi = li.reshape(-1), pi.reshape(-1)
    has_work = (
        (counts.macs_sample + counts.macs_fixed + counts.ops_sample + counts.ops_fixed).reshape(-1) > 0
    ) | ((counts.reads_sample + counts.reads_fixed).sum(-1).reshape(-1) > 0)
    li, pi = li[has_work], pi[has_work]
    n = len(li)
    fwd, bwd_in, bwd_w, upd = (PASSES.index(p) for p in PASSES)
    a_bits = np.where(pi == fwd, act_bits, grad_bits)
    a_bits = np.where(pi == bwd_w, act_bits, a_bits)  # bwd_weight: activation x output gradient
    b_bits = np.where(pi == fwd, act_bits, grad_bits)
    b_bits = np.where(pi == bwd_in, act_bits, b_bits)  # bwd_input: output gradient x weight
    a_bits = np.where(pi == upd, 32, a_bits)
    b_bits = np.where(pi == upd, 32, b_bits)
    tb = np.empty((n, len(TENSORS)), np.int64)
    for t, name in enumerate(TENSORS):
        tb[:, t] = grad_bits if name.startswith("grad") else (32 if name == "state" else act_bits)
    upd_rows = pi == upd
    tb[upd_rows] = 32
    return Plan(
        counts=counts, layer=li, pass_=pi,
        samples=np.full(n, float(counts.batch_size)), scale=np.ones(n),
        a_bits=a_bits.astype(np.int64), b_bits=b_bits.astype(np.int64),
        is_float=np.where(upd_rows, True, is_float), tensor_bits=tb,
        tag=np.full(n, "base", dtype=object),
        iterations_scheduled=int(iterations), iterations_executed=float(iterations), precision=precision,
    )


def inference_plan(counts: Counts, precision: str = "int16", iterations: int = 1) -> Plan:
    """Forward pass only: the base plan's ``fwd`` items (an iteration is one batch through the network)."""
    p = base_plan(counts, precision, iterations)
    return replace(p.select(p.pass_ == PASSES.index("fwd")), inference=True)
