"""e2sim: what CNN training costs in energy and time on a small device, and what E2-Train saves.

The estimate path (workload -> counts -> techniques -> mapping -> energy) imports neither torch nor numba.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .counts import Counts, count
from .errors import E2simError
# The function shadows the submodule's name on the package: ``e2sim.estimate(...)`` is the API.
from .estimate import Estimate, estimate, estimate_plan
from .workload import Layer, Workload, load_workload


def workload_from_torch(module, input_shape, **kw):
    """Import a torch.nn.Module CNN as a Workload (torch is imported only here)."""
    from .from_torch import workload_from_torch as _impl

    return _impl(module, input_shape, **kw)


__all__ = ["Counts", "E2simError", "Estimate", "Layer", "Workload", "count", "estimate", "estimate_plan",
           "load_workload", "workload_from_torch"]
