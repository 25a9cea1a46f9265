"""What ``--data`` names, as arrays the training loop reads: the bundled digits (default), a CIFAR directory
(both via ``e2sim.train.data``), or ``synthetic`` (random class templates plus noise, for speed tests only:
it says nothing about accuracy on real images)."""
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


def synthetic_data(train: int = 2048, test: int = 128, classes: int = 10, seed: int = 0) -> Data:
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
    """``synthetic``, ``digits`` (the default: scikit-learn's bundled handwritten digits at 32x32x3, so a run
    works offline) or a CIFAR-10/100 directory (``e2sim.train.data``: restricted unpickler)."""
    if spec == "synthetic":
        data = synthetic_data(seed=seed)
        log(f"data: {data.description}")
        return data
    from .data import DIGITS, augment, load_dataset, normalize

    ds = load_dataset(spec)
    if spec == DIGITS:
        desc = (f"digits: scikit-learn's bundled 8x8 handwritten digits upscaled to 32x32x3 "
                f"({len(ds.y_train)} train / {len(ds.y_test)} test), a stand-in for CIFAR; pass --data DIR "
                f"for CIFAR-10/100")
    else:
        desc = f"CIFAR-{ds.classes} from {spec} ({len(ds.y_train)} train / {len(ds.y_test)} test)"
    log(f"data: {desc}")
    x_train = ds.x_train
    flip = spec != DIGITS  # a mirrored digit is another digit (or none): crops only
    return Data(train_y=ds.y_train, test_x=normalize(ds.x_test), test_y=ds.y_test, classes=ds.classes,
                description=desc + ("" if flip else "; augmentation: random crops, no flips"),
                augment=lambda idx, rng: normalize(augment(x_train[idx], rng, flip)))
