"""Statistics files written by training / kernel runs and consumed by the techniques stage (YAML or JSON):

PSG stats (per workload layer, the fraction of weight-gradient entries recomputed at full precision)::

    schema_version: 1
    kind: psg
    layers:
      conv1: {fallback_fraction: 0.12}
      layer1.0.conv1: {fallback_fraction: 0.08}

SLU stats (per gated block, the fraction of samples that skipped it)::

    schema_version: 1
    kind: slu
    blocks:
      layer1.1: {skip_ratio: 0.31}

Optional provenance keys: ``workload``, ``source`` (what produced the file), ``iterations``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .config import load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerPSG(_Strict):
    fallback_fraction: float = Field(ge=0, le=1)


class BlockSLU(_Strict):
    skip_ratio: float = Field(ge=0, le=1)


class PSGStats(_Strict):
    schema_version: Literal[1] = 1
    kind: Literal["psg"] = "psg"
    workload: str | None = None
    source: str | None = None
    iterations: int | None = Field(None, ge=0)
    layers: dict[str, LayerPSG] = Field(min_length=1)

    def fractions(self) -> dict[str, float]:
        return {k: v.fallback_fraction for k, v in self.layers.items()}


class SLUStats(_Strict):
    schema_version: Literal[1] = 1
    kind: Literal["slu"] = "slu"
    workload: str | None = None
    source: str | None = None
    iterations: int | None = Field(None, ge=0)
    blocks: dict[str, BlockSLU] = Field(min_length=1)

    def ratios(self) -> dict[str, float]:
        return {k: v.skip_ratio for k, v in self.blocks.items()}


def load_psg_stats(path: str | Path) -> PSGStats:
    return load_model(PSGStats, path)


def load_slu_stats(path: str | Path) -> SLUStats:
    return load_model(SLUStats, path)
