"""E2-Train techniques (SMD, SLU, PSG) and the baselines, as transformations of the workload and the Plan
before mapping and pricing. numpy only (no torch, no numba)."""
from .baselines import BASELINES, Baseline
from .compose import Techniques, as_techniques, baseline_plan, build
from .psg import PSG, PSGBits
from .slu import SLU, add_gates
from .smd import SMD

__all__ = ["BASELINES", "Baseline", "PSG", "PSGBits", "SLU", "SMD", "Techniques", "add_gates",
           "as_techniques", "baseline_plan", "build"]
