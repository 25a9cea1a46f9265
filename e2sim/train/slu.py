"""Selective layer update: the energy regulariser on the gates' decisions.

Official code (GATECH-EIC/E2Train ``main_all.py``; ../shared/reference/e2train-paper.md §4): the loss adds
``reg * beta * sum(decisions over the batch and gated blocks)`` with beta = 1e-5, where reg = -1 while the
executed fraction is at or below the target (``--minimum``) and +1 above it: the regulariser rewards
executing blocks below the target and penalises it above, steering the executed fraction to the target.
"""
from __future__ import annotations

import torch

BETA_DEFAULT = 1e-5  # official code: --beta 1e-5


def executed_fraction(masks: list[torch.Tensor]) -> float:
    """Fraction of (sample, gated block) pairs executed in this batch."""
    stacked = torch.stack([m.detach() for m in masks])
    return float(stacked.mean())


def slu_regulariser(masks: list[torch.Tensor], target: float, beta: float) -> torch.Tensor:
    """``reg * beta * sum(masks)``: differentiable through the straight-through decisions."""
    reg = -1.0 if executed_fraction(masks) <= target else 1.0
    return reg * beta * torch.stack(masks).sum()
