"""Statistics files that measurements feed back into the estimate (no torch, no numba here).

* PSG: per-layer fallback fractions from ``e2sim psg-accuracy`` (read by ``e2sim estimate --psg-stats``).
* SLU: per-block skip ratios from a gated training run.

Files are YAML (JSON is valid YAML too), checked strictly: unknown keys, wrong types and fractions outside
[0, 1] are errors naming the file and key path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from .config import Int, Real, load_model

Fraction = Annotated[Real, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PsgSettings(_Strict):
    bits: Int = Field(ge=2, le=16, description="forward input bit-width (full codes)")
    msb_bits: Int = Field(ge=2, le=16, description="input MSB bits of the predictor")
    grad_msb_bits: Int = Field(ge=2, le=32, description="output-gradient bits of the predictor (32: fp32)")
    threshold: Real = Field(ge=-1, le=1e6, description="absolute threshold, or relative to the layer max when negative")
    steps: Int = Field(ge=1, le=10**9)
    sample_every: Int = Field(ge=1, le=10**9)
    batch_size: Int = Field(ge=1)
    data: str = Field(description="dataset the statistics were measured on")
    seed: Int


class PsgStats(_Strict):
    schema_version: Literal[1] = 1
    kind: Literal["psg"] = "psg"
    workload: str
    settings: PsgSettings
    fallback_fraction: dict[str, Fraction] = Field(description="per conv layer (workload layer names)")

    def fractions(self) -> dict[str, float]:
        return dict(self.fallback_fraction)


class SluStats(_Strict):
    schema_version: Literal[1] = 1
    kind: Literal["slu"] = "slu"
    workload: str
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    skip_ratio: dict[str, Fraction] = Field(description="per gated block (workload block names)")

    def ratios(self) -> dict[str, float]:
        return dict(self.skip_ratio)


def load_psg_stats(path: str | Path) -> PsgStats:
    return load_model(PsgStats, path)


def load_slu_stats(path: str | Path) -> SluStats:
    return load_model(SluStats, path)


def dump_stats(stats: PsgStats | SluStats) -> str:
    """YAML text of a stats record (keys in schema order)."""
    import yaml

    return yaml.safe_dump(stats.model_dump(mode="json"), sort_keys=False)
