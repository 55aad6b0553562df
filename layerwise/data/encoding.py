"""Encoding table columns as numbers: class labels and their indices, regression targets as the model
learns them, one-hot categorical features, and the input standardisation (with RealMLP's smooth clip).

Every function reads the `preprocessing` dict described in data/tabular.py.
"""

import numpy as np

from ..errors import DataError


def labels_of(column):
    """Class labels as strings: text as written, numbers canonical ("3" for 3.0), so 3 and 3.0 agree."""
    if not column.numeric:
        return column.text
    v = column.numbers
    integral = np.isfinite(v) & (v == np.round(v)) & (np.abs(v) < 2**53)
    out = v.astype(str)
    out[integral] = v[integral].astype(np.int64).astype(str)
    return out


def sorted_classes(column):
    """The distinct labels of the training rows, sorted (numerically when they are numbers)."""
    labels = np.unique(labels_of(column))
    if column.numeric:
        labels = labels[np.argsort(labels.astype(np.float64), kind="stable")]
    return labels.tolist()


def encode_targets(prep, table, name, scaled=True):
    """Class indices, or float32 (N, M) targets (scaled as the model learns them unless `scaled` is false)."""
    targets = prep["target_names"]
    if prep["task"] == "regression":
        y = np.stack([table[t].numbers for t in targets], axis=1).astype(np.float32)
        return scale_targets(prep, y) if scaled else y
    classes = np.asarray(prep["class_names"])
    return indices_in(table, targets[0], labels_of(table[targets[0]]), classes, name, "class")


def indices_in(table, column, values, known, part, what):
    """Positions of `values` in the sorted array `known`; a value not in it is a DataError."""
    order = np.argsort(known, kind="stable")  # class names sort numerically; searchsorted needs text order
    pos = np.searchsorted(known[order], values)
    pos = np.minimum(pos, len(known) - 1)
    found = known[order][pos] == values
    if not found.all():
        row = int(np.argmax(~found))
        shown = ", ".join(map(repr, known[:10].tolist())) + (", ..." if len(known) > 10 else "")
        hint = ""
        if what == "category" and part != "input":
            hint = " (a column of rare or unique values, such as a name or an id, is best left out with data.features)"
        raise DataError(
            f"{table.path}, line {table.line(row)}, column {column!r}: {what} {str(values[row])!r} ({part} rows) never "
            f"occurs in the training rows; known: {shown}{hint}"
        )
    return order[pos].astype(np.int64)


def scale_targets(prep, y):
    """Regression targets as the model learns them: (y - target_mean) / target_std when the run
    standardised its targets (data.standardize_target), else unchanged."""
    if prep.get("target_mean") is not None:
        y -= np.asarray(prep["target_mean"], dtype=np.float32)
        y *= 1 / np.asarray(prep["target_std"], dtype=np.float32)
    return y


def encode_features(prep, table, part, unseen=None):
    """float32 (N, D): numeric features as they are, each categorical one as one-hot columns. A category
    the training rows never had joins OTHER where the column groups rare ones, else is all zeros
    (scikit-learn's handle_unknown="ignore"), counted in `unseen`; without `unseen` it is an error."""
    n = len(table)
    x = np.zeros((n, len(prep["columns"])), dtype=np.float32)
    grouped = set(prep.get("grouped", []))
    j = 0
    for f in prep["features"]:
        if f in prep["numeric"]:
            x[:, j] = table[f].numbers
            j += 1
        else:
            cats = np.asarray(prep["categories"][f])
            if unseen is None:
                x[np.arange(n), j + indices_in(table, f, table[f].text, cats, part, "category")] = 1.0
            else:
                pos, found = positions_in(cats, table[f].text)
                if f in grouped:
                    pos[~found], found[:] = len(cats) - 1, True  # OTHER is the last category
                elif not found.all():
                    unseen[f] = int((~found).sum())
                rows = np.flatnonzero(found)
                x[rows, j + pos[rows]] = 1.0
            j += len(cats)
    return x


def positions_in(known, values):
    """(position of each value in `known`, whether it is there)."""
    order = np.argsort(known, kind="stable")
    pos = np.minimum(np.searchsorted(known[order], values), len(known) - 1)
    found = known[order][pos] == values
    return order[pos].astype(np.int64), found


def standardize(prep, x):
    """(x - mean) * (1 / std) per input; with data.robust_scale the number inputs (median and IQR
    scaling) are then smoothly clipped, x / sqrt(1 + (x / 3)^2) (RealMLP's), into (-3, 3): an outlier
    cannot dominate a step. The "clip" entry holds 1/3 for those inputs and 0 for the others.

    With data.linear_copy ("linear": {index, mean, std, low, high}) the number inputs are also
    appended as (x - mean) * (1 / std), not clipped: the clipped input keeps steps robust, the linear one
    keeps a trend that goes on past the clip (a balance proportional to a credit limit). "clamped":
    those columns are first held within [low, high], the training rows' range, so both inputs stay
    where training saw them together (beyond it they could pull apart and the output be a guess);
    a value past the range is predicted as at its edge, as a tree would."""
    linear = prep.get("linear")
    if linear is not None:
        if linear.get("low") is not None:
            index = linear["index"]
            x[:, index] = np.clip(x[:, index], np.asarray(linear["low"], dtype=np.float32),
                                  np.asarray(linear["high"], dtype=np.float32))
        copy = x[:, linear["index"]]  # a gather: a new array, before x is scaled in place
        copy -= np.asarray(linear["mean"], dtype=np.float32)
        copy *= 1 / np.asarray(linear["std"], dtype=np.float32)
    if prep["mean"] is not None:
        x -= np.asarray(prep["mean"], dtype=np.float32)
        x *= 1 / np.asarray(prep["std"], dtype=np.float32)
    if prep.get("clip") is not None:
        t = x * np.asarray(prep["clip"], dtype=np.float32)
        t *= t
        t += np.float32(1)
        np.sqrt(t, out=t)
        x /= t
    if linear is not None:
        x = np.concatenate([x, copy], axis=1)
    return x
