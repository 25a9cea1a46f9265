"""Estimated energy of one executed training iteration, from the estimate pipeline (techniques -> mapping ->
energy on a hardware profile), for a run's settings and what the run measured in that iteration.

Two quantities vary per iteration: with SLU, the fraction k_b of the batch that executed each gated block;
with PSG, the fraction f_l of each conv's weight-gradient entries that fell back to full precision. The
estimate prices every plan item on its own (its samples and scale only), so the iteration's cost is a sum
over items. Each item is priced at the corners k in {0, 1} x f in {0, 1} (four estimates, once per run) and
interpolated bilinearly:

    e(k, f) = e00 + k (e10 - e00) + f (e01 - e00) + k f (e11 - e10 - e01 + e00)

exact at the corners and for every cost proportional to an item's samples or scale (MACs, traffic and the
time they take); the ceil of the array's tiling is what the interpolation smooths (ResNet-20 at batch 16,
half the blocks executed and 30% fallback: 1.2% above a direct estimate; tests/test_train_psg_energy.py).
An SMD-dropped iteration costs nothing (``e2sim.techniques.smd``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..workload import Workload


class IterationEnergy:
    """``energy_j(block_executed, layer_fallback)`` for one executed iteration."""

    def __init__(self, workload: Workload, profile: str, batch: int, *, psg: bool, gated_blocks: Sequence[str],
                 psg_layers: Sequence[str] = (), charge_skipped_forward: bool = False):
        from ..estimate import estimate_plan
        from ..techniques import PSG, SLU, build
        from ..techniques._plan_ops import FWD, UPD
        from ..techniques.slu import skip_blocks

        def priced(fallback: float, skipped: bool) -> tuple[np.ndarray, object]:
            ts = []
            if psg:
                ts.append(PSG(fallback=fallback))
            if gated_blocks:
                ts.append(SLU(skip=0.0))
            w, plan = build(workload, ts, "fp32", iterations=1, batch_size=batch)
            if skipped:
                plan = skip_blocks(plan, {b: 1.0 for b in gated_blocks}, charge_skipped_forward)
            return estimate_plan(plan, w, profile).energy_per_iteration_j.sum(1), plan

        e11, plan = priced(1.0, False)  # e<k><f>: k = executed fraction of gated blocks, f = PSG fallback
        gated = bool(gated_blocks)
        e10 = priced(0.0, False)[0] if psg else e11
        e01 = priced(1.0, True)[0] if gated else e11
        e00 = priced(0.0, True)[0] if (psg and gated) else (e10 if psg else e01)
        self.e_kf = {(1, 1): e11, (1, 0): e10, (0, 1): e01, (0, 0): e00}
        names = np.asarray(plan.counts.names)
        blocks = np.asarray(plan.counts.blocks, dtype=object)
        roles = np.asarray(plan.counts.roles)

        block_id = {b: i for i, b in enumerate(gated_blocks)}
        item_layer = plan.layer
        gated_item = (roles[item_layer] == "main") & (plan.pass_ != UPD)
        if charge_skipped_forward:
            gated_item &= plan.pass_ != FWD  # a skipped sample still pays the block's forward
        self.item_block = np.array([block_id.get(b, -1) for b in blocks[item_layer]])
        self.item_block[~gated_item] = -1
        layer_id = {n: i for i, n in enumerate(psg_layers)}
        fallback_item = plan.tag == "psg_fallback"
        self.item_layer = np.array([layer_id.get(n, -1) for n in names[item_layer]])
        self.item_layer[~fallback_item] = -1
        if psg and (self.item_layer[fallback_item] < 0).any():
            missing = sorted(set(names[item_layer][fallback_item & (self.item_layer < 0)]))
            raise ValueError(f"PSG layers of the estimate without a measured fallback: {missing[:3]}")

    def __call__(self, block_executed: np.ndarray | None = None, layer_fallback: np.ndarray | None = None) -> float:
        k = np.ones(len(self.item_block))
        if block_executed is not None:
            sel = self.item_block >= 0
            k[sel] = np.asarray(block_executed)[self.item_block[sel]]
        f = np.ones(len(self.item_layer))
        if layer_fallback is not None:
            sel = self.item_layer >= 0
            f[sel] = np.asarray(layer_fallback)[self.item_layer[sel]]
        e = self.e_kf
        total = e[0, 0] + k * (e[1, 0] - e[0, 0]) + f * (e[0, 1] - e[0, 0]) \
            + k * f * (e[1, 1] - e[1, 0] - e[0, 1] + e[0, 0])
        return float(total.sum())


def iteration_energy_model(workload: Workload, profile: str, batch: int, *, psg: bool,
                           gated_blocks: Sequence[str], psg_layers: Sequence[str] = (),
                           charge_skipped_forward: bool = False) -> Callable[..., float]:
    return IterationEnergy(workload, profile, batch, psg=psg, gated_blocks=gated_blocks, psg_layers=psg_layers,
                           charge_skipped_forward=charge_skipped_forward)
