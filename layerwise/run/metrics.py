"""Metrics computed from whole-split predictions."""

import numpy as np


def accuracy(logits, labels):
    return float(np.mean(logits.argmax(axis=1) == labels))


def confusion_matrix(logits, labels, num_classes):
    """counts[i, j] = how many examples of true class i were predicted as class j."""
    predicted = logits.argmax(axis=1)
    return np.bincount(labels * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, num_classes)


def class_metrics(counts):
    """Precision, recall and F1 per class from a confusion matrix (0 where undefined, as scikit-learn's
    zero_division=0), and their macro means (every class weighs the same)."""
    counts = counts.astype(np.float64)
    tp = np.diag(counts)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())}, {
        "precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist()}


def roc_auc(scores, positive):
    """Area under the ROC curve of `scores` for the boolean `positive`: the chance that a random positive
    scores above a random negative (ties count half), by the Mann-Whitney rank sum; NaN with one class."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    distinct, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties given their mean
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_metrics(pred, target):
    """MSE, MAE and R^2 = 1 - SS_res / SS_tot, over every entry."""
    err = pred.astype(np.float64) - target
    ss_tot = float(np.sum((target - target.mean(axis=0)) ** 2))
    ss_res = float(np.sum(err**2))
    return {
        "mse": float(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
    }


# The metric that picks the best epoch for each task, and whether higher is better.
MONITOR = {"classification": ("accuracy", True), "regression": ("mse", False)}
# train.monitor: the metric (a validation column of metrics.csv without its "val_"), whether higher is
# better, and the task it needs (None: either).
MONITORS = {"loss": (False, None), "accuracy": (True, "classification"), "f1": (True, "classification"),
            "mse": (False, "regression"), "r2": (True, "regression")}


def higher_is_better(column):
    """Whether a larger value of a metric column ("val_f1", "val_loss") is better: the monitor's direction."""
    return MONITORS.get(column.removeprefix("val_"), (False, None))[0]


def changes_the_loss(key):
    """Whether a config key (-s syntax) changes what the loss measures, so that val losses of runs that
    differ in it are not comparable: the loss and its arguments, class weights, standardised targets."""
    return key == "loss" or key.startswith("loss.") or key in ("data.class_weight", "data.standardize_target")


def monitor_for(train_cfg, task, source="<config>"):
    """(metric, higher_is_better) that train.monitor names (or the task's default); a metric the task
    does not have is a ConfigError."""
    from ..errors import ConfigError

    if train_cfg.monitor is None:
        return MONITOR[task]
    name = train_cfg.monitor[4:]
    higher, needs = MONITORS[name]
    if needs is not None and needs != task:
        valid = ", ".join(f"val_{m}" for m, (_, t) in MONITORS.items() if t in (None, task))
        raise ConfigError(f"{source}: train.monitor: {train_cfg.monitor} is not a {task} metric; valid: {valid}")
    return name, higher
