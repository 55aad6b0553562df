"""NPZ datasets: arrays x and y (optional x_test, y_test) in one .npz, read without pickle."""

import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..util.arrayfile import read_arrays
from ..util.memory import check_fits
from ..util.openfile import kind_of
from .dataset import Dataset, Split, split_rows
from .preprocess import features
from .tabular import scale_targets


def _read(path):
    """Every array of the .npz at `path`, by the hardened reader (util/arrayfile.py): headers first,
    their memory checked, never unpickled."""
    path = Path(path)
    kind = kind_of(path)
    if kind == "missing":
        raise DataError(f"data.path: {path} does not exist")
    if kind is not None:
        raise DataError(f"data.path: cannot open {path}: {kind if 'long' in kind else f'not a regular file ({kind})'}")

    def select(headers):
        if None in headers:
            raise DataError(f"data.path: {path} is an .npy file; a dataset is an .npz archive of x and y")
        need = sum(math.prod(shape) * dtype.itemsize for shape, dtype in headers.values())
        check_fits(3 * need, f"data.path: {path}: its arrays", "give a smaller file", DataError)
        return list(headers)

    arrays, _ = read_arrays(path, select, error=_Prefixed)
    return arrays


class _Prefixed(DataError):
    """A DataError whose message starts with the config key, data.path."""

    def __init__(self, message):
        super().__init__(f"data.path: {message}")


def load_npz(cfg, task, seed, source, echo=print):
    path = Path(cfg.path)
    arrays = _read(path)
    for name in ("x", "y"):
        if name not in arrays:
            raise DataError(f"data.path: {path} has no array {name!r} (it holds {', '.join(arrays) or 'none'}); expected x and y")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"data.path: {path} has only one of x_test and y_test; give both or neither")
    x, y = _inputs(arrays["x"], path, "x"), arrays["y"]
    _check_rows(x, y, path, "x", "y")
    if "x_test" in arrays:
        x_test, y_test = _inputs(arrays["x_test"], path, "x_test"), arrays["y_test"]
        _check_rows(x_test, y_test, path, "x_test", "y_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"data.path: {path}: x_test has rows of shape {arrays['x_test'].shape[1:]}, x {arrays['x'].shape[1:]}")
    prep = {"kind": "array", "task": task, "shape": list(arrays["x"].shape[1:]), "target_names": None}
    if task == "classification":
        labels = _labels(y, path, "y")
        classes = np.unique(labels)
        prep["class_names"] = [str(c) for c in classes.tolist()]
        if len(prep["class_names"]) < 2:
            raise DataError(f"data.path: {path}: y holds only one class ({prep['class_names'][0]!r}); classification needs at least two")
    else:
        labels = classes = None
        prep["class_names"] = None
    if "x_test" in arrays:
        train_rows, val_rows, _ = split_rows(len(x), cfg.val_fraction, 0.0, labels, seed, path)
    else:
        train_rows, val_rows, test_rows = split_rows(len(x), cfg.val_fraction, cfg.test_fraction, labels, seed, path)
        x_test, y_test = x[test_rows], y[test_rows]
    x_train = x[train_rows]
    if cfg.standardize:
        flat = x_train.reshape(len(x_train), -1)
        mean, std = flat.mean(axis=0, dtype=np.float64), flat.std(axis=0, dtype=np.float64)
        prep["mean"], prep["std"] = mean.tolist(), np.where(std > 0, std, 1.0).tolist()
    else:
        prep["mean"] = prep["std"] = None

    prep["target_mean"] = prep["target_std"] = None
    if task == "regression" and cfg.standardize_target:
        y_train = _targets(prep, classes, y[train_rows], path, "y")
        prep["target_mean"] = y_train.mean(axis=0, dtype=np.float64).tolist()
        prep["target_std"] = np.where((s := y_train.std(axis=0, dtype=np.float64)) > 0, s, 1.0).tolist()

    def split(xs, ys, name):
        return Split(features(prep, xs, f"{path}: x"), _targets(prep, classes, ys, path, name))

    data = Dataset(
        train=split(x_train, y[train_rows], "y"), val=split(x[val_rows], y[val_rows], "y"),
        test=split(x_test, y_test, "y_test"), task=task,
        num_outputs=len(prep["class_names"]) if task == "classification" else _width(y),
    )
    data.preprocessing, data.sources = prep, [str(path)]
    return data


def _inputs(x, path, name):
    if x.dtype.kind not in "biuf" or x.ndim < 2:
        raise DataError(
            f"data.path: {path}: {name} must be a numeric array of shape (N, features...), received {x.dtype} {x.shape}"
        )
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"data.path: {path}: {name} holds NaN or infinite values; clean them before training")
    return x


def _check_rows(x, y, path, xn, yn):
    if len(x) != len(y) or y.ndim not in (1, 2):
        raise DataError(f"data.path: {path}: {yn} has shape {y.shape}; expected ({len(x)},) or ({len(x)}, M) to match {xn}'s {len(x)} rows")
    if len(x) == 0:
        raise DataError(f"data.path: {path}: {xn} has no rows")


def _labels(y, path, name):
    if y.ndim != 1 or y.dtype.kind not in "biuU":
        raise DataError(
            f"data.path: {path}: {name} must hold one class label per row (integers or strings) for a classification "
            f"loss, received {y.dtype} {y.shape}; for numeric targets use loss: mse"
        )
    return y.astype(str) if y.dtype.kind == "U" else y


def _targets(prep, classes, y, path, name):
    if prep["task"] == "regression":
        if y.dtype.kind not in "biuf":
            raise DataError(f"data.path: {path}: {name} must be numeric for loss: mse, received {y.dtype}")
        y = y.reshape(len(y), -1).astype(np.float32)
        if not np.isfinite(y).all():
            raise DataError(f"data.path: {path}: {name} holds NaN or infinite values")
        return scale_targets(prep, y)
    labels = _labels(y, path, name)
    pos = np.minimum(np.searchsorted(classes, labels), len(classes) - 1)
    unknown = classes[pos] != labels
    if unknown.any():
        raise DataError(f"data.path: {path}: {name} holds class {str(labels[np.argmax(unknown)])!r}, which y (the training rows) never has")
    return pos.astype(np.int64)


def _width(y):
    return 1 if y.ndim == 1 else y.shape[1]
