"""Baselines that savings are measured against (each a plan over the plain workload, no gates). Every
baseline is named for its precision:

- ``fp32``, ``fp16``, ``int8``, ``int16``: plain SGD with momentum at that precision
  (``base_plan(..., precision)``). The default baseline of a run is its own ``--precision``, so techniques
  are measured against plain training at the same precision.
- ``int8-banner``: 8-bit training after Banner et al. 2018 ("Scalable methods for 8-bit training of neural
  networks", NeurIPS): 8-bit weights, activations and layer (input) gradients, fixed point everywhere,
  except the weight-gradient path, whose output gradient is kept at 16 bits (their "gradient bifurcation");
  fp32 master weights and momentum in the update.
- ``signsgd`` (Bernstein et al. 2018): sign update: 2 element ops per parameter (sign, the +-lr add), reads
  weight and gradient, writes the weight, no momentum state; compute at the run's precision (named
  ``signsgd-fp32``, ``signsgd-int8``, ...).
- ``stochastic-depth`` (Huang et al. 2016, "Deep networks with stochastic depth", linear decay rule):
  block l of L (1-based, in network order, every residual block) survives with probability
  p_l = 1 - l/L * (1 - p_L), p_L = 0.5; a dropped block costs what an SLU-skipped block costs (its main
  path, forward and backward, for the dropped fraction of the samples; its shortcut still runs); compute at
  the run's precision (named ``stochastic-depth-fp32``, ...).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..plan import PRECISIONS, Plan
from ..records import Record, record
from ..workload import Workload
from ._plan_ops import BWD_W, UPD, rebase, set_items, tensor_bits, with_update_rule
from .slu import skip_blocks

BASELINES = (*PRECISIONS, "int8-banner", "signsgd", "stochastic-depth")
# Baselines whose compute runs at the run's precision (the others fix their own).
AT_RUN_PRECISION = ("signsgd", "stochastic-depth")
SIGNSGD_UPDATE_OPS_PER_PARAM = 2
# Huang et al. 2016, §3 "linear decay rule": p_L = 0.5 throughout their experiments.
STOCHASTIC_DEPTH_P_LAST = 0.5
# Banner et al. 2018: 16-bit gradients on the weight-gradient path.
BANNER_WEIGHT_GRAD_BITS = 16


def base_precision(kind: str, precision: str = "fp32") -> str:
    """The precision a baseline's compute runs at (``precision``: the run's)."""
    if kind in PRECISIONS:
        return kind
    return "int8" if kind == "int8-banner" else precision


def survival(n_blocks: int, p_last: float = STOCHASTIC_DEPTH_P_LAST) -> np.ndarray:
    """Huang et al.'s linear decay: p_l = 1 - l/L * (1 - p_L), l = 1..L."""
    ell = np.arange(1, n_blocks + 1)
    return 1.0 - ell / n_blocks * (1.0 - p_last)


@record
class Baseline(Record):
    kind: str = "fp32"
    precision: str = "fp32"  # the run's precision (used by the AT_RUN_PRECISION kinds)

    @property
    def name(self) -> str:
        """The baseline's label, which always says its precision."""
        return f"{self.kind}-{self.precision}" if self.kind in AT_RUN_PRECISION else self.kind

    def __post_init__(self):
        if self.kind not in BASELINES:
            raise ValueError(f"unknown baseline {self.kind!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}")

    def workload(self, w: Workload) -> Workload:
        return w

    def apply(self, plan: Plan, workload: Workload) -> Plan:
        """Turn a ``base_plan(counts, base_precision(kind))`` into the baseline."""
        if self.kind == "int8-banner":
            bw = plan.pass_ == BWD_W
            plan = set_items(plan, bw, b_bits=BANNER_WEIGHT_GRAD_BITS)
            plan = replace(plan, tensor_bits=tensor_bits(plan, bw, grad_output=BANNER_WEIGHT_GRAD_BITS))
            return plan.with_notes("baseline int8 (Banner et al. 2018): 8-bit, 16-bit weight-gradient path")
        if self.kind == "signsgd":
            every = np.ones(len(plan.counts.names), bool)
            counts = with_update_rule(plan.counts, every, SIGNSGD_UPDATE_OPS_PER_PARAM, keeps_state=False)
            up = plan.counts.params[plan.layer] > 0
            plan = set_items(rebase(plan, counts), up & (plan.pass_ == UPD), tag="sign_update")
            return plan.with_notes(f"baseline signsgd: {plan.precision} compute, sign update")
        if self.kind == "stochastic-depth":
            names = [b.name for b in workload.blocks]
            p = survival(len(names))
            plan = skip_blocks(plan, {b: 1.0 - s for b, s in zip(names, p)})
            return plan.with_notes(f"baseline stochastic depth: linear decay to p_L={STOCHASTIC_DEPTH_P_LAST}")
        return plan.with_notes(f"baseline {plan.precision} SGD")
