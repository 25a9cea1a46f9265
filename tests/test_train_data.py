"""Data loading: CIFAR pickle layouts, the restricted unpickler, digits stand-in, augmentation, normalisation."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from e2sim.errors import E2simError
from e2sim.train.data import CIFAR_MEAN, CIFAR_STD, augment, batches, load_dataset, normalize


def _write(path, obj, protocol=2):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def _batch(rng, n, key, classes, bytes_keys=True):
    d = {"batch_label": "x", "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
         key: rng.integers(0, classes, n).tolist(), "filenames": [f"f{i}.png" for i in range(n)]}
    return {k.encode(): v for k, v in d.items()} if bytes_keys else d


def test_cifar10_layout(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    written = []
    for i in range(1, 6):
        b = _batch(rng, 4, "labels", 10)
        written.append(b)
        _write(root / f"data_batch_{i}", b, protocol=2 if i % 2 else 4)
    _write(root / "test_batch", _batch(rng, 3, "labels", 10, bytes_keys=False))
    ds = load_dataset(tmp_path)  # the parent folder works too
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (3, 32, 32, 3) and ds.classes == 10
    first = written[0][b"data"][1].reshape(3, 32, 32)
    np.testing.assert_array_equal(ds.x_train[1], first.transpose(1, 2, 0))  # channel-planar -> HWC
    assert ds.y_train[:4].tolist() == written[0][b"labels"]


def test_cifar100_layout(tmp_path):
    rng = np.random.default_rng(1)
    _write(tmp_path / "train", _batch(rng, 5, "fine_labels", 100))
    _write(tmp_path / "test", _batch(rng, 2, "fine_labels", 100))
    ds = load_dataset(tmp_path)
    assert ds.classes == 100 and ds.x_train.shape == (5, 32, 32, 3) and ds.y_test.shape == (2,)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_crafted_pickle_is_refused(tmp_path):
    rng = np.random.default_rng(2)
    b = _batch(rng, 2, "fine_labels", 100)
    b[b"extra"] = _Evil()
    _write(tmp_path / "train", b)
    _write(tmp_path / "test", _batch(rng, 2, "fine_labels", 100))
    with pytest.raises(E2simError, match=r"train: refuses to load (posix|os)\.system"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("case", ["garbage", "not_dict", "bad_shape", "bad_labels", "label_range"])
def test_bad_files(tmp_path, case):
    rng = np.random.default_rng(3)
    good = _batch(rng, 2, "fine_labels", 100)
    if case == "garbage":
        (tmp_path / "train").write_bytes(b"not a pickle at all")
    elif case == "not_dict":
        _write(tmp_path / "train", [1, 2, 3])
    elif case == "bad_shape":
        good[b"data"] = good[b"data"][:, :100]
        _write(tmp_path / "train", good)
    elif case == "bad_labels":
        good[b"fine_labels"] = good[b"fine_labels"][:1]
        _write(tmp_path / "train", good)
    else:
        good[b"fine_labels"] = [0, 100]
        _write(tmp_path / "train", good)
    _write(tmp_path / "test", _batch(rng, 2, "fine_labels", 100))
    with pytest.raises(E2simError, match=r"train: "):
        load_dataset(tmp_path)


def test_missing_layout(tmp_path):
    with pytest.raises(E2simError, match="no CIFAR python-pickle files"):
        load_dataset(tmp_path)
    with pytest.raises(E2simError, match="not a directory"):
        load_dataset(tmp_path / "nope")


def test_digits_default():
    ds = load_dataset(None)
    assert ds.x_train.shape == (1500, 32, 32, 3) and ds.x_test.shape == (297, 32, 32, 3)
    assert ds.classes == 10 and set(np.unique(ds.y_train)) == set(range(10))
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0
    # nearest-neighbour upscale: every 4x4 block is constant and the channels are equal
    blk = ds.x_train[0, :4, 4:8, 0]
    assert (blk == blk[0, 0]).all() and (ds.x_train[..., 0] == ds.x_train[..., 2]).all()


def test_augment_is_a_shifted_window_possibly_flipped():
    rng = np.random.default_rng(4)
    x = rng.integers(1, 256, (16, 32, 32, 3), dtype=np.uint8)
    out = augment(x, rng)
    assert out.shape == x.shape
    padded = np.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)))
    for i in range(16):
        found = any(np.array_equal(out[i], win) or np.array_equal(out[i], win[:, ::-1])
                    for dy in range(9) for dx in range(9) for win in [padded[i, dy:dy + 32, dx:dx + 32]])
        assert found


def test_normalize_and_batches():
    x = np.full((2, 32, 32, 3), 255, np.uint8)
    n = normalize(x)
    assert n.shape == (2, 3, 32, 32) and n.dtype == np.float32
    np.testing.assert_allclose(n[0, :, 0, 0], (1 - np.array(CIFAR_MEAN)) / np.array(CIFAR_STD), rtol=1e-6)
    rng = np.random.default_rng(5)
    xs = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    ys = np.arange(10)
    test = list(batches(xs, ys, 4, rng, train=False))
    assert [len(b[1]) for b in test] == [4, 4, 2]
    it = batches(xs, ys, 4, rng)
    seen = np.concatenate([next(it)[1] for _ in range(2)])
    assert len(set(seen.tolist())) == 8  # one epoch: no repeats
    with pytest.raises(E2simError, match="batch size"):
        next(batches(xs, ys, 11, rng))
