"""CSV datasets: columns -> model inputs and targets, seeded (stratified) splits, and the same
encoding applied to a new CSV at predict time (`table_inputs`).

Everything the encoding needs is the `preprocessing` dict the Dataset carries into the checkpoint:
{"kind": "table", "features": [...], "numeric": [...], "categories": {col: [...]}, "columns": [...],
 "mean": [...] | None, "std": [...] | None, "task", "class_names": [...] | None, "target_names": [...],
 "target_mean": [...] | None, "target_std": [...] | None}
With target_mean set (data.standardize_target), the model learned (y - target_mean) / target_std:
its outputs are turned back into the target's units by `preprocess.target_units`.
"""

import numpy as np

from ..errors import ConfigError, DataError, did_you_mean
from ..util.memory import check_fits
from .csvfile import MISSING, read_csv
from .dataset import Dataset, Split, split_rows


def load_csv(cfg, task, seed, source, echo=print, splits=("train", "val", "test"), preprocessing=None):
    """The Dataset `cfg` (a config's CsvData) describes; `task` follows the loss.

    `preprocessing` (a checkpoint's) is used instead of what the training rows would give; with it, a
    test split alone (`splits`) from a separate data.test_path reads only that file.
    """
    targets = [cfg.target] if isinstance(cfg.target, str) else list(cfg.target)
    if task == "classification" and len(targets) > 1:
        raise ConfigError(
            f"{source}: data.target: classification predicts one column, received {targets}; "
            f"several targets need loss: mse (multi-output regression)"
        )
    if preprocessing is not None and cfg.test_path is not None and set(splits) == {"test"}:
        x, y = table_inputs(preprocessing, cfg.test_path)
        if y is None:
            raise DataError(f"data.test_path: {cfg.test_path} has no target column {', '.join(map(repr, targets))}")
        if task == "regression":
            y = scale_targets(preprocessing, y)  # the units the model learned, as the loss sees them
        classes = preprocessing["class_names"]
        return Dataset(train=None, val=None, test=Split(x, y), task=task,
                       num_outputs=len(classes) if classes is not None else len(targets),
                       preprocessing=preprocessing, sources=[str(cfg.test_path)])
    table = read_csv(cfg.path, "data.path")
    features = _columns(cfg, table, targets, source)
    kinds = _kinds(table, features, targets, task)
    table = _complete_rows(table, kinds, cfg.missing, echo)
    labels = None
    if task == "classification":
        column = table[targets[0]]
        fractional = column.numeric & (column.numbers != np.round(column.numbers))
        if column.numeric and fractional.any():
            row = int(np.argmax(fractional))
            raise DataError(
                f"{table.path}, line {table.line(row)}, column {targets[0]!r}: {column.cell(row)} is not a class label "
                f"(labels are text or integers); to predict numbers use loss: mse (configs/tabular_regression.yaml)"
            )
        labels = _labels(column)
    if cfg.test_path is None:
        train_rows, val_rows, test_rows = split_rows(
            len(table), cfg.val_fraction, cfg.test_fraction, labels, seed, table.path
        )
        test = table.take(test_rows)
    else:
        train_rows, val_rows, _ = split_rows(len(table), cfg.val_fraction, 0.0, labels, seed, table.path)
        test = read_csv(cfg.test_path, "data.test_path", text=_needs_text(table, features))
        _columns(cfg, test, targets, source, where="data.test_path")
        numeric = [f for f in features if kinds[f]]
        test = _complete_rows(test, _kinds(test, features, targets, task, numeric), cfg.missing, echo)
    train, val = table.take(train_rows), table.take(val_rows)

    if preprocessing is not None:
        prep = preprocessing
        x_train = _standardize(prep, _encode(prep, train, "training"))
    else:
        prep, x_train = _fit_preprocessing(cfg, task, features, targets, table, train)

    def split(part, name):
        x = x_train if part is train else _standardize(prep, _encode(prep, part, name))
        return Split(x, _targets(prep, part, name))

    data = Dataset(
        train=split(train, "training"), val=split(val, "validation"), test=split(test, "test"),
        task=task, num_outputs=len(prep["class_names"]) if task == "classification" else len(targets),
    )
    data.preprocessing = prep
    data.sources = [str(table.path)] + ([str(test.path)] if cfg.test_path is not None else [])
    n_cat = len(prep["categories"])
    echo(
        f"read {table.path.name}: {len(features)} feature columns"
        + (f" ({n_cat} categorical, one-hot encoded: {len(prep['columns'])} inputs)" if n_cat else "")
        + (f", {len(prep['class_names'])} classes" if task == "classification" else f", target {', '.join(targets)}")
    )
    return data


def _fit_preprocessing(cfg, task, features, targets, table, train):
    """The encoding the training rows give (categories, mean/std, classes) and the encoded training inputs."""
    prep = {"kind": "table", "task": task, "features": features, "target_names": targets}
    prep["numeric"] = [f for f in features if table[f].numeric]
    prep["categories"] = {f: np.unique(train[f].text).tolist() for f in features if not train[f].numeric}
    if task == "classification":
        prep["class_names"] = _sorted_classes(train[targets[0]])
        if len(prep["class_names"]) < 2:
            raise DataError(
                f"{table.path}: the training rows hold only one class ({prep['class_names'][0]!r}) in column "
                f"{targets[0]!r}; classification needs at least two"
            )
    else:
        prep["class_names"] = None
    prep["columns"] = [c for f in features for c in ([f] if f in prep["numeric"] else [f"{f}={v}" for v in prep["categories"][f]])]
    widest = max(prep["categories"], key=lambda f: len(prep["categories"][f]), default=None)
    check_fits(
        4 * len(table) * len(prep["columns"]),
        f"data.path: {len(table):,} rows one-hot encoded into {len(prep['columns']):,} inputs"
        + (f" (column {widest!r} has {len(prep['categories'][widest]):,} categories)" if widest else ""),
        "leave out columns of unique values (names, ids) with data.features",
    )
    x_train = _encode(prep, train, "training")
    if cfg.standardize:
        # Statistics from the training rows only, applied to every split (and stored for predict).
        mean, std = x_train.mean(axis=0, dtype=np.float64), x_train.std(axis=0, dtype=np.float64)
        prep["mean"], prep["std"] = mean.tolist(), np.where(std > 0, std, 1.0).tolist()
        _standardize(prep, x_train)
    else:
        prep["mean"] = prep["std"] = None

    prep["target_mean"] = prep["target_std"] = None
    if task == "regression" and cfg.standardize_target:
        y = _targets(prep, train, "training")
        prep["target_mean"] = y.mean(axis=0, dtype=np.float64).tolist()
        prep["target_std"] = np.where((s := y.std(axis=0, dtype=np.float64)) > 0, s, 1.0).tolist()
    return prep, x_train


def table_inputs(preprocessing, path):
    """(x float32 (N, D), y or None) from a CSV with the model's feature columns (any order, any extra
    columns), encoded exactly as in training. y is returned when every target column is present:
    class indices (int64), or float32 (N, M) targets in the target's own units (never standardised:
    compare them with `preprocess.target_units` of the model's outputs)."""
    prep = preprocessing
    features, targets = prep["features"], prep["target_names"]
    table = read_csv(path, "input", text=bool(prep["categories"]) or prep["class_names"] is not None)
    absent = [f for f in features if f not in table.columns]
    if absent:
        raise DataError(
            f"{path}: no column {absent[0]!r}{did_you_mean(absent[0], table.names)}; the model reads the columns "
            f"{', '.join(features)}"
        )
    has_y = all(t in table.columns for t in targets)
    kinds = _kinds(table, features, targets if has_y else [], prep["task"], prep["numeric"])
    table = _complete_rows(table, kinds, "error", None, predict=True)
    x = _standardize(prep, _encode(prep, table, "input"))
    if not has_y:
        return x, None
    return x, _targets(prep, table, "input", scaled=False)


# --- columns and rows -------------------------------------------------------------------------


def _columns(cfg, table, targets, source, where="data.path"):
    """The feature columns in order; an unknown target or feature column is a ConfigError."""
    for key, names in (("data.target", targets), ("data.features", cfg.features or [])):
        for name in names:
            if name not in table.columns:
                raise ConfigError(
                    f"{source}: {key}: no column {name!r} in {table.path} ({where}){did_you_mean(name, table.names)}; "
                    f"its columns: {', '.join(table.names)}"
                )
    features = list(cfg.features) if cfg.features is not None else [n for n in table.names if n not in targets]
    if not features:
        raise ConfigError(f"{source}: data.target: {table.path} has no column left to use as input")
    return features


def _needs_text(table, features):
    return any(not table[f].numeric for f in features)


def _bad(column, numeric):
    """Cells that cannot be used: missing, or (where a number is needed) not a number."""
    return np.isnan(column.numbers) if numeric else column.missing


def _kinds(table, features, targets, task, numeric_features=None):
    """name -> whether its cells must be numbers: numeric features and regression targets do; class
    labels may be numbers or text."""
    kinds = {f: (table[f].numeric if numeric_features is None else f in numeric_features) for f in features}
    for t in targets:
        if task == "regression" and not table[t].numeric:
            column = table[t]
            row = int(np.argmax(np.isnan(column.numbers) & ~column.missing))
            raise DataError(
                f"{table.path}, line {table.line(row)}, column {t!r}: {column.cell(row)!r} is not a number; a regression "
                f"target (loss: mse) must be numeric; for class labels use loss: softmax_cross_entropy"
            )
        kinds[t] = task == "regression" or table[t].numeric
    return kinds


def _complete_rows(table, kinds, missing, echo, predict=False):
    """The table without rows holding a missing or unparsable cell in the columns of `kinds` (with
    missing: drop), else a DataError naming the first such cell's line and column."""
    bad = np.zeros(len(table), bool)
    for name, number in kinds.items():
        bad |= _bad(table[name], number)
    if not bad.any():
        return table
    if missing == "error":
        row = int(np.argmax(bad))
        name = next(n for n, number in kinds.items() if _bad(table[n], number)[row])
        cell = table[name].cell(row)
        what = "missing value" if cell in MISSING else f"{cell!r} is not a number"
        hint = "; fix the file" + ("" if predict else ", or set data.missing: drop to drop such rows")
        raise DataError(f"{table.path}, line {table.line(row)}, column {name!r}: {what}{hint}")
    if bad.all():
        raise DataError(f"{table.path}: every row has a missing or unparsable cell; nothing is left to train on")
    echo(f"dropped {int(bad.sum()):,} of {len(table):,} rows of {table.path.name} with a missing or unparsable cell (data.missing: drop)")
    return table.take(~bad)


# --- encoding ---------------------------------------------------------------------------------


def _labels(column):
    """Class labels as strings: text as written, numbers canonical ("3" for 3.0), so 3 and 3.0 agree."""
    if not column.numeric:
        return column.text
    v = column.numbers
    integral = np.isfinite(v) & (v == np.round(v)) & (np.abs(v) < 2**53)
    out = v.astype(str)
    out[integral] = v[integral].astype(np.int64).astype(str)
    return out


def _sorted_classes(column):
    """The distinct labels of the training rows, sorted (numerically when they are numbers)."""
    labels = np.unique(_labels(column))
    if column.numeric:
        labels = labels[np.argsort(labels.astype(np.float64), kind="stable")]
    return labels.tolist()


def _targets(prep, table, name, scaled=True):
    """Class indices, or float32 (N, M) targets (scaled as the model learns them unless `scaled` is false)."""
    targets = prep["target_names"]
    if prep["task"] == "regression":
        y = np.stack([table[t].numbers for t in targets], axis=1).astype(np.float32)
        return scale_targets(prep, y) if scaled else y
    classes = np.asarray(prep["class_names"])
    return _indices(table, targets[0], _labels(table[targets[0]]), classes, name, "class")


def _indices(table, column, values, known, part, what):
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


def _encode(prep, table, part):
    """float32 (N, D): numeric features as they are, each categorical one as one-hot columns."""
    n = len(table)
    x = np.zeros((n, len(prep["columns"])), dtype=np.float32)
    j = 0
    for f in prep["features"]:
        if f in prep["numeric"]:
            x[:, j] = table[f].numbers
            j += 1
        else:
            cats = np.asarray(prep["categories"][f])
            x[np.arange(n), j + _indices(table, f, table[f].text, cats, part, "category")] = 1.0
            j += len(cats)
    return x


def _standardize(prep, x):
    if prep["mean"] is not None:
        x -= np.asarray(prep["mean"], dtype=np.float32)
        x *= 1 / np.asarray(prep["std"], dtype=np.float32)
    return x
