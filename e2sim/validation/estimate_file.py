"""Reading the output of ``e2sim estimate --format json`` (a file, or a run directory holding
``estimate.json``): a small model that requires the keys validate and calibrate use and keeps the rest."""
from __future__ import annotations

import json
from pathlib import Path

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..config import read_text, validate
from ..errors import E2simError

ESTIMATE_FILE = "estimate.json"
# JSON has no inf or NaN, but Python's reader accepts Infinity / NaN: refuse them, and negative energies.
Joules = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Breakdown(BaseModel):
    model_config = ConfigDict(extra="allow")

    mac: Joules
    sram: Joules
    dram: Joules
    static: Joules


class EstimateRecord(BaseModel):
    """Energy (J) and time (s) of one estimated run; ``activity`` maps each linear profile constant to its
    coefficient (energy_j == sum(coef x constant in SI)), present when the estimate exports it."""

    model_config = ConfigDict(extra="allow")

    energy_j: Joules
    time_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    breakdown_j: Breakdown
    activity: dict[str, Annotated[float, Field(ge=0, le=1e30, allow_inf_nan=False)]] | None = None
    workload: str | None = None
    profile: str | None = None

    @property
    def static_j(self) -> float:
        return self.breakdown_j.static

    @property
    def dynamic_j(self) -> float:
        return self.breakdown_j.mac + self.breakdown_j.sram + self.breakdown_j.dram


def load_estimate(path: str | Path) -> EstimateRecord:
    """An estimate JSON file, or a run directory that contains ``estimate.json``."""
    p = Path(path)
    if p.is_dir():
        if not (p / ESTIMATE_FILE).is_file():
            raise E2simError(f"{p}: run directory has no {ESTIMATE_FILE} (write one with e2sim estimate --format json)")
        p = p / ESTIMATE_FILE
    try:
        data = json.loads(read_text(p))
    except json.JSONDecodeError as exc:
        raise E2simError(f"{p}: not a JSON estimate ({exc})") from None
    if not isinstance(data, dict):
        raise E2simError(f"{p}: expected a JSON object (the output of e2sim estimate --format json)")
    return validate(EstimateRecord, data, str(p))
