"""Estimated energy of one executed training iteration, from the estimate pipeline, for a run's settings.

SLU makes the cost of an iteration depend on how many samples each gated block executed. The estimate is
priced twice, once with every gated block's main path executed by the whole batch and once by no sample
(the shortcut path always runs); an iteration in which block b ran for a fraction f_b of the batch costs

    E = E_none + sum_b f_b * (E_full_b - E_none_b)

which is exact for every cost that is proportional to the samples that run an item (MACs, activation
traffic, the time those take) and treats per-batch costs of a skipped block (its weight reads) as paid
whenever any sample runs it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..workload import Workload


def _estimate(workload: Workload, profile: str, batch: int, psg: bool, transform=None):
    from ..counts import count
    from ..estimate import estimate_plan
    from ..plan import base_plan

    plan = base_plan(count(workload, batch), "fp32", 1)
    if psg:
        from ..techniques import apply_psg

        plan = apply_psg(plan, workload)
    if transform is not None:
        plan = transform(plan)
    return estimate_plan(plan, workload, profile)


def iteration_energy_model(workload: Workload, profile: str, batch: int, *, psg: bool,
                           gated_blocks: list[str]) -> Callable[[np.ndarray | None], float]:
    """``f(block_executed_fraction or None) -> J`` for one executed iteration; ``None``: every block runs."""
    full = _estimate(workload, profile, batch, psg)
    per_item = full.energy_per_iteration_j.sum(1)
    total_full = float(per_item.sum())
    if not gated_blocks:
        return lambda _fractions=None: total_full
    layer_block = np.array([layer.block or "" for layer in workload.layers])
    layer_main = np.array([layer.role == "main" for layer in workload.layers])
    # Per plan item: which gated block's main path it belongs to (-1: none).
    block_id = {b: i for i, b in enumerate(gated_blocks)}
    layer_gate = np.array([block_id.get(b, -1) if m else -1 for b, m in zip(layer_block, layer_main)])

    def skip_all(plan):
        skipped = layer_gate[plan.layer] >= 0
        return replace(plan, samples=np.where(skipped, 0.0, plan.samples))

    none = _estimate(workload, profile, batch, psg, skip_all)
    item_gate_full = layer_gate[full.plan.layer]
    item_gate_none = layer_gate[none.plan.layer]
    per_item_none = none.energy_per_iteration_j.sum(1)
    delta = np.array([per_item[item_gate_full == i].sum() - per_item_none[item_gate_none == i].sum()
                      for i in range(len(gated_blocks))])
    total_none = float(per_item_none.sum())

    def energy(fractions: np.ndarray | None = None) -> float:
        if fractions is None:
            return total_full
        return total_none + float(np.dot(delta, fractions))

    return energy
