"""Small column edits on a Plan shared by the techniques (one place for the masking logic)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..counts import PASSES, TENSORS, Counts
from ..plan import Plan

FWD, BWD_IN, BWD_W, UPD = (PASSES.index(p) for p in PASSES)
T_IDX = {t: i for i, t in enumerate(TENSORS)}
ITEM_COLUMNS = ("layer", "pass_", "samples", "scale", "a_bits", "b_bits", "is_float", "tensor_bits", "tag")


def layer_mask(counts: Counts, names) -> np.ndarray:
    """Boolean [L]: layers whose name is in ``names``."""
    wanted = set(names)
    return np.array([n in wanted for n in counts.names], bool)


def set_items(plan: Plan, mask: np.ndarray, **cols) -> Plan:
    """A plan whose items under ``mask`` take the given column values (scalars or arrays over the mask)."""
    out = {}
    for name, value in cols.items():
        col = getattr(plan, name).copy()
        col[mask] = value
        out[name] = col
    return replace(plan, **out)


def tensor_bits(plan: Plan, mask: np.ndarray, **bits: int) -> np.ndarray:
    """The plan's tensor_bits with the named tensors of the masked items set to new widths."""
    tb = plan.tensor_bits.copy()
    for name, b in bits.items():
        tb[mask, T_IDX[name]] = b
    return tb


def with_update_rule(counts: Counts, layers: np.ndarray, ops_per_param: int, keeps_state: bool) -> Counts:
    """Counts whose update pass of the masked layers costs ``ops_per_param`` element ops per parameter and
    reads/writes the optimizer state only when ``keeps_state`` (momentum); other layers are untouched."""
    of, rf, wf = counts.ops_fixed.copy(), counts.reads_fixed.copy(), counts.writes_fixed.copy()
    rows = layers & (counts.params > 0)
    of[rows, UPD] = ops_per_param * counts.params[rows]
    if not keeps_state:
        rf[rows, UPD, T_IDX["state"]] = 0
        wf[rows, UPD, T_IDX["state"]] = 0
    return replace(counts, ops_fixed=of, reads_fixed=rf, writes_fixed=wf)


def rebase(plan: Plan, counts: Counts) -> Plan:
    """The same items over new counts (same layers in the same order, e.g. a changed update rule)."""
    if counts.names != plan.counts.names:
        raise ValueError("rebase needs counts over the same layers")
    return replace(plan, counts=counts)
