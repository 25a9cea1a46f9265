"""e2sim: what CNN training costs in energy and time on a small device, and what E2-Train saves.

The estimate path (workload -> counts -> techniques -> mapping -> energy) imports neither torch nor numba.

The public names below load on first use (PEP 562), so that ``e2sim --help`` and the CLI's start-up do not
pay for numpy and pydantic before a command needs them.
"""
from __future__ import annotations

import importlib
import sys
import types

from .errors import E2simError

__version__ = "0.1.0"

# public name -> submodule defining it
_LAZY: dict[str, str] = {
    "Counts": "counts", "count": "counts",
    "Estimate": "estimate", "estimate": "estimate", "estimate_plan": "estimate",
    "Layer": "workload", "Workload": "workload", "load_workload": "workload_files",
    "Techniques": "techniques", "SMD": "techniques", "SLU": "techniques", "PSG": "techniques",
    "PSGBits": "techniques", "Savings": "savings", "estimate_with_savings": "savings", "compare": "savings",
}


def workload_from_torch(module, input_shape, **kw):
    """Import a torch.nn.Module CNN as a Workload (torch is imported only here)."""
    from .from_torch import workload_from_torch as _impl

    return _impl(module, input_shape, **kw)


class _Package(types.ModuleType):
    """The package module. ``e2sim.estimate`` is the function, not the submodule of the same name: importing
    the submodule would otherwise rebind the package attribute to the module."""

    def __getattr__(self, name: str):
        sub = _LAZY.get(name)
        if sub is None:
            raise AttributeError(f"module 'e2sim' has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{sub}"), name)
        if name != "estimate":
            types.ModuleType.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value) -> None:
        if name == "estimate" and isinstance(value, types.ModuleType):
            return  # keep resolving ``e2sim.estimate`` to the function (see the class docstring)
        types.ModuleType.__setattr__(self, name, value)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_LAZY))


sys.modules[__name__].__class__ = _Package

__all__ = ["Counts", "E2simError", "Estimate", "Layer", "PSG", "PSGBits", "SLU", "SMD", "Savings", "Techniques",
           "Workload", "compare", "count", "estimate", "estimate_plan", "estimate_with_savings", "load_workload",
           "workload_from_torch"]
