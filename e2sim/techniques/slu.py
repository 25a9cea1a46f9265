"""SLU, selective layer update (E2-Train §3.2; official code models/efficient_resnet.py, after SkipNet).

Gates. Before every gated block sits a gate that reads the previous block's output: a global average pool,
a 1x1 conv C -> 10 (``embed_dim=10``, no bias), one step of an LSTM (input 10, hidden 10) and a linear
10 -> 1 (with bias) followed by a sigmoid and a hard Bernoulli sample (free: a compare). The LSTM and the
linear projection are ONE module shared by all gates (``RNNGate`` in the code: ``self.control``), so only
the first gate owns their weights; the others read them and accumulate into their gradient
(``Layer.weights_from``). Every sample runs every gate, forward and backward (straight-through gradient).
The first block is never gated. The official code also evaluates a gate after the LAST block whose
decision it discards (``del masks[-1]``); e2sim models only the gates that decide a block, so ResNet-74 has
35 gates: 41,150 MACs per image (the reference's 42.6k counts all 36). The mask mixing
``mask*x + (1-mask)*prev`` is an artefact of dense GPU simulation, not work a skipping device does.

Skipping. A sample that skips a block runs none of the block's ``main`` layers (convs, batchnorms, relus and
the residual add) in fwd, bwd_input or bwd_weight; the ``shortcut`` (downsample) path still runs, and so
does the block's weight update (once per iteration, whatever the samples). With skip ratio r the block's
main items run on (1 - r) x batch samples in expectation.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field

import numpy as np

from ..errors import E2simError
from ..plan import Plan
from ..records import Record, record
from ..workload import Layer, Workload
from ._plan_ops import FWD, UPD, set_items

# Gate sizes of the official code (efficient_resnet.py: embed_dim=10, hidden_dim=10, Linear(hidden, 1)).
GATE_EMBED = 10
GATE_HIDDEN = 10


def gate_layers(block: str, in_shape: tuple[int, int, int], owner: str | None) -> list[Layer]:
    """The gate layers deciding ``block``, reading a (C, H, W) tensor; ``owner`` is the gate block whose
    shared LSTM and projection own the weights (None: this gate owns them)."""
    c, h, w = in_shape
    p = f"{block}.gate"
    shared = None if owner is None else f"{owner}.gate"
    kw = dict(block=block, role="gate")
    return [
        Layer(name=f"{p}.pool", kind="avgpool", in_shape=in_shape, out_shape=(c, 1, 1), kernel=(h, w),
              stride=(h, w), **kw),
        Layer(name=f"{p}.conv", kind="conv", in_shape=(c, 1, 1), out_shape=(GATE_EMBED, 1, 1), **kw),
        Layer(name=f"{p}.lstm", kind="lstm", in_shape=(GATE_EMBED, 1, 1), out_shape=(GATE_HIDDEN, 1, 1),
              hidden=GATE_HIDDEN, weights_from=None if shared is None else f"{shared}.lstm", **kw),
        Layer(name=f"{p}.proj", kind="linear", in_shape=(GATE_HIDDEN, 1, 1), out_shape=(1, 1, 1), bias=True,
              weights_from=None if shared is None else f"{shared}.proj", **kw),
        Layer(name=f"{p}.sigmoid", kind="sigmoid", in_shape=(1, 1, 1), out_shape=(1, 1, 1), **kw),
    ]


def add_gates(workload: Workload) -> Workload:
    """The workload with a gate inserted before the first layer of every gated block (idempotent)."""
    if any(layer.role == "gate" for layer in workload.layers):
        return workload
    gated = {b.name for b in workload.gated_blocks}
    if not gated:
        raise E2simError(f"SLU (--slu, --slu-skip, --slu-stats): workload {workload.name!r} has no gated residual "
                         f"blocks to skip")
    layers: list[Layer] = []
    seen: set[str] = set()
    owner: str | None = None
    for layer in workload.layers:
        b = layer.block
        if b in gated and b not in seen:
            seen.add(b)
            layers.extend(gate_layers(b, layer.in_shape, owner))
            owner = owner or b
        layers.append(layer)
    return dataclasses.replace(workload, layers=tuple(layers))


def keep_per_layer(counts, skip: Mapping[str, float]) -> np.ndarray:
    """[L] fraction of the samples that run each layer: 1 - skip of its block for ``main`` layers, else 1."""
    keep = np.ones(len(counts.names))
    for i, (b, role) in enumerate(zip(counts.blocks, counts.roles)):
        if role == "main" and b in skip:
            keep[i] = 1.0 - skip[b]
    return keep


def skipped_items(plan: Plan, keep: np.ndarray) -> np.ndarray:
    """[N] items whose samples the keep fractions change (every pass but the per-iteration update)."""
    return (keep[plan.layer] != 1.0) & (plan.pass_ != UPD)


def skip_blocks(plan: Plan, skip: Mapping[str, float], charge_skipped_forward: bool = False) -> Plan:
    """Scale the samples of the ``main`` items (fwd, bwd_input, bwd_weight) of each block by 1 - skip.

    ``charge_skipped_forward``: a skipped sample still runs the block's forward pass (its backward passes
    stay skipped). A straight-through gate gradient, d loss / d decision = <grad, block output - shortcut>,
    needs the skipped block's output; the official code computes every block for the whole batch."""
    keep = keep_per_layer(plan.counts, skip)
    mask = skipped_items(plan, keep)
    if charge_skipped_forward:
        mask &= plan.pass_ != FWD
    return set_items(plan, mask, samples=plan.samples[mask] * keep[plan.layer[mask]])


def check_ratio(r: float, what: str) -> float:
    r = float(r)
    if not (0.0 <= r <= 1.0):
        raise E2simError(f"{what}: skip ratio must be in [0, 1], got {r:g}")
    return r


@record
class SLU(Record):
    """Selective layer update with one skip ratio for every gated block, or per-block ratios."""

    skip: float | None = None
    per_block: Mapping[str, float] = field(default_factory=dict)
    source: str = "--slu-skip"
    name: str = "slu"
    # Whether skipped samples pay the block's forward pass (the straight-through gate gradient needs it);
    # False: a skipped block is free in every pass.
    charge_skipped_forward: bool = False

    def __post_init__(self):
        if (self.skip is None) == (not self.per_block):
            raise ValueError("SLU needs exactly one of skip or per_block")
        if self.skip is not None:
            check_ratio(self.skip, self.source)
        for b, r in self.per_block.items():
            check_ratio(r, f"{self.source}: block {b}")

    def ratios(self, workload: Workload) -> dict[str, float]:
        gated = [b.name for b in workload.gated_blocks]
        if self.skip is not None:
            return {b: self.skip for b in gated}
        unknown = sorted(set(self.per_block) - set(gated))
        if unknown:
            raise E2simError(f"{self.source}: {unknown[0]!r} is not a gated block of {workload.name}")
        missing = [b for b in gated if b not in self.per_block]
        if missing:
            raise E2simError(f"{self.source}: no skip ratio for gated block {missing[0]!r}")
        return dict(self.per_block)

    def workload(self, w: Workload) -> Workload:
        return add_gates(w)

    def apply(self, plan: Plan, workload: Workload) -> Plan:
        if "gate" not in plan.counts.roles:
            raise ValueError("SLU applies to a plan built from SLU.workload(...) (the gates are missing)")
        ratios = self.ratios(workload)
        mean = float(np.mean(list(ratios.values())))
        charged = ("skipped blocks charged their forward pass (straight-through gate gradient)"
                   if self.charge_skipped_forward else "skipped blocks free in every pass")
        return skip_blocks(plan, ratios, self.charge_skipped_forward).with_notes(
            f"slu: {len(ratios)} gated blocks, mean skip ratio {mean:.4g} ({self.source}); {charged}")
