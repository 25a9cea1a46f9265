"""Datasets for training and measurements (NumPy only): CIFAR-10/100 from the standard python-pickle files,
or scikit-learn's bundled handwritten digits as an offline stand-in; crop+flip augmentation; normalisation.

Nothing is downloaded. CIFAR pickles are read with a restricted unpickler that only rebuilds what those
files contain (dicts, lists, str, bytes, int and uint8 NumPy arrays); any other object is refused, so a
crafted pickle cannot run code.
"""
from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import E2simError

# Normalisation and augmentation of the official E2-Train code (main_all.py; reference §6).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
CROP_PADDING = 4
IMAGE_SIZE = 32
DIGITS = "digits"
DIGITS_TEST = 297  # the last 297 of sklearn's 1797 digits are held out (1500 train)


class Dataset(NamedTuple):
    x_train: np.ndarray  # uint8 NHWC (N, 32, 32, 3)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int


def _reconstruct_fn():
    # numpy's array reconstructor under its current module path (numpy._core in 2.x, numpy.core before)
    return np.zeros(1).__reduce__()[0]


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a CIFAR batch file needs to rebuild its arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise E2simError(f"refuses to load {module}.{name}: not part of a CIFAR batch file")
        if name == "_reconstruct":
            return _reconstruct_fn()
        if module == "_codecs":
            import codecs

            return codecs.encode
        return getattr(np, name)


def _read_batch(path: Path) -> dict[str, object]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise E2simError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    try:
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except E2simError as exc:
        raise E2simError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a CIFAR batch"
        raise E2simError(f"{path}: not a CIFAR python-pickle batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise E2simError(f"{path}: expected a dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _images_labels(path: Path, label_key: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _read_batch(path)
    data, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise E2simError(f"{path}: key 'data' must be a uint8 array of shape (N, 3072)")
    if not isinstance(labels, list) or len(labels) != data.shape[0] or not all(isinstance(v, int) for v in labels):
        raise E2simError(f"{path}: key '{label_key}' must be a list of {data.shape[0]} integers")
    y = np.asarray(labels, dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise E2simError(f"{path}: key '{label_key}' has labels outside [0, {classes})")
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), y


def _cifar(root: Path) -> Dataset:
    for sub in ("cifar-10-batches-py", "cifar-100-python"):
        if (root / sub).is_dir():
            root = root / sub
    if (root / "data_batch_1").exists():
        names = [f"data_batch_{i}" for i in range(1, 6)]
        parts = [_images_labels(root / n, "labels", 10) for n in names]
        x_test, y_test = _images_labels(root / "test_batch", "labels", 10)
        x_train = np.concatenate([p[0] for p in parts])
        y_train = np.concatenate([p[1] for p in parts])
        return Dataset(x_train, y_train, x_test, y_test, 10)
    if (root / "train").exists() and (root / "test").exists():
        x_train, y_train = _images_labels(root / "train", "fine_labels", 100)
        x_test, y_test = _images_labels(root / "test", "fine_labels", 100)
        return Dataset(x_train, y_train, x_test, y_test, 100)
    raise E2simError(
        f"--data {root}: no CIFAR python-pickle files found (expected data_batch_1..5 + test_batch for "
        "CIFAR-10, or train + test for CIFAR-100)"
    )


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    # 8x8 grey levels 0..16 -> 0..255, nearest-neighbour upscaled 4x to 32x32, replicated to 3 channels
    img = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)
    img = img.repeat(4, axis=1).repeat(4, axis=2)
    x = np.ascontiguousarray(np.repeat(img[..., None], 3, axis=3))
    y = d.target.astype(np.int64)
    cut = len(y) - DIGITS_TEST
    return Dataset(x[:cut], y[:cut], x[cut:], y[cut:], 10)


def load_dataset(spec: str | Path | None) -> Dataset:
    """``None`` or ``"digits"``: scikit-learn's bundled digits at 32x32x3. Otherwise a directory holding
    CIFAR-10 or CIFAR-100 in the standard python-pickle layout."""
    if spec is None or str(spec) == DIGITS:
        return _digits()
    root = Path(spec)
    if not root.is_dir():
        raise E2simError(f"--data {root}: not a directory")
    return _cifar(root)


def augment(x: np.ndarray, rng: np.random.Generator, flip: bool = True) -> np.ndarray:
    """Random 32x32 crop of the zero-padded (4 px) image and (``flip``) a random horizontal flip; uint8 NHWC
    in and out. Digits are not flipped: a mirrored digit is another digit or none (label noise)."""
    n, h, w, _ = x.shape
    p = CROP_PADDING
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    dy = rng.integers(0, 2 * p + 1, n)
    dx = rng.integers(0, 2 * p + 1, n)
    flip = (rng.random(n) < 0.5) & flip
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def normalize(x: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW, (x/255 - mean) / std per channel."""
    mean = np.asarray(CIFAR_MEAN, np.float32)
    std = np.asarray(CIFAR_STD, np.float32)
    out = (x.astype(np.float32) / np.float32(255.0) - mean) / std
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator,
            train: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (train) or one-pass (test) mini-batches of normalised float32 NCHW images and labels;
    training batches are reshuffled every epoch and augmented. The last partial batch is dropped in training."""
    n = len(y)
    if batch_size < 1 or (train and batch_size > n):
        raise E2simError(f"batch size {batch_size} does not fit a dataset of {n} training images")
    while True:
        order = rng.permutation(n) if train else np.arange(n)
        stop = n - batch_size + 1 if train else n
        for i in range(0, stop, batch_size):
            idx = order[i:i + batch_size]
            xb = augment(x[idx], rng) if train else x[idx]
            yield normalize(xb), y[idx]
        if not train:
            return
