"""Tiny IDX datasets for tests: four files of random 28x28 images whose labels are learnable."""

import numpy as np

from layerwise.data.idx import write_idx
from layerwise.data.mnist import FILES


def tiny_arrays(n_train=60, n_test=20, classes=10, seed=0):
    """Images whose label is the row (of `classes` bands) that is brightest, plus noise: a linear
    model learns it in a few epochs."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = rng.integers(0, classes, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        band = 28 // classes
        for i, label in enumerate(labels):
            images[i, label * band : (label + 1) * band, :] = 250
        return images, labels

    (a, b), (c, d) = make(n_train), make(n_test)
    return {"train_images": a, "train_labels": b, "test_images": c, "test_labels": d}


def write_tiny(directory, names=FILES, suffix=".gz", **kwargs):
    """Write the four files under `names` (key -> file name) into `directory`; returns the arrays."""
    arrays = tiny_arrays(**kwargs)
    directory.mkdir(parents=True, exist_ok=True)
    for key, name in names.items():
        write_idx(directory / f"{name}{suffix}", arrays[key])
    return arrays
