"""What ``--data`` names, as arrays the training loop reads: the bundled digits (default), a CIFAR directory,
or ``synthetic`` (random class templates plus noise, for speed tests only: it says nothing about accuracy on
real images)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Data:
    train_y: np.ndarray  # int64 [N]
    test_x: np.ndarray  # float32 [M, 3, 32, 32], normalised
    test_y: np.ndarray  # int64 [M]
    classes: int
    description: str
    # (indices into the training set, generator) -> float32 [B, 3, 32, 32]: augmented, normalised batch
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray]


def synthetic_data(train: int = 2048, test: int = 512, classes: int = 10, seed: int = 0) -> Data:
    """One fixed random 3x32x32 template per class plus unit Gaussian noise per image."""
    g = np.random.default_rng([seed, 12345])
    templates = g.standard_normal((classes, 3, 32, 32), dtype=np.float32)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = g.integers(0, classes, n)
        return (templates[y] + g.standard_normal((n, 3, 32, 32), dtype=np.float32)), y.astype(np.int64)

    train_x, train_y = make(train)
    test_x, test_y = make(test)
    return Data(train_y=train_y, test_x=test_x, test_y=test_y, classes=classes,
                description=f"synthetic: {classes} random class templates + N(0,1) noise, {train} train / "
                            f"{test} test images (speed tests only)",
                augment=lambda idx, _rng: train_x[idx])


def load_data(spec: str, *, seed: int, log: Callable[[str], None]) -> Data:
    if spec == "synthetic":
        data = synthetic_data(seed=seed)
        log(f"data: {data.description}")
        return data
    raise NotImplementedError
