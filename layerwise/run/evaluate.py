"""Scoring a model: metrics on a split, and `layerwise eval` of a saved run."""

import math
from pathlib import Path

import numpy as np

from ..config.schema import apply_overrides, config_from_dict, load_config
from ..errors import CheckpointError
from . import metrics
from .checkpoint import load_run_arrays, load_run_meta, resolve_checkpoint
from .report import format_confusion, format_metrics, format_per_class


def evaluate(model, loss_fn, split, task, batch_size=5000, preprocessing=None):
    """Loss (mean over the split) and the task's metrics. Classification: accuracy, macro precision,
    recall and F1, ROC AUC with two classes, and (not scalars: left out of metrics.csv) `confusion` and
    `per_class` precision, recall and F1.

    A split's targets are what the loss trains on, standardised when the run standardised them; the
    loss is computed there, and the regression metrics (MSE, MAE, R2) in the target's own units, with
    the `preprocessing`'s target_mean/target_std: every epoch line, metrics.csv, test.json and eval."""
    outputs = model.predict(split.x, batch_size)
    result = {"loss": loss_fn.forward(outputs, split.y)}
    if task == "classification":
        result["accuracy"] = metrics.accuracy(outputs, split.y)
        counts = metrics.confusion_matrix(outputs, split.y, outputs.shape[1])
        macro, per_class = metrics.class_metrics(counts)
        result.update(macro)
        if outputs.shape[1] == 2:  # the logit difference orders the rows as p(class 1) does
            result["auc"] = metrics.roc_auc(outputs[:, 1].astype(np.float64) - outputs[:, 0], split.y == 1)
        result["confusion"], result["per_class"] = counts, per_class
    else:
        result.update(metrics.regression_metrics(*in_target_units(preprocessing, outputs, split.y)))
    return result


def in_target_units(preprocessing, outputs, y):
    """(outputs, y) of a regression split in the target's units (unchanged unless the targets were standardised)."""
    from ..data.preprocess import target_units

    if not preprocessing or preprocessing.get("target_mean") is None:
        return outputs, y
    return target_units(preprocessing, outputs), target_units(preprocessing, y)


def standardised_targets(preprocessing):
    """Whether the run's loss sees standardised targets (its loss is then not in the target's units)."""
    return isinstance(preprocessing, dict) and preprocessing.get("target_mean") is not None


UNITS_NOTE = ("note: data.standardize_target: the loss is on the standardised target, (y - mean) / std; "
              "mse, mae and R2 are in the target's own units")


def loss_notes(loss, data):
    """Notes on what the printed loss means, for train, resume and eval: standardised targets, or
    smoothed labels, whose cross-entropy cannot go below their entropy (0 only without smoothing)."""
    notes = [UNITS_NOTE] if standardised_targets(data.preprocessing) else []
    e, C = getattr(loss, "label_smoothing", 0.0), data.num_outputs
    if e:
        true, other = 1 - e + e / C, e / C  # q = (1 - e) onehot + e / C
        floor = -true * math.log(true) - (C - 1) * other * math.log(other)
        notes.append(f"note: loss.label_smoothing {e}: the loss is on smoothed labels ({true:.4g} for the true class, "
                     f"{other:.4g} for each other), so it cannot go below {floor:.4f}; accuracy and F1 are on the real labels")
    return notes


def load_run(target, which="best", overrides=(), split="test", data=None):
    """Rebuild (cfg, data, model, loss, run state) from a run directory or checkpoint; overrides apply to
    its config.

    A run directory's config.yaml is used when present (so a user's edits to it are honoured and
    checked against the weights); a bare checkpoint brings its own config. Only the files of `split`
    are read, with the checkpoint's preprocessing, and they must be the data the run was trained on
    (its fingerprint); `data` (a file or directory) scores other data on purpose instead.
    """
    from ..data.fingerprint import valid_fingerprint
    from .build import build, check_fingerprint
    from .state import RunState

    path = resolve_checkpoint(target, which)
    meta = load_run_meta(path)
    state = RunState.from_meta(meta["state"], path)
    config_file = path.parent / "config.yaml"
    if config_file.is_file():
        cfg = load_config(config_file, overrides)
    else:
        cfg = config_from_dict(apply_overrides(meta["config"], overrides, str(path)), str(path))
    if data is not None:
        return cfg, _other_data(path, meta, cfg, data, split), *_model(path, cfg), state
    pre = meta.get("preprocessing")  # an older checkpoint has none: its preprocessing needs every split
    if pre is not None or meta.get("data") is not None:
        from ..data.preprocess import check_stored

        check_stored(path, meta.get("data"), pre)
    dataset, model, loss, _ = build(cfg, splits=(split,) if pre else ("train", "val", "test"), preprocessing=pre,
                                    known=meta.get("fingerprint") if valid_fingerprint(meta.get("fingerprint")) else None)
    load_run_arrays(path, model, against=f"the model in {cfg.source}")
    check_fingerprint(dataset, meta, path, f"to score other data on purpose: layerwise eval {target} --data FILE_OR_DIR")
    return cfg, dataset, model, loss, state


def _model(path, cfg):
    from ..nn.registry import build_loss
    from .loaded import load

    loaded = load(path)
    return loaded.model, build_loss(cfg.loss, loaded.task, where=f"{cfg.source}: loss")


def _other_data(path, meta, cfg, source, split):
    """`eval --data`: a Dataset whose `split` is read from `source` (a directory of IDX files, or an
    input file with targets) with the run's preprocessing; no fingerprint check."""
    from ..data.dataset import Dataset, Split
    from ..data.inputs import merged, read_inputs
    from ..data.preprocess import check_stored
    from ..errors import ConfigError, DataError

    pre, sizes = meta.get("preprocessing"), meta.get("data")
    if pre is None and sizes is None:
        raise CheckpointError(f"{path} does not store its preprocessing (made by an older layerwise); "
                              "retrain it to score other data with --data")
    check_stored(path, sizes, pre)
    source = Path(source)
    if source.is_dir():
        if pre["kind"] != "image":
            raise DataError(f"--data {source} is a directory; this model takes a file (CSV, .npy or .npz) with targets")
        if split == "val":
            raise ConfigError("--data DIR scores its test files (or --split train); it has no validation split")
        from ..data.idx_files import find_idx_files

        keys = (f"{split}_images", f"{split}_labels")
        paths = find_idx_files(source, keys, origin="--data")
        inputs = merged(read_inputs([paths[k] for k in keys], pre, sizes["task"]))
    else:
        from ..data.inputs import labels_beside

        labels = labels_beside(source)  # an IDX images file: its labels file next to it
        inputs = merged(read_inputs([source] + ([labels] if labels else []), pre, sizes["task"]))
    y = inputs.y
    if y is not None and sizes["task"] == "regression":
        from ..data.tabular import scale_targets

        y = scale_targets(pre, np.array(y, dtype=np.float32))  # as the loss sees them, like every other split
    if inputs.y is None:
        raise DataError(f"--data {source}: holds no targets to score against (an .npz needs y, a CSV the target "
                        "column); to see predictions without targets use layerwise predict")
    dataset = Dataset(None, None, None, sizes["task"], sizes["num_outputs"], pre, [str(source)])
    setattr(dataset, split, Split(inputs.x, y))
    return dataset


def evaluate_run(target, split="test", which="best", overrides=(), echo=print, data=None):
    cfg, dataset, model, loss, state = load_run(target, which, overrides, split, data)
    result = evaluate(model, loss, dataset.split(split), dataset.task, cfg.train.eval_batch_size, dataset.preprocessing)
    what = f"{split} split" if data is None else f"{data} (not the run's data)"
    steps = (load_run_meta(resolve_checkpoint(target, which)).get("data") or {}).get("steps_per_epoch")
    echo(f"{cfg.name}, {state.describe_weights(steps)}: {what}, {len(dataset.split(split)):,} examples")
    for note in loss_notes(loss, dataset):
        echo(note)
    echo(f"{split if data is None else 'data'} {format_metrics(result)}")
    if "confusion" in result:
        names = (dataset.preprocessing or {}).get("class_names")
        echo(format_per_class(result["per_class"], names))
        echo(format_confusion(result["confusion"], names))
        if names is not None:
            result["classes"] = list(names)
    if _is_linear_regression(model, dataset):
        W, b = model.layers[0].params["W"][:, 0], model.layers[0].params.get("b")
        echo("learned weights w = [" + ", ".join(f"{w:.4f}" for w in W) + "]" + (f", bias b = {b[0]:.4f}" if b is not None else ""))
        result["weights"], result["bias"] = W.tolist(), (float(b[0]) if b is not None else None)
    return result


def _is_linear_regression(model, data):
    params = model.layers[0].params
    return data.task == "regression" and len(model.layers) == 1 and "W" in params and params["W"].shape[1] == 1
