"""What happens at each scheduled iteration: learning rate, whether SMD drops it, and its random seeds.

Everything random is derived from ``(seed, iteration, stream)`` rather than from a running generator, so a
run resumed from a checkpoint at iteration k draws exactly what the uninterrupted run drew from k on.
"""
from __future__ import annotations

import numpy as np

# Independent random streams of one run.
STREAM_SMD, STREAM_SHUFFLE, STREAM_AUGMENT, STREAM_TORCH, STREAM_EVAL, STREAM_INIT = range(6)


def rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def torch_seed(seed: int, stream: int, index: int) -> int:
    """A 63-bit seed for ``torch.manual_seed`` (gate sampling) at one iteration or evaluation."""
    return int(rng(seed, stream, index).integers(0, 2**63 - 1))


def smd_dropped(seed: int, iteration: int, drop_probability: float) -> bool:
    """SMD: the mini-batch of this scheduled iteration is dropped with the given probability (paper: 0.5).

    A dropped iteration still takes its slot in the schedule (learning rate, data order), as the official
    code counts dropped iterations towards ``--iters``.
    """
    if drop_probability <= 0.0:
        return False
    return bool(rng(seed, STREAM_SMD, iteration).random() < drop_probability)


def lr_at(iteration: int, lr: float, milestones: tuple[int, ...], decay: float) -> float:
    """Step schedule: ``lr * decay ** (number of milestones <= iteration)``."""
    return lr * decay ** sum(iteration >= m for m in milestones)


def scaled_milestones(milestones: tuple[int, ...], schedule_iterations: int, iterations: int) -> tuple[int, ...]:
    """Milestones of the workload's schedule (e.g. 32k, 48k of 64k) moved proportionally to a run of
    ``iterations`` scheduled iterations, so a short run keeps the schedule's shape."""
    return tuple(max(1, round(m * iterations / schedule_iterations)) for m in milestones)
