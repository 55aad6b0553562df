"""CSV datasets: columns -> model inputs and targets, seeded (stratified) splits, and the same
encoding applied to a new CSV at predict time (`table_inputs`).

Everything the encoding needs is the `preprocessing` dict the Dataset carries into the checkpoint:
{"kind": "table", "features": [...], "numeric": [...], "categories": {col: [...]}, "columns": [...],
 "mean": [...] | None, "std": [...] | None, "task", "class_names": [...] | None, "target_names": [...],
 "target_mean": [...] | None, "target_std": [...] | None}
With target_mean set (data.standardize_target), the model learned (y - target_mean) / target_std:
its outputs are turned back into the target's units by `preprocess.target_units`.
"""

import inspect
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, did_you_mean
from ..util.memory import check_fits
from .columns import analyse, derive, derived_names, fit_categories, fit_fill, impute
from .csvfile import MISSING, read_csv
from .dataset import Dataset, Split, split_rows
from .encoding import encode_features, encode_targets, labels_of, scale_targets, sorted_classes, standardize  # noqa: F401 (scale_targets: used by arrays, evaluate)
from .preprocess import linear_copies


def load_csv(cfg, task, seed, source, echo=print, splits=("train", "val", "test"), preprocessing=None):
    """The Dataset `cfg` (a config's CsvData) describes; `task` follows the loss.

    `preprocessing` (a checkpoint's) is used instead of what the training rows would give; with it, a
    test split alone (`splits`) from a separate data.test_path reads only that file. What the loading
    decided on its own (delimiter, index column, dates, IDs, rows dropped, cells imputed, unseen
    categories) is one note line, to stderr.
    """
    targets = [cfg.target] if isinstance(cfg.target, str) else list(cfg.target)
    if task == "classification" and len(targets) > 1:
        raise ConfigError(
            f"{source}: data.target: classification predicts one column, received {targets}; "
            f"several targets need loss: mse (multi-output regression)"
        )
    notes = []
    if preprocessing is not None and cfg.test_path is not None and set(splits) == {"test"}:
        x, y = table_inputs(preprocessing, cfg.test_path, notes=notes, drop=True)
        if y is None:
            raise DataError(f"data.test_path: {cfg.test_path} has no target column {', '.join(map(repr, targets))}")
        if task == "regression":
            y = scale_targets(preprocessing, y)  # the units the model learned, as the loss sees them
        _note(echo, cfg.test_path, notes)
        classes = preprocessing["class_names"]
        return Dataset(train=None, val=None, test=Split(x, y), task=task,
                       num_outputs=len(classes) if classes is not None else len(targets),
                       preprocessing=preprocessing, sources=[str(cfg.test_path)])
    prep = preprocessing
    decimal = cfg.decimal if prep is None else prep.get("decimal", ".")  # a checkpoint's: as trained
    table = read_csv(cfg.path, "data.path", delimiter=(prep or {}).get("delimiter", cfg.delimiter), decimal=decimal)
    notes += table.notes
    if prep is None:
        raw = _columns(cfg, table, targets, source)
        derived, dropped, found = analyse(table, raw, cfg.dates, cfg.ids)
        notes += found
        raw = [f for f in raw if f not in dropped]
    else:
        derived, raw = prep.get("derived") or {}, prep.get("inputs", prep["features"])
        _present(table, raw)
    table = derive(table, derived)
    features = _expand(raw, derived, table, None if prep is None else prep["features"])
    policy = cfg.missing if prep is None else prep.get("missing", cfg.missing)
    numeric = None if prep is None else prep["numeric"]
    kinds = _kinds(table, features if policy != "impute" else [], targets, task, numeric)
    table = _complete_rows(table, kinds, policy, notes)
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
        labels = labels_of(column)
    if cfg.test_path is None:
        train_rows, val_rows, test_rows = split_rows(
            len(table), cfg.val_fraction, cfg.test_fraction, labels, seed, table.path
        )
        test = table.take(test_rows)
    else:
        train_rows, val_rows, _ = split_rows(len(table), cfg.val_fraction, 0.0, labels, seed, table.path)
        test = read_csv(cfg.test_path, "data.test_path", text=True, delimiter=(prep or {}).get("delimiter", cfg.delimiter),
                        decimal=table.decimal)
        _present(test, raw + targets, where="data.test_path")
        test = derive(test, derived)
        numeric = [f for f in features if table[f].numeric] if numeric is None else numeric
        test_kinds = _kinds(test, features if policy != "impute" else [], targets, task, numeric)
        test = _complete_rows(test, test_kinds, policy, notes)
    train, val = table.take(train_rows), table.take(val_rows)
    if prep is None:
        prep = _fit_preprocessing(cfg, task, features, targets, table, train)
        if cfg.linear_copy is not None and not (cfg.standardize and cfg.robust_scale):  # copies of what is clipped
            off = "data.standardize" if not cfg.standardize else "data.robust_scale"
            notes.append(f"data.linear_copy: {cfg.linear_copy} makes no copies with {off} off (nothing is clipped)")
        prep.update(inputs=raw, derived=derived, delimiter=cfg.delimiter, missing=policy, decimal=table.decimal)
        prep["notes"] = list(notes)

    def split(part, name):
        # rows of data.test_path are named by their own file (the note line names data.path)
        where = f"{name} rows of {part.path.name}" if part.path != table.path else f"{name} rows"
        return Split(_inputs(prep, part, name, notes, where), encode_targets(prep, part, name))

    data = Dataset(
        train=split(train, "training"), val=split(val, "validation"), test=split(test, "test"),
        task=task, num_outputs=len(prep["class_names"]) if task == "classification" else len(targets),
    )
    data.preprocessing = prep
    data.sources = [str(table.path)] + ([str(test.path)] if cfg.test_path is not None else [])
    n_cat = len(prep["categories"])
    echo(
        f"read {table.path.name}: {len(features)} feature column{'s' if len(features) != 1 else ''}"
        + (f" ({n_cat} categorical, one-hot encoded: {len(prep['columns'])} inputs)" if n_cat else "")
        + (f", {copies} number column{'s' if copies != 1 else ''} also unclipped (data.linear_copy: "
           f"{'unbounded' if prep['linear']['low'] is None else 'clamped'}): "
           f"{len(prep['columns']) + copies} inputs" if (copies := linear_copies(prep)) else "")
        + (f", {len(prep['class_names'])} classes" if task == "classification" else f", target {', '.join(targets)}")
    )
    _note(echo, table.path, notes)
    return data


def _note(echo, path, notes):
    """The automatic decisions, in one line: to stderr when echo is the CLI's (it takes err=)."""
    if not notes or echo is None:
        return
    line = f"note: {Path(path).name}: " + "; ".join(notes)
    try:
        takes_err = "err" in inspect.signature(echo).parameters
    except (TypeError, ValueError):
        takes_err = False
    echo(line, err=True) if takes_err else echo(line)


def _expand(raw, derived, table, known=None):
    """The feature columns after derivation: each derived column's parts (those with a value in the
    table; a checkpoint's `known` features decide instead)."""
    out = []
    for f in raw:
        if f not in derived:
            out.append(f)
            continue
        parts = derived_names(f, derived[f])
        if known is not None:
            out += [p for p in parts if p in known]
        else:
            out += [p for p in parts if np.isfinite(table[p].numbers).any()]
    return out


def _fit_preprocessing(cfg, task, features, targets, table, train):
    """The encoding the training rows give (fill values, categories, mean/std, classes)."""
    prep = {"kind": "table", "task": task, "target_names": targets}
    numeric = [f for f in features if table[f].numeric]
    prep["fill"], prep["indicators"] = {}, []
    if cfg.missing == "impute":
        prep["fill"], prep["indicators"] = fit_fill(train, features, numeric)
    indicators = set(prep["indicators"])
    prep["features"] = [c for f in features for c in ([f, f"{f} missing"] if f in indicators else [f])]
    prep["numeric"] = [f for f in prep["features"] if f in numeric or f.endswith(" missing") and f[:-8] in indicators]
    filled = impute(train, prep)[0] if prep["fill"] else train
    categorical = [f for f in features if f not in numeric]
    prep["categories"], prep["grouped"] = fit_categories(filled, categorical, cfg.min_category_count)
    if task == "classification":
        prep["class_names"] = sorted_classes(train[targets[0]])
        if len(prep["class_names"]) < 2:
            raise DataError(
                f"{table.path}: the training rows hold only one class ({prep['class_names'][0]!r}) in column "
                f"{targets[0]!r}; classification needs at least two"
            )
        prep["class_weight"] = None
        if cfg.class_weight == "balanced":  # scikit-learn's: n / (C * n_c), from the training rows
            counts = np.bincount(encode_targets(prep, train, "training"), minlength=len(prep["class_names"]))
            prep["class_weight"] = (len(train) / (len(counts) * np.maximum(counts, 1))).tolist()
    else:
        prep["class_names"] = None
    prep["columns"] = [c for f in prep["features"]
                       for c in ([f] if f in prep["numeric"] else [f"{f}={v}" for v in prep["categories"][f]])]
    widest = max(prep["categories"], key=lambda f: len(prep["categories"][f]), default=None)
    check_fits(
        4 * len(table) * len(prep["columns"]),
        f"data.path: {len(table):,} rows one-hot encoded into {len(prep['columns']):,} inputs"
        + (f" (column {widest!r} has {len(prep['categories'][widest]):,} categories)" if widest else ""),
        "leave out columns of unique values (names, ids) with data.exclude",
    )
    prep["mean"] = prep["std"] = None
    x_train = encode_features(prep, filled, "training", {})
    prep["clip"] = prep["linear"] = None
    if cfg.standardize:
        # Statistics from the training rows only, applied to every split (and stored for predict).
        mean, std = x_train.mean(axis=0, dtype=np.float64), x_train.std(axis=0, dtype=np.float64)
        std = np.where(std > 0, std, 1.0)
        if cfg.robust_scale:
            numbers = np.array([c in numeric for c in prep["columns"]])
            if cfg.linear_copy is not None and numbers.any():
                prep["linear"] = {"index": np.flatnonzero(numbers).tolist(),
                                  "mean": mean[numbers].tolist(), "std": std[numbers].tolist(), "low": None, "high": None}
                if cfg.linear_copy == "clamped":  # the training rows' range of each number column
                    prep["linear"]["low"] = x_train[:, numbers].min(axis=0).astype(np.float64).tolist()
                    prep["linear"]["high"] = x_train[:, numbers].max(axis=0).astype(np.float64).tolist()
            q1, median, q3 = np.percentile(x_train[:, numbers].astype(np.float64), [25, 50, 75], axis=0)
            iqr = (q3 - q1) / 1.349  # the std of a normal distribution
            mean[numbers], std[numbers] = median, np.where(iqr > 0, iqr, std[numbers])
            prep["clip"] = np.where(numbers, 1 / 3, 0.0).tolist()
        prep["mean"], prep["std"] = mean.tolist(), std.tolist()

    prep["target_mean"] = prep["target_std"] = None
    if task == "regression" and cfg.standardize_target:
        y = encode_targets(prep, train, "training")
        prep["target_mean"] = y.mean(axis=0, dtype=np.float64).tolist()
        prep["target_std"] = np.where((s := y.std(axis=0, dtype=np.float64)) > 0, s, 1.0).tolist()
    return prep


def _inputs(prep, table, part, notes, where=None):
    """float32 (N, D) model inputs of a (derived) table: missing cells filled, encoded, standardised.
    `where` names the rows in notes ("test rows of test.csv"; default "<part> rows")."""
    where = where or f"{part} rows"
    if prep.get("fill"):
        table, filled = impute(table, prep)
        if filled and part != "training":
            n = sum(filled.values())
            notes.append(f"{n:,} missing cell{'s' if n != 1 else ''} of the {where} imputed")
        elif filled:
            notes.append(f"{sum(filled.values()):,} missing cells in {len(filled)} column{'s' if len(filled) != 1 else ''} "
                         "of the training rows imputed "
                         f"(median / most frequent, fitted on the training rows, with an is-missing input)")
    unseen = {}
    x = standardize(prep, encode_features(prep, table, part, unseen))
    for f, n in unseen.items():
        notes.append(f"{n:,} {where} hold a category of {f!r} unseen in the training rows: encoded as all zeros")
    return x


def table_inputs(preprocessing, path, notes=None, drop=False, lines=None):
    """(x float32 (N, D), y or None) from a CSV with the model's input columns (any order, any extra
    columns), read, derived, filled and encoded exactly as in training. y is returned when every
    target column is present: class indices (int64), or float32 (N, M) targets in the target's own
    units (never standardised: compare them with `preprocess.target_units` of the model's outputs).

    With data.missing: drop, rows with a missing cell are dropped (a note) when `drop`, else an error
    (predict gives one output per row); with impute they are filled."""
    prep, notes = preprocessing, [] if notes is None else notes
    targets = prep["target_names"]
    raw = prep.get("inputs", prep["features"])
    table = read_csv(path, "input", text=True, delimiter=prep.get("delimiter"), decimal=prep.get("decimal", "."))
    notes += table.notes
    _present(table, raw, where=None)
    table = derive(table, prep.get("derived") or {})
    has_y = all(t in table.columns for t in targets)
    policy = prep.get("missing", "error")
    indicators = {f"{f} missing" for f in prep.get("indicators", [])}
    base = [f for f in prep["features"] if f not in indicators]
    kinds = _kinds(table, base if policy != "impute" else [], targets if has_y else [], prep["task"], prep["numeric"])
    table = _complete_rows(table, kinds, policy if drop or policy == "error" else "error", notes, predict=not drop,
                           trained=policy)
    x = _inputs(prep, table, "input", notes)
    if lines is not None:  # the file line of each row, for predict's output
        lines.extend(table.line(i) for i in range(len(table)))
    if not has_y:
        return x, None
    return x, encode_targets(prep, table, "input", scaled=False)


def _present(table, names, where="data.path"):
    """Every column in `names` is in the table, else a DataError naming the first absent one."""
    absent = [f for f in names if f not in table.columns]
    if absent:
        raise DataError(
            f"{table.path}: no column {absent[0]!r}{did_you_mean(absent[0], table.names)}; the model reads the columns "
            f"{', '.join(names)}" + (f" ({where})" if where else "")
        )


# --- columns and rows -------------------------------------------------------------------------


def _columns(cfg, table, targets, source, where="data.path"):
    """The feature columns in order; an unknown target or feature column is a ConfigError."""
    for key, names in (("data.target", targets), ("data.features", cfg.features or []),
                       ("data.exclude", cfg.exclude or [])):
        for name in names:
            if name not in table.columns:
                raise ConfigError(
                    f"{source}: {key}: no column {name!r} in {table.path} ({where}){did_you_mean(name, table.names)}; "
                    f"its columns: {', '.join(table.names)}"
                )
    features = list(cfg.features) if cfg.features is not None else [n for n in table.names if n not in targets]
    features = [f for f in features if f not in (cfg.exclude or [])]
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


def _complete_rows(table, kinds, missing, notes, predict=False, trained=None):
    """The table without rows holding a missing or unparsable cell in the columns of `kinds` (with
    missing: drop or impute, where kinds holds only the targets), else a DataError naming the first
    such cell's line and column. `trained` is the run's policy (predict's messages say it)."""
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
        if predict and trained == "drop":
            hint = "; the model was trained with data.missing: drop, so a prediction needs every cell (fix the file, or train with data.missing: impute)"
        elif predict:
            hint = "; fix the file"
        else:
            hint = "; fix the file, or set data.missing: impute (fill it) or drop (drop such rows)"
        raise DataError(f"{table.path}, line {table.line(row)}, column {name!r}: {what}{hint}")
    if bad.all():
        raise DataError(f"{table.path}: every row has a missing or unparsable cell; nothing is left to train on")
    what = "a missing or unparsable cell" if missing == "drop" else "no target value"
    notes.append(f"dropped {int(bad.sum()):,} of {len(table):,} rows of {table.path.name} with {what} (data.missing: {missing})")
    return table.take(~bad)


# --- encoding ---------------------------------------------------------------------------------
