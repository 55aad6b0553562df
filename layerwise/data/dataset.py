"""The dataset types: a Split (x, y), a Dataset of train / val / test splits, and the seeded row split."""

from dataclasses import dataclass

import numpy as np

from ..errors import DataError


@dataclass
class Split:
    x: np.ndarray  # (N, D) float32
    y: np.ndarray  # (N,) int64 class indices, or (N, M) float32 targets

    def __len__(self):
        return len(self.x)


@dataclass
class Dataset:
    train: Split
    val: Split
    test: Split
    task: str  # "classification" or "regression"
    num_outputs: int  # classes, or target width
    # How raw inputs become the model's inputs and outputs become labels (JSON-able; kept in checkpoints):
    # {"kind": "image" | "table" | "array", "class_names": [...] | None, "target_names": [...] | None, ...}
    preprocessing: dict = None
    sources: list = None  # the data files it was read from (for the fingerprint)
    fingerprint: list = None  # data.fingerprint entries; filled from `sources` when None

    @property
    def num_features(self):
        split = next(s for s in (self.train, self.val, self.test) if s is not None)
        return split.x.shape[1]

    @property
    def input_shape(self):
        """(C, H, W) of one example when the inputs are images (see preprocess.image_input_shape), else None."""
        from .preprocess import image_input_shape

        return image_input_shape(self.preprocessing)

    def split(self, name):
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def batch_rows(self, train_cfg):
        """The most examples one forward pass sees: a training batch or an evaluation batch."""
        loaded = [s for s in (self.train, self.val, self.test) if s is not None]
        largest = max(len(s) for s in loaded)
        train = min(train_cfg.batch_size, len(self.train)) if self.train is not None else 0
        return max(train, min(train_cfg.eval_batch_size, largest))


SPLITS = ("train", "val", "test")


def split_rows(n, val_fraction, test_fraction, labels, seed, path):
    """Seeded (train, val, test) row indices, each sorted; stratified by class when `labels` (one per
    row) are given: every class is split in the same proportions (rounded per class)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if labels is None:
        group = np.zeros(n, dtype=np.int64)
    else:
        group = np.unique(labels, return_inverse=True)[1].reshape(-1)
        order = order[np.argsort(group[order], kind="stable")]  # by class, random within each class
    counts = np.bincount(group)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    g = group[order]
    rank = np.arange(n) - start[g]  # position of each row within its class
    n_test = np.round(counts * test_fraction).astype(np.int64)[g]
    n_val = np.round(counts * val_fraction).astype(np.int64)[g]
    test, val = order[rank < n_test], order[(rank >= n_test) & (rank < n_test + n_val)]
    train = order[rank >= n_test + n_val]
    for rows, what, key in ((train, "training", "val_fraction"), (val, "validation", "val_fraction"),
                            (test, "test", "test_fraction")):
        if len(rows) == 0 and (what != "test" or test_fraction > 0):
            raise DataError(
                f"{path}: {n:,} row{'s leave' if n != 1 else ' leaves'} no {what} rows (data.val_fraction {val_fraction}, data.test_fraction "
                f"{test_fraction}); more rows are needed, or other fractions"
            )
    return np.sort(train), np.sort(val), np.sort(test)
