"""Dataset building and batching."""

import numpy as np
import pytest

from layerwise.config.data import MnistData, RegressionData
from layerwise.data.batches import Batches
from layerwise.data.dataset import Split
from layerwise.data.load import load_dataset
from layerwise.data.idx import write_idx
from layerwise.errors import ConfigError


def write_tiny_mnist(root, n_train=30, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))


def test_mnist_splits_scaling_and_dtype(tmp_path):
    write_tiny_mnist(tmp_path)
    data = load_dataset(MnistData(root=str(tmp_path), val_size=5), echo=lambda *_: None)
    assert (len(data.train), len(data.val), len(data.test)) == (25, 5, 10)
    assert data.train.x.dtype == np.float32 and data.train.x.flags.c_contiguous
    assert data.train.x.shape == (25, 784) and data.num_features == 784 and data.num_outputs == 10
    raw = load_dataset(MnistData(root=str(tmp_path), val_size=5, normalize=False), echo=lambda *_: None)
    assert 0 <= raw.train.x.min() and raw.train.x.max() <= 1
    np.testing.assert_allclose(data.train.x, (raw.train.x - 0.1307) / 0.3081, rtol=1e-5, atol=1e-5)


def test_mnist_val_size_must_leave_training_images(tmp_path):
    write_tiny_mnist(tmp_path)
    with pytest.raises(ConfigError, match="data.val_size: 30 leaves no training images"):
        load_dataset(MnistData(root=str(tmp_path), val_size=30), echo=lambda *_: None)


def test_regression_is_seeded_and_follows_the_formula():
    cfg = RegressionData(noise_std=0.0)
    a, b = load_dataset(cfg, seed=3), load_dataset(cfg, seed=3)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_allclose(a.train.y[:, 0], a.train.x @ np.array([3, 4, 2]) + 5, atol=1e-5)
    assert (len(a.train), len(a.val), len(a.test)) == (1600, 200, 200)
    assert not np.array_equal(load_dataset(cfg, seed=4).train.x, a.train.x)


def test_regression_uniform_inputs_and_standardisation():
    cfg = RegressionData(inputs="uniform", low=[0, 0], high=[30, 20], weights=[2, 3], standardize=False)
    x = load_dataset(cfg).train.x
    assert x.min() >= 0 and x[:, 0].max() < 30 and x[:, 1].max() < 20
    z = load_dataset(RegressionData(inputs="uniform", low=[0, 0], high=[30, 20], weights=[2, 3], standardize=True)).train.x
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-4)


def test_batches_cover_every_example_once_and_keep_the_last_partial_batch():
    split = Split(np.arange(10, dtype=np.float32).reshape(10, 1), np.arange(10))
    batches = Batches(split, 4, np.random.default_rng(0))
    assert len(batches) == 3
    seen, sizes = [], []
    for x, y in batches:
        np.testing.assert_array_equal(x[:, 0], y)  # x and y gathered with the same indices
        seen.extend(y.tolist())
        sizes.append(len(y))
    assert sizes == [4, 4, 2] and sorted(seen) == list(range(10))
    assert seen != list(range(10))  # shuffled


def test_batches_shuffle_differently_each_epoch_but_reproducibly():
    split = Split(np.zeros((50, 1), np.float32), np.arange(50))

    def two_epochs(seed):
        batches = Batches(split, 50, np.random.default_rng(seed))
        return [next(iter(batches))[1].copy() for _ in range(2)]

    first, second = two_epochs(1)
    assert not np.array_equal(first, second)
    for a, b in zip(two_epochs(1), (first, second)):
        np.testing.assert_array_equal(a, b)


def test_batches_without_rng_keep_order():
    split = Split(np.zeros((5, 1), np.float32), np.arange(5))
    assert [y.tolist() for _, y in Batches(split, 2)] == [[0, 1], [2, 3], [4]]
